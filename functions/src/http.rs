//! Small helpers between API Gateway HTTP API events and the core.

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use vaultstream::access::{AccessError, RequestMeta};
use vaultstream::principal::Principal;

use crate::api_error::ApiError;

pub fn now() -> u64 {
    vaultstream::clock::now_seconds()
}

/// The verified caller: only API Gateway writes the authorizer context, so it is the principal
/// the authorizer checked. `None` when the route has no authorizer in front (a misconfiguration:
/// callers answer 401).
pub fn principal(request: &Request) -> Option<Principal> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| Principal::from_context(&a.fields).ok()),
        _ => None,
    }
}

/// The request's JSON body as `T`; `None` for an empty body. A body that does not parse is a 400
/// naming what was wrong.
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<Option<T>, AccessError> {
    let bytes: &[u8] = match request.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|e| AccessError::BadRequest(format!("the request body is not valid: {e}")))
}

/// A JSON response no cache keeps.
pub fn json_response(status: u16, value: &serde_json::Value) -> Response<Body> {
    finish(private(status, "application/json"), Body::Text(value.to_string()))
}

/// RFC 3339 for an epoch-seconds instant.
pub fn rfc3339(epoch_seconds: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Request id and source address from API Gateway's request context (the Lambda request id when
/// there is none).
pub fn meta(request: &Request) -> RequestMeta {
    let (mut request_id, mut source_ip) = (None, None);
    if let Some(RequestContext::ApiGatewayV2(ctx)) = request.request_context_ref() {
        request_id = ctx.request_id.clone();
        source_ip = ctx.http.source_ip.clone();
    }
    let request_id = request_id
        .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    RequestMeta { request_id, source_ip, now: now() }
}

pub fn query(request: &Request, name: &str) -> Option<String> {
    request.query_string_parameters_ref().and_then(|q| q.first(name)).map(str::to_string)
}

pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A cookie's value from the `Cookie` headers (lambda_http joins payload 2.0's `cookies` into one);
/// the first of that name, which browsers send for the most specific path.
pub fn cookie(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(lambda_http::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim().to_string())
}

/// The path after `prefix`, split on `/` (API Gateway has already percent-decoded nothing here;
/// segments are validated as ids by the core).
pub fn path_after<'a>(request: &'a Request, prefix: &str) -> Option<Vec<&'a str>> {
    request.raw_http_path().strip_prefix(prefix).map(|rest| rest.split('/').collect())
}

fn with_no_store(builder: lambda_http::http::response::Builder) -> lambda_http::http::response::Builder {
    builder.header(CACHE_CONTROL, "private, no-store").header("x-content-type-options", "nosniff")
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    let builder =
        with_no_store(Response::builder().status(StatusCode::from_u16(err.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)));
    finish(builder.header(CONTENT_TYPE, "application/json"), Body::Text(err.body()))
}

/// Builds the response; a header that does not encode becomes a bare 500 instead of a panic.
pub fn finish(builder: lambda_http::http::response::Builder, body: Body) -> Response<Body> {
    builder.body(body).unwrap_or_else(|e| {
        tracing::error!(error = %e, "response could not be built");
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

pub fn access_error(err: &AccessError) -> Response<Body> {
    match err {
        AccessError::Unavailable(detail) | AccessError::Internal(detail) => {
            tracing::error!(status = err.status(), detail = %detail, "request failed")
        }
        _ => tracing::info!(status = err.status(), reason = %err, "request refused"),
    }
    error_response(&ApiError::from_access(err))
}

/// A response that no cache keeps: personalised playlists, keys, playback grants.
pub fn private(status: u16, content_type: &str) -> lambda_http::http::response::Builder {
    with_no_store(Response::builder().status(status)).header(CONTENT_TYPE, content_type)
}
