//! Plays the CloudFront distribution for `{tenant-label}.cdn.localhost`:
//!
//! - the default behavior serves the origin bucket, only to requests carrying valid signed
//!   cookies (or signed URL parameters), checked as CloudFront checks them
//!   ([`vaultstream::cdn::verify`]), after the rules of the deployed CloudFront Function
//!   (`infra/shared/tenant-host.js`, [`vaultstream::cdn::TenantHosts::admit`]): a clean path whose
//!   first segment is the tenant the host's label belongs to. Anything else is 400 or 403;
//! - `/v1/*` goes to the API, as a behavior with the API as origin does, so playback's cookies are
//!   set by the very host that checks them;
//! - the viewer and creator pages, and on `localhost` itself the dev sign-in.
//!
//! It also answers absolute-form requests (`GET http://host/path`), so a client that cannot resolve
//! `*.localhost` can use it as its HTTP proxy (`ffmpeg -http_proxy`, `curl --proxy`).

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{HeaderMap, Method, StatusCode};
use vaultstream::cdn::{verify, Denial, EdgeRequest, SignedCredentials, TenantHosts, TrustedKeys};

use crate::dev::gateway::Gateway;
use crate::dev::http::{error, Reply, Request};
use crate::dev::site::Site;

pub struct Edge {
    pub keys: TrustedKeys,
    pub hosts: Arc<TenantHosts>,
    pub s3: aws_sdk_s3::Client,
    pub origin_bucket: String,
    pub gateway: Arc<Gateway>,
    pub site: Site,
    /// `127.0.0.1:PORT` of the API, for proxied requests addressed to it.
    pub api_authority: String,
    /// `cdn.localhost`: tenant hosts are `{label}.{cdn_domain}`.
    pub cdn_domain: String,
}

const SIGNING_PARAMETERS: [&str; 5] = ["Policy", "Expires", "Signature", "Key-Pair-Id", "Hash-Algorithm"];

impl Edge {
    pub async fn serve(&self, request: Request) -> Reply {
        let authority = request
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| request.headers.get("host").and_then(|h| h.to_str().ok()).map(str::to_string))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let host = authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(&authority).to_string();
        let path = request.uri.path().to_string();

        if authority == self.api_authority {
            return self.to_api(request).await;
        }
        if host == "localhost" || host == "127.0.0.1" {
            return self.site.sign_in(&request).await;
        }
        let Some(label) = host.strip_suffix(&format!(".{}", self.cdn_domain)).filter(|l| !l.contains('.') && !l.is_empty()) else {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_host",
                &format!("{host} is not served here: tenant hosts are {{label}}.{}", self.cdn_domain),
            );
        };
        if path.starts_with("/v1/") {
            return self.to_api(request).await;
        }
        if let Some(page) = self.site.page(&path) {
            return page;
        }
        if request.method != Method::GET && request.method != Method::HEAD {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "the CDN serves GET and HEAD");
        }
        if let Err(refusal) = self.hosts.admit(label, &path) {
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
            return error(status, refusal.code(), refusal.message());
        }
        if let Err(denial) = self.signed(&request, &authority, &path) {
            tracing::info!(path = %path, reason = %denial, "edge refused");
            return error(StatusCode::FORBIDDEN, denial_code(&denial), &denial.to_string());
        }
        self.origin(&path, request.method == Method::HEAD).await
    }

    async fn to_api(&self, request: Request) -> Reply {
        self.gateway.serve(request.into()).await
    }

    fn signed(&self, request: &Request, authority: &str, path: &str) -> Result<(), Denial> {
        let query: Vec<(String, String)> = request
            .uri
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        let from_url = SignedCredentials::from_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let cookies: Vec<(&str, &str)> = request
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .collect();
        let credentials = if from_url.signature.is_some() { from_url } else { SignedCredentials::from_cookies(cookies) };
        let rest: Vec<String> = query
            .iter()
            .filter(|(k, _)| !SIGNING_PARAMETERS.contains(&k.as_str()))
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>(),
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
            .collect();
        let url =
            if rest.is_empty() { format!("http://{authority}{path}") } else { format!("http://{authority}{path}?{}", rest.join("&")) };
        let client_ip: IpAddr = request.peer.ip();
        verify(&self.keys, &credentials, &EdgeRequest { url: &url, client_ip, now: vaultstream::clock::now_seconds() })
    }

    async fn origin(&self, path: &str, head_only: bool) -> Reply {
        let key = percent_decode(path.trim_start_matches('/'));
        // The policy matched the path as sent; refuse anything that could name another prefix once decoded.
        if key.split('/').any(|segment| segment == ".." || segment == "." || segment.is_empty()) || key.contains('\\') {
            return error(StatusCode::BAD_REQUEST, "bad_path", "the path has empty, '.' or '..' segments");
        }
        let object = match self.s3.get_object().bucket(&self.origin_bucket).key(&key).send().await {
            Ok(object) => object,
            Err(e) => {
                let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key());
                return if missing {
                    error(StatusCode::NOT_FOUND, "not_found", "no such object")
                } else {
                    tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "origin read failed");
                    error(StatusCode::BAD_GATEWAY, "origin_unavailable", "the origin could not be read; try again")
                };
            }
        };
        let content_type = object.content_type().map(str::to_string).unwrap_or_else(|| content_type_for(&key).to_string());
        let body = match object.body.collect().await {
            Ok(bytes) => bytes.into_bytes(),
            Err(e) => {
                tracing::error!(error = %e, "origin read failed");
                return error(StatusCode::BAD_GATEWAY, "origin_unavailable", "the origin could not be read; try again");
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
        headers.insert("x-cache", HeaderValue::from_static("Miss from cloudfront (local)"));
        let body = if head_only { Bytes::new() } else { body };
        Reply { status: StatusCode::OK, headers, body }
    }
}

fn denial_code(denial: &Denial) -> &'static str {
    match denial {
        Denial::MissingKey => "missing_signature",
        Denial::UnknownKeyPair(_) => "unknown_key_pair",
        Denial::MalformedPolicy(_) => "malformed_policy",
        Denial::BadSignature => "bad_signature",
        Denial::Expired(_) => "expired_signature",
        Denial::NotYetValid(_) => "signature_not_yet_valid",
        Denial::WrongAddress(_) => "wrong_address",
        Denial::WrongResource(_) => "wrong_resource",
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("k={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

fn content_type_for(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mpd") => "application/dash+xml",
        Some("ts") => "video/mp2t",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("json") => "application/json",
        Some("vtt") => "text/vtt",
        _ => "application/octet-stream",
    }
}
