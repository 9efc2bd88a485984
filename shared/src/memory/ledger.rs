//! The audit ledger in memory: records chained and hashed exactly as the DynamoDB ledger does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::audit::ledger::{now_rfc3339_millis, AuditError, AuditSink};
use crate::audit::record::{AuditEvent, AuditRecord, ChainId};

#[derive(Default)]
pub struct MemoryLedger {
    heads: Mutex<HashMap<String, (u64, String)>>,
    records: Mutex<Vec<AuditRecord>>,
    down: AtomicBool,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every append fail as an unreachable table would (`false` restores it).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Every record appended so far, in order.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl AuditSink for MemoryLedger {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(AuditError::Unavailable("the in-memory ledger is switched off".into()));
        }
        let (time, day) = now_rfc3339_millis();
        let chain = ChainId { tenant: event.tenant.clone(), day, shard: 0 };
        let record = {
            let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
            let head = heads.entry(chain.to_string()).or_insert_with(|| (0, chain.genesis_hash()));
            let record = AuditRecord::new(chain, head.0 + 1, time, event, head.1.clone())?;
            *head = (record.seq, record.hash.clone());
            record
        };
        self.records.lock().unwrap_or_else(|p| p.into_inner()).push(record.clone());
        Ok(record)
    }
}
