//! The ledger's archived change stream: every write DynamoDB made to the ledger table, as Kinesis
//! Data Streams for DynamoDB delivers it and Firehose archives it into the Object Lock bucket
//! (gzip objects of JSON change records under `ledger/YYYY/MM/DD/`, the day the batch arrived).
//!
//! The ledger only ever inserts records and moves heads forward, and DynamoDB itself writes the
//! stream, so a writer cannot leave a change out of it. Any other change, even one put back at
//! once, is tampering: a record modified or removed, a head removed or set back. A record that
//! never reached the archive was written while the stream was off.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use crate::audit::digest::DayReport;
use crate::audit::ledger::{record_sk, HEAD_SK};
use crate::audit::verify::Problem;

/// Where Firehose writes the change stream in the archive bucket.
pub const ARCHIVE_PREFIX: &str = "ledger/";

/// How long after a record is written its INSERT may still be on its way to the archive. Firehose
/// buffers up to 5 minutes; this leaves room for its retries.
pub const ARCHIVE_LAG: Duration = Duration::minutes(15);

/// The archive folder of one day, `ledger/YYYY/MM/DD/`, from `YYYY-MM-DD`.
pub fn archive_day_prefix(day: &str) -> String {
    format!("{ARCHIVE_PREFIX}{}/", day.replace('-', "/"))
}

/// One change record as Kinesis Data Streams for DynamoDB writes it. Images are DynamoDB JSON
/// (`{"S": "..."}`, `{"N": "..."}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    #[serde(rename = "awsRegion", default)]
    pub aws_region: String,
    #[serde(rename = "eventID", default)]
    pub event_id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName")]
    pub event_name: String,
    #[serde(rename = "userIdentity", default)]
    pub user_identity: Option<Value>,
    #[serde(rename = "recordFormat", default)]
    pub record_format: String,
    #[serde(rename = "tableName", default)]
    pub table_name: String,
    pub dynamodb: ChangeImages,
    #[serde(rename = "eventSource", default)]
    pub event_source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeImages {
    /// Milliseconds since the epoch.
    #[serde(rename = "ApproximateCreationDateTime", default, skip_serializing_if = "Option::is_none")]
    pub approximate_creation_ms: Option<i64>,
    #[serde(rename = "Keys")]
    pub keys: Map<String, Value>,
    #[serde(rename = "NewImage", default, skip_serializing_if = "Option::is_none")]
    pub new_image: Option<Map<String, Value>>,
    #[serde(rename = "OldImage", default, skip_serializing_if = "Option::is_none")]
    pub old_image: Option<Map<String, Value>>,
    #[serde(rename = "SizeBytes", default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// Reads one archive object: gzip or plain, records concatenated (as Firehose writes them) or one
/// per line.
pub fn read_archive_object(bytes: &[u8]) -> Result<Vec<ChangeRecord>, String> {
    let mut text = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut text).map_err(|e| format!("not a readable gzip object: {e}"))?;
    } else {
        text.extend_from_slice(bytes);
    }
    serde_json::Deserializer::from_slice(&text)
        .into_iter::<ChangeRecord>()
        .enumerate()
        .map(|(n, r)| r.map_err(|e| format!("change record {}: {e}", n + 1)))
        .collect()
}

/// Writes records as one gzip archive object, a record per line.
pub fn write_archive_object(records: &[ChangeRecord]) -> Result<Vec<u8>, String> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for record in records {
        serde_json::to_writer(&mut gz, record).map_err(|e| e.to_string())?;
        gz.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    gz.finish().map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

impl ChangeKind {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "INSERT" => Some(ChangeKind::Insert),
            "MODIFY" => Some(ChangeKind::Modify),
            "REMOVE" => Some(ChangeKind::Remove),
            _ => None,
        }
    }
}

/// One change to one ledger item, as far as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub pk: String,
    pub sk: String,
    pub at: Option<OffsetDateTime>,
    pub old_seq: Option<u64>,
    pub new_seq: Option<u64>,
}

impl Change {
    /// `None` for a record that is not a change to an item keyed `pk` + `sk` (another table's
    /// shape, an unknown event): such records say nothing about the ledger.
    pub fn from_record(record: &ChangeRecord) -> Option<Self> {
        let kind = ChangeKind::parse(&record.event_name)?;
        let images = &record.dynamodb;
        let at = images.approximate_creation_ms.and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok());
        Some(Change {
            kind,
            pk: attribute(&images.keys, "pk", "S")?,
            sk: attribute(&images.keys, "sk", "S")?,
            at,
            old_seq: images.old_image.as_ref().and_then(|i| attribute(i, "seq", "N")?.parse().ok()),
            new_seq: images.new_image.as_ref().and_then(|i| attribute(i, "seq", "N")?.parse().ok()),
        })
    }

    fn when(&self) -> String {
        match self.at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()) {
            Some(t) => format!("at {t}"),
            None => "at an unrecorded time".into(),
        }
    }

    /// The problem this change is, if the ledger never makes it.
    fn as_rewrite(&self) -> Option<Problem> {
        let at = self.when();
        let sk = self.sk.clone();
        match (self.kind, self.sk == HEAD_SK) {
            (ChangeKind::Insert, _) => None,
            (ChangeKind::Modify, true) => match (self.old_seq, self.new_seq) {
                (Some(from), Some(to)) if to > from => None,
                (from, to) => Some(Problem::HeadSetBack { from: from.unwrap_or(0), to: to.unwrap_or(0), at }),
            },
            (ChangeKind::Modify, false) => Some(Problem::ChangedInPlace { sk, removed: false, at }),
            (ChangeKind::Remove, _) => Some(Problem::ChangedInPlace { sk, removed: true, at }),
        }
    }
}

fn attribute(image: &Map<String, Value>, name: &str, kind: &str) -> Option<String> {
    image.get(name)?.get(kind)?.as_str().map(str::to_string)
}

/// The changes the archive holds for one tenant's day, in archive order.
#[derive(Debug, Default)]
pub struct ArchivedChanges {
    /// Keyed by chain id (`pk`).
    pub by_chain: BTreeMap<String, Vec<Change>>,
    pub objects_read: usize,
}

impl ArchivedChanges {
    /// Keeps the changes to chains whose id starts with `chain_prefix` (`{tenant}#{day}#`).
    pub fn collect(chain_prefix: &str, objects: impl IntoIterator<Item = Vec<ChangeRecord>>) -> Self {
        let mut changes = ArchivedChanges::default();
        for records in objects {
            changes.objects_read += 1;
            for change in records.iter().filter_map(Change::from_record) {
                if change.pk.starts_with(chain_prefix) {
                    changes.by_chain.entry(change.pk.clone()).or_default().push(change);
                }
            }
        }
        changes
    }

    pub fn count(&self) -> usize {
        self.by_chain.values().map(Vec::len).sum()
    }
}

/// The records a chain holds, with the time each was written (RFC 3339).
pub type Written = BTreeMap<u64, String>;

/// Holds every chain of `report` that is otherwise intact to the archived changes: the first
/// change the ledger never makes, or else the first record older than [`ARCHIVE_LAG`] whose
/// INSERT is not archived.
pub fn check_archived(report: &mut DayReport, written: &BTreeMap<String, Written>, changes: &ArchivedChanges, now: OffsetDateTime) {
    let none = Vec::new();
    let empty = Written::new();
    for chain in report.chains.iter_mut().filter(|c| c.problem.is_none()) {
        let name = chain.chain.to_string();
        let archived = changes.by_chain.get(&name).unwrap_or(&none);
        chain.problem =
            archived.iter().find_map(Change::as_rewrite).or_else(|| first_unarchived(written.get(&name).unwrap_or(&empty), archived, now));
    }
}

fn first_unarchived(written: &Written, archived: &[Change], now: OffsetDateTime) -> Option<Problem> {
    let inserted: BTreeSet<&str> = archived.iter().filter(|c| c.kind == ChangeKind::Insert).map(|c| c.sk.as_str()).collect();
    written.iter().find_map(|(seq, time)| {
        let written_at = OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).ok()?;
        let due = written_at + ARCHIVE_LAG <= now;
        (due && !inserted.contains(record_sk(*seq).as_str())).then_some(Problem::NotArchived { seq: *seq })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::ChainId;
    use crate::audit::verify::ChainReport;
    use crate::ids::TenantId;
    use serde_json::json;
    use time::macros::datetime;

    const CHAIN: &str = "acme#2026-11-21#0";

    fn change(event: &str, sk: &str, old_seq: Option<u64>, new_seq: Option<u64>) -> ChangeRecord {
        let image = |seq: Option<u64>| seq.map(|s| json!({"pk": {"S": CHAIN}, "sk": {"S": sk}, "seq": {"N": s.to_string()}}));
        serde_json::from_value(json!({
            "awsRegion": "us-east-1", "eventID": "e", "eventName": event, "userIdentity": null,
            "recordFormat": "application/json", "tableName": "vs-audit", "eventSource": "aws:dynamodb",
            "dynamodb": {"ApproximateCreationDateTime": 1_795_000_000_000i64, "Keys": {"pk": {"S": CHAIN}, "sk": {"S": sk}},
                         "NewImage": image(new_seq), "OldImage": image(old_seq), "SizeBytes": 100}
        }))
        .unwrap()
    }

    fn report() -> DayReport {
        let chain = ChainId { tenant: TenantId::parse("acme").unwrap(), day: "2026-11-21".into(), shard: 0 };
        DayReport { chains: vec![ChainReport { chain, records: 2, problem: None }], digest: Some((3, true)) }
    }

    fn written() -> BTreeMap<String, Written> {
        let records = Written::from([(1, "2026-11-21T10:00:00.000Z".into()), (2, "2026-11-21T10:01:00.000Z".into())]);
        BTreeMap::from([(CHAIN.to_string(), records)])
    }

    fn check(records: Vec<ChangeRecord>, now: OffsetDateTime) -> Option<Problem> {
        let bytes = write_archive_object(&records).unwrap();
        let changes = ArchivedChanges::collect("acme#2026-11-21#", [read_archive_object(&bytes).unwrap()]);
        let mut report = report();
        check_archived(&mut report, &written(), &changes, now);
        report.chains[0].problem.clone()
    }

    fn appends() -> Vec<ChangeRecord> {
        vec![
            change("INSERT", &record_sk(1), None, Some(1)),
            change("INSERT", HEAD_SK, None, Some(1)),
            change("INSERT", &record_sk(2), None, Some(2)),
            change("MODIFY", HEAD_SK, Some(1), Some(2)),
        ]
    }

    const LATER: OffsetDateTime = datetime!(2026-11-22 00:00 UTC);

    #[test]
    fn appends_alone_are_what_the_ledger_does() {
        assert_eq!(check(appends(), LATER), None);
    }

    #[test]
    fn a_record_changed_and_put_back_is_still_found() {
        let mut records = appends();
        records.push(change("MODIFY", &record_sk(1), Some(1), Some(1)));
        records.push(change("MODIFY", &record_sk(1), Some(1), Some(1)));
        let problem = check(records, LATER).unwrap();
        assert!(matches!(&problem, Problem::ChangedInPlace { sk, removed: false, .. } if *sk == record_sk(1)), "{problem:?}");
        assert!(problem.to_string().contains("modified in place"), "{problem}");
    }

    #[test]
    fn removals_and_a_head_set_back_are_found() {
        let mut records = appends();
        records.push(change("REMOVE", &record_sk(2), Some(2), None));
        assert!(matches!(check(records, LATER), Some(Problem::ChangedInPlace { removed: true, .. })));
        let mut records = appends();
        records.push(change("MODIFY", HEAD_SK, Some(2), Some(1)));
        assert!(matches!(check(records, LATER), Some(Problem::HeadSetBack { from: 2, to: 1, .. })));
        let mut records = appends();
        records.push(change("REMOVE", HEAD_SK, Some(2), None));
        assert!(matches!(check(records, LATER), Some(Problem::ChangedInPlace { removed: true, sk, .. }) if sk == HEAD_SK));
    }

    #[test]
    fn a_record_missing_from_the_archive_counts_only_once_it_is_due() {
        let records: Vec<_> = appends().into_iter().filter(|r| r.dynamodb.keys["sk"]["S"] != record_sk(2)).collect();
        assert_eq!(check(records.clone(), LATER), Some(Problem::NotArchived { seq: 2 }));
        assert_eq!(check(records, datetime!(2026-11-21 10:10 UTC)), None, "still within the archive's lag");
    }

    #[test]
    fn other_chains_and_tables_do_not_count() {
        let mut other = change("MODIFY", &record_sk(1), Some(1), Some(1));
        other.dynamodb.keys.insert("pk".into(), json!({"S": "other#2026-11-21#0"}));
        let mut records = appends();
        records.push(other);
        assert_eq!(check(records, LATER), None);
    }

    #[test]
    fn concatenated_records_read_as_firehose_writes_them() {
        let joined: Vec<u8> = appends().iter().flat_map(|r| serde_json::to_vec(r).unwrap()).collect();
        assert_eq!(read_archive_object(&joined).unwrap(), appends());
        assert!(read_archive_object(b"{\"eventName\": 1}").unwrap_err().contains("change record 1"));
    }
}
