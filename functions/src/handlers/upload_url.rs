//! `POST /v1/content/upload` (a presigned PUT, a multipart upload above the threshold, or on request
//! a signed form), `POST /v1/content/{content_id}/upload/complete`, and
//! `POST /v1/content/import` (a URL the platform fetches: queued for `import_fetch`), and the
//! feed subscriptions `POST /v1/feeds`, `GET /v1/feeds`, `DELETE /v1/feeds/{feed_id}` (polled by
//! `feed_poll`), and the bucket monitors `POST /v1/monitors`, `GET /v1/monitors`,
//! `DELETE /v1/monitors/{monitor_id}` (polled by `monitor_poll`).

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use serde_json::json;
use tracing::Instrument;
use vaultstream::access::{AccessError, RequestMeta};
use vaultstream::ingest::feeds::{self, FeedRequest, FeedService};
use vaultstream::ingest::import::{ImportRequest, ImportService};
use vaultstream::ingest::monitors::{self, MonitorRequest, MonitorService};
use vaultstream::ingest::upload::{CompleteRequest, UploadInstructions, UploadRequest, UploadService, UploadSettings};
use vaultstream::principal::Principal;

use crate::env::{ConfigError, Env};
use crate::http::{access_error, header, json_body, json_response, meta, path_after, principal, rfc3339};
use crate::runtime::HttpFunction;
use crate::wiring::{self, Aws};

/// S3's smallest part; a lower threshold could not be split into valid parts.
const MIN_MULTIPART_THRESHOLD: u64 = 5 * 1024 * 1024;

pub struct UploadUrl {
    pub service: UploadService,
    pub imports: ImportService,
    pub feeds: FeedService,
    pub monitors: MonitorService,
}

enum Route {
    Start,
    Complete(String),
    Import,
    Subscribe,
    ListFeeds,
    Unsubscribe(String),
    Monitor,
    ListMonitors,
    RemoveMonitor(String),
}

pub fn settings(env: &Env) -> Result<UploadSettings, ConfigError> {
    let mut settings = UploadSettings::new(wiring::api_base_url(env)?);
    settings.max_bytes = env.number("VAULTSTREAM_MAX_UPLOAD_BYTES", UploadSettings::DEFAULT_MAX_BYTES)?;
    settings.multipart_threshold = env.number("VAULTSTREAM_MULTIPART_THRESHOLD_BYTES", UploadSettings::DEFAULT_MULTIPART_THRESHOLD)?;
    if settings.multipart_threshold < MIN_MULTIPART_THRESHOLD {
        return Err(ConfigError::new(
            "VAULTSTREAM_MULTIPART_THRESHOLD_BYTES",
            format!("must be at least {MIN_MULTIPART_THRESHOLD} (S3's smallest part)"),
        ));
    }
    // A part never exceeds the threshold, so an upload that is split is split at least in two.
    settings.min_part_size = settings.min_part_size.min(settings.multipart_threshold);
    if settings.max_bytes == 0 {
        return Err(ConfigError::new("VAULTSTREAM_MAX_UPLOAD_BYTES", "must be more than 0"));
    }
    Ok(settings)
}

#[async_trait::async_trait]
impl HttpFunction for UploadUrl {
    const NAME: &'static str = "upload_url";

    async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let source_bucket = wiring::name(env, "VAULTSTREAM_SOURCE_BUCKET")?;
        let catalog = wiring::catalog(env, aws)?;
        let audit = wiring::audit(env, aws)?;
        let policy = crate::handlers::import_fetch::fetch_policy(env)?;
        let feeds = FeedService {
            store: Arc::new(vaultstream::aws::DynamoFeeds::new(aws.dynamodb().clone(), wiring::name(env, "VAULTSTREAM_FEEDS_TABLE")?)),
            audit: audit.clone(),
            policy,
        };
        let monitors = MonitorService {
            store: Arc::new(vaultstream::aws::DynamoMonitors::new(aws.dynamodb().clone(), wiring::name(env, "VAULTSTREAM_FEEDS_TABLE")?)),
            secrets: Arc::new(vaultstream::aws::SecretsManagerKeys::new(
                aws.secrets().clone(),
                wiring::name(env, "VAULTSTREAM_MONITOR_SECRET_PREFIX")?,
            )),
            audit: audit.clone(),
            region: aws.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into()),
            platform: wiring::platform_buckets(env)?,
        };
        let imports = ImportService {
            catalog: catalog.clone(),
            queue: Arc::new(vaultstream::aws::SqsImportQueue::new(aws.sqs().clone(), wiring::name(env, "VAULTSTREAM_IMPORT_QUEUE_URL")?)),
            audit: audit.clone(),
            policy,
        };
        let service = UploadService {
            catalog,
            sources: Arc::new(
                vaultstream::aws::S3SourceStore::new(aws.s3().clone(), source_bucket).signing_forms_with(aws.credentials.clone()),
            ),
            audit,
            settings: settings(env)?,
        };
        Ok(UploadUrl { service, imports, feeds, monitors })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        let meta = meta(&request);
        let method = request.method().as_str().to_string();
        let feed_route = path_after(&request, "/v1/feeds").and_then(|parts| match (method.as_str(), parts.as_slice()) {
            ("POST", [""]) => Some(Route::Subscribe),
            ("GET", [""]) => Some(Route::ListFeeds),
            ("DELETE", ["", id]) => Some(Route::Unsubscribe(id.to_string())),
            _ => None,
        });
        let monitor_route = || {
            path_after(&request, "/v1/monitors").and_then(|parts| match (method.as_str(), parts.as_slice()) {
                ("POST", [""]) => Some(Route::Monitor),
                ("GET", [""]) => Some(Route::ListMonitors),
                ("DELETE", ["", id]) => Some(Route::RemoveMonitor(id.to_string())),
                _ => None,
            })
        };
        let route = feed_route.or_else(monitor_route).or_else(|| {
            path_after(&request, "/v1/content/").and_then(|parts| match parts.as_slice() {
                ["upload"] => Some(Route::Start),
                ["import"] => Some(Route::Import),
                [id, "upload", "complete"] => Some(Route::Complete(id.to_string())),
                _ => None,
            })
        });
        let content_id = match &route {
            Some(Route::Complete(id)) => id.as_str(),
            _ => "-",
        };
        let span =
            tracing::info_span!("upload_url", request_id = %meta.request_id, tenant = tracing::field::Empty, content_id = %content_id);
        async {
            let Some(route) = route else {
                return access_error(&AccessError::NotFound("route".into()));
            };
            let Some(principal) = principal(&request) else {
                return access_error(&AccessError::Unauthenticated("no verified session reached this route".into()));
            };
            tracing::Span::current().record("tenant", principal.tenant.as_str());
            match route {
                Route::Start => self.start(&principal, &request, &meta).await,
                Route::Complete(id) => self.complete(&principal, &id, &request, &meta).await,
                Route::Import => self.import(&principal, &request, &meta).await,
                Route::Subscribe => self.subscribe(&principal, &request, &meta).await,
                Route::ListFeeds => match self.feeds.list(&principal, &meta).await {
                    Ok(list) => json_response(200, &json!({"items": list.iter().map(feeds::view).collect::<Vec<_>>()})),
                    Err(e) => access_error(&e),
                },
                Route::Unsubscribe(id) => match self.feeds.remove(&principal, &id, &meta).await {
                    Ok(()) => crate::http::finish(lambda_http::http::Response::builder().status(204), Body::Empty),
                    Err(e) => access_error(&e),
                },
                Route::Monitor => self.monitor(&principal, &request, &meta).await,
                Route::ListMonitors => match self.monitors.list(&principal, &meta).await {
                    Ok(list) => json_response(200, &json!({"items": list.iter().map(monitors::view).collect::<Vec<_>>()})),
                    Err(e) => access_error(&e),
                },
                Route::RemoveMonitor(id) => match self.monitors.remove(&principal, &id, &meta).await {
                    Ok(()) => crate::http::finish(lambda_http::http::Response::builder().status(204), Body::Empty),
                    Err(e) => access_error(&e),
                },
            }
        }
        .instrument(span)
        .await
    }
}

impl UploadUrl {
    async fn start(&self, principal: &Principal, request: &Request, meta: &RequestMeta) -> Response<Body> {
        let body: UploadRequest = match json_body(request) {
            Ok(Some(body)) => body,
            Ok(None) => return access_error(&AccessError::BadRequest(EMPTY_UPLOAD.into())),
            Err(e) => return access_error(&e),
        };
        let grant = match self.service.start(principal, &body, header(request, "idempotency-key"), meta).await {
            Ok(grant) => grant,
            Err(e) => return access_error(&e),
        };
        tracing::Span::current().record("content_id", grant.record.content_id.as_str());
        tracing::info!(status = 201, replayed = grant.replayed, "upload started");
        let body = json!({"content_id": grant.record.content_id, "status": grant.record.status, "upload": upload_json(&grant.upload)});
        let mut response = json_response(201, &body);
        if grant.replayed {
            response.headers_mut().insert("idempotent-replayed", lambda_http::http::HeaderValue::from_static("true"));
        }
        response
    }

    async fn complete(&self, principal: &Principal, content_id: &str, request: &Request, meta: &RequestMeta) -> Response<Body> {
        let body: CompleteRequest = match json_body(request) {
            Ok(Some(body)) => body,
            Ok(None) => return access_error(&AccessError::BadRequest(EMPTY_COMPLETE.into())),
            Err(e) => return access_error(&e),
        };
        match self.service.complete(principal, content_id, &body, meta).await {
            Ok(record) => {
                tracing::info!(status = 200, "multipart upload completed");
                json_response(200, &json!({"content_id": record.content_id, "status": record.status}))
            }
            Err(e) => access_error(&e),
        }
    }
}

impl UploadUrl {
    async fn import(&self, principal: &Principal, request: &Request, meta: &RequestMeta) -> Response<Body> {
        let body: ImportRequest = match json_body(request) {
            Ok(Some(body)) => body,
            Ok(None) => return access_error(&AccessError::BadRequest(EMPTY_IMPORT.into())),
            Err(e) => return access_error(&e),
        };
        let grant = match self.imports.start(principal, &body, header(request, "idempotency-key"), meta).await {
            Ok(grant) => grant,
            Err(e) => return access_error(&e),
        };
        tracing::Span::current().record("content_id", grant.record.content_id.as_str());
        tracing::info!(status = 202, replayed = grant.replayed, "import accepted");
        let body = json!({"content_id": grant.record.content_id, "status": grant.record.status, "import": {"url": grant.url}});
        let mut response = json_response(202, &body);
        if grant.replayed {
            response.headers_mut().insert("idempotent-replayed", lambda_http::http::HeaderValue::from_static("true"));
        }
        response
    }
}

impl UploadUrl {
    async fn subscribe(&self, principal: &Principal, request: &Request, meta: &RequestMeta) -> Response<Body> {
        let body: FeedRequest = match json_body(request) {
            Ok(Some(body)) => body,
            Ok(None) => return access_error(&AccessError::BadRequest("the request body is empty; send {\"url\"}".into())),
            Err(e) => return access_error(&e),
        };
        match self.feeds.subscribe(principal, &body, meta).await {
            Ok(feed) => {
                tracing::info!(status = 201, feed_id = %feed.feed_id, "feed subscribed");
                json_response(201, &json!(feeds::view(&feed)))
            }
            Err(e) => access_error(&e),
        }
    }
}

impl UploadUrl {
    async fn monitor(&self, principal: &Principal, request: &Request, meta: &RequestMeta) -> Response<Body> {
        let body: MonitorRequest = match json_body(request) {
            Ok(Some(body)) => body,
            Ok(None) => return access_error(&AccessError::BadRequest(EMPTY_MONITOR.into())),
            Err(e) => return access_error(&e),
        };
        match self.monitors.create(principal, &body, meta).await {
            Ok(monitor) => {
                tracing::info!(status = 201, monitor_id = %monitor.monitor_id, "bucket monitor created");
                json_response(201, &json!(monitors::view(&monitor)))
            }
            Err(e) => access_error(&e),
        }
    }
}

const EMPTY_MONITOR: &str = "the request body is empty; send {\"provider\":\"s3\",\"bucket\",\"prefix\",\"role_arn\"} or \
                             {\"provider\":\"gcs\",\"bucket\",\"prefix\",\"service_account_key\"}";
const EMPTY_IMPORT: &str = "the request body is empty; send {\"url\",\"title\"}";
const EMPTY_UPLOAD: &str = "the request body is empty; send {\"title\",\"filename\",\"content_type\",\"size_bytes\"}";
const EMPTY_COMPLETE: &str = "the request body is empty; send {\"upload_id\",\"parts\":[{\"part_number\",\"etag\"}]}";

/// The contract's `upload` object.
fn upload_json(upload: &UploadInstructions) -> serde_json::Value {
    match upload {
        UploadInstructions::Put { request, expires_at } => {
            json!({"method": "PUT", "url": request.url, "headers": request.headers, "expires_at": rfc3339(*expires_at)})
        }
        UploadInstructions::Post { form, expires_at } => {
            json!({"method": "POST", "url": form.url, "fields": form.fields, "expires_at": rfc3339(*expires_at)})
        }
        UploadInstructions::Multipart { upload_id, part_size, parts, complete_url, expires_at } => json!({
            "method": "MULTIPART",
            "upload_id": upload_id,
            "part_size": part_size,
            "parts": parts.iter().map(|(n, url)| json!({"part_number": n, "url": url})).collect::<Vec<_>>(),
            "complete_url": complete_url,
            "expires_at": rfc3339(*expires_at),
        }),
    }
}
