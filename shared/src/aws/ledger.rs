//! The audit ledger in DynamoDB.
//!
//! One append is one `TransactWriteItems`: put the record if `attribute_not_exists(pk)`, and put
//! the head if it still names the sequence number we extended. A writer that lost a race re-reads
//! the head and retries. No code path here (or anywhere in the project) calls `UpdateItem` or
//! `DeleteItem` on this table.
//!
//! Each ledger instance appends to one shard, chosen at random when it starts, and caches that
//! shard's head, so the common case is a single round trip and concurrent Lambda instances
//! rarely contend.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use crate::audit::ledger::{head_slot, now_rfc3339_millis, record_sk, AuditError, AuditSink, HEAD_SK};
use crate::audit::record::{AuditEvent, AuditRecord, ChainId, Decision};
use crate::audit::verify::{check_chain, ChainItems, ChainReport};
use crate::ids::TenantId;

#[derive(Debug, Clone)]
struct Head {
    seq: u64,
    hash: String,
}

pub struct DynamoLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
    shard: u16,
    heads: Mutex<HashMap<String, Head>>,
    contention_budget: Duration,
}

/// How long one append keeps retrying a contended chain. Lost races cost one round trip each,
/// and a round trip is milliseconds in AWS but can be far more against a loaded emulator, so the
/// budget is time, not a count of attempts.
const CONTENTION_BUDGET: Duration = Duration::from_secs(3);

/// Exponential backoff with full jitter (a uniform wait in `[0, min(cap, base * 2^attempt))`), so
/// writers that lost the same race do not come back in step.
fn backoff(attempt: u32) -> Duration {
    const BASE_MICROS: u64 = 2_000;
    const CAP_MICROS: u64 = 200_000;
    let ceiling = (BASE_MICROS << attempt.min(16)).min(CAP_MICROS);
    let mut r = [0u8; 8];
    let _ = getrandom::getrandom(&mut r);
    Duration::from_micros(u64::from_le_bytes(r) % ceiling)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

impl DynamoLedger {
    /// `shards` chains per tenant and day; this instance writes to one of them at random.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>, shards: u16) -> Self {
        let mut r = [0u8; 2];
        let _ = getrandom::getrandom(&mut r);
        let shards = shards.max(1);
        Self::on_shard(client, table, u16::from_le_bytes(r) % shards)
    }

    pub fn on_shard(client: aws_sdk_dynamodb::Client, table: impl Into<String>, shard: u16) -> Self {
        DynamoLedger { client, table: table.into(), shard, heads: Mutex::new(HashMap::new()), contention_budget: CONTENTION_BUDGET }
    }

    pub fn shard(&self) -> u16 {
        self.shard
    }

    async fn read_head(&self, chain: &ChainId) -> Result<Head, AuditError> {
        let pk = chain.to_string();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(HEAD_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AuditError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()))?;
        let Some(item) = out.item else {
            return Ok(Head { seq: 0, hash: chain.genesis_hash() });
        };
        let seq = item
            .get("seq")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| AuditError::CorruptHead(pk.clone(), "no seq".into()))?;
        let hash =
            item.get("hash").and_then(|v| v.as_s().ok()).cloned().ok_or_else(|| AuditError::CorruptHead(pk.clone(), "no hash".into()))?;
        Ok(Head { seq, hash })
    }

    /// The item a record is stored as.
    pub fn record_item(record: &AuditRecord) -> HashMap<String, AttributeValue> {
        let e = &record.event;
        HashMap::from([
            ("pk".into(), s(record.chain.to_string())),
            ("sk".into(), s(record_sk(record.seq))),
            ("seq".into(), AttributeValue::N(record.seq.to_string())),
            ("time".into(), s(&record.time)),
            ("tenant".into(), s(e.tenant.as_str())),
            ("actor".into(), s(&e.actor)),
            ("action".into(), s(&e.action)),
            ("resource".into(), s(&e.resource)),
            ("decision".into(), s(e.decision.as_str())),
            ("reason".into(), s(&e.reason)),
            ("request_id".into(), s(&e.request_id)),
            ("source_ip".into(), s(e.source_ip.clone().unwrap_or_default())),
            ("prev_hash".into(), s(&record.prev_hash)),
            ("hash".into(), s(&record.hash)),
        ])
    }

    fn build_put(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: &str,
        values: Option<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, AuditError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item)).condition_expression(condition);
        if let Some((name, value)) = values {
            put = put.expression_attribute_names("#seq", "seq").expression_attribute_values(name, value);
        }
        let put = put.build().map_err(|e| AuditError::Unavailable(format!("cannot build the ledger write: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn try_append(&self, record: &AuditRecord, extended: u64) -> Result<bool, AuditError> {
        let record_put = self.build_put(Self::record_item(record), "attribute_not_exists(pk)", None)?;
        let head_item = HashMap::from([
            ("pk".to_string(), s(record.chain.to_string())),
            ("sk".to_string(), s(HEAD_SK)),
            ("seq".to_string(), AttributeValue::N(record.seq.to_string())),
            ("hash".to_string(), s(&record.hash)),
            ("head_slot".to_string(), s(head_slot(&record.chain))),
        ]);
        let head_put = if extended == 0 {
            self.build_put(head_item, "attribute_not_exists(pk)", None)?
        } else {
            self.build_put(head_item, "#seq = :extended", Some((":extended", AttributeValue::N(extended.to_string()))))?
        };
        match self.client.transact_write_items().transact_items(record_put).transact_items(head_put).send().await {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(_)) => Ok(false),
                _ => Err(AuditError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string())),
            },
        }
    }

    pub async fn append_at(&self, event: AuditEvent, time: String, day: String) -> Result<AuditRecord, AuditError> {
        let chain = ChainId { tenant: event.tenant.clone(), day, shard: self.shard };
        let key = chain.to_string();
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let cached = self.heads.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
            let head = match cached {
                Some(head) => head,
                None => self.read_head(&chain).await?,
            };
            let record = AuditRecord::new(chain.clone(), head.seq + 1, time.clone(), event.clone(), head.hash.clone())?;
            if self.try_append(&record, head.seq).await? {
                self.heads.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Head { seq: record.seq, hash: record.hash.clone() });
                return Ok(record);
            }
            // Someone else extended the chain: forget what we knew and back off.
            self.heads.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            let wait = backoff(attempt - 1);
            if started.elapsed() + wait > self.contention_budget {
                return Err(AuditError::Contended { chain: key, attempts: attempt });
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[async_trait::async_trait]
impl AuditSink for DynamoLedger {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        let (time, day) = now_rfc3339_millis();
        self.append_at(event, time, day).await
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

/// What the table holds for shards `0..shards` of one tenant's day.
pub async fn read_day(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &TenantId,
    day: &str,
    shards: u16,
) -> Result<BTreeMap<u16, ChainItems>, String> {
    let mut chains = BTreeMap::new();
    for shard in 0..shards.max(1) {
        let chain = ChainId { tenant: tenant.clone(), day: day.to_string(), shard };
        let items = read_items(client, table, &chain.to_string()).await?;
        chains.insert(shard, chain_items(&chain, &items));
    }
    Ok(chains)
}

/// Checks every shard of one tenant's day on its own, without digests.
pub async fn verify_day(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &TenantId,
    day: &str,
    shards: u16,
) -> Result<Vec<ChainReport>, String> {
    let chains = read_day(client, table, tenant, day, shards).await?;
    Ok(chains
        .into_iter()
        .map(|(shard, items)| check_chain(&ChainId { tenant: tenant.clone(), day: day.to_string(), shard }, items))
        .collect())
}

fn chain_items(chain: &ChainId, items: &[HashMap<String, AttributeValue>]) -> ChainItems {
    let mut out = ChainItems::default();
    for item in items {
        let sk = text(item, "sk").unwrap_or_default();
        if sk == HEAD_SK {
            out.head = Some(number(item, "seq"));
        } else {
            out.records.push((sk, parse_record(chain, item)));
        }
    }
    out
}

/// All records of one chain, in order, for readers (the CLI, the archive).
pub async fn read_chain(client: &aws_sdk_dynamodb::Client, table: &str, chain: &ChainId) -> Result<Vec<AuditRecord>, String> {
    let items = read_items(client, table, &chain.to_string()).await?;
    items.iter().filter(|i| text(i, "sk").is_ok_and(|sk| sk != HEAD_SK)).map(|i| parse_record(chain, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_stays_jittered() {
        for attempt in 0..40 {
            let ceiling = Duration::from_micros((2_000u64 << attempt.min(16)).min(200_000));
            let waits: Vec<Duration> = (0..64).map(|_| backoff(attempt)).collect();
            assert!(waits.iter().all(|w| *w < ceiling), "attempt {attempt}: {waits:?}");
            assert!(waits.iter().any(|w| *w != waits[0]), "attempt {attempt} is not jittered");
        }
        assert!(CONTENTION_BUDGET > Duration::from_millis(200) * 5, "the budget must outlast several capped waits");
    }
}
