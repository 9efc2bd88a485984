//! Domain events counted while one invocation runs, published when it ends as EMF documents
//! beside the invocation's RED line. The count is task-local: rules call [`count`] without a
//! metrics handle threaded through every service, and outside [`collect`] (tests, tools) it is a
//! no-op.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use serde_json::Value;

use crate::audit::{AuditEvent, Decision};
use crate::emf::{Document, Unit};

/// One kind of domain event; the variants' fields become dimensions, so each is a short word
/// from a fixed set, never an id or free text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counted {
    /// A decision the ledger recorded: `Grants` or `Denials`, by action (and denials by reason).
    Decision { action: String, decision: Decision, reason: String },
    /// A decision that could not be written to the ledger (`LedgerAppendFailures`).
    LedgerAppendFailure,
    /// A transcode job handed to Batch (`JobsSubmitted`, by queue).
    JobSubmitted { queue: &'static str },
    /// A Batch job that ended, as the state-change event said (`JobsFinished`, by status).
    JobFinished { status: String },
    /// Work put back to be tried again later (`Retries`).
    Retry,
    /// A failure given up on and sent to a dead-letter queue (`DeadLetters`).
    DeadLetter,
}

impl Counted {
    /// The decision an audit event records, its reason cut to the code before the first `:`
    /// (`token_expired: the token expired at …` → `token_expired`).
    pub fn decision(event: &AuditEvent) -> Self {
        let reason = match event.decision {
            Decision::Allow => "granted".to_string(),
            Decision::Deny => reason_code(&event.reason),
        };
        Counted::Decision { action: event.action.clone(), decision: event.decision, reason }
    }

    fn document(&self, function: &str, count: u64) -> Document {
        let count = count as f64;
        match self {
            Counted::Decision { action, decision: Decision::Allow, .. } => {
                Document::new(&[("Function", function), ("Action", action)]).metric("Grants", Unit::Count, count)
            }
            Counted::Decision { action, decision: Decision::Deny, reason } => {
                Document::new(&[("Function", function), ("Action", action), ("Reason", reason)]).rollup(&["Function", "Action"]).metric(
                    "Denials",
                    Unit::Count,
                    count,
                )
            }
            Counted::LedgerAppendFailure => {
                Document::new(&[("Function", function)]).rollup(&[]).metric("LedgerAppendFailures", Unit::Count, count)
            }
            Counted::JobSubmitted { queue } => {
                Document::new(&[("Function", function), ("Queue", queue)]).metric("JobsSubmitted", Unit::Count, count)
            }
            Counted::JobFinished { status } => {
                Document::new(&[("Function", function), ("Status", status)]).metric("JobsFinished", Unit::Count, count)
            }
            Counted::Retry => Document::new(&[("Function", function)]).metric("Retries", Unit::Count, count),
            Counted::DeadLetter => Document::new(&[("Function", function)]).rollup(&[]).metric("DeadLetters", Unit::Count, count),
        }
    }
}

/// A snake_case code of at most 40 characters before the first `:`, or `other`: a dimension
/// value must come from a small set, or every distinct message would be a metric of its own.
fn reason_code(reason: &str) -> String {
    let code = reason.split(':').next().unwrap_or_default().trim();
    let well_formed = !code.is_empty()
        && code.len() <= 40
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if well_formed {
        code.to_string()
    } else {
        "other".to_string()
    }
}

tokio::task_local! {
    static TALLY: Mutex<BTreeMap<Counted, u64>>;
}

/// Counts one event in the current invocation's tally; outside one, nothing happens.
pub fn count(event: Counted) {
    let _ = TALLY.try_with(|tally| {
        if let Ok(mut tally) = tally.lock() {
            *tally.entry(event).or_default() += 1;
        }
    });
}

/// What was counted during one invocation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally(BTreeMap<Counted, u64>);

impl Tally {
    pub fn get(&self, event: &Counted) -> u64 {
        self.0.get(event).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One EMF document per distinct event, for `function`, with the request id to find the
    /// invocation's logs from a data point.
    pub fn documents(&self, function: &str, request_id: &str, timestamp_ms: u64) -> Vec<Value> {
        self.events(function, request_id).map(|document| document.render(timestamp_ms)).collect()
    }

    /// The same documents, before rendering.
    pub fn events<'a>(&'a self, function: &'a str, request_id: &'a str) -> impl Iterator<Item = Document> + 'a {
        self.0.iter().map(move |(event, count)| event.document(function, *count).property("RequestId", request_id))
    }
}

/// Runs `future` with a fresh tally and returns what it counted.
pub async fn collect<F: Future>(future: F) -> (F::Output, Tally) {
    TALLY
        .scope(Mutex::new(BTreeMap::new()), async {
            let output = future.await;
            let counted = TALLY.with(|tally| tally.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default());
            (output, Tally(counted))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emf::validate;
    use crate::ids::TenantId;

    fn event(decision: Decision, reason: &str) -> AuditEvent {
        AuditEvent {
            tenant: TenantId::parse("t1").unwrap(),
            actor: "u".into(),
            action: "key.fetch".into(),
            resource: "content/c".into(),
            decision,
            reason: reason.into(),
            request_id: "r".into(),
            source_ip: None,
        }
    }

    #[test]
    fn denial_reasons_become_a_small_set_of_codes() {
        let code = |reason: &str| match Counted::decision(&event(Decision::Deny, reason)) {
            Counted::Decision { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(code("token_expired: the token expired at 12:00"), "token_expired");
        assert_eq!(code("refused: the upload is 3 bytes"), "refused");
        assert_eq!(code("job 1234 on the gpu queue (attempt 1): why"), "other");
        assert_eq!(code("Forbidden: x"), "other");
        assert_eq!(code(&"a".repeat(41)), "other");
        assert_eq!(code(""), "other");
        assert!(matches!(Counted::decision(&event(Decision::Allow, "anything")), Counted::Decision { reason, .. } if reason == "granted"));
    }

    #[tokio::test]
    async fn an_invocation_counts_only_its_own_events() {
        count(Counted::Retry); // outside any invocation: dropped
        let ((), first) = collect(async {
            count(Counted::decision(&event(Decision::Deny, "not_entitled: no")));
            count(Counted::decision(&event(Decision::Deny, "not_entitled: again")));
            count(Counted::JobSubmitted { queue: "video_cpu" });
            tokio::task::yield_now().await;
            count(Counted::LedgerAppendFailure);
        })
        .await;
        let ((), second) = collect(async {}).await;
        assert!(second.is_empty());
        let denial = Counted::Decision { action: "key.fetch".into(), decision: Decision::Deny, reason: "not_entitled".into() };
        assert_eq!((first.get(&denial), first.get(&Counted::LedgerAppendFailure), first.get(&Counted::Retry)), (2, 1, 0));

        let documents = first.documents("key_delivery", "r-9", 1);
        assert_eq!(documents.len(), 3);
        for doc in &documents {
            assert_eq!(validate(doc), Ok(()), "{doc}");
            assert_eq!((doc["Function"].as_str(), doc["RequestId"].as_str()), (Some("key_delivery"), Some("r-9")));
        }
        let denials = documents.iter().find(|d| d.get("Denials").is_some()).unwrap();
        assert_eq!((denials["Denials"].as_f64(), denials["Reason"].as_str()), (Some(2.0), Some("not_entitled")));
        assert_eq!(
            denials["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function", "Action", "Reason"], ["Function", "Action"]])
        );
    }
}
