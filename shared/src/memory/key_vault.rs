//! A key vault in memory: real random keys, "wrapped" as opaque handles that unwrap only under
//! the tenant and content they were generated for, as KMS's encryption context binds them.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::content_key::ContentKey;
use crate::content_keys::{KeyVault, KeyVaultError, WrappedKey};
use crate::ids::{ContentId, TenantId};

#[derive(Default)]
pub struct MemoryKeyVault {
    keys: Mutex<HashMap<Vec<u8>, (TenantId, ContentId, ContentKey)>>,
    failure: Mutex<Option<KeyVaultError>>,
}

impl MemoryKeyVault {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call fails with `failure` until it is cleared with `None`.
    pub fn set_failure(&self, failure: Option<KeyVaultError>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }

    fn check(&self) -> Result<(), KeyVaultError> {
        match &*self.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl KeyVault for MemoryKeyVault {
    async fn generate(&self, tenant: &TenantId, content: &ContentId) -> Result<(ContentKey, WrappedKey), KeyVaultError> {
        self.check()?;
        let key = ContentKey::generate().map_err(|e| KeyVaultError::Unavailable(e.to_string()))?;
        let mut handle = vec![0u8; 32];
        getrandom::getrandom(&mut handle).map_err(|e| KeyVaultError::Unavailable(e.to_string()))?;
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).insert(handle.clone(), (tenant.clone(), content.clone(), key.clone()));
        Ok((key, WrappedKey::new(handle)))
    }

    async fn decrypt(&self, tenant: &TenantId, content: &ContentId, wrapped: &WrappedKey) -> Result<ContentKey, KeyVaultError> {
        self.check()?;
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        match keys.get(wrapped.as_bytes()) {
            Some((t, c, key)) if t == tenant && c == content => Ok(key.clone()),
            _ => Err(KeyVaultError::Mismatch),
        }
    }
}
