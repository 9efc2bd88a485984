//! The append-only, tamper-evident audit ledger: every access decision and state change, hash
//! chained per tenant, day and shard in DynamoDB.
//!
//! - [`record`]: what a record holds and its canonical encoding and hash.
//! - [`ledger`]: the port records are appended through, and the storage layout.
//! - [`changes`]: the archived change stream, where any rewrite of an item shows.
//! - [`digest`]: signed, chained digests of the chain heads, and checking a day against them.
//! - [`verify`]: reading a chain back and naming the first modified, missing or reordered record.

pub mod changes;
pub mod counted;
pub mod digest;
pub mod ledger;
pub mod record;
pub mod verify;

pub use ledger::{AuditError, AuditSink};
pub use record::{AuditEvent, AuditRecord, ChainId, Decision};
pub use verify::{check_chain, ChainItems, ChainReport, Problem};
