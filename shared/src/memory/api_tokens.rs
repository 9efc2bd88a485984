//! API token records in memory, by hash.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::identity::{ApiTokenRecord, ApiTokenStore};

#[derive(Default)]
pub struct MemoryApiTokens {
    tokens: Mutex<HashMap<String, ApiTokenRecord>>,
}

impl MemoryApiTokens {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl ApiTokenStore for MemoryApiTokens {
    async fn find(&self, hash: &str) -> Result<Option<ApiTokenRecord>, String> {
        Ok(self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(hash).cloned())
    }

    async fn insert(&self, hash: &str, record: &ApiTokenRecord) -> Result<(), String> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.contains_key(hash) {
            return Err("an API token with this hash already exists".into());
        }
        tokens.insert(hash.to_string(), record.clone());
        Ok(())
    }

    async fn set_revoked(&self, hash: &str) -> Result<bool, String> {
        Ok(self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get_mut(hash).map(|r| r.revoked = true).is_some())
    }
}
