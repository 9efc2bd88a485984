//! The local stack's pages: the dev sign-in on `localhost`, and on each tenant host the viewer
//! (`/`) and the creator (`/creator`). hls.js is served from its npm package (`cli/web`), never
//! from a CDN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, LOCATION};
use hyper::{Method, StatusCode};
use vaultstream::cdn::TenantHosts;
use vaultstream::ids::TenantId;

use crate::dev::http::{respond, Reply, Request};
use crate::dev::state::Identity;
use crate::dev::tokens::{mint, validate, TokenRequest};

/// Page sessions last a working day.
const SESSION_SECONDS: u64 = 8 * 3600;

pub struct Site {
    pub identity: Arc<Identity>,
    pub hosts: Arc<TenantHosts>,
    pub cdn_port: u16,
    hls_js: Bytes,
}

/// Where the pages' npm packages are installed.
pub fn web_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

impl Site {
    pub fn new(identity: Arc<Identity>, hosts: Arc<TenantHosts>, cdn_port: u16) -> Result<Site> {
        let hls = web_root().join("node_modules/hls.js/dist/hls.min.js");
        let hls_js = std::fs::read(&hls).with_context(|| {
            format!(
                "{} is missing: install the pages' packages with `npm ci --prefix cli/web` (scripts/install-deps.sh does)",
                hls.display()
            )
        })?;
        Ok(Site { identity, hosts, cdn_port, hls_js: Bytes::from(hls_js) })
    }

    fn asset(&self, path: &str) -> Option<Reply> {
        let (content_type, body): (&'static str, Bytes) = match path {
            "/favicon.ico" => return Some(respond(StatusCode::NO_CONTENT, "image/x-icon", Bytes::new())),
            "/assets/app.css" => ("text/css; charset=utf-8", Bytes::from_static(include_bytes!("../../web/app.css"))),
            "/assets/app.js" => ("text/javascript; charset=utf-8", Bytes::from_static(include_bytes!("../../web/app.js"))),
            "/assets/viewer.js" => ("text/javascript; charset=utf-8", Bytes::from_static(include_bytes!("../../web/viewer.js"))),
            "/assets/creator.js" => ("text/javascript; charset=utf-8", Bytes::from_static(include_bytes!("../../web/creator.js"))),
            "/assets/hls.min.js" => ("text/javascript; charset=utf-8", self.hls_js.clone()),
            _ => return None,
        };
        Some(respond(StatusCode::OK, content_type, body))
    }

    /// A page or asset on a tenant host; `None` for every other path (private content).
    pub fn page(&self, path: &str) -> Option<Reply> {
        let html = match path {
            "/" => include_str!("../../web/viewer.html"),
            "/creator" => include_str!("../../web/creator.html"),
            _ => return self.asset(path),
        };
        Some(page(StatusCode::OK, html.to_string()))
    }

    /// `localhost`: the sign-in form, and its answer.
    pub async fn sign_in(&self, request: &Request) -> Reply {
        let path = request.uri.path();
        if let Some(asset) = self.asset(path) {
            return asset;
        }
        match (&request.method, path) {
            (&Method::GET, "/") => page(StatusCode::OK, sign_in_form(None)),
            (&Method::POST, "/sign-in") => {
                let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body).into_owned().collect();
                let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
                let (tenant, user, role) = (field("tenant"), field("user"), field("role"));
                let (scope, landing) = match role.as_str() {
                    "viewer" => ("content:read", "/"),
                    "creator" => ("content:read content:write", "/creator"),
                    _ => return page(StatusCode::BAD_REQUEST, sign_in_form(Some("Pick a role: viewer or creator."))),
                };
                let token_request = TokenRequest { tenant: &tenant, sub: &user, scope, ttl_seconds: SESSION_SECONDS, sid: None };
                if let Err(problem) = validate(&token_request) {
                    let problem = problem.replace("--tenant", "Tenant").replace("--sub", "User");
                    return page(StatusCode::BAD_REQUEST, sign_in_form(Some(&problem)));
                }
                let (Ok(token), Ok(tenant)) = (mint(&self.identity, &token_request), TenantId::parse(&tenant)) else {
                    return page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        sign_in_form(Some("The token could not be signed; see the stack's log.")),
                    );
                };
                let location = format!("http://{}:{}{landing}#token={token}", self.hosts.host(&tenant), self.cdn_port);
                let mut reply = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "signed in");
                if let Ok(value) = HeaderValue::from_str(&location) {
                    reply.headers.insert(LOCATION, value);
                }
                reply.headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                reply
            }
            _ => respond(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: the sign-in is at /"),
        }
    }
}

fn page(status: StatusCode, html: String) -> Reply {
    let mut reply = respond(status, "text/html; charset=utf-8", html);
    reply.headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply.headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; connect-src 'self' http://127.0.0.1:*; img-src 'self' data:; media-src 'self' blob:; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; script-src 'self'"),
    );
    reply.headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    reply
}

fn sign_in_form(problem: Option<&str>) -> String {
    let html = include_str!("../../web/signin.html");
    match problem {
        None => html.to_string(),
        Some(p) => html.replace("<!--ERROR-->", &format!("<p class=\"error\">{}</p>", escape(p))),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
