//! Published caption files in memory, by object key.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::captions::CaptionStore;
use crate::ids::{ContentId, TenantId};
use crate::origin::OriginError;

#[derive(Default)]
pub struct MemoryCaptionFiles {
    objects: Mutex<HashMap<String, String>>,
}

impl MemoryCaptionFiles {
    pub fn new() -> Self {
        Self::default()
    }

    /// The file at `{tenant}/{content}/{file}`, if one is stored.
    pub fn get(&self, key: &str) -> Option<String> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.objects.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        keys.sort();
        keys
    }
}

#[async_trait::async_trait]
impl CaptionStore for MemoryCaptionFiles {
    async fn put(&self, tenant: &TenantId, content: &ContentId, file: &str, webvtt: &str) -> Result<(), OriginError> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner()).insert(format!("{tenant}/{content}/{file}"), webvtt.to_string());
        Ok(())
    }

    async fn delete(&self, tenant: &TenantId, content: &ContentId, file: &str) -> Result<(), OriginError> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("{tenant}/{content}/{file}"));
        Ok(())
    }
}
