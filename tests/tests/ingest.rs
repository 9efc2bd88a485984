//! From upload to published, over the wire to moto: the upload functions, an HTTP client on the
//! presigned URLs, the real S3 notifications on the ingest queue, dispatch, the job Batch was
//! asked for, that job's command run with the real transcoder, job_events with its outcome; then
//! the record, the origin bucket, the key in DynamoDB and KMS, and a viewer's playback.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use vaultstream::audit::Decision;
use vaultstream::aws::{AwsFailureReports, KmsKeyVault, SqsRetryQueue};
use vaultstream::catalog::ContentStatus;
use vaultstream::content_keys::KeyVault;
use vaultstream::ids::{ContentId, TenantId};
use vaultstream::ingest::job_outcome::{BatchJobStateChange, JobEventsService};
use vaultstream::ingest::ports::{RetryMessage, RetryQueue};
use vaultstream_functions::runtime::HttpFunction;
use vaultstream_tests::flow::{self, body_text, error_code};
use vaultstream_tests::ingest::*;
use vaultstream_tests::stack::{claims, Stack};

fn last_json_line(output: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON summary: {stdout}"));
    serde_json::from_str(line).unwrap()
}

/// The X-Ray documents the job sent: its segment continues the handed-on trace, and under it
/// the download, the transcode (probe, decode, one span per rung), the upload, and the AWS calls.
fn job_spans_form_one_trace(daemon: &std::net::UdpSocket, root: &str, rungs: &[&str]) {
    daemon.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    let mut documents: Vec<Value> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = daemon.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        documents.push(serde_json::from_str(text.split_once('\n').unwrap().1).unwrap());
    }
    assert!(documents.iter().all(|d| d["trace_id"] == root), "{documents:?}");
    let segments: Vec<&Value> = documents.iter().filter(|d| d.get("type").is_none()).collect();
    assert_eq!(segments.len(), 1, "one segment for the job: {documents:?}");
    assert_eq!(segments[0]["parent_id"], "0123456789abcdef", "under the span that handed the trace on");
    let named = |name: &str| {
        documents
            .iter()
            .find(|d| d["name"] == name && d["type"] == "subsegment")
            .unwrap_or_else(|| panic!("no {name} span in {documents:?}"))
    };
    let children_of = |parent: &Value| -> Vec<String> {
        let mut names: Vec<String> = documents
            .iter()
            .filter(|d| d["parent_id"] == parent["id"])
            .map(|d| format!("{} {}", d["name"].as_str().unwrap(), d["aws"]["operation"].as_str().unwrap_or("")).trim().to_string())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let job = children_of(segments[0]);
    for stage in ["download", "transcode", "upload", "KMS GenerateDataKey", "DynamoDB UpdateItem", "DynamoDB GetItem"] {
        assert!(job.contains(&stage.to_string()), "{stage} under the job: {job:?}");
    }
    let mut transcode: Vec<String> = ["decode", "probe"].map(String::from).into();
    transcode.extend(rungs.iter().map(|r| format!("rung {r}")));
    transcode.sort();
    assert_eq!(children_of(named("transcode")), transcode);
    assert_eq!(children_of(named("download")), ["S3 GetObject"]);
    assert_eq!(children_of(named("upload")), ["S3 PutObject"]);
}

/// The job's EMF lines: one job published, its figures by encoder, all catalogued.
fn job_metrics_are_catalogued(out: &std::process::Output, job_id: &str) {
    let catalogue = vaultstream_tests::observability::catalogue(&vaultstream_tests::observability::contract());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let documents: Vec<Value> =
        stdout.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|d| d.get("_aws").is_some()).collect();
    for document in &documents {
        assert_eq!(vaultstream::emf::validate(document), Ok(()), "{document}");
        assert_eq!(vaultstream_tests::observability::problems(document, &catalogue), Vec::<String>::new());
        assert_eq!(document["JobId"], job_id);
    }
    assert!(documents.iter().any(|d| d["JobsEnded"] == 1.0 && d["Outcome"] == "published"), "{documents:?}");
    let figures = documents.iter().find(|d| d.get("RealtimeFactor").is_some()).expect("the job's figures");
    assert_eq!((figures["Encoder"].as_str(), figures["RungFailures"].as_f64()), (Some("libx264"), Some(0.0)), "{figures}");
    assert!(
        figures["OutputBytes"].as_f64().is_some_and(|b| b > 0.0) && figures["JobDuration"].as_f64().is_some_and(|s| s > 0.0),
        "{figures}"
    );
}

/// Decrypts the first segment of `rendition` in the published version with `key`, using the IV its
/// stored playlist names, and checks it is MPEG-TS.
async fn first_segment_decrypts(stack: &Stack, prefix: &str, rendition: &str, key: &vaultstream::ContentKey) {
    let get = |k: String| async move {
        let object = stack.aws.s3().get_object().bucket(&stack.bucket).key(&k).send().await.unwrap_or_else(|e| panic!("{k}: {e}"));
        object.body.collect().await.unwrap().into_bytes().to_vec()
    };
    let playlist = String::from_utf8(get(format!("{prefix}{rendition}/index.m3u8")).await).unwrap();
    let key_line = playlist.lines().find(|l| l.starts_with("#EXT-X-KEY")).unwrap();
    assert!(key_line.contains("URI=\"key://k0\""), "{key_line}");
    let iv_hex = key_line.split("IV=0x").nth(1).unwrap().split(',').next().unwrap();
    let iv = vaultstream::segment_cipher::Iv(hex::decode(iv_hex).unwrap().try_into().unwrap());
    let segment = playlist.lines().find(|l| l.ends_with(".ts")).unwrap();
    let encrypted = get(format!("{prefix}{rendition}/{segment}")).await;
    let plain = vaultstream::segment_cipher::decrypt_segment(key, &iv, &encrypted).expect("the KMS key decrypts the segment");
    assert!(plain.len() >= 376 && plain[0] == 0x47 && plain[188] == 0x47, "{rendition}: the decrypted segment is MPEG-TS");
}

#[tokio::test]
async fn an_upload_becomes_a_ready_title_that_plays() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let creator = principal("acme", "content:write");
    let dir = tempfile::tempdir().unwrap();
    let bytes = clip(dir.path(), 4, "640x360");

    let content_id = upload(&f, &creator, "Test card", "card.mp4", "video/mp4", &bytes).await;
    let view = json_body(&get_content(&f, &creator, &content_id).await);
    assert_eq!(view["status"], "AWAITING_UPLOAD");

    // The S3 notification reaches dispatch through the real ingest queue; one job is submitted.
    assert!(dispatch_ingest(&stack, &f).await.is_empty());
    let record = content_record(&stack, "acme", &content_id).await;
    assert_eq!(record.status, ContentStatus::Queued);
    assert_eq!(record.source_etag.as_deref().map(|e| e.trim_matches('"').len()), Some(32), "the accepted upload's ETag");
    let job = recorded_job(&stack, "acme", &content_id).await.expect("dispatch recorded its job");
    assert!(job.queue.ends_with(&format!("/{}", stack.outputs.video_cpu_job_queue)), "a 360p source goes to the CPU queue: {}", job.queue);
    assert_eq!(job.parameters["tenant"], "acme");
    assert_eq!(job.parameters["content_id"], content_id);
    assert_eq!(job.parameters["source_key"], format!("source/acme/{content_id}/original"));
    assert_eq!(job.parameters["profile"], "default");
    assert_eq!(job.resolved_command().unwrap()[0], "run");

    // The job's command, run with the real transcoder, in a sampled trace (as dispatch hands one
    // on when X-Ray traces it) with an X-Ray daemon address listening here.
    assert_eq!(job.parameters["trace_header"], "none", "dispatch ran in no trace");
    let root = format!("1-{:08x}-0123456789abcdef01234567", vaultstream::clock::now_seconds());
    let mut traced = job.clone();
    traced.parameters.insert("trace_header".into(), format!("Root={root};Parent=0123456789abcdef;Sampled=1"));
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = traced
        .command_against(vaultstream_tests::moto::endpoint(), dir.path())
        .env("AWS_XRAY_DAEMON_ADDRESS", daemon.local_addr().unwrap().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "the job failed: {}", String::from_utf8_lossy(&out.stderr));
    let summary = last_json_line(&out);
    assert_eq!(summary["status"], "READY", "{summary}");
    job_spans_form_one_trace(&daemon, &root, &["360p"]);
    job_metrics_are_catalogued(&out, &job.id);
    // The job acted as its tenant's tagged session of the tenant role the job definition names.
    let acting_as = summary["acting_as"].as_str().unwrap_or_default();
    assert!(acting_as.contains(&format!("-transcoder-tenant/transcode-{content_id}")), "{summary}");
    for phase in ["download_seconds", "transcode_seconds", "upload_seconds", "publish_seconds"] {
        assert!(summary["timings"][phase].as_f64().is_some(), "{summary}");
    }
    f.job_events.handle(job.state_change(Some(0), "Essential container in task exited").unwrap()).await.unwrap();

    // The status API: READY, every rendition, the job's figures.
    let view = json_body(&get_content(&f, &creator, &content_id).await);
    assert_eq!(view["status"], "READY", "{view}");
    assert_eq!(view["progress"], 100.0);
    let names: Vec<&str> = view["renditions"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["360p"]);
    assert!(view["renditions"][0]["codecs"].as_str().unwrap().starts_with("avc1."));
    assert_eq!(view["renditions"][0]["video_range"], "SDR", "{view}");
    let quality = &view["renditions"][0]["quality"];
    assert!(quality["psnr_db"].as_f64().is_some_and(|p| p > 25.0) && quality["ssim"].as_f64().is_some_and(|s| s > 0.8), "{view}");
    assert!(quality["frames_sampled"].as_u64().is_some_and(|n| n >= 1), "{view}");
    assert_eq!(view["figures"]["encoder"], "libx264");
    assert!(view["figures"]["output_bytes"].as_u64().unwrap() > 0);
    assert!(view["figures"]["estimated_cost_usd"].as_f64().unwrap() > 0.0, "{view}");
    assert!((view["duration_seconds"].as_f64().unwrap() - 4.0).abs() < 0.2);
    assert!(view["poster"].as_str().unwrap().ends_with("/poster.jpg"));
    assert!(view["storyboard"].as_str().unwrap().ends_with("/thumbnails/storyboard.vtt"), "{view}");

    // The origin holds the published version, master included; the key blob is in DynamoDB and
    // unwraps through KMS to the key that decrypts the segments.
    let record = content_record(&stack, "acme", &content_id).await;
    let version = record.publication.as_ref().unwrap().version.to_string();
    let prefix = format!("acme/{content_id}/{version}/");
    let objects = keys(&stack, &stack.bucket, &prefix).await;
    for expected in ["master.m3u8", "360p/index.m3u8", "360p/seg_00000.ts", "poster.jpg", "thumbnails/thumb_00000.jpg"] {
        assert!(objects.contains(&format!("{prefix}{expected}")), "{expected} missing from {objects:?}");
    }
    let blob = record.keys.get(&vaultstream::KeyId::for_period(0)).expect("the key's KMS blob is stored");
    let (tenant, content) = (TenantId::parse("acme").unwrap(), ContentId::parse(&content_id).unwrap());
    let key = KmsKeyVault::new(stack.aws.kms().clone(), None).decrypt(&tenant, &content, blob).await.unwrap();
    first_segment_decrypts(&stack, &prefix, "360p", &key).await;
    for stream in [&out.stderr, &out.stdout] {
        assert!(!String::from_utf8_lossy(stream).contains(&hex::encode(key.expose())), "the key never reaches the logs or the metrics");
    }

    // A viewer of the tenant plays it through the access path, and gets that key.
    let access = flow::functions(&stack).await;
    let jwt = stack.jwt(Algorithm::RS256, &claims("acme", "viewer-1", "content:read", "sess-viewer"));
    let seen = flow::play(&access, &jwt, &content_id).await;
    assert_eq!(seen.key, key.expose().to_vec());
    assert!(seen.media.contains(&format!("/acme/{content_id}/{version}/360p/seg_00000.ts")), "{}", seen.media);

    // The ledger has the upload, the dispatch and the publication.
    let actions: Vec<(String, Decision)> =
        flow::ledger(&stack, "acme").await.into_iter().map(|r| (r.event.action, r.event.decision)).collect();
    for action in ["content.upload", "content.dispatch", "content.transcode"] {
        assert!(actions.contains(&(action.to_string(), Decision::Allow)), "{action} not audited: {actions:?}");
    }
}

async fn jobs_named(stack: &Stack, prefix: &str) -> Vec<String> {
    let batch = stack.aws.batch();
    let mut names = Vec::new();
    for queue in [&stack.outputs.video_gpu_job_queue, &stack.outputs.video_cpu_job_queue, &stack.outputs.audio_job_queue] {
        for status in ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"] {
            let listed = batch.list_jobs().job_queue(queue).job_status(aws_sdk_batch::types::JobStatus::from(status)).send().await.unwrap();
            names.extend(
                listed.job_summary_list().iter().filter_map(|j| j.job_name().map(str::to_string)).filter(|n| n.starts_with(prefix)),
            );
        }
    }
    names
}

#[tokio::test]
async fn a_multipart_upload_and_a_duplicate_event_make_one_job() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let creator = principal("acme", "content:write");
    // 5.5 MiB: above the test stack's 5 MiB threshold, so two parts (and two S3 events).
    let bytes: Vec<u8> = (0..(11 * 512 * 1024)).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let declaration = json!({"title": "Big", "filename": "big.mp4", "content_type": "video/mp4", "size_bytes": bytes.len()}).to_string();
    let response = start_upload(&f, &creator, &declaration, None).await;
    assert_eq!(response.status(), 201, "{}", body_text(&response));
    let grant = json_body(&response);
    assert_eq!(grant["upload"]["method"], "MULTIPART");
    assert_eq!(grant["upload"]["parts"].as_array().unwrap().len(), 2);
    let content_id = grant["content_id"].as_str().unwrap().to_string();
    put_upload(&f, &creator, &grant, &bytes).await;

    let event = receive(&stack, &stack.outputs.ingest_queue_url).await;
    let created: Vec<&str> = event.records.iter().filter_map(|r| r.body.as_deref()).filter(|b| b.contains("ObjectCreated")).collect();
    assert!(created.len() >= 2, "multipart uploads emit two events here: {created:?}");
    let response = f.dispatch.handle(event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    settle(&stack, &stack.outputs.ingest_queue_url, &event, &response).await;
    // The same notification delivered again (S3 delivers at least once).
    stack.aws.sqs().send_message().queue_url(&stack.outputs.ingest_queue_url).message_body(created[0]).send().await.unwrap();
    assert!(dispatch_ingest(&stack, &f).await.is_empty());

    assert_eq!(jobs_named(&stack, &format!("vs-acme-{content_id}-")).await.len(), 1, "one job for every event of one upload");
    let record = content_record(&stack, "acme", &content_id).await;
    assert_eq!(record.status, ContentStatus::Queued);
    assert!(record.source_etag.as_deref().unwrap().ends_with("-2\""), "a two-part ETag: {:?}", record.source_etag);
    let ledger: Vec<String> =
        flow::ledger(&stack, "acme").await.into_iter().map(|r| format!("{:?} {}", r.event.decision, r.event.reason)).collect();
    let denials: Vec<&String> = ledger.iter().filter(|r| r.starts_with("Deny")).collect();
    assert!(denials.len() >= 2 && denials.iter().all(|d| d.contains("duplicate or late event")), "{ledger:?}");
}

#[tokio::test]
async fn objects_outside_the_layout_or_another_tenants_prefix_are_ignored_and_audited() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let creator = principal("acme", "content:write");
    let dir = tempfile::tempdir().unwrap();
    let content_id = upload(&f, &creator, "Mine", "mine.mp4", "video/mp4", &clip(dir.path(), 2, "160x120")).await;
    assert!(dispatch_ingest(&stack, &f).await.is_empty());
    // Objects written past the API: another tenant's prefix naming acme's content, a key outside
    // the layout, one with an id that could escape its prefix.
    for key in [format!("source/globex/{content_id}/original"), "incoming/film.mp4".into(), "source/acme/a.b/original".into()] {
        stack.aws.s3().put_object().bucket(&stack.outputs.source_bucket).key(&key).body(b"x".to_vec().into()).send().await.unwrap();
    }
    assert!(dispatch_ingest(&stack, &f).await.is_empty());
    assert_eq!(jobs_named(&stack, "vs-").await.len(), 1, "only the real upload made a job");
    let globex: Vec<String> = flow::ledger(&stack, "globex").await.into_iter().map(|r| r.event.reason).collect();
    assert!(globex.iter().any(|r| r.contains("no content record of this tenant")), "{globex:?}");
    let system: Vec<String> = flow::ledger(&stack, "_system").await.into_iter().map(|r| r.event.reason).collect();
    assert_eq!(system.len(), 2, "{system:?}");
    assert!(system.iter().all(|r| r.starts_with("ignored: ")), "{system:?}");
}

#[tokio::test]
async fn a_hostile_file_is_failed_invalid_with_a_reason_and_never_retried() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let creator = principal("acme", "content:write");
    let mut junk = b"\x00\x00\x00\x18ftypisom".to_vec();
    junk.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_246_822_519) >> 24) as u8));
    let content_id = upload(&f, &creator, "Not a film", "film.mp4", "video/mp4", &junk).await;
    assert!(dispatch_ingest(&stack, &f).await.is_empty());
    let job = recorded_job(&stack, "acme", &content_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = job.run(dir.path());
    assert_eq!(out.status.code(), Some(65), "{}", String::from_utf8_lossy(&out.stderr));
    f.job_events.handle(job.state_change(Some(65), "Essential container in task exited").unwrap()).await.unwrap();

    let view = json_body(&get_content(&f, &creator, &content_id).await);
    assert_eq!(view["status"], "FAILED_INVALID", "{view}");
    assert_eq!(view["failure"]["code"], "invalid_source");
    let reason = view["failure"]["message"].as_str().unwrap();
    assert!(reason.contains("not a media file") || reason.contains("damaged"), "the creator reads why: {reason}");
    assert!(reason.starts_with("the uploaded file") && !reason.contains(&dir.path().display().to_string()), "no worker paths: {reason}");
    let attributes = stack
        .aws
        .sqs()
        .get_queue_attributes()
        .queue_url(&stack.outputs.retry_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let waiting: u64 = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
        .iter()
        .map(|a| attributes.get(&aws_sdk_sqs::types::QueueAttributeName::from(*a)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum();
    assert_eq!(waiting, 0, "invalid input is never retried");
    assert!(keys(&stack, &stack.bucket, &format!("acme/{content_id}/")).await.is_empty(), "nothing was published");
}

/// Sends retries to the real retry queue and remembers each (message, delay): SQS keeps delayed
/// messages invisible for up to 15 minutes, too long to wait for in a test.
struct Recording {
    queue: SqsRetryQueue,
    sent: Mutex<Vec<(RetryMessage, Duration)>>,
}

#[async_trait::async_trait]
impl RetryQueue for Recording {
    async fn schedule(&self, message: &RetryMessage, delay: Duration) -> Result<(), String> {
        self.queue.schedule(message, delay).await?;
        self.sent.lock().unwrap().push((message.clone(), delay));
        Ok(())
    }
}

#[tokio::test]
async fn temporary_failures_back_off_five_attempts_then_fail_with_a_dead_letter_and_a_notification() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let creator = principal("acme", "content:write");
    let dir = tempfile::tempdir().unwrap();
    let content_id = upload(&f, &creator, "Flaky", "flaky.mp4", "video/mp4", &clip(dir.path(), 2, "160x120")).await;
    assert!(dispatch_ingest(&stack, &f).await.is_empty());

    // Creators subscribe to the content-failed bus; here a rule forwards it to a queue we read.
    let events = stack.aws.events();
    let observer = stack.aws.sqs().create_queue().queue_name(format!("{}-observer", stack.suffix)).send().await.unwrap().queue_url.unwrap();
    let observer_arn = format!("arn:aws:sqs:us-east-1:123456789012:{}-observer", stack.suffix);
    events
        .put_rule()
        .name("creator-notifications")
        .event_bus_name(&stack.outputs.content_failed_bus)
        .event_pattern(json!({"source": ["vaultstream"], "detail-type": ["vaultstream.content.failed"]}).to_string())
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("observer").arn(&observer_arn).build().unwrap();
    events
        .put_targets()
        .rule("creator-notifications")
        .event_bus_name(&stack.outputs.content_failed_bus)
        .targets(target)
        .send()
        .await
        .unwrap();

    let recording = Arc::new(Recording {
        queue: SqsRetryQueue::new(stack.aws.sqs().clone(), &stack.outputs.retry_queue_url),
        sent: Mutex::new(Vec::new()),
    });
    let reports = AwsFailureReports::new(
        stack.aws.sqs().clone(),
        stack.aws.events().clone(),
        &stack.outputs.failures_dlq_url,
        &stack.outputs.content_failed_bus,
    );
    let env = stack.env();
    let job_events = JobEventsService {
        catalog: vaultstream_functions::wiring::catalog(&env, &stack.aws).unwrap(),
        retries: recording.clone(),
        failures: Arc::new(reports),
        audit: vaultstream_functions::wiring::audit(&env, &stack.aws).unwrap(),
    };
    for attempt in 1..=5 {
        let job = recorded_job(&stack, "acme", &content_id).await.unwrap_or_else(|| panic!("attempt {attempt} has a job"));
        assert!(job.name.ends_with(&format!("-a{attempt}")), "{}", job.name);
        let event = job.state_change(Some(75), "Essential container in task exited").unwrap();
        let change: BatchJobStateChange = serde_json::from_value(event.detail.clone()).unwrap();
        job_events.handle(&change, "evt").await.unwrap();
        job_events.handle(&change, "evt-again").await.unwrap();
        if attempt == 5 {
            break;
        }
        let (message, delay) = recording.sent.lock().unwrap().last().cloned().unwrap();
        assert_eq!((message.attempt, delay.as_secs()), (attempt + 1, 30 << (attempt - 1)));
        let view = json_body(&get_content(&f, &creator, &content_id).await);
        assert_eq!(view["status"], "QUEUED");
        assert_eq!(view["failure"]["code"], "retrying", "{view}");
        // The retry queue's consumer is dispatch; deliver the message as Lambda would once due.
        let body = serde_json::to_string(&message).unwrap();
        let sqs_event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(json!({"Records": [{
            "messageId": format!("retry-{attempt}"), "receiptHandle": "rh", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:retry", "awsRegion": "us-east-1"
        }]}))
        .unwrap();
        assert!(f.dispatch.handle(sqs_event).await.batch_item_failures.is_empty());
    }
    assert_eq!(recording.sent.lock().unwrap().len(), 4, "one retry after each of the first four attempts, duplicates ignored");
    let delayed = stack
        .aws
        .sqs()
        .get_queue_attributes()
        .queue_url(&stack.outputs.retry_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        delayed.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed],
        "4",
        "the retries wait in SQS"
    );

    let view = json_body(&get_content(&f, &creator, &content_id).await);
    assert_eq!(view["status"], "FAILED", "{view}");
    assert!(view["failure"]["message"].as_str().unwrap().contains("giving up after 5 attempts"));
    assert_eq!(view["attempts"], 5);
    let dead = receive(&stack, &stack.outputs.failures_dlq_url).await;
    assert_eq!(dead.records.len(), 1);
    let dead: Value = serde_json::from_str(dead.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!((dead["tenant"].as_str(), dead["content_id"].as_str()), (Some("acme"), Some(content_id.as_str())));
    let notified = receive(&stack, &observer).await;
    assert_eq!(notified.records.len(), 1, "the creator is notified once");
    let notification: Value = serde_json::from_str(notified.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(notification["detail-type"], "vaultstream.content.failed");
    assert_eq!(notification["detail"]["content_id"], content_id.as_str());
    assert!(notification["detail"]["reason"].as_str().unwrap().contains("exit 75"));
}

#[tokio::test]
async fn a_job_killed_mid_upload_and_rerun_publishes_one_complete_version() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let creator = principal("acme", "content:write");
    let dir = tempfile::tempdir().unwrap();
    let content_id = upload(&f, &creator, "Interrupted", "i.mp4", "video/mp4", &clip(dir.path(), 8, "960x540")).await;
    assert!(dispatch_ingest(&stack, &f).await.is_empty());
    let job = recorded_job(&stack, "acme", &content_id).await.unwrap();

    // The first run dies as it starts its fourth object upload to the origin (one at a time, so
    // three are whole).
    let proxy = vaultstream_tests::proxy::kill_after(vaultstream_tests::moto::endpoint(), format!("PUT /{}/", stack.bucket).as_bytes(), 4);
    let mut first = job.command_against(&proxy.endpoint, dir.path());
    first.env("VAULTSTREAM_UPLOAD_CONCURRENCY", "1").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = first.spawn().unwrap();
    proxy.pid.store(child.id(), Ordering::SeqCst);
    let status = child.wait().unwrap();
    assert!(!status.success() && status.code().is_none(), "the first run was killed: {status:?}");
    assert!(proxy.seen.load(Ordering::SeqCst) >= 4);
    let half = keys(&stack, &stack.bucket, &format!("acme/{content_id}/")).await;
    assert_eq!(half.len(), 3, "a half-written version: {half:?}");
    assert!(!half.iter().any(|k| k.ends_with(".m3u8")), "segments go first, playlists and the master last: {half:?}");
    assert_eq!(content_record(&stack, "acme", &content_id).await.status, ContentStatus::Processing);

    // The rerun publishes a whole new version and names it.
    let out = job.run(dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    f.job_events.handle(job.state_change(Some(0), "Essential container in task exited").unwrap()).await.unwrap();
    let record = content_record(&stack, "acme", &content_id).await;
    assert_eq!(record.status, ContentStatus::Ready);
    let version = record.publication.unwrap().version.to_string();
    assert!(!half.iter().any(|k| k.contains(&version)), "the rerun wrote a new version");
    let prefix = format!("acme/{content_id}/{version}/");
    let published = keys(&stack, &stack.bucket, &prefix).await;
    let renditions = ["480p", "360p"];
    for r in renditions {
        assert!(published.contains(&format!("{prefix}{r}/index.m3u8")), "{r} missing: {published:?}");
    }
    assert!(published.contains(&format!("{prefix}master.m3u8")));
    let master = stack.aws.s3().get_object().bucket(&stack.bucket).key(format!("{prefix}master.m3u8")).send().await.unwrap();
    let master = String::from_utf8(master.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), renditions.len(), "{master}");
    // Viewers get the complete version.
    let access = flow::functions(&stack).await;
    let jwt = stack.jwt(Algorithm::RS256, &claims("acme", "v", "content:read", "sess-rerun"));
    let seen = flow::play(&access, &jwt, &content_id).await;
    assert!(seen.media.contains(&version), "{}", seen.media);
}

#[tokio::test]
async fn bad_upload_requests_get_the_contracts_codes_and_create_nothing() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let creator = principal("acme", "content:write");
    let ok = json!({"title": "Film", "filename": "film.mp4", "content_type": "video/mp4", "size_bytes": 1000});
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body.to_string()
    };
    let cases: Vec<(&str, Value, String, u16, &str)> = vec![
        ("oversize", creator.clone(), with("size_bytes", json!(65 * 1024 * 1024)), 413, "too_large"),
        ("wrong type", creator.clone(), with("content_type", json!("application/x-msdownload")), 415, "unsupported_media_type"),
        ("mismatched extension", creator.clone(), with("filename", json!("film.exe")), 400, "invalid_request"),
        ("path in filename", creator.clone(), with("filename", json!("../../etc/passwd.mp4")), 400, "invalid_request"),
        ("malformed JSON", creator.clone(), "{\"title\": ".to_string(), 400, "invalid_request"),
        ("unknown field", creator.clone(), with("tenant", json!("globex")), 400, "invalid_request"),
        ("unknown upload method", creator.clone(), with("upload_method", json!("FTP")), 400, "invalid_request"),
        ("bad metadata", creator.clone(), with("metadata", json!({"language": "Klingon please"})), 400, "invalid_request"),
        ("spoofing metadata", creator.clone(), with("metadata", json!({"artist": "abc\u{202E}4pm.exe"})), 400, "invalid_request"),
        ("unknown metadata field", creator.clone(), with("metadata", json!({"rating": "5"})), 400, "invalid_request"),
        ("missing scope", principal("acme", "content:read"), ok.to_string(), 403, "forbidden"),
    ];
    for (name, who, body, status, code) in cases {
        let response = start_upload(&f, &who, &body, None).await;
        assert_eq!((response.status().as_u16(), error_code(&response)), (status, code.to_string()), "{name}: {}", body_text(&response));
        assert!(!body_text(&response).contains("sig"), "{name}: no URL leaks into an error");
    }
    let listed = json_body(&list_content(&f, &creator, &[]).await);
    assert_eq!(listed["items"].as_array().unwrap().len(), 0, "nothing was created: {listed}");
    assert!(keys(&stack, &stack.outputs.source_bucket, "source/").await.is_empty());
    // Without a verified principal (a route missing its authorizer) nothing happens either.
    let anonymous =
        f.upload.handle(vaultstream_tests::stack::http_event("POST", "/v1/content/upload", &[], &[], None, Some(&ok.to_string()))).await;
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_plain_html_form_uploads_straight_to_the_bucket_and_is_dispatched() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let creator = principal("acme", "content:write");
    let dir = tempfile::tempdir().unwrap();
    let bytes = clip(dir.path(), 2, "320x180");
    let file = dir.path().join("form.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let declaration =
        json!({"title": "Form", "filename": "form.mp4", "content_type": "video/mp4", "size_bytes": bytes.len(), "upload_method": "POST"});
    let response = start_upload(&f, &creator, &declaration.to_string(), None).await;
    assert_eq!(response.status(), 201, "{}", body_text(&response));
    let grant = json_body(&response);
    let content_id = grant["content_id"].as_str().unwrap();
    let upload = &grant["upload"];
    assert_eq!(upload["method"], "POST", "{grant}");
    assert!(upload["url"].as_str().unwrap().ends_with(&format!("/{}/", stack.outputs.source_bucket)), "{grant}");
    let fields = upload["fields"].as_object().unwrap();
    assert_eq!(fields["key"], format!("source/acme/{content_id}/original"));
    assert_eq!(fields["Content-Type"], "video/mp4");
    // What S3 enforces: the policy binds the bucket, every field, and the declared length.
    let policy = base64::engine::general_purpose::STANDARD.decode(fields["policy"].as_str().unwrap()).unwrap();
    let policy: Value = serde_json::from_slice(&policy).unwrap();
    let conditions = policy["conditions"].as_array().unwrap();
    assert!(conditions.contains(&json!(["content-length-range", bytes.len(), bytes.len()])), "{policy}");
    assert!(conditions.contains(&json!({"bucket": stack.outputs.source_bucket})), "{policy}");
    assert!(conditions.contains(&json!({"key": fields["key"]})), "{policy}");
    assert!(policy["expiration"].as_str().unwrap().ends_with('Z'));

    // Chromium submits the form, a page with no script on it, straight to the bucket.
    let shot = vaultstream_tests::local::output_dir().join("form-upload.png");
    let posted = vaultstream_tests::local::browser_script(
        "form_upload.mjs",
        &json!({"url": upload["url"], "fields": fields, "file": file, "screenshot": shot}),
    );
    assert_eq!(posted["status"], 204, "S3 accepted the form: {posted}");

    // The same flow as any upload from here: the S3 event, dispatch, one job.
    assert!(dispatch_ingest(&stack, &f).await.is_empty());
    let record = content_record(&stack, "acme", content_id).await;
    assert_eq!(record.status, ContentStatus::Queued, "{:?}", record.failure);
    assert!(recorded_job(&stack, "acme", content_id).await.is_some(), "dispatch submitted the job");
    let complete = json!({"upload_id": "none", "parts": [{"part_number": 1, "etag": "\"x\""}]}).to_string();
    let completed = f
        .upload
        .handle(vaultstream_tests::stack::http_event(
            "POST",
            &format!("/v1/content/{content_id}/upload/complete"),
            &[],
            &[],
            Some(&creator),
            Some(&complete),
        ))
        .await;
    assert_eq!(completed.status(), 409, "a form upload has nothing to complete: {}", body_text(&completed));
}

#[tokio::test]
async fn presigned_uploads_bind_type_and_length_and_idempotency_keys_replay() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let creator = principal("acme", "content:write");
    let body = json!({"title": "Once", "filename": "once.mov", "content_type": "video/quicktime", "size_bytes": 4}).to_string();
    let first = start_upload(&f, &creator, &body, Some("create-once-1")).await;
    assert_eq!(first.status(), 201);
    let grant = json_body(&first);
    let url = url::Url::parse(grant["upload"]["url"].as_str().unwrap()).unwrap();
    let signed = url.query_pairs().find(|(k, _)| k == "X-Amz-SignedHeaders").map(|(_, v)| v.to_string()).unwrap();
    assert!(signed.split(';').any(|h| h == "content-length") && signed.split(';').any(|h| h == "content-type"), "signed headers: {signed}");
    assert_eq!(grant["upload"]["headers"]["content-type"], "video/quicktime");
    assert!(url.path().ends_with(&format!("/source/acme/{}/original", grant["content_id"].as_str().unwrap())));

    let again = start_upload(&f, &creator, &body, Some("create-once-1")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(&again)["content_id"], grant["content_id"]);
    let other = json!({"title": "Twice", "filename": "once.mov", "content_type": "video/quicktime", "size_bytes": 4}).to_string();
    let conflict = start_upload(&f, &creator, &other, Some("create-once-1")).await;
    assert_eq!((conflict.status().as_u16(), error_code(&conflict)), (409, "idempotency_conflict".to_string()));
    assert_eq!(json_body(&list_content(&f, &creator, &[]).await)["items"].as_array().unwrap().len(), 1);

    // A body other than the one declared: dispatch refuses the object, with the reason.
    let content_id = grant["content_id"].as_str().unwrap();
    let key = format!("source/acme/{content_id}/original");
    stack
        .aws
        .s3()
        .put_object()
        .bucket(&stack.outputs.source_bucket)
        .key(&key)
        .content_type("video/quicktime")
        .body(b"longer than declared".to_vec().into())
        .send()
        .await
        .unwrap();
    assert!(dispatch_ingest(&stack, &f).await.is_empty());
    let view = json_body(&get_content(&f, &creator, content_id).await);
    assert_eq!(view["status"], "FAILED_INVALID");
    assert_eq!(view["failure"]["code"], "upload_mismatch");
    assert!(view["failure"]["message"].as_str().unwrap().contains("20 bytes, but 4 were declared"), "{view}");
}

#[tokio::test]
async fn lists_and_lookups_never_cross_tenants() {
    let stack = Stack::provision().await;
    let f = ingest_functions(&stack).await;
    let (acme, globex) = (principal("acme", "content:write"), principal("globex", "content:write"));
    let declare = |title: &str| json!({"title": title, "filename": "f.mp4", "content_type": "video/mp4", "size_bytes": 10}).to_string();
    let mut acme_ids = Vec::new();
    for title in ["First", "Second", "Third"] {
        acme_ids.push(json_body(&start_upload(&f, &acme, &declare(title), None).await)["content_id"].as_str().unwrap().to_string());
    }
    let globex_id = json_body(&start_upload(&f, &globex, &declare("Theirs"), None).await)["content_id"].as_str().unwrap().to_string();

    // Newest first, two per page, the cursor leading to the rest.
    let page = json_body(&list_content(&f, &acme, &[("limit", "2")]).await);
    let titles: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Third", "Second"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let rest = json_body(&list_content(&f, &acme, &[("limit", "2"), ("cursor", &cursor)]).await);
    let titles: Vec<&str> = rest["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["First"]);
    // The same cursor in another tenant's hands lists that tenant's titles only.
    let theirs = json_body(&list_content(&f, &globex, &[("cursor", &cursor)]).await);
    assert!(theirs["items"].as_array().unwrap().iter().all(|i| i["content_id"] == globex_id.as_str()), "{theirs}");
    let bad = list_content(&f, &acme, &[("cursor", "not-a-cursor")]).await;
    assert_eq!((bad.status().as_u16(), error_code(&bad)), (400, "invalid_request".to_string()));
    let bad = list_content(&f, &acme, &[("limit", "1000")]).await;
    assert_eq!(bad.status(), 400);

    // Another tenant's title is absent, not forbidden; so is completing its upload.
    let response = get_content(&f, &globex, &acme_ids[0]).await;
    assert_eq!((response.status().as_u16(), error_code(&response)), (404, "not_found".to_string()));
    let response = complete_upload(&f, &globex, &acme_ids[0], r#"{"upload_id":"x","parts":[{"part_number":1,"etag":"e"}]}"#).await;
    assert_eq!(response.status(), 404);
    let viewer = principal("acme", "content:read");
    assert_eq!(json_body(&get_content(&f, &viewer, &acme_ids[1]).await)["title"], "Second");
    let nobody = principal("acme", "openid");
    assert_eq!(get_content(&f, &nobody, &acme_ids[1]).await.status(), 403);
}
