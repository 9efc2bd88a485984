//! `POST /v1/content/upload` (a presigned PUT, a multipart upload above the threshold, or on request
//! a signed form), `POST /v1/content/{content_id}/upload/complete`, and
//! `POST /v1/content/import` (a URL the platform fetches: queued for `import_fetch`).

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use serde_json::json;
use tracing::Instrument;
use vaultstream::access::{AccessError, RequestMeta};
use vaultstream::ingest::import::{ImportRequest, ImportService};
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
}

enum Route {
    Start,
    Complete(String),
    Import,
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
        let imports = ImportService {
            catalog: catalog.clone(),
            queue: Arc::new(vaultstream::aws::SqsImportQueue::new(aws.sqs.clone(), wiring::name(env, "VAULTSTREAM_IMPORT_QUEUE_URL")?)),
            audit: audit.clone(),
            policy: crate::handlers::import_fetch::fetch_policy(env)?,
        };
        let service = UploadService {
            catalog,
            sources: Arc::new(
                vaultstream::aws::S3SourceStore::new(aws.s3.clone(), source_bucket).signing_forms_with(aws.credentials.clone()),
            ),
            audit,
            settings: settings(env)?,
        };
        Ok(UploadUrl { service, imports })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        let meta = meta(&request);
        let route = path_after(&request, "/v1/content/").and_then(|parts| match parts.as_slice() {
            ["upload"] => Some(Route::Start),
            ["import"] => Some(Route::Import),
            [id, "upload", "complete"] => Some(Route::Complete(id.to_string())),
            _ => None,
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
