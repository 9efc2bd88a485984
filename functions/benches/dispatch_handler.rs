//! Dispatch handler time per event, in process: one SQS event carrying one S3 `ObjectCreated`
//! notification for a fresh upload, handled end to end by the dispatch function (parse, key
//! checks, HEAD, record claim, MP4 header sniff, submit, record the job, audit), with the
//! in-memory adapters in place of AWS (the ledger still hashes and chains every record).
//! Beside it, the reference: parsing the same event with `aws_lambda_events` and nothing else, the
//! least any dispatch must do. Alternating, so machine noise lands on both.

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::s3::S3Event;
use aws_lambda_events::sqs::SqsEvent;
use hdrhistogram::Histogram;
use vaultstream::catalog::{ContentRecord, ContentStatus, SourceFile, UploadPlan};
use vaultstream::ids::{ContentId, TenantId};
use vaultstream::ingest::dispatch::DispatchService;
use vaultstream::memory::{MemoryCatalog, MemoryJobs, MemoryLedger, MemoryQueues, MemorySourceStore};
use vaultstream_functions::handlers::dispatch::Dispatch;

/// A small but real MP4 header: ftyp, a moov with a 1920x1080 video track, then the media.
fn mp4() -> Vec<u8> {
    let boxed = |kind: &[u8; 4], body: &[u8]| [((body.len() + 8) as u32).to_be_bytes().to_vec(), kind.to_vec(), body.to_vec()].concat();
    let mut tkhd = vec![0u8; 84];
    tkhd[76..80].copy_from_slice(&(1920u32 << 16).to_be_bytes());
    tkhd[80..84].copy_from_slice(&(1080u32 << 16).to_be_bytes());
    let mut hdlr = vec![0u8; 24];
    hdlr[8..12].copy_from_slice(b"vide");
    let trak = boxed(b"trak", &[boxed(b"tkhd", &tkhd), boxed(b"mdia", &boxed(b"hdlr", &hdlr))].concat());
    [boxed(b"ftyp", b"isom\0\0\0\0"), boxed(b"moov", &trak), boxed(b"mdat", &[0; 4096])].concat()
}

fn event(key: &str, i: usize) -> String {
    let notification = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-22T00:00:00.000Z",
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "ingest", "bucket": {"name": "src", "arn": "arn:aws:s3:::src"},
        "object": {"key": key, "size": 4200, "eTag": "e", "sequencer": "1"}}
    }]});
    serde_json::json!({"Records": [{
        "messageId": format!("m-{i}"), "receiptHandle": "rh", "body": notification.to_string(), "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:ingest", "awsRegion": "us-east-1"
    }]})
    .to_string()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let iterations: usize = std::env::var("ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let warmup = 1_000;
    let catalog = Arc::new(MemoryCatalog::new());
    let sources = Arc::new(MemorySourceStore::new());
    let jobs = Arc::new(MemoryJobs::new());
    let queues = Arc::new(MemoryQueues::new());
    let service = DispatchService {
        catalog: catalog.clone(),
        sources: sources.clone(),
        jobs: jobs.clone(),
        failures: queues.clone(),
        redelivery: queues,
        audit: Arc::new(MemoryLedger::new()),
        source_bucket: "src".into(),
    };
    let dispatch = Dispatch { service };
    let tenant = TenantId::parse("acme").unwrap();
    let media = mp4();

    let (mut ours, mut theirs) = (Histogram::<u64>::new(3).unwrap(), Histogram::<u64>::new(3).unwrap());
    for i in 0..iterations + warmup {
        // Each round is a new upload: a record awaiting it, and the object in the bucket.
        let content = ContentId::parse(format!("c{i:08}")).unwrap();
        let key = format!("source/acme/{content}/original");
        let mut record = ContentRecord::new(tenant.clone(), content, ContentStatus::AwaitingUpload, "bench");
        record.source = Some(SourceFile {
            filename: "f.mp4".into(),
            content_type: "video/mp4".into(),
            size_bytes: media.len() as u64,
            key: key.clone(),
        });
        record.upload = Some(UploadPlan::Put);
        catalog.insert(record);
        sources.put(&key, "video/mp4", media.clone());
        let body = event(&key, i);

        let start = Instant::now();
        let sqs: SqsEvent = serde_json::from_str(&body).unwrap();
        let response = rt.block_on(dispatch.handle(sqs));
        let ns = start.elapsed().as_nanos() as u64;
        assert!(response.batch_item_failures.is_empty());

        let start = Instant::now();
        let sqs: SqsEvent = serde_json::from_str(&body).unwrap();
        let s3: S3Event = serde_json::from_str(sqs.records[0].body.as_deref().unwrap()).unwrap();
        let ref_ns = start.elapsed().as_nanos() as u64;
        assert_eq!(s3.records.len(), 1);
        if i >= warmup {
            ours.record(ns).unwrap();
            theirs.record(ref_ns).unwrap();
        }
    }
    assert_eq!(jobs.submitted().len(), iterations + warmup, "one job per event");
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!("dispatch handler: p50 {:.1} µs, p99 {:.1} µs over {iterations} events", us(&ours, 0.5), us(&ours, 0.99));
    println!("reference (parse the event only): p50 {:.1} µs, p99 {:.1} µs", us(&theirs, 0.5), us(&theirs, 0.99));
    println!(
        "RESULT dispatch_p50_us={:.1} dispatch_p99_us={:.1} reference_p50_us={:.1} ratio_p50={:.2}",
        us(&ours, 0.5),
        us(&ours, 0.99),
        us(&theirs, 0.5),
        us(&ours, 0.5) / us(&theirs, 0.5)
    );
}
