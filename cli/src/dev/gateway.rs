//! Plays API Gateway (HTTP API, payload 2.0) for the local stack: the routes of
//! `infra/contract.json`, each running its real function handler, with the real Lambda
//! authorizer in front where the contract says so — as the deployed API is wired.
//!
//! What API Gateway itself answers is reproduced: 404 `{"message":"Not Found"}` for no route, 401
//! `{"message":"Unauthorized"}` when the identity source (`Authorization`) is missing, 403
//! `{"message":"Forbidden"}` when the authorizer says no, 500 when it fails. Browsers reach the API
//! from the viewer pages' origin, so CORS is answered as an HTTP API with a CORS configuration
//! answers it (no credentials: the API takes bearer tokens and signed URLs, never cookies).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use hyper::{HeaderMap, Method, StatusCode};
use lambda_http::Body;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use vaultstream_functions::handlers::authorizer::Authorizer;
use vaultstream_functions::runtime::HttpFunction;

use crate::dev::http::{respond, Reply};

/// API Gateway's payload limit.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

pub type Handler = Arc<dyn Fn(lambda_http::Request) -> Pin<Box<dyn Future<Output = lambda_http::Response<Body>> + Send>> + Send + Sync>;

/// An HTTP function as a route target.
pub fn handler<F: HttpFunction>(function: F) -> Handler {
    let function = Arc::new(function);
    Arc::new(move |request| {
        let function = Arc::clone(&function);
        Box::pin(async move { function.handle(request).await })
    })
}

#[derive(Deserialize)]
struct ContractRoute {
    route: String,
    function: String,
    authorizer: bool,
}

#[derive(Deserialize)]
struct Contract {
    routes: Vec<ContractRoute>,
}

struct Route {
    key: String,
    method: Method,
    segments: Vec<String>,
    function: String,
    authorizer: bool,
}

impl Route {
    /// Path parameters when `path` matches (`{name}` matches one non-empty segment).
    fn matches(&self, method: &Method, path: &str) -> Option<Map<String, Value>> {
        if method != self.method {
            return None;
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Map::new();
        for (pattern, part) in self.segments.iter().zip(parts) {
            match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !part.is_empty() => {
                    params.insert(name.to_string(), Value::from(part));
                }
                Some(_) => return None,
                None if pattern == part => {}
                None => return None,
            }
        }
        Some(params)
    }
}

/// The incoming request, as the listener read it.
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub source_ip: String,
}

impl From<crate::dev::http::Request> for ApiRequest {
    fn from(request: crate::dev::http::Request) -> Self {
        ApiRequest {
            method: request.method,
            path: request.uri.path().to_string(),
            query: request.uri.query().map(str::to_string),
            headers: request.headers,
            body: request.body,
            source_ip: request.peer.ip().to_string(),
        }
    }
}

pub struct Gateway {
    routes: Vec<Route>,
    functions: HashMap<String, Handler>,
    authorizer: Arc<Authorizer>,
    api_host: String,
}

impl Gateway {
    /// The contract's routes over `functions` (by the contract's function names).
    pub fn new(functions: HashMap<String, Handler>, authorizer: Authorizer, api_host: String) -> anyhow::Result<Self> {
        let contract: Contract = serde_json::from_str(include_str!("../../../infra/contract.json"))?;
        let mut routes = Vec::new();
        for r in contract.routes {
            let (method, path) = r.route.split_once(' ').ok_or_else(|| anyhow::anyhow!("route {:?} has no method", r.route))?;
            if !functions.contains_key(&r.function) {
                anyhow::bail!("route {} names function {}, which the local stack does not run", r.route, r.function);
            }
            routes.push(Route {
                key: r.route.clone(),
                method: method.parse()?,
                segments: path.trim_start_matches('/').split('/').map(str::to_string).collect(),
                function: r.function,
                authorizer: r.authorizer,
            });
        }
        Ok(Gateway { routes, functions, authorizer: Arc::new(authorizer), api_host })
    }

    pub async fn serve(&self, request: ApiRequest) -> Reply {
        let mut reply = self.route(request).await;
        cors(&mut reply.headers);
        reply
    }

    async fn route(&self, request: ApiRequest) -> Reply {
        if request.method == Method::OPTIONS {
            return preflight();
        }
        let found = self.routes.iter().find_map(|r| r.matches(&request.method, &request.path).map(|p| (r, p)));
        let Some((route, path_parameters)) = found else {
            return gateway_message(StatusCode::NOT_FOUND, "Not Found");
        };
        if request.body.len() > MAX_BODY_BYTES {
            return gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut authorizer_context = None;
        if route.authorizer {
            let Some(authorization) = request.headers.get("authorization").and_then(|v| v.to_str().ok()) else {
                return gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized");
            };
            let event = json!({
                "version": "2.0", "type": "REQUEST", "routeArn": format!("arn:aws:execute-api:us-east-1:123456789012:local/$default/{}", route.key.replace(' ', "")),
                "identitySource": [authorization], "routeKey": route.key, "rawPath": request.path, "rawQueryString": request.query.clone().unwrap_or_default(),
                "headers": headers_json(&request.headers), "requestContext": context(&request, &route.key, &request_id, &self.api_host),
            });
            let event = match serde_json::from_value(event) {
                Ok(event) => event,
                Err(e) => {
                    tracing::error!(error = %e, "authorizer event could not be built");
                    return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
                }
            };
            match self.authorizer.handle(event).await {
                Ok(response) if response.is_authorized => authorizer_context = Some(response.context),
                Ok(_) => return gateway_message(StatusCode::FORBIDDEN, "Forbidden"),
                Err(e) => {
                    tracing::error!(error = %e, "authorizer failed");
                    return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
                }
            }
        }
        let Some(function) = self.functions.get(&route.function) else {
            return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        };
        let mut ctx = context(&request, &route.key, &request_id, &self.api_host);
        if let Some(fields) = authorizer_context {
            ctx["authorizer"] = json!({ "lambda": fields });
        }
        let (body, is_base64) = match std::str::from_utf8(&request.body) {
            _ if request.body.is_empty() => (Value::Null, false),
            Ok(text) => (Value::from(text), false),
            Err(_) => (Value::from(base64::engine::general_purpose::STANDARD.encode(&request.body)), true),
        };
        let cookies: Vec<Value> = request
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';').map(|c| Value::from(c.trim())))
            .collect();
        let mut event = json!({
            "version": "2.0", "routeKey": route.key, "rawPath": request.path, "rawQueryString": request.query.clone().unwrap_or_default(),
            "headers": headers_json(&request.headers), "requestContext": ctx, "pathParameters": path_parameters,
            "body": body, "isBase64Encoded": is_base64,
        });
        if !cookies.is_empty() {
            event["cookies"] = Value::from(cookies);
        }
        if let Some(query) = &request.query {
            event["queryStringParameters"] = query_json(query);
        }
        let lambda_request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "API Gateway event could not be built");
                return gateway_message(StatusCode::BAD_REQUEST, "Bad Request");
            }
        };
        let response = function(lambda_request).await;
        let (parts, body) = response.into_parts();
        let bytes = match body {
            Body::Empty => Bytes::new(),
            Body::Text(t) => Bytes::from(t),
            Body::Binary(b) => Bytes::from(b),
            _ => Bytes::new(),
        };
        Reply { status: parts.status, headers: parts.headers, body: bytes }
    }
}

fn context(request: &ApiRequest, route_key: &str, request_id: &str, api_host: &str) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let user_agent = request.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
    json!({
        "accountId": "123456789012", "apiId": "local", "domainName": api_host, "domainPrefix": "local",
        "http": {"method": request.method.as_str(), "path": request.path, "protocol": "HTTP/1.1", "sourceIp": request.source_ip, "userAgent": user_agent},
        "requestId": request_id, "routeKey": route_key, "stage": "$default",
        "time": now.format(time::macros::format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000")).unwrap_or_default(),
        "timeEpoch": now.unix_timestamp() * 1000,
    })
}

/// Header names lowercased, repeated headers joined with commas, as API Gateway passes them.
fn headers_json(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        if name == "cookie" {
            continue;
        }
        let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        out.insert(name.as_str().to_string(), Value::from(values.join(",")));
    }
    Value::Object(out)
}

fn query_json(query: &str) -> Value {
    let mut out: Map<String, Value> = Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match out.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                out.insert(k.into_owned(), Value::from(v.into_owned()));
            }
        }
    }
    Value::Object(out)
}

fn gateway_message(status: StatusCode, message: &str) -> Reply {
    respond(status, "application/json", json!({ "message": message }).to_string())
}

fn preflight() -> Reply {
    let mut reply = Reply { status: StatusCode::NO_CONTENT, headers: HeaderMap::new(), body: Bytes::new() };
    let h = &mut reply.headers;
    h.insert("access-control-allow-methods", hyper::header::HeaderValue::from_static("GET, POST, OPTIONS"));
    h.insert("access-control-allow-headers", hyper::header::HeaderValue::from_static("authorization, content-type, idempotency-key"));
    h.insert("access-control-max-age", hyper::header::HeaderValue::from_static("600"));
    reply
}

fn cors(headers: &mut HeaderMap) {
    headers.insert("access-control-allow-origin", hyper::header::HeaderValue::from_static("*"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(key: &str) -> Route {
        let (method, path) = key.split_once(' ').unwrap();
        Route {
            key: key.into(),
            method: method.parse().unwrap(),
            segments: path.trim_start_matches('/').split('/').map(str::to_string).collect(),
            function: "f".into(),
            authorizer: true,
        }
    }

    #[test]
    fn routes_match_as_api_gateway_matches_them() {
        let r = route("GET /v1/content/{content_id}");
        assert_eq!(r.matches(&Method::GET, "/v1/content/abc").unwrap()["content_id"], "abc");
        assert!(r.matches(&Method::POST, "/v1/content/abc").is_none());
        assert!(r.matches(&Method::GET, "/v1/content/").is_none());
        assert!(r.matches(&Method::GET, "/v1/content/abc/playback").is_none());
        assert!(route("GET /v1/content").matches(&Method::GET, "/v1/content").is_some());
    }

    #[test]
    fn repeated_query_parameters_join_with_commas() {
        assert_eq!(query_json("a=1&b=x%20y&a=2"), json!({"a": "1,2", "b": "x y"}));
    }
}
