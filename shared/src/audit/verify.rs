//! Reading chains back and checking them. The report names the first record that is modified
//! (its hash no longer matches its content), missing (a gap in sequence numbers, or records cut
//! off after the last one), reordered (a record sits at another record's position) or detached
//! (its `prev_hash` does not name the record before it).

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::audit::ledger::{record_sk, HEAD_SK};
use crate::audit::record::{AuditEvent, AuditRecord, ChainId, Decision};
use crate::ids::TenantId;

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
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Modified { seq } => write!(f, "record {seq} was modified: its content no longer matches its hash"),
            Problem::Missing { seq } => write!(f, "record {seq} is missing"),
            Problem::Reordered { position, found } => write!(f, "record {found} sits at position {position}: records were swapped or reordered"),
            Problem::Detached { seq } => write!(f, "record {seq} does not follow the record before it (prev_hash mismatch)"),
            Problem::Truncated { last, head } => write!(f, "records {}..={head} are missing after record {last}", last + 1),
            Problem::Unreadable { sk, reason } => write!(f, "item {sk} is not a readable record: {reason}"),
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

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().ok_or_else(|| format!("`{name}` is missing or not a string"))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<u64, String> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).ok_or_else(|| format!("`{name}` is missing or not a number"))
}

fn parse_record(chain: &ChainId, item: &HashMap<String, AttributeValue>) -> Result<AuditRecord, String> {
    let source_ip = text(item, "source_ip")?;
    Ok(AuditRecord {
        chain: chain.clone(),
        seq: number(item, "seq")?,
        time: text(item, "time")?,
        event: AuditEvent {
            tenant: TenantId::parse(text(item, "tenant")?).map_err(|e| e.to_string())?,
            actor: text(item, "actor")?,
            action: text(item, "action")?,
            resource: text(item, "resource")?,
            decision: Decision::parse(&text(item, "decision")?).ok_or("`decision` is not allow or deny")?,
            reason: text(item, "reason")?,
            request_id: text(item, "request_id")?,
            source_ip: (!source_ip.is_empty()).then_some(source_ip),
        },
        prev_hash: text(item, "prev_hash")?,
        hash: text(item, "hash")?,
    })
}

async fn read_items(client: &aws_sdk_dynamodb::Client, table: &str, pk: &str) -> Result<Vec<HashMap<String, AttributeValue>>, String> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}

/// Checks one chain item by item, in sort-key order.
pub fn check_chain(chain: &ChainId, items: &[HashMap<String, AttributeValue>]) -> ChainReport {
    let mut head = None;
    let mut records = Vec::new();
    for item in items {
        let sk = text(item, "sk").unwrap_or_default();
        if sk == HEAD_SK {
            head = Some(number(item, "seq"));
        } else {
            records.push((sk, item));
        }
    }
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let report = |records: u64, problem| ChainReport { chain: chain.clone(), records, problem };
    let mut prev_hash = chain.genesis_hash();
    let mut expected = 1u64;
    for (count, (sk, item)) in records.iter().enumerate() {
        let count = count as u64;
        let position = sk.strip_prefix("r#").and_then(|n| n.parse::<u64>().ok());
        let Some(position) = position else {
            return report(count, Some(Problem::Unreadable { sk: sk.clone(), reason: "sort key is not r#<seq>".into() }));
        };
        let record = match parse_record(chain, item) {
            Ok(r) => r,
            Err(reason) => return report(count, Some(Problem::Unreadable { sk: sk.clone(), reason })),
        };
        if position > expected {
            return report(count, Some(Problem::Missing { seq: expected }));
        }
        if record.seq != position {
            return report(count, Some(Problem::Reordered { position, found: record.seq }));
        }
        if record.compute_hash() != record.hash {
            return report(count, Some(Problem::Modified { seq: record.seq }));
        }
        if record.prev_hash != prev_hash {
            return report(count, Some(Problem::Detached { seq: record.seq }));
        }
        debug_assert_eq!(sk, &record_sk(record.seq));
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

/// Checks every shard of one tenant's day.
pub async fn verify_day(client: &aws_sdk_dynamodb::Client, table: &str, tenant: &TenantId, day: &str, shards: u16) -> Result<Vec<ChainReport>, String> {
    let mut reports = Vec::new();
    for shard in 0..shards.max(1) {
        let chain = ChainId { tenant: tenant.clone(), day: day.to_string(), shard };
        let items = read_items(client, table, &chain.to_string()).await?;
        reports.push(check_chain(&chain, &items));
    }
    Ok(reports)
}

/// All records of one chain, in order, for readers (the CLI, the archive).
pub async fn read_chain(client: &aws_sdk_dynamodb::Client, table: &str, chain: &ChainId) -> Result<Vec<AuditRecord>, String> {
    let items = read_items(client, table, &chain.to_string()).await?;
    items.iter().filter(|i| text(i, "sk").is_ok_and(|sk| sk != HEAD_SK)).map(|i| parse_record(chain, i)).collect()
}
