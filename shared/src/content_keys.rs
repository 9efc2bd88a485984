//! Content keys in KMS: `GenerateDataKey` (AES_128) when content is transcoded, `Decrypt` when a
//! viewer's key request passed every check. Both bind the key to `{tenant, content_id}` through
//! the encryption context, so a ciphertext blob copied to another content item or tenant will not
//! decrypt. Only the blob is ever stored.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::content_key::ContentKey;
use crate::ids::{ContentId, TenantId};

/// A KMS ciphertext blob: safe to store and log the length of, useless without KMS.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(Vec<u8>);

impl WrappedKey {
    pub fn new(blob: Vec<u8>) -> Self {
        WrappedKey(blob)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyVaultError {
    /// The blob does not belong to this tenant and content, or was altered.
    #[error("the content key does not decrypt under this tenant and content")]
    Mismatch,
    #[error("KMS is unavailable: {0}")]
    Unavailable(String),
    #[error("KMS refused: {0}")]
    Refused(String),
}

#[async_trait]
pub trait KeyVault: Send + Sync {
    async fn generate(&self, tenant: &TenantId, content: &ContentId) -> Result<(ContentKey, WrappedKey), KeyVaultError>;
    async fn decrypt(&self, tenant: &TenantId, content: &ContentId, wrapped: &WrappedKey) -> Result<ContentKey, KeyVaultError>;
}

pub fn encryption_context(tenant: &TenantId, content: &ContentId) -> HashMap<String, String> {
    HashMap::from([("tenant".to_string(), tenant.to_string()), ("content_id".to_string(), content.to_string())])
}
