//! Reading chains back and checking them. The report names the first record that is modified
//! (its hash no longer matches its content), missing (a gap in sequence numbers, or records cut
//! off after the last one), reordered (a record sits at another record's position) or detached
//! (its `prev_hash` does not name the record before it).

use std::fmt;

use crate::audit::ledger::{record_sk, HEAD_SK};
use crate::audit::record::{AuditRecord, ChainId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The record's fields no longer hash to its stored hash.
    Modified { seq: u64 },
    /// Sequence numbers jump: `seq` should be there and is not.
    Missing { seq: u64 },
    /// The record at position `position` says it is record `found`.
    Reordered { position: u64, found: u64 },
    /// The record's `prev_hash` is not the previous record's hash.
    Detached { seq: u64 },
    /// The head says the chain is longer than the records that are left.
    Truncated { last: u64, head: u64 },
    /// A stored item cannot be read as a record.
    Unreadable { sk: String, reason: String },
    /// A record stored under a sort key other than its own canonical `r#{seq:020}`.
    NonCanonicalKey { sk: String, seq: u64 },
    /// The record a signed digest listed no longer has the hash the digest signed.
    DiffersFromDigest { seq: u64, digest: u64 },
    /// A signed digest listed `listed` records; only `last` are left.
    BehindDigest { last: u64, listed: u64, digest: u64 },
    /// The day was closed by a signed digest, and records were added after.
    AfterClose { seq: u64, digest: u64 },
    /// The archived change stream shows an item modified or removed: records are only inserted.
    ChangedInPlace { sk: String, removed: bool, at: String },
    /// The archived change stream shows the head set back (or to an unreadable number).
    HeadSetBack { from: u64, to: u64, at: String },
    /// The record was written long enough ago to be archived, and its INSERT is not.
    NotArchived { seq: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Modified { seq } => write!(f, "record {seq} was modified: its content no longer matches its hash"),
            Problem::Missing { seq } => write!(f, "record {seq} is missing"),
            Problem::Reordered { position, found } => {
                write!(f, "record {found} sits at position {position}: records were swapped or reordered")
            }
            Problem::Detached { seq } => write!(f, "record {seq} does not follow the record before it (prev_hash mismatch)"),
            Problem::Truncated { last, head } => write!(f, "records {}..={head} are missing after record {last}", last + 1),
            Problem::Unreadable { sk, reason } => write!(f, "item {sk} is not a readable record: {reason}"),
            Problem::NonCanonicalKey { sk, seq } => {
                write!(f, "item {sk} holds record {seq} under a sort key other than its own ({}): a record was inserted", record_sk(*seq))
            }
            Problem::DiffersFromDigest { seq, digest } => {
                write!(f, "record {seq} no longer has the hash signed digest #{digest} recorded: the chain up to it was rewritten")
            }
            Problem::BehindDigest { last, listed, digest } if *last == 0 => {
                write!(f, "the whole chain is gone: signed digest #{digest} listed {listed} records")
            }
            Problem::BehindDigest { last, listed, digest } => {
                write!(f, "records {}..={listed} are gone: signed digest #{digest} listed {listed} records", last + 1)
            }
            Problem::AfterClose { seq, digest } => {
                write!(f, "record {seq} was added after signed digest #{digest} closed the day")
            }
            Problem::ChangedInPlace { sk, removed, at } => {
                let what = if *removed { "removed" } else { "modified in place" };
                write!(f, "item {sk} was {what} {at} (archived change stream): ledger items are only ever inserted")
            }
            Problem::HeadSetBack { from, to, at } => {
                write!(f, "the chain head was set back from record {from} to {to} {at} (archived change stream)")
            }
            Problem::NotArchived { seq } => {
                write!(f, "record {seq} never reached the change archive: it was written while the ledger's change stream was off")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub chain: ChainId,
    pub records: u64,
    pub problem: Option<Problem>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// One chain as storage holds it: each record item under its sort key (or why it could not be
/// read as a record), and the head's sequence number when there is a head.
#[derive(Debug, Default)]
pub struct ChainItems {
    pub records: Vec<(String, Result<AuditRecord, String>)>,
    pub head: Option<Result<u64, String>>,
}

/// Checks one chain record by record, in sort-key order.
pub fn check_chain(chain: &ChainId, items: ChainItems) -> ChainReport {
    let ChainItems { mut records, head } = items;
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let report = |records: u64, problem| ChainReport { chain: chain.clone(), records, problem };
    let mut prev_hash = chain.genesis_hash();
    let mut expected = 1u64;
    for (count, (sk, record)) in records.into_iter().enumerate() {
        let count = count as u64;
        let position = sk.strip_prefix("r#").and_then(|n| n.parse::<u64>().ok());
        let Some(position) = position else {
            return report(count, Some(Problem::Unreadable { sk, reason: "sort key is not r#<seq>".into() }));
        };
        let record = match record {
            Ok(r) => r,
            Err(reason) => return report(count, Some(Problem::Unreadable { sk, reason })),
        };
        if sk != record_sk(position) {
            return report(count, Some(Problem::NonCanonicalKey { sk, seq: record.seq }));
        }
        if position > expected {
            return report(count, Some(Problem::Missing { seq: expected }));
        }
        if record.seq != position {
            return report(count, Some(Problem::Reordered { position, found: record.seq }));
        }
        match record.compute_hash() {
            Ok(hash) if hash == record.hash => {}
            Ok(_) => return report(count, Some(Problem::Modified { seq: record.seq })),
            Err(e) => return report(count, Some(Problem::Unreadable { sk, reason: e.to_string() })),
        }
        if record.prev_hash != prev_hash {
            return report(count, Some(Problem::Detached { seq: record.seq }));
        }
        prev_hash = record.hash;
        expected += 1;
    }
    let last = expected - 1;
    match head {
        Some(Ok(head)) if head > last => report(last, Some(Problem::Truncated { last, head })),
        Some(Err(reason)) => report(last, Some(Problem::Unreadable { sk: HEAD_SK.into(), reason })),
        None if last > 0 => report(last, Some(Problem::Unreadable { sk: HEAD_SK.into(), reason: "the chain head is missing".into() })),
        _ => report(last, None),
    }
}
