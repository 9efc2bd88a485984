//! Published playlists in memory, by object key.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ids::{ContentId, TenantId, VersionId};
use crate::origin::{OriginError, PlaylistPath, PlaylistStore, Published};

#[derive(Default)]
pub struct MemoryPlaylists {
    objects: Mutex<HashMap<String, String>>,
}

impl MemoryPlaylists {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a playlist where the transcoder would have published it.
    pub fn put(&self, tenant: &TenantId, content: &ContentId, version: &VersionId, path: &PlaylistPath, text: impl Into<String>) {
        let published = Published { tenant, content, version };
        self.objects.lock().unwrap_or_else(|p| p.into_inner()).insert(path.object_key(&published), text.into());
    }
}

#[async_trait::async_trait]
impl PlaylistStore for MemoryPlaylists {
    async fn get(&self, published: &Published<'_>, path: &PlaylistPath) -> Result<Option<String>, OriginError> {
        Ok(self.objects.lock().unwrap_or_else(|p| p.into_inner()).get(&path.object_key(published)).cloned())
    }
}
