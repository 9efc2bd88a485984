//! The ledger counted: every decision it records is also a `Grants` or `Denials` data point of
//! the invocation, and every append it fails is a `LedgerAppendFailures` one, so the metrics
//! never disagree with the ledger about what was decided.

use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::{AuditError, AuditEvent, AuditRecord, AuditSink};
use crate::metrics::tally::{self, Counted};

pub struct CountedLedger(pub Arc<dyn AuditSink>);

#[async_trait]
impl AuditSink for CountedLedger {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        let counted = Counted::decision(&event);
        let appended = self.0.append(event).await;
        // A grant whose record failed was not granted (the caller answers 503): only recorded
        // decisions are counted.
        tally::count(if appended.is_ok() { counted } else { Counted::LedgerAppendFailure });
        appended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Decision;
    use crate::ids::TenantId;
    use crate::memory::MemoryLedger;

    struct Broken;

    #[async_trait]
    impl AuditSink for Broken {
        async fn append(&self, _: AuditEvent) -> Result<AuditRecord, AuditError> {
            Err(AuditError::Unavailable("down".into()))
        }
    }

    fn event() -> AuditEvent {
        AuditEvent {
            tenant: TenantId::parse("t1").unwrap(),
            actor: "u".into(),
            action: "manifest.read".into(),
            resource: "content/c".into(),
            decision: Decision::Allow,
            reason: "granted".into(),
            request_id: "r".into(),
            source_ip: None,
        }
    }

    #[tokio::test]
    async fn recorded_decisions_and_failed_appends_are_counted() {
        let ledger = CountedLedger(Arc::new(MemoryLedger::default()));
        let broken = CountedLedger(Arc::new(Broken));
        let (_, tally) = tally::collect(async {
            ledger.append(event()).await.unwrap();
            broken.append(event()).await.unwrap_err();
        })
        .await;
        assert_eq!(tally.get(&Counted::decision(&event())), 1);
        assert_eq!(tally.get(&Counted::LedgerAppendFailure), 1);
    }
}
