//! An HTTP client built the first time it is used. Building a `reqwest` client loads and parses
//! the system's root certificates (about half a millisecond), a cold-start cost that an instance
//! which never makes such a request (no JWKS fetch, no URL import, no GCS monitor) should not pay.

use std::sync::OnceLock;

type Build = Box<dyn Fn() -> reqwest::Result<reqwest::Client> + Send + Sync>;

pub struct LazyClient {
    built: OnceLock<Result<reqwest::Client, String>>,
    build: Build,
}

impl LazyClient {
    pub fn new(build: impl Fn() -> reqwest::Result<reqwest::Client> + Send + Sync + 'static) -> Self {
        LazyClient { built: OnceLock::new(), build: Box::new(build) }
    }

    /// The client, built now if it was not yet; an error says why it could not be.
    pub fn get(&self) -> Result<&reqwest::Client, String> {
        let built = self.built.get_or_init(|| (self.build)().map_err(|e| format!("cannot start an HTTPS client: {e}")));
        built.as_ref().map_err(Clone::clone)
    }
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient").field("built", &self.built.get().is_some()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn built_once_on_first_use_and_never_before() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&builds);
        let client = LazyClient::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            reqwest::Client::builder().build()
        });
        assert_eq!(builds.load(Ordering::Relaxed), 0, "nothing is built before the first use");
        client.get().unwrap();
        client.get().unwrap();
        assert_eq!(builds.load(Ordering::Relaxed), 1);
    }
}
