//! Feed subscriptions and seen items in memory, for the rules' tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::ids::{FeedId, TenantId};
use crate::ingest::ports::{Feed, FeedStore, FeedStoreError};

#[derive(Default)]
pub struct MemoryFeeds {
    feeds: Mutex<BTreeMap<(TenantId, FeedId), Feed>>,
    /// (tenant, feed, item digest) → outcome.
    items: Mutex<BTreeMap<(TenantId, FeedId, String), String>>,
    claims: std::sync::atomic::AtomicUsize,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryFeeds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims asked for so far, won or not.
    pub fn claims(&self) -> usize {
        self.claims.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The outcome of every item of `feed` seen so far.
    pub fn items(&self, feed: &Feed) -> Vec<String> {
        locked(&self.items).iter().filter(|((t, f, _), _)| *t == feed.tenant && *f == feed.feed_id).map(|(_, o)| o.clone()).collect()
    }
}

#[async_trait::async_trait]
impl FeedStore for MemoryFeeds {
    async fn create(&self, feed: &Feed) -> Result<(), FeedStoreError> {
        locked(&self.feeds).insert((feed.tenant.clone(), feed.feed_id.clone()), feed.clone());
        Ok(())
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<Feed>, FeedStoreError> {
        Ok(locked(&self.feeds).values().filter(|f| f.tenant == *tenant).cloned().collect())
    }

    async fn remove(&self, tenant: &TenantId, feed: &FeedId) -> Result<bool, FeedStoreError> {
        Ok(locked(&self.feeds).remove(&(tenant.clone(), feed.clone())).is_some())
    }

    async fn all(&self) -> Result<Vec<Feed>, FeedStoreError> {
        Ok(locked(&self.feeds).values().cloned().collect())
    }

    async fn record_poll(&self, feed: &Feed) -> Result<(), FeedStoreError> {
        match locked(&self.feeds).get_mut(&(feed.tenant.clone(), feed.feed_id.clone())) {
            Some(stored) => {
                *stored = feed.clone();
                Ok(())
            }
            None => Err(FeedStoreError::Absent(feed.feed_id.clone())),
        }
    }

    async fn claim_item(&self, feed: &Feed, item: &str, _guid: &str) -> Result<bool, FeedStoreError> {
        self.claims.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut items = locked(&self.items);
        let key = (feed.tenant.clone(), feed.feed_id.clone(), item.to_string());
        if items.contains_key(&key) {
            return Ok(false);
        }
        items.insert(key, "claimed".into());
        Ok(true)
    }

    async fn settle_item(&self, feed: &Feed, item: &str, outcome: &str) -> Result<(), FeedStoreError> {
        locked(&self.items).insert((feed.tenant.clone(), feed.feed_id.clone(), item.to_string()), outcome.to_string());
        Ok(())
    }

    async fn release_item(&self, feed: &Feed, item: &str) -> Result<(), FeedStoreError> {
        locked(&self.items).remove(&(feed.tenant.clone(), feed.feed_id.clone(), item.to_string()));
        Ok(())
    }
}
