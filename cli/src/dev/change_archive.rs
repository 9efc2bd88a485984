//! What Kinesis Data Streams for DynamoDB and Firehose do in a deployment: every change to the
//! ledger table reaches the Object Lock archive under `ledger/YYYY/MM/DD/`, in the format
//! Kinesis writes it. moto has no Kinesis destination for DynamoDB, so this reads the table's
//! DynamoDB stream (which moto keeps) and writes gzip objects as Firehose would. `audit verify`
//! reads them the same way in both places.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use vaultstream::audit::changes::{archive_day_prefix, write_archive_object, ChangeImages, ChangeRecord};

/// Firehose buffers up to 5 minutes in a deployment; the local stack delivers within seconds.
pub const DELIVER_EVERY: Duration = Duration::from_secs(3);

pub struct ChangeArchiver {
    streams: aws_sdk_dynamodbstreams::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    table: String,
    bucket: String,
    /// The last sequence number archived per stream shard, kept across restarts when a file is
    /// given (a restart may archive a change twice, never skip one).
    positions: HashMap<String, String>,
    positions_file: Option<PathBuf>,
}

impl ChangeArchiver {
    pub fn new(config: &aws_config::SdkConfig, s3: aws_sdk_s3::Client, table: &str, bucket: &str, positions_file: Option<PathBuf>) -> Self {
        let positions = positions_file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        ChangeArchiver {
            streams: aws_sdk_dynamodbstreams::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            s3,
            table: table.into(),
            bucket: bucket.into(),
            positions,
            positions_file,
        }
    }

    /// Archives every change not archived yet as one object; returns how many.
    pub async fn deliver(&mut self) -> Result<usize> {
        let table = self.dynamodb.describe_table().table_name(&self.table).send().await.context("describing the ledger table")?;
        let stream_arn = table
            .table()
            .and_then(|t| t.latest_stream_arn())
            .with_context(|| format!("the ledger table {} has no stream: provision it again", self.table))?
            .to_string();
        let stream = self.streams.describe_stream().stream_arn(&stream_arn).send().await.context("describing the ledger stream")?;
        let shards: Vec<String> = stream
            .stream_description()
            .map(|d| d.shards().iter().filter_map(|s| s.shard_id().map(str::to_string)).collect())
            .unwrap_or_default();
        let mut changes = Vec::new();
        // Positions move only once the object holding their changes is written.
        let mut read_to = Vec::new();
        for shard in shards {
            let records = self.read_shard(&stream_arn, &shard).await?;
            if let Some(last) = records.last().and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number()) {
                read_to.push((shard.clone(), last.to_string()));
            }
            changes.extend(records.iter().map(|r| change_record(r, &self.table)));
        }
        if changes.is_empty() {
            return Ok(0);
        }
        let now = time::OffsetDateTime::now_utc();
        let day = format!("{:04}-{:02}-{:02}", now.year(), u8::from(now.month()), now.day());
        let stamp = format!("{day}-{:02}-{:02}-{:02}", now.hour(), now.minute(), now.second());
        let key = format!("{}{}-archive-1-{stamp}-{}.gz", archive_day_prefix(&day), self.table, uuid::Uuid::new_v4());
        let body = write_archive_object(&changes).map_err(|e| anyhow::anyhow!("encoding the change archive: {e}"))?;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/octet-stream")
            .body(body.into())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("writing {key} to the archive: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
        self.positions.extend(read_to);
        if let Some(file) = &self.positions_file {
            std::fs::write(file, serde_json::to_vec(&self.positions)?).with_context(|| format!("writing {}", file.display()))?;
        }
        Ok(changes.len())
    }

    async fn read_shard(&self, stream_arn: &str, shard: &str) -> Result<Vec<Record>> {
        let from =
            |kind: ShardIteratorType| self.streams.get_shard_iterator().stream_arn(stream_arn).shard_id(shard).shard_iterator_type(kind);
        let iterator = match self.positions.get(shard) {
            Some(seq) => match from(ShardIteratorType::AfterSequenceNumber).sequence_number(seq).send().await {
                Ok(out) => out.shard_iterator,
                // The emulator may not know a position from before its restart: start over.
                Err(_) => from(ShardIteratorType::TrimHorizon).send().await.context("reading the ledger stream")?.shard_iterator,
            },
            None => from(ShardIteratorType::TrimHorizon).send().await.context("reading the ledger stream")?.shard_iterator,
        };
        let mut records = Vec::new();
        let mut next = iterator;
        while let Some(iterator) = next.take() {
            let page = self.streams.get_records().shard_iterator(iterator).send().await.context("reading the ledger stream")?;
            if page.records().is_empty() {
                break;
            }
            records.extend(page.records().iter().cloned());
            next = page.next_shard_iterator;
        }
        Ok(records)
    }
}

/// A DynamoDB stream record as Kinesis Data Streams for DynamoDB writes it.
fn change_record(record: &Record, table: &str) -> ChangeRecord {
    let data = record.dynamodb();
    let image = |i: Option<&HashMap<String, AttributeValue>>| i.map(to_json_image);
    ChangeRecord {
        aws_region: record.aws_region().unwrap_or("us-east-1").into(),
        event_id: record.event_id().unwrap_or_default().into(),
        event_name: record.event_name().map(|n| n.as_str().to_string()).unwrap_or_default(),
        user_identity: None,
        record_format: "application/json".into(),
        table_name: table.into(),
        dynamodb: ChangeImages {
            approximate_creation_ms: data.and_then(|d| d.approximate_creation_date_time()).and_then(|t| t.to_millis().ok()),
            keys: data.and_then(|d| d.keys.as_ref()).map(to_json_image).unwrap_or_default(),
            new_image: image(data.and_then(|d| d.new_image.as_ref())),
            old_image: image(data.and_then(|d| d.old_image.as_ref())),
            size_bytes: data.and_then(|d| d.size_bytes()).and_then(|s| u64::try_from(s).ok()),
        },
        event_source: "aws:dynamodb".into(),
    }
}

fn to_json_image(item: &HashMap<String, AttributeValue>) -> Map<String, Value> {
    item.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()
}

/// DynamoDB JSON, as the stream's wire format spells each type.
fn to_json(value: &AttributeValue) -> Value {
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| base64::engine::general_purpose::STANDARD.encode(b.as_ref());
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::L(v) => json!({ "L": v.iter().map(to_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": to_json_image(m) }),
        _ => json!({ "NULL": true }),
    }
}

pub fn run(mut archiver: ChangeArchiver, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(DELIVER_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Err(e) = archiver.deliver().await {
                        tracing::error!(error = %format!("{e:#}"), "the ledger's changes could not be archived");
                    }
                }
                _ = shutdown.changed() => {
                    let _ = archiver.deliver().await;
                    return;
                }
            }
        }
    })
}
