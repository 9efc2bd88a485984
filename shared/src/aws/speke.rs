//! A DRM vendor's SPEKE v2 key provider over HTTPS: the CPIX request `cpix::request` writes,
//! `POST`ed with `X-Speke-Version: 2.0`, signed with SigV4 for API Gateway (`execute-api`, the
//! Batch job role's credentials: SPEKE's own authentication) or sent as is, for a provider whose
//! URL carries its own credential.
//!
//! 5xx, 429 and transport errors are `Unavailable` (the job exits 75 and Batch retries it);
//! any other refusal, or an answer that `cpix::read_answer` refuses, is `Refused`.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::cpix;
use crate::drm::{KeyProvider, KeyProviderError, KeyRequest, ProvidedKey};

/// How the requests prove who sends them.
#[derive(Clone, Debug)]
pub enum SpekeAuth {
    /// SigV4 for `execute-api` in `region`.
    SigV4 { credentials: SharedCredentialsProvider, region: String },
    /// Nothing added (the URL carries the provider's credential, or it trusts the network).
    None,
}

impl SpekeAuth {
    /// `sigv4` or `none`, as `VAULTSTREAM_SPEKE_AUTH` names it.
    pub fn parse(name: &str, config: &aws_config::SdkConfig, url: &str) -> Result<SpekeAuth, String> {
        match name.trim() {
            "sigv4" => {
                let credentials = config.credentials_provider().ok_or("SPEKE with sigv4 needs AWS credentials, and none are configured")?;
                let region = api_gateway_region(url)
                    .or_else(|| config.region().map(|r| r.to_string()))
                    .ok_or("SPEKE with sigv4 needs a region: the URL is not an execute-api one and AWS_REGION is not set")?;
                Ok(SpekeAuth::SigV4 { credentials, region })
            }
            "none" => Ok(SpekeAuth::None),
            other => Err(format!("unknown SPEKE authentication {other:?}: use sigv4 or none")),
        }
    }
}

/// `abc.execute-api.eu-west-1.amazonaws.com` → `eu-west-1`.
fn api_gateway_region(url: &str) -> Option<String> {
    let host = url::Url::parse(url).ok()?.host_str()?.to_string();
    let rest = host.split_once(".execute-api.")?.1;
    Some(rest.split('.').next()?.to_string()).filter(|r| !r.is_empty())
}

pub struct SpekeClient {
    url: String,
    http: crate::lazy_http::LazyClient,
    auth: SpekeAuth,
}

impl SpekeClient {
    /// A client of the key provider at `url` (see [`SpekeClient::check_url`]).
    pub fn new(url: &str, auth: SpekeAuth) -> Result<SpekeClient, String> {
        let (parsed, loopback) = SpekeClient::check_url(url)?;
        let http = crate::lazy_http::LazyClient::new(move || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(30))
                .https_only(!loopback)
                .redirect(reqwest::redirect::Policy::none())
                .build()
        });
        Ok(SpekeClient { url: parsed.to_string(), http, auth })
    }

    /// A key provider's URL: https, or http on a loopback address only; no credentials in it.
    /// Returns it parsed, and whether it is on loopback.
    pub fn check_url(url: &str) -> Result<(url::Url, bool), String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("the SPEKE URL {url:?} is not a URL: {e}"))?;
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => return Err(format!("the SPEKE URL {url:?} names no host")),
        };
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => return Err(format!("the SPEKE URL must use https (it uses {other}); http is accepted only on loopback")),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("the SPEKE URL must not carry a user name or password".into());
        }
        Ok((parsed, loopback))
    }

    async fn signed_headers(&self, body: &str) -> Result<Vec<(String, String)>, KeyProviderError> {
        let mut headers = vec![
            ("content-type".to_string(), "application/xml".to_string()),
            ("x-speke-version".to_string(), cpix::SPEKE_VERSION.to_string()),
            ("x-speke-user-agent".to_string(), concat!("vaultstream/", env!("CARGO_PKG_VERSION")).to_string()),
        ];
        let SpekeAuth::SigV4 { credentials, region } = &self.auth else { return Ok(headers) };
        let credentials = credentials
            .provide_credentials()
            .await
            .map_err(|e| KeyProviderError::Unavailable(format!("no AWS credentials to sign the SPEKE request: {e}")))?;
        let identity = credentials.into();
        let settings = aws_sigv4::http_request::SigningSettings::default();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| KeyProviderError::Refused(format!("signing the SPEKE request: {e}")))?
            .into();
        let signable = aws_sigv4::http_request::SignableRequest::new(
            "POST",
            self.url.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            aws_sigv4::http_request::SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| KeyProviderError::Refused(format!("signing the SPEKE request: {e}")))?;
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .map_err(|e| KeyProviderError::Refused(format!("signing the SPEKE request: {e}")))?
            .into_parts();
        headers.extend(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())));
        Ok(headers)
    }
}

#[async_trait]
impl KeyProvider for SpekeClient {
    async fn cmaf_key(&self, request: &KeyRequest) -> Result<ProvidedKey, KeyProviderError> {
        let body = cpix::request(request);
        let headers = self.signed_headers(&body).await?;
        let client = self.http.get().map_err(KeyProviderError::Unavailable)?;
        let mut call = client.post(&self.url).body(body);
        for (name, value) in &headers {
            call = call.header(name, value);
        }
        let mut response = call.send().await.map_err(|e| KeyProviderError::Unavailable(format!("POST {}: {e}", self.url)))?;
        let status = response.status();
        let version = response.headers().get("x-speke-version").and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut answer = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| KeyProviderError::Unavailable(format!("reading the SPEKE answer: {e}")))?
        {
            answer.extend_from_slice(&chunk);
            if answer.len() > cpix::MAX_ANSWER_BYTES {
                return Err(KeyProviderError::Refused(format!("the SPEKE answer is larger than {} bytes", cpix::MAX_ANSWER_BYTES)));
            }
        }
        let text = String::from_utf8_lossy(&answer);
        let excerpt: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(KeyProviderError::Unavailable(format!("POST {}: HTTP {status}: {excerpt}", self.url)));
        }
        if !status.is_success() {
            return Err(KeyProviderError::Refused(format!("POST {}: HTTP {status}: {excerpt}", self.url)));
        }
        if let Some(version) = version.filter(|v| !v.starts_with("2.")) {
            return Err(KeyProviderError::Refused(format!("the key provider answered SPEKE {version}, not {}", cpix::SPEKE_VERSION)));
        }
        cpix::read_answer(&text, request).map_err(KeyProviderError::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_must_be_https_outside_loopback_and_carry_no_password() {
        assert!(SpekeClient::new("https://keys.example/speke/v2/copyProtection", SpekeAuth::None).is_ok());
        assert!(SpekeClient::new("http://127.0.0.1:9999/speke", SpekeAuth::None).is_ok());
        let err = SpekeClient::new("http://keys.example/speke", SpekeAuth::None).err().unwrap();
        assert!(err.contains("https"), "{err}");
        assert!(SpekeClient::new("https://user:pw@keys.example/speke", SpekeAuth::None).err().unwrap().contains("password"));
        assert!(SpekeClient::new("keys.example/speke", SpekeAuth::None).is_err());
    }

    #[test]
    fn sigv4_takes_its_region_from_an_api_gateway_host() {
        assert_eq!(
            api_gateway_region("https://abc123.execute-api.eu-west-1.amazonaws.com/prod/copyProtection").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(api_gateway_region("https://keys.example/speke"), None);
    }
}
