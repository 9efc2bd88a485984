//! Google Cloud Storage, read only, over its JSON API: list a prefix, read one generation of an
//! object. Authenticated as a service account (a JWT signed with its key, exchanged at Google's
//! token endpoint for an access token with the read-only storage scope, cached until near its
//! expiry).
//!
//! Why not `object_store`: its GCS client lists and reads through the XML API (`list-type=2`
//! listings, `ETag`/`Last-Modified` demanded on every read), which the GCS emulator the tests run
//! (PyPI's `gcp-storage-emulator`) does not serve; the JSON API is what both Google and the
//! emulator speak, and reading is all a monitor does.
//!
//! The endpoints are fixed to Google's; the local stack points `endpoint` at the emulator, where
//! no token is asked for. The key's own `token_uri` is never used: a customer's key must not pick
//! where VaultStream sends a signed assertion.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::ingest::monitors::ServiceAccountKey;
use crate::ingest::ports::{FetchError, FetchedBody, FetchedHead, ListedObject, ObjectPage};
use crate::lazy_http::LazyClient;

pub const GOOGLE_STORAGE: &str = "https://storage.googleapis.com";
pub const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";
const READ_ONLY_SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_only";
/// A token is used until this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct GcsClient {
    /// Built on the first request: a monitor poll that reads no GCS bucket loads no roots for it.
    http: LazyClient,
    endpoint: Url,
    token_url: Url,
    /// An emulator: no token.
    anonymous: bool,
    /// Access tokens by the key that obtained them (its digest): never by the account's name
    /// alone, which another tenant could put beside a key that does not work.
    tokens: Mutex<HashMap<String, (String, SystemTime)>>,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    name: String,
    /// The JSON API sends 64-bit numbers as strings.
    #[serde(default)]
    generation: serde_json::Value,
    #[serde(default)]
    size: serde_json::Value,
}

fn number_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn failed(e: reqwest::Error) -> FetchError {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    FetchError::Failed(text)
}

/// What a status other than success means for a request about `what`.
fn status_error(status: u16, what: &str, account: &str) -> FetchError {
    match status {
        401 | 403 => FetchError::Refused(format!(
            "Cloud Storage denied {account} access to {what} ({status}); grant it roles/storage.objectViewer on the bucket"
        )),
        404 => FetchError::Refused(format!("{what} does not exist (404)")),
        408 | 429 | 500..=599 => FetchError::Failed(format!("Cloud Storage answered {status} for {what}")),
        _ => FetchError::Refused(format!("Cloud Storage answered {status} for {what}")),
    }
}

impl GcsClient {
    /// Google's endpoints, or (`emulator`) an emulator's base URL without authentication.
    pub fn new(emulator: Option<Url>, connect_timeout: Duration) -> Result<Self, String> {
        let http = LazyClient::new(move || {
            reqwest::Client::builder().connect_timeout(connect_timeout).redirect(reqwest::redirect::Policy::none()).build()
        });
        let google = |u: &str| Url::parse(u).map_err(|e| e.to_string());
        Ok(GcsClient {
            http,
            anonymous: emulator.is_some(),
            endpoint: emulator.map_or_else(|| google(GOOGLE_STORAGE), Ok)?,
            token_url: google(GOOGLE_TOKEN)?,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn http(&self) -> Result<&reqwest::Client, FetchError> {
        self.http.get().map_err(FetchError::Failed)
    }

    /// Sends the service account's signed assertions to `token_url` instead of Google's (tests).
    pub fn with_token_url(mut self, token_url: Url) -> Self {
        self.token_url = token_url;
        self.anonymous = false;
        self
    }

    async fn token(&self, key: &ServiceAccountKey) -> Result<Option<String>, FetchError> {
        if self.anonymous {
            return Ok(None);
        }
        let now = SystemTime::now();
        let cache_key = {
            let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            digest.update(key.client_email.as_bytes());
            digest.update(b"\n");
            digest.update(key.private_key.as_bytes());
            hex::encode(digest.finish())
        };
        if let Some((token, until)) = self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(&cache_key) {
            if *until > now + TOKEN_MARGIN {
                return Ok(Some(token.clone()));
            }
        }
        let iat = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let claims = Assertion { iss: &key.client_email, scope: READ_ONLY_SCOPE, aud: self.token_url.as_str(), iat, exp: iat + 3600 };
        let signing_key = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
            .map_err(|e| FetchError::Refused(format!("the service account's private key cannot sign ({e}); give a fresh JSON key")))?;
        let assertion = jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &signing_key)
            .map_err(|e| FetchError::Refused(format!("the service account's private key cannot sign ({e}); give a fresh JSON key")))?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let response = self
            .http()?
            .post(self.token_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(failed)?;
        if status != 200 {
            return Err(match status {
                400 | 401 | 403 => FetchError::Refused(format!(
                    "Google refused the service account {} ({status}: {}); check that the key is current and the account enabled",
                    key.client_email,
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                )),
                _ => FetchError::Failed(format!("Google's token endpoint answered {status}")),
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| FetchError::Failed(format!("Google's token endpoint answered in an unknown shape: {e}")))?;
        let until = now + Duration::from_secs(answer.expires_in.unwrap_or(3600));
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(cache_key, (answer.access_token.clone(), until));
        Ok(Some(answer.access_token))
    }

    fn object_url(&self, bucket: &str, name: Option<&str>) -> Result<Url, FetchError> {
        let mut url = self.endpoint.clone();
        {
            let mut path = url.path_segments_mut().map_err(|_| FetchError::Refused("the storage endpoint has no path".into()))?;
            path.pop_if_empty().extend(["storage", "v1", "b", bucket, "o"]);
            // One segment: a `/` in the object's name is escaped, never a path step.
            if let Some(name) = name {
                path.push(name);
            }
        }
        Ok(url)
    }

    /// A page of `prefix`: the one `page` names, else the first after the name `start_after`.
    pub async fn list(
        &self,
        key: &ServiceAccountKey,
        bucket: &str,
        prefix: &str,
        page: Option<String>,
        start_after: Option<&str>,
    ) -> Result<ObjectPage, FetchError> {
        let mut url = self.object_url(bucket, None)?;
        url.query_pairs_mut().append_pair("prefix", prefix).append_pair("maxResults", "1000");
        match (&page, start_after) {
            (Some(token), _) => {
                url.query_pairs_mut().append_pair("pageToken", token);
            }
            // startOffset includes the name itself; it is dropped below.
            (None, Some(name)) => {
                url.query_pairs_mut().append_pair("startOffset", name);
            }
            (None, None) => {}
        }
        let mut request = self.http()?.get(url);
        if let Some(token) = self.token(key).await? {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(status_error(status, &format!("bucket gs://{bucket}"), &key.client_email));
        }
        let bytes = response.bytes().await.map_err(failed)?;
        let listing: Listing =
            serde_json::from_slice(&bytes).map_err(|e| FetchError::Failed(format!("Cloud Storage listed in an unknown shape: {e}")))?;
        let objects = listing
            .items
            .into_iter()
            .filter(|item| page.is_some() || start_after.is_none_or(|name| item.name.as_str() > name))
            .filter_map(|item| {
                let version = number_text(&item.generation)?;
                let size = number_text(&item.size)?.parse().ok()?;
                Some(ListedObject { key: item.name, version, size })
            })
            .collect();
        Ok(ObjectPage { objects, next: listing.next_page_token.filter(|t| !t.is_empty()) })
    }

    /// Generation `generation` of the object; Google answers 404 once that generation is gone.
    pub async fn open(
        &self,
        key: &ServiceAccountKey,
        bucket: &str,
        name: &str,
        generation: &str,
    ) -> Result<Box<dyn FetchedBody>, FetchError> {
        let mut url = self.object_url(bucket, Some(name))?;
        url.query_pairs_mut().append_pair("alt", "media").append_pair("generation", generation);
        let mut request = self.http()?.get(url);
        if let Some(token) = self.token(key).await? {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let what = format!("gs://{bucket}/{name} (generation {generation})");
        if status != 200 {
            return Err(status_error(status, &what, &key.client_email));
        }
        let mut final_url = Url::parse(&format!("gs://{bucket}/")).map_err(|e| FetchError::Refused(e.to_string()))?;
        if let Ok(mut path) = final_url.path_segments_mut() {
            path.pop_if_empty().extend(name.split('/'));
        }
        let header = |name: reqwest::header::HeaderName| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let head = FetchedHead {
            status,
            content_type: header(reqwest::header::CONTENT_TYPE),
            content_length: response.content_length(),
            final_url,
            etag: Some(generation.to_string()),
            last_modified: None,
        };
        Ok(Box::new(GcsBody { head, response }))
    }
}

struct GcsBody {
    head: FetchedHead,
    response: reqwest::Response,
}

#[async_trait::async_trait]
impl FetchedBody for GcsBody {
    fn head(&self) -> &FetchedHead {
        &self.head
    }

    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        self.response.chunk().await.map_err(failed)
    }
}
