//! The ledger port: where decisions are appended, and the storage layout every adapter shares.
//!
//! Layout: partition key `pk` = chain id, sort key `sk` = `r#{seq:020}` for records and `head`
//! for the chain head (`seq`, `hash` of the last record, and `head_slot`, which puts every head in
//! the sparse `heads` index so the digest writer finds a day's chains without a scan). Records
//! are never updated or deleted.

use async_trait::async_trait;

use crate::audit::record::{AuditEvent, AuditRecord, ChainId};
use crate::ids::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit ledger is unavailable: {0}")]
    Unavailable(String),
    #[error("the audit chain {chain} stayed contended after {attempts} attempts")]
    Contended { chain: String, attempts: u32 },
    #[error("the audit chain head of {0} is unreadable: {1}")]
    CorruptHead(String, String),
    #[error("an audit record could not be encoded: {0}")]
    Encoding(String),
}

#[async_trait]
pub trait AuditSink: Send + Sync {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError>;
}

pub const HEAD_SK: &str = "head";
/// The sparse global secondary index of chain heads: partition key `head_slot`, sort key `pk`.
pub const HEAD_INDEX: &str = "heads";
/// Heads of one day spread over this many index partitions, so a busy day's head writes never
/// meet on one partition.
pub const HEAD_SLOTS: u8 = 16;

/// `{day}#{n}`: the index partition a chain's head lives in, `n` fixed by the chain id.
pub fn head_slot(chain: &ChainId) -> String {
    let id = chain.to_string();
    let n = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes()).as_ref()[0] % HEAD_SLOTS;
    format!("{}#{n}", chain.day)
}

pub fn record_sk(seq: u64) -> String {
    format!("r#{seq:020}")
}

/// The time a record is stamped with and the day its chain belongs to: `(RFC 3339 with
/// milliseconds, YYYY-MM-DD)`, both UTC.
pub fn now_rfc3339_millis() -> (String, String) {
    crate::clock::now_with_day()
}

/// Used where a tenant is needed for a chain id in tests and tools.
pub fn chain(tenant: &TenantId, day: &str, shard: u16) -> ChainId {
    ChainId { tenant: tenant.clone(), day: day.to_string(), shard }
}
