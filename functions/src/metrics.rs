//! RED metrics (rate, errors, duration) of every invocation, written as one CloudWatch Embedded
//! Metric Format line to stdout, which Lambda sends to the function's log group and CloudWatch
//! turns into metrics under `VaultStream` with the dimension `Function`:
//!
//! | metric | unit | meaning |
//! |---|---|---|
//! | `Requests` | Count | 1 per invocation |
//! | `Errors` | Count | 1 when the answer is a 5xx or the handler failed (ours to fix) |
//! | `ClientErrors` | Count | 1 when the answer is a 4xx or the authorizer denied |
//! | `Duration` | Milliseconds | handler time (the origin check included) |
//!
//! Domain events (grants, denials, jobs, retries, dead letters) follow as lines of their own:
//! `vaultstream::metrics::tally`.
//!
//! The line also carries the request id, whether this was the instance's first invocation
//! (`ColdStart`) and, for HTTP functions, the status code: searchable with Logs Insights.

use std::time::Duration;

use serde_json::Value;
use vaultstream::emf::{Document, Unit};
use vaultstream::metrics::tally::Tally;

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status: 5xx counts as an error, 4xx as a client error.
    Http(u16),
    /// An event handled.
    Done,
    /// An event answered with a refusal (an authorizer's denial).
    Refused,
    /// The handler failed: Lambda retries or dead-letters the event.
    Failed,
}

impl Outcome {
    fn error(self) -> bool {
        matches!(self, Outcome::Failed) || matches!(self, Outcome::Http(s) if s >= 500)
    }

    fn client_error(self) -> bool {
        matches!(self, Outcome::Refused) || matches!(self, Outcome::Http(s) if (400..500).contains(&s))
    }
}

pub struct Invocation<'a> {
    /// The function's contract name.
    pub function: &'a str,
    pub outcome: Outcome,
    pub elapsed: Duration,
    pub request_id: &'a str,
    pub cold_start: bool,
}

impl Invocation<'_> {
    fn red(&self) -> Document {
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        let document = Document::new(&[("Function", self.function)])
            .metric("Requests", Unit::Count, 1.0)
            .metric("Errors", Unit::Count, flag(self.outcome.error()))
            .metric("ClientErrors", Unit::Count, flag(self.outcome.client_error()))
            .metric("Duration", Unit::Milliseconds, (self.elapsed.as_secs_f64() * 1e6).round() / 1e3)
            .property("RequestId", self.request_id)
            .property("ColdStart", self.cold_start);
        match self.outcome {
            Outcome::Http(status) => document.property("StatusCode", status),
            _ => document,
        }
    }

    /// The RED document, as a JSON value.
    pub fn document(&self, timestamp_ms: u64) -> Value {
        self.red().render(timestamp_ms)
    }

    /// The RED line, then one line for each kind of domain event counted, appended to `out`.
    pub fn write_lines(&self, tally: &Tally, timestamp_ms: u64, out: &mut Vec<u8>) {
        self.red().write_line(timestamp_ms, out);
        for document in tally.events(self.function, self.request_id) {
            document.write_line(timestamp_ms, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(outcome: Outcome) -> Value {
        Invocation { function: "manifest", outcome, elapsed: Duration::from_micros(12_345), request_id: "r-1", cold_start: true }
            .document(1_795_400_000_000)
    }

    #[test]
    fn every_answer_is_counted_by_class() {
        let cases = [
            (Outcome::Http(200), 0.0, 0.0),
            (Outcome::Http(404), 0.0, 1.0),
            (Outcome::Http(503), 1.0, 0.0),
            (Outcome::Done, 0.0, 0.0),
            (Outcome::Refused, 0.0, 1.0),
            (Outcome::Failed, 1.0, 0.0),
        ];
        for (outcome, errors, client) in cases {
            let doc = invocation(outcome);
            assert_eq!(vaultstream::emf::validate(&doc), Ok(()), "{doc}");
            assert_eq!(
                (doc["Requests"].as_f64(), doc["Errors"].as_f64(), doc["ClientErrors"].as_f64()),
                (Some(1.0), Some(errors), Some(client)),
                "{outcome:?}"
            );
        }
        assert_eq!(invocation(Outcome::Http(404))["StatusCode"], 404);
        assert!(invocation(Outcome::Done).get("StatusCode").is_none());
        let doc = invocation(Outcome::Http(200));
        assert_eq!(
            (doc["Function"].as_str(), doc["Duration"].as_f64(), doc["ColdStart"].as_bool()),
            (Some("manifest"), Some(12.345), Some(true))
        );
        assert!(!doc.to_string().contains('\n'), "one line");
    }
}
