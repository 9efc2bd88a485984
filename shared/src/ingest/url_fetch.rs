//! The [`Fetcher`] port over the guarded HTTP client of [`crate::ingest::url_guard`]: the one way
//! the platform fetches a creator's URL. Errors never carry the URL itself (its query may hold a
//! token); the guard's own refusals come through in its words.

use std::time::Duration;

use url::Url;

use crate::ingest::ports::{FetchError, FetchedBody, FetchedHead, Fetcher};
use crate::ingest::url_guard::{self, FetchPolicy};
use crate::lazy_http::LazyClient;

pub const USER_AGENT: &str = concat!("VaultStream-Import/", env!("CARGO_PKG_VERSION"));

pub struct GuardedFetcher {
    /// Built on the first fetch: an import of a bucket object or a dropped file loads no roots.
    client: LazyClient,
    policy: FetchPolicy,
}

impl GuardedFetcher {
    /// `timeout` bounds each whole exchange; the import's own time limit is checked besides.
    pub fn new(policy: FetchPolicy, connect_timeout: Duration, timeout: Duration) -> Self {
        let client = LazyClient::new(move || url_guard::client(policy, connect_timeout, timeout));
        GuardedFetcher { client, policy }
    }
}

/// The error in words, its causes included, without the URL reqwest would otherwise print.
fn fetch_error(error: reqwest::Error) -> FetchError {
    if let Some(refused) = url_guard::refusal(&error) {
        return FetchError::Refused(refused);
    }
    let error = error.without_url();
    let mut words = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !words.iter().any(|w| w.contains(&said)) {
            words.push(said);
        }
        source = cause.source();
    }
    FetchError::Failed(words.join(": "))
}

struct ResponseBody {
    head: FetchedHead,
    response: reqwest::Response,
}

#[async_trait::async_trait]
impl FetchedBody for ResponseBody {
    fn head(&self) -> &FetchedHead {
        &self.head
    }

    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        self.response.chunk().await.map_err(fetch_error)
    }
}

#[async_trait::async_trait]
impl Fetcher for GuardedFetcher {
    async fn get(&self, url: &Url, headers: &[(&'static str, String)]) -> Result<Box<dyn FetchedBody>, FetchError> {
        // Redirects and resolved names are checked by the client; an address written in the URL
        // is never resolved, so it is checked here.
        url_guard::check_url(url, self.policy).map_err(|refused| FetchError::Refused(refused.0))?;
        let mut request = self.client.get().map_err(FetchError::Failed)?.get(url.clone()).header(reqwest::header::USER_AGENT, USER_AGENT);
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("accept")) {
            request = request.header(reqwest::header::ACCEPT, "video/*, audio/*, application/octet-stream;q=0.9, */*;q=0.1");
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(fetch_error)?;
        let header = |name: reqwest::header::HeaderName| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let head = FetchedHead {
            status: response.status().as_u16(),
            content_type: header(reqwest::header::CONTENT_TYPE),
            content_length: response.content_length(),
            final_url: response.url().clone(),
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED),
        };
        Ok(Box::new(ResponseBody { head, response }))
    }
}
