//! Requests reach the API only through CloudFront (and so its WAF): the API's `execute-api`
//! endpoint is disabled, and CloudFront adds a secret header to every request it forwards to the
//! API's custom domain. A request without it came around the CDN and is refused before any
//! handler runs. Off when `VAULTSTREAM_ORIGIN_VERIFY_SECRET_ARN` is unset (the local stack, whose
//! gateway is reached directly).

use lambda_http::{Body, Request, Response};
use zeroize::Zeroizing;

use crate::api_error::{ApiError, Status};
use crate::env::{ConfigError, Env};
use crate::wiring::Aws;

/// The header CloudFront sets on requests to the API origin.
pub const HEADER: &str = "x-vaultstream-origin-verify";
const ARN: &str = "VAULTSTREAM_ORIGIN_VERIFY_SECRET_ARN";
/// Shorter secrets are a configuration error, not a check.
const MIN_LEN: usize = 32;

pub struct OriginVerify {
    secret: Zeroizing<String>,
}

impl OriginVerify {
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_LEN {
            return Err(format!("the origin-verify secret must be at least {MIN_LEN} characters"));
        }
        Ok(OriginVerify { secret: Zeroizing::new(secret.to_string()) })
    }

    /// The configured check, read once per cold start; `None` when not configured.
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Option<Self>, ConfigError> {
        let Some(arn) = env.optional(ARN) else { return Ok(None) };
        let found =
            aws.secrets().get_secret_value().secret_id(arn).send().await.map_err(|e| {
                ConfigError::new(ARN, format!("could not be read: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e)))
            })?;
        let value = found.secret_string().ok_or_else(|| ConfigError::new(ARN, "names a secret without a string value"))?;
        OriginVerify::new(value.trim()).map(Some).map_err(|e| ConfigError::new(ARN, e))
    }

    /// The refusal for a request that did not come through CloudFront, or `None` to go on.
    pub fn refuse(&self, request: &Request) -> Option<Response<Body>> {
        let given = request.headers().get(HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        let matches = aws_lc_rs::constant_time::verify_slices_are_equal(given, self.secret.as_bytes()).is_ok();
        if matches {
            return None;
        }
        tracing::warn!(header_present = !given.is_empty(), "request refused: it did not come through the CDN");
        let error =
            ApiError::new(Status::Forbidden, "not_through_cdn", "this API answers only through its CDN domain; use the ApiUrl output");
        Some(crate::http::error_response(&error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(header: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder().uri("https://api-origin.cdn.example.com/v1/content");
        if let Some(value) = header {
            builder = builder.header(HEADER, value);
        }
        builder.body(Body::Empty).unwrap()
    }

    #[test]
    fn only_requests_carrying_the_cdns_secret_go_on() {
        let secret = "s".repeat(48);
        let check = OriginVerify::new(&secret).unwrap();
        assert!(check.refuse(&request(Some(&secret))).is_none());
        for forged in [None, Some(""), Some("s"), Some(&secret[..47]), Some(&format!("{secret}s"))] {
            let refused = check.refuse(&request(forged)).expect("refused");
            assert_eq!(refused.status(), 403, "{forged:?}");
            let body = match refused.body() {
                Body::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            };
            assert!(body.contains("not_through_cdn"), "{body}");
        }
    }

    #[test]
    fn a_short_secret_is_a_configuration_error() {
        assert!(OriginVerify::new("short").is_err());
    }
}
