//! The creator's path and the pipeline's glue, as AWS would drive them, over the wire to moto:
//! the upload functions behind API Gateway, an HTTP client putting bytes to presigned URLs, the
//! S3 notifications read from the real ingest queue and handed to dispatch as Lambda's SQS event,
//! each submitted Batch job's command run with the real transcoder binary under the job
//! definition's environment, and its outcome delivered to job_events as EventBridge would.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use vaultstream_functions::handlers::{content::Content, dispatch::Dispatch, job_events::JobEvents, upload_url::UploadUrl};
use vaultstream_functions::runtime::HttpFunction;

use crate::flow::body_text;
use crate::stack::{http_event, Stack};
use crate::workspace_binary;

pub struct IngestFunctions {
    pub upload: UploadUrl,
    pub content: Content,
    pub dispatch: Dispatch,
    pub job_events: JobEvents,
}

pub async fn ingest_functions(stack: &Stack) -> IngestFunctions {
    let env = stack.env();
    IngestFunctions {
        upload: UploadUrl::from_env(&env, &stack.aws).await.unwrap(),
        content: Content::from_env(&env, &stack.aws).await.unwrap(),
        dispatch: Dispatch::from_env(&env, &stack.aws).await.unwrap(),
        job_events: JobEvents::from_env(&env, &stack.aws).await.unwrap(),
    }
}

/// The authorizer context of a principal of `tenant` with `scope`, as API Gateway passes it on.
pub fn principal(tenant: &str, scope: &str) -> Value {
    json!({"tenant": tenant, "sub": format!("{tenant}-creator"), "sid": "sess-ingest", "scope": scope, "credential": "jwt"})
}

pub async fn start_upload(f: &IngestFunctions, principal: &Value, body: &str, idempotency_key: Option<&str>) -> Response<Body> {
    let headers: Vec<(&str, &str)> = idempotency_key.map(|k| ("idempotency-key", k)).into_iter().collect();
    f.upload.handle(http_event("POST", "/v1/content/upload", &[], &headers, Some(principal), Some(body))).await
}

pub async fn complete_upload(f: &IngestFunctions, principal: &Value, content_id: &str, body: &str) -> Response<Body> {
    f.upload.handle(http_event("POST", &format!("/v1/content/{content_id}/upload/complete"), &[], &[], Some(principal), Some(body))).await
}

pub async fn get_content(f: &IngestFunctions, principal: &Value, content_id: &str) -> Response<Body> {
    f.content.handle(http_event("GET", &format!("/v1/content/{content_id}"), &[], &[], Some(principal), None)).await
}

pub async fn list_content(f: &IngestFunctions, principal: &Value, query: &[(&str, &str)]) -> Response<Body> {
    f.content.handle(http_event("GET", "/v1/content", query, &[], Some(principal), None)).await
}

pub fn json_body(response: &Response<Body>) -> Value {
    serde_json::from_str(&body_text(response)).unwrap_or_else(|_| panic!("not JSON: {}", body_text(response)))
}

/// Declares and uploads `bytes` as a creator would: the upload call, then a PUT (or the parts and
/// the completion) with an HTTP client. Returns the content id.
pub async fn upload(f: &IngestFunctions, principal: &Value, title: &str, filename: &str, content_type: &str, bytes: &[u8]) -> String {
    let declaration = json!({"title": title, "filename": filename, "content_type": content_type, "size_bytes": bytes.len()}).to_string();
    let response = start_upload(f, principal, &declaration, None).await;
    assert_eq!(response.status(), 201, "{}", body_text(&response));
    let grant = json_body(&response);
    let content_id = grant["content_id"].as_str().unwrap().to_string();
    put_upload(f, principal, &grant, bytes).await;
    content_id
}

/// Sends `bytes` where an upload response says.
pub async fn put_upload(f: &IngestFunctions, principal: &Value, grant: &Value, bytes: &[u8]) {
    let http = reqwest::Client::new();
    let upload = &grant["upload"];
    match upload["method"].as_str() {
        Some("PUT") => {
            let mut request = http.put(upload["url"].as_str().unwrap()).body(bytes.to_vec());
            for (name, value) in upload["headers"].as_object().unwrap() {
                if name != "content-length" {
                    request = request.header(name, value.as_str().unwrap());
                }
            }
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "PUT to the presigned URL: {}", response.status());
        }
        Some("MULTIPART") => {
            let part_size = upload["part_size"].as_u64().unwrap() as usize;
            let mut parts = Vec::new();
            for (chunk, part) in bytes.chunks(part_size).zip(upload["parts"].as_array().unwrap()) {
                let response = http.put(part["url"].as_str().unwrap()).body(chunk.to_vec()).send().await.unwrap();
                assert!(response.status().is_success(), "PUT of part {}: {}", part["part_number"], response.status());
                let etag = response.headers()["etag"].to_str().unwrap().to_string();
                parts.push(json!({"part_number": part["part_number"], "etag": etag}));
            }
            let body = json!({"upload_id": upload["upload_id"], "parts": parts}).to_string();
            let response = complete_upload(f, principal, grant["content_id"].as_str().unwrap(), &body).await;
            assert_eq!(response.status(), 200, "{}", body_text(&response));
        }
        other => panic!("unknown upload method {other:?}"),
    }
}

/// Every message waiting on `queue_url`, as Lambda's SQS event delivers them.
pub async fn receive(stack: &Stack, queue_url: &str) -> SqsEvent {
    let arn = stack
        .aws
        .sqs()
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let mut records = Vec::new();
    loop {
        let out = stack
            .aws
            .sqs()
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(if records.is_empty() { 1 } else { 0 })
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let attributes: HashMap<String, String> =
                m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect();
            records.push(json!({
                "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body, "attributes": attributes,
                "messageAttributes": {}, "md5OfBody": m.md5_of_body, "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"
            }));
        }
    }
    serde_json::from_value(json!({"Records": records})).expect("a Lambda SQS event")
}

/// What Lambda's SQS integration does with a partial batch response: deletes the messages that
/// succeeded, leaves the failed ones for redelivery.
pub async fn settle(stack: &Stack, queue_url: &str, event: &SqsEvent, response: &SqsBatchResponse) {
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    for record in &event.records {
        if !failed.contains(&record.message_id.as_deref().unwrap_or_default()) {
            stack
                .aws
                .sqs()
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(record.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// Receives everything on the ingest queue and runs dispatch over it; returns the ids it failed.
pub async fn dispatch_ingest(stack: &Stack, f: &IngestFunctions) -> Vec<String> {
    let event = receive(stack, &stack.outputs.ingest_queue_url).await;
    let response = f.dispatch.handle(event.clone()).await;
    settle(stack, &stack.outputs.ingest_queue_url, &event, &response).await;
    response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
}

/// A submitted Batch job, as the local stack's job runner reads it.
pub use vaultstream_cli::dev::jobs::BatchJob;

pub async fn describe_job(stack: &Stack, job_id: &str) -> BatchJob {
    BatchJob::describe(stack.aws.batch(), job_id).await.unwrap_or_else(|e| panic!("describing job {job_id}: {e:#}"))
}

/// Running a job's container process the way the local job runner does, from a test.
pub trait RunJob {
    /// The process against `endpoint` (moto, or a proxy in front of it).
    fn command_against(&self, endpoint: &str, scratch: &Path) -> Command;
    fn run(&self, scratch: &Path) -> Output;
}

impl RunJob for BatchJob {
    fn command_against(&self, endpoint: &str, scratch: &Path) -> Command {
        self.command(&workspace_binary("vaultstream-transcode"), endpoint, scratch, 1).expect("the job's command resolves")
    }

    fn run(&self, scratch: &Path) -> Output {
        self.command_against(crate::moto::endpoint(), scratch).output().expect("the transcoder runs")
    }
}

/// The job dispatch recorded for `content_id`.
pub async fn recorded_job(stack: &Stack, tenant: &str, content_id: &str) -> Option<BatchJob> {
    let record = content_record(stack, tenant, content_id).await;
    match record.job {
        Some(job) => Some(describe_job(stack, &job.id).await),
        None => None,
    }
}

pub async fn content_record(stack: &Stack, tenant: &str, content_id: &str) -> vaultstream::catalog::ContentRecord {
    use vaultstream::catalog::ContentCatalog;
    let catalog = vaultstream::aws::DynamoCatalog::new(stack.aws.dynamodb().clone(), &stack.content_table);
    let (t, c) = (vaultstream::ids::TenantId::parse(tenant).unwrap(), vaultstream::ids::ContentId::parse(content_id).unwrap());
    catalog.get(&t, &c).await.unwrap().unwrap_or_else(|| panic!("no record for {tenant}/{content_id}"))
}

/// A short test clip made with FFmpeg's lavfi sources.
pub fn clip(dir: &Path, seconds: u32, size: &str) -> Vec<u8> {
    let path = dir.join(format!("clip-{seconds}-{size}.mp4"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc2=s={size}:r=25:d={seconds}")])
        .args(["-f", "lavfi", "-i", &format!("sine=f=440:r=48000:d={seconds}")])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", "-movflags", "+faststart"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(path).unwrap()
}

/// Every object key in `bucket` under `prefix`.
pub async fn keys(stack: &Stack, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = stack.aws.s3().list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        keys.extend(page.unwrap().contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    keys.sort();
    keys
}
