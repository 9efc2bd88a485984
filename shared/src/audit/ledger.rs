//! The ledger port: where decisions are appended, and the storage layout every adapter shares.
//!
//! Layout: partition key `pk` = chain id, sort key `sk` = `r#{seq:020}` for records and `head`
//! for the chain head (`seq`, `hash` of the last record). Records are never updated or deleted.

use async_trait::async_trait;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
}

#[async_trait]
pub trait AuditSink: Send + Sync {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError>;
}

pub const HEAD_SK: &str = "head";

pub fn record_sk(seq: u64) -> String {
    format!("r#{seq:020}")
}

pub fn now_rfc3339_millis() -> (String, String) {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(now.millisecond() as u32 * 1_000_000).unwrap_or(now);
    let time = now.format(&Rfc3339).unwrap_or_else(|_| now.unix_timestamp().to_string());
    let day = format!("{:04}-{:02}-{:02}", now.year(), now.month() as u8, now.day());
    (time, day)
}

/// Used where a tenant is needed for a chain id in tests and tools.
pub fn chain(tenant: &TenantId, day: &str, shard: u16) -> ChainId {
    ChainId { tenant: tenant.clone(), day: day.to_string(), shard }
}
