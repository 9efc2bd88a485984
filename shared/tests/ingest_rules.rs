//! The ingest rules over the in-memory adapters: uploads, dispatch and job outcomes, including
//! the failures an emulator cannot produce on demand (Batch refusing submissions, attempts
//! running out). The same flows run over the wire against moto in `tests/tests/ingest.rs`.

use std::sync::Arc;

use tracing::Instrument;
use vaultstream::access::RequestMeta;
use vaultstream::audit::Decision;
use vaultstream::catalog::{ContentCatalog, ContentRecord, ContentStatus, SourceFile, UploadPlan};
use vaultstream::ids::{ContentId, SessionId, TenantId};
use vaultstream::ingest::dispatch::{DispatchService, Handled};
use vaultstream::ingest::job_outcome::{BatchJobStateChange, JobEventsService};
use vaultstream::ingest::ports::{CompletedPart, QueueMessage, SourceStore};
use vaultstream::ingest::queue_choice::QueueKind;
use vaultstream::ingest::upload::{CompleteRequest, UploadInstructions, UploadMethod, UploadRequest, UploadService, UploadSettings};
use vaultstream::memory::{MemoryCatalog, MemoryJobs, MemoryLedger, MemoryQueues, MemorySourceStore};
use vaultstream::metrics::tally::{self, Counted};
use vaultstream::principal::{Credential, Principal, Scope};

struct World {
    catalog: Arc<MemoryCatalog>,
    sources: Arc<MemorySourceStore>,
    jobs: Arc<MemoryJobs>,
    queues: Arc<MemoryQueues>,
    ledger: Arc<MemoryLedger>,
}

impl World {
    fn new() -> Self {
        World {
            catalog: Arc::new(MemoryCatalog::new()),
            sources: Arc::new(MemorySourceStore::new()),
            jobs: Arc::new(MemoryJobs::new()),
            queues: Arc::new(MemoryQueues::new()),
            ledger: Arc::new(MemoryLedger::new()),
        }
    }

    fn uploads(&self, settings: UploadSettings) -> UploadService {
        UploadService { catalog: self.catalog.clone(), sources: self.sources.clone(), audit: self.ledger.clone(), settings }
    }

    fn dispatch(&self) -> DispatchService {
        DispatchService {
            catalog: self.catalog.clone(),
            sources: self.sources.clone(),
            jobs: self.jobs.clone(),
            failures: self.queues.clone(),
            redelivery: self.queues.clone(),
            audit: self.ledger.clone(),
            source_bucket: "src".into(),
        }
    }

    fn job_events(&self) -> JobEventsService {
        JobEventsService {
            catalog: self.catalog.clone(),
            retries: self.queues.clone(),
            failures: self.queues.clone(),
            audit: self.ledger.clone(),
        }
    }

    /// A record awaiting the upload of `size` bytes of `content_type`.
    fn awaiting(&self, content: &str, content_type: &str, size: u64) -> (TenantId, ContentId) {
        let (tenant, id) = (TenantId::parse("acme").unwrap(), ContentId::parse(content).unwrap());
        let mut record = ContentRecord::new(tenant.clone(), id.clone(), ContentStatus::AwaitingUpload, "Film");
        record.source = Some(SourceFile {
            filename: "f".into(),
            content_type: content_type.into(),
            size_bytes: size,
            key: format!("source/acme/{content}/original"),
        });
        record.upload = Some(UploadPlan::Put);
        self.catalog.insert(record);
        (tenant, id)
    }

    async fn record(&self, tenant: &TenantId, content: &ContentId) -> ContentRecord {
        self.catalog.get(tenant, content).await.unwrap().unwrap()
    }

    fn denials(&self) -> Vec<String> {
        self.ledger
            .records()
            .into_iter()
            .filter(|r| r.event.decision == Decision::Deny)
            .map(|r| format!("{}: {}", r.event.tenant, r.event.reason))
            .collect()
    }
}

fn creator(scope: &str) -> Principal {
    Principal {
        tenant: TenantId::parse("acme").unwrap(),
        subject: "creator".into(),
        session: SessionId::parse("s1").unwrap(),
        scopes: Scope::parse_list(scope),
        credential: Credential::Jwt,
    }
}

fn meta() -> RequestMeta {
    RequestMeta { request_id: "r1".into(), source_ip: None, now: 1_000 }
}

fn notification(key: &str, event: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-22T00:00:00.000Z", "eventName": event,
        "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"}, "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "ingest", "bucket": {"name": "src", "arn": "arn:aws:s3:::src"},
               "object": {"key": key, "size": 1, "eTag": "e", "sequencer": "1"}}
    }]})
    .to_string()
}

fn message(id: &str, body: String, receive_count: u32) -> QueueMessage {
    QueueMessage {
        message_id: id.into(),
        receipt_handle: format!("rh-{id}"),
        queue_arn: "arn:aws:sqs:us-east-1:1:ingest".into(),
        body,
        receive_count,
    }
}

fn state_change(job_id: &str, job_name: &str, exit: i32) -> BatchJobStateChange {
    serde_json::from_value(serde_json::json!({
        "jobId": job_id, "jobName": job_name, "jobQueue": "arn:aws:batch:us-east-1:1:job-queue/video-cpu",
        "status": if exit == 0 { "SUCCEEDED" } else { "FAILED" }, "statusReason": "Essential container in task exited",
        "parameters": {"tenant": "acme", "content_id": "c1", "source_key": "source/acme/c1/original", "profile": "default"},
        "container": {"exitCode": exit}
    }))
    .unwrap()
}

#[tokio::test]
async fn an_upload_becomes_exactly_one_job() {
    let w = World::new();
    let (tenant, content) = w.awaiting("c1", "video/mp4", 4);
    w.sources.put("source/acme/c1/original", "video/mp4", b"abcd".to_vec());
    let dispatch = w.dispatch();
    let ((), counted) = tally::collect(async {
        assert_eq!(dispatch.handle(&message("m1", notification("source/acme/c1/original", "ObjectCreated:Put"), 1)).await, Handled::Done);
        // The same event again, and a late second event (a multipart upload sends two).
        assert_eq!(dispatch.handle(&message("m2", notification("source/acme/c1/original", "ObjectCreated:Put"), 1)).await, Handled::Done);
        assert_eq!(
            dispatch
                .handle(&message("m3", notification("source%2Facme%2Fc1%2Foriginal", "ObjectCreated:CompleteMultipartUpload"), 1))
                .await,
            Handled::Done
        );
    })
    .await;
    assert_eq!(counted.get(&Counted::JobSubmitted { queue: "video-cpu" }), 1, "{counted:?}");
    assert_eq!(counted.get(&Counted::Retry), 0);

    let jobs = w.jobs.submitted();
    assert_eq!(jobs.len(), 1, "one job for three events");
    let (job, request) = &jobs[0];
    assert_eq!(request.parameters()["source_key"], "source/acme/c1/original");
    assert_eq!(request.parameters()["trace_header"], "none", "dispatch ran in no trace");
    assert_eq!(request.queue, QueueKind::VideoCpu);
    let record = w.record(&tenant, &content).await;
    assert_eq!(record.status, ContentStatus::Queued);
    assert_eq!(record.job.as_ref(), Some(job));
    assert_eq!(record.attempts, 1);
    let denials = w.denials();
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert!(denials.iter().all(|d| d.starts_with("acme: ignored: a duplicate or late event")), "{denials:?}");
}

#[tokio::test]
async fn a_job_continues_the_trace_dispatch_runs_in() {
    use tracing_subscriber::layer::SubscriberExt;
    let w = World::new();
    w.awaiting("c1", "video/mp4", 4);
    w.sources.put("source/acme/c1/original", "video/mp4", b"abcd".to_vec());
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (layer, _traces) = vaultstream::traces::layer_to("dispatch", daemon.local_addr().unwrap()).unwrap();
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let root = format!("1-{:08x}-0123456789abcdef01234567", vaultstream::clock::now_seconds());
    let invocation = tracing::info_span!("invocation");
    vaultstream::traces::continue_trace(&invocation, &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"));
    let dispatch = w.dispatch();
    let handled =
        dispatch.handle(&message("m1", notification("source/acme/c1/original", "ObjectCreated:Put"), 1)).instrument(invocation).await;
    assert_eq!(handled, Handled::Done);
    let header = w.jobs.submitted()[0].1.parameters()["trace_header"].clone();
    let parent = header.strip_prefix(&format!("Root={root};Parent=")).and_then(|rest| rest.strip_suffix(";Sampled=1"));
    assert!(parent.is_some_and(|p| p.len() == 16 && p != "53995c3f42cd8ad8"), "the job's parent is dispatch's span: {header}");
}

#[tokio::test]
async fn a_failed_submission_is_retried_by_the_same_message_with_backoff_then_given_up() {
    let w = World::new();
    let (tenant, content) = w.awaiting("c1", "video/mp4", 4);
    w.sources.put("source/acme/c1/original", "video/mp4", b"abcd".to_vec());
    let dispatch = w.dispatch();
    w.jobs.set_refusing(Some("ThrottlingException"));
    let body = notification("source/acme/c1/original", "ObjectCreated:Put");
    let ((), counted) = tally::collect(async {
        for receive in 1..=4 {
            assert_eq!(dispatch.handle(&message("m1", body.clone(), receive)).await, Handled::TryAgain);
        }
    })
    .await;
    assert_eq!(counted.get(&Counted::Retry), 4);
    let waits: Vec<u64> = w.queues.postponed().iter().map(|(_, d)| d.as_secs()).collect();
    assert_eq!(waits, [30, 60, 120, 240]);
    // Another message for the same object cannot take over the claim.
    assert_eq!(dispatch.handle(&message("m2", body.clone(), 1)).await, Handled::Done);
    // The fifth delivery also fails: the content fails, operators and the creator hear of it,
    // and the message goes on to the dead-letter queue.
    let (handled, counted) = tally::collect(dispatch.handle(&message("m1", body.clone(), 5))).await;
    assert_eq!(handled, Handled::TryAgain);
    assert_eq!((counted.get(&Counted::DeadLetter), counted.get(&Counted::Retry)), (1, 0));
    let record = w.record(&tenant, &content).await;
    assert_eq!(record.status, ContentStatus::Failed);
    assert_eq!(record.failure.as_ref().map(|f| f.code.as_str()), Some("dispatch_failed"));
    assert_eq!(w.queues.dead_letters().len(), 1);
    assert_eq!(w.queues.notifications()[0].content_id, content);
    assert!(w.jobs.submitted().is_empty());

    // A redelivery that succeeds resumes its own claim and submits once.
    let (tenant2, content2) = w.awaiting("c2", "video/mp4", 4);
    w.sources.put("source/acme/c2/original", "video/mp4", b"abcd".to_vec());
    let body2 = notification("source/acme/c2/original", "ObjectCreated:Put");
    assert_eq!(dispatch.handle(&message("n1", body2.clone(), 1)).await, Handled::TryAgain);
    w.jobs.set_refusing(None);
    assert_eq!(dispatch.handle(&message("n1", body2, 2)).await, Handled::Done);
    assert_eq!(w.jobs.submitted().len(), 1);
    assert_eq!(w.record(&tenant2, &content2).await.status, ContentStatus::Queued);
}

#[tokio::test]
async fn an_object_unlike_its_declaration_is_refused_with_a_reason() {
    let w = World::new();
    let (tenant, content) = w.awaiting("big", "video/mp4", 4);
    w.sources.put("source/acme/big/original", "video/mp4", b"abcdefgh".to_vec());
    let (_, typed) = w.awaiting("typed", "video/mp4", 4);
    w.sources.put("source/acme/typed/original", "text/html", b"abcd".to_vec());
    let dispatch = w.dispatch();
    dispatch.handle(&message("m1", notification("source/acme/big/original", "ObjectCreated:Put"), 1)).await;
    dispatch.handle(&message("m2", notification("source/acme/typed/original", "ObjectCreated:Put"), 1)).await;
    let big = w.record(&tenant, &content).await;
    assert_eq!(big.status, ContentStatus::FailedInvalid);
    let reason = big.failure.unwrap().message;
    assert!(reason.contains("8 bytes") && reason.contains("4 were declared"), "{reason}");
    let typed = w.record(&tenant, &typed).await;
    assert_eq!(typed.status, ContentStatus::FailedInvalid);
    assert!(typed.failure.unwrap().message.contains("text/html"));
    assert!(w.jobs.submitted().is_empty());
}

#[tokio::test]
async fn keys_outside_the_layout_or_of_another_tenant_are_ignored_and_audited() {
    let w = World::new();
    w.awaiting("c1", "video/mp4", 4);
    w.sources.put("source/globex/c1/original", "video/mp4", b"abcd".to_vec());
    w.sources.put("elsewhere/file.mp4", "video/mp4", b"abcd".to_vec());
    let dispatch = w.dispatch();
    for (i, key) in ["source/globex/c1/original", "elsewhere/file.mp4", "source/acme/..%2Fc1/original", "source/acme/c1/original/extra"]
        .iter()
        .enumerate()
    {
        assert_eq!(dispatch.handle(&message(&format!("m{i}"), notification(key, "ObjectCreated:Put"), 1)).await, Handled::Done);
    }
    assert_eq!(dispatch.handle(&message("t", r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#.into(), 1)).await, Handled::Done);
    assert_eq!(dispatch.handle(&message("junk", "not json".into(), 1)).await, Handled::Done);
    assert!(w.jobs.submitted().is_empty());
    let denials = w.denials();
    assert_eq!(denials.len(), 5, "{denials:?}");
    assert!(
        denials[0].starts_with("globex: ignored: the object no longer exists")
            || denials[0].starts_with("globex: ignored: no content record"),
        "{denials:?}"
    );
    assert!(denials[1..].iter().all(|d| d.starts_with("_system: ignored")), "{denials:?}");
}

#[tokio::test]
async fn audio_goes_to_the_audio_queue_and_4k_to_gpu() {
    let w = World::new();
    w.awaiting("song", "audio/mpeg", 4);
    w.sources.put("source/acme/song/original", "audio/mpeg", b"ID3x".to_vec());
    // A minimal MP4 header: ftyp, then a moov whose video track is 3840x2160.
    let boxed = |kind: &[u8; 4], body: &[u8]| [((body.len() + 8) as u32).to_be_bytes().to_vec(), kind.to_vec(), body.to_vec()].concat();
    let mut tkhd = vec![0u8; 84];
    tkhd[76..80].copy_from_slice(&(3840u32 << 16).to_be_bytes());
    tkhd[80..84].copy_from_slice(&(2160u32 << 16).to_be_bytes());
    let mut hdlr = vec![0u8; 24];
    hdlr[8..12].copy_from_slice(b"vide");
    let trak = boxed(b"trak", &[boxed(b"tkhd", &tkhd), boxed(b"mdia", &boxed(b"hdlr", &hdlr))].concat());
    let mp4 = [boxed(b"ftyp", b"isom\0\0\0\0"), boxed(b"mdat", &[0; 64]), boxed(b"moov", &trak)].concat();
    w.awaiting("uhd", "video/mp4", mp4.len() as u64);
    w.sources.put("source/acme/uhd/original", "video/mp4", mp4);
    let dispatch = w.dispatch();
    dispatch.handle(&message("a", notification("source/acme/song/original", "ObjectCreated:Put"), 1)).await;
    dispatch.handle(&message("b", notification("source/acme/uhd/original", "ObjectCreated:Put"), 1)).await;
    let queues: Vec<QueueKind> = w.jobs.submitted().iter().map(|(_, r)| r.queue).collect();
    assert_eq!(queues, [QueueKind::Audio, QueueKind::VideoGpu]);
    let reasons: Vec<String> = w.ledger.records().iter().map(|r| r.event.reason.clone()).collect();
    assert!(reasons[1].contains("3840x2160"), "{reasons:?}");
}

#[tokio::test]
async fn temporary_failures_are_retried_five_times_in_all_then_the_content_fails() {
    let w = World::new();
    let (tenant, content) = w.awaiting("c1", "video/mp4", 4);
    w.sources.put("source/acme/c1/original", "video/mp4", b"abcd".to_vec());
    let dispatch = w.dispatch();
    let events = w.job_events();
    dispatch.handle(&message("m0", notification("source/acme/c1/original", "ObjectCreated:Put"), 1)).await;
    for attempt in 1..=5u32 {
        let (job, request) = w.jobs.submitted().last().cloned().unwrap();
        assert_eq!(request.attempt, attempt);
        let change = state_change(&job.id, &request.job_name(), 75);
        events.handle(&change, "evt").await.unwrap();
        // The same event delivered twice changes nothing more.
        events.handle(&change, "evt-dup").await.unwrap();
        if attempt < 5 {
            let (retry, delay) = w.queues.retries().last().cloned().unwrap();
            assert_eq!((retry.attempt, delay.as_secs()), (attempt + 1, 30 << (attempt - 1)));
            assert_eq!(w.record(&tenant, &content).await.status, ContentStatus::Queued);
            let body = serde_json::to_string(&retry).unwrap();
            assert_eq!(dispatch.handle(&message(&format!("r{attempt}"), body, 1)).await, Handled::Done);
        }
    }
    assert_eq!(w.queues.retries().len(), 4, "a retry after each of the first four attempts, none after the fifth");
    assert_eq!(w.jobs.submitted().len(), 5);
    let record = w.record(&tenant, &content).await;
    assert_eq!(record.status, ContentStatus::Failed);
    assert!(record.failure.unwrap().message.contains("giving up after 5 attempts"));
    assert_eq!(w.queues.dead_letters().len(), 1);
    assert_eq!(w.queues.notifications().len(), 1);
}

#[tokio::test]
async fn invalid_input_is_final_and_stale_events_change_nothing() {
    let w = World::new();
    let (tenant, content) = w.awaiting("c1", "video/mp4", 4);
    w.sources.put("source/acme/c1/original", "video/mp4", b"abcd".to_vec());
    w.dispatch().handle(&message("m0", notification("source/acme/c1/original", "ObjectCreated:Put"), 1)).await;
    let (job, request) = w.jobs.submitted()[0].clone();
    let events = w.job_events();
    events.handle(&state_change("some-older-job", "vs-acme-c1-a0", 75), "stale").await.unwrap();
    assert_eq!(w.record(&tenant, &content).await.status, ContentStatus::Queued);
    events.handle(&state_change(&job.id, &request.job_name(), 65), "evt").await.unwrap();
    let record = w.record(&tenant, &content).await;
    assert_eq!(record.status, ContentStatus::FailedInvalid);
    assert_eq!(record.failure.unwrap().code, "invalid_source");
    assert!(w.queues.retries().is_empty() && w.queues.dead_letters().is_empty());
}

#[tokio::test]
async fn uploads_are_checked_created_once_per_idempotency_key_and_completed_in_parts() {
    let w = World::new();
    const MIB: u64 = 1 << 20;
    let settings =
        UploadSettings { multipart_threshold: 2 * MIB, min_part_size: MIB, max_bytes: 10 * MIB, ..UploadSettings::new("https://api.test") };
    let uploads = w.uploads(settings);
    let request = UploadRequest {
        title: "Film".into(),
        filename: "film.mp4".into(),
        content_type: "video/mp4".into(),
        size_bytes: 100,
        profile: None,
        upload_method: None,
        metadata: None,
    };

    let grant = uploads.start(&creator("content:write"), &request, Some("key-1"), &meta()).await.unwrap();
    let UploadInstructions::Put { request: put, .. } = &grant.upload else { panic!("a small file is one PUT") };
    assert_eq!(put.headers["content-type"], "video/mp4");
    assert_eq!(put.headers["content-length"], "100");
    let again = uploads.start(&creator("content:write"), &request, Some("key-1"), &meta()).await.unwrap();
    assert_eq!(again.record.content_id, grant.record.content_id);
    assert!(again.replayed);
    let other_body = UploadRequest { title: "Other".into(), ..request.clone() };
    assert_eq!(uploads.start(&creator("content:write"), &other_body, Some("key-1"), &meta()).await.unwrap_err().status(), 409);
    assert_eq!(uploads.start(&creator("content:read"), &request, None, &meta()).await.unwrap_err().status(), 403);
    let listed = w.catalog.list(&TenantId::parse("acme").unwrap(), 100, None).await.unwrap();
    assert_eq!(listed.items.len(), 1, "refused and replayed requests create nothing");

    let big = UploadRequest { size_bytes: 5 * MIB / 2, ..request.clone() };
    let grant = uploads.start(&creator("content:write"), &big, None, &meta()).await.unwrap();
    let UploadInstructions::Multipart { upload_id, part_size, parts, complete_url, .. } = grant.upload else {
        panic!("a large file uploads in parts")
    };
    assert_eq!((part_size, parts.len()), (MIB, 3));
    assert_eq!(complete_url, format!("https://api.test/v1/content/{}/upload/complete", grant.record.content_id));
    let id = grant.record.content_id.to_string();
    let part = |n: u32| CompletedPart { part_number: n, etag: format!("\"e{n}\"") };
    let wrong_count = CompleteRequest { upload_id: upload_id.clone(), parts: vec![part(1), part(2)] };
    assert!(uploads
        .complete(&creator("content:write"), &id, &wrong_count, &meta())
        .await
        .unwrap_err()
        .to_string()
        .contains("expected 3 parts"));
    let wrong_order = CompleteRequest { upload_id: upload_id.clone(), parts: vec![part(1), part(3), part(2)] };
    assert_eq!(uploads.complete(&creator("content:write"), &id, &wrong_order, &meta()).await.unwrap_err().status(), 400);
    let wrong_upload = CompleteRequest { upload_id: "other".into(), parts: vec![part(1), part(2), part(3)] };
    assert_eq!(uploads.complete(&creator("content:write"), &id, &wrong_upload, &meta()).await.unwrap_err().status(), 400);
    let right = CompleteRequest { upload_id, parts: vec![part(1), part(2), part(3)] };
    let other_tenant = Principal { tenant: TenantId::parse("globex").unwrap(), ..creator("content:write") };
    assert_eq!(uploads.complete(&other_tenant, &id, &right, &meta()).await.unwrap_err().status(), 404);
    uploads.complete(&creator("content:write"), &id, &right, &meta()).await.unwrap();
    assert!(w.sources.head(&format!("source/acme/{id}/original")).await.unwrap().is_some());

    // A form upload: one POST even above the multipart threshold, nothing to complete after.
    let form = UploadRequest { upload_method: Some(UploadMethod::Post), ..big.clone() };
    let grant = uploads.start(&creator("content:write"), &form, Some("form-1"), &meta()).await.unwrap();
    let UploadInstructions::Post { form: post, .. } = &grant.upload else { panic!("a form was asked for: {:?}", grant.upload) };
    assert_eq!(post.fields["key"], format!("source/acme/{}/original", grant.record.content_id));
    assert_eq!(post.fields["Content-Type"], "video/mp4");
    assert!(post.fields.contains_key("policy") && post.fields.contains_key("x-amz-signature"));
    let replayed = uploads.start(&creator("content:write"), &form, Some("form-1"), &meta()).await.unwrap();
    assert!(replayed.replayed && matches!(replayed.upload, UploadInstructions::Post { .. }), "a replay gets a form again");
    let id = grant.record.content_id.to_string();
    let nothing = CompleteRequest { upload_id: "x".into(), parts: vec![part(1)] };
    let err = uploads.complete(&creator("content:write"), &id, &nothing, &meta()).await.unwrap_err();
    assert_eq!(err.status(), 409, "{err}");
}
