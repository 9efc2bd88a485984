//! Content keys in KMS: `GenerateDataKey` (AES_128) when content is transcoded, `Decrypt` when a
//! viewer's key request passed every check. Both bind the key to `{tenant, content_id}` through
//! the encryption context, so a ciphertext blob copied to another content item or tenant will not
//! decrypt. Only the blob is ever stored.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use crate::content_key::{ContentKey, KEY_LEN};
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

#[derive(Debug, thiserror::Error)]
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

pub struct KmsKeyVault {
    client: aws_sdk_kms::Client,
    /// The content-key CMK (id, ARN or alias); needed to generate, not to decrypt.
    key_id: Option<String>,
}

impl KmsKeyVault {
    pub fn new(client: aws_sdk_kms::Client, key_id: Option<String>) -> Self {
        KmsKeyVault { client, key_id }
    }
}

fn plaintext_key(blob: Option<Blob>) -> Result<ContentKey, KeyVaultError> {
    let blob = blob.ok_or_else(|| KeyVaultError::Refused("KMS returned no plaintext".into()))?;
    let mut bytes = zeroize::Zeroizing::new(blob.into_inner());
    let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| KeyVaultError::Refused(format!("KMS returned {} key bytes, not {KEY_LEN}", bytes.len())))?;
    zeroize::Zeroize::zeroize(&mut *bytes);
    Ok(ContentKey::from_bytes(key))
}

#[async_trait]
impl KeyVault for KmsKeyVault {
    async fn generate(&self, tenant: &TenantId, content: &ContentId) -> Result<(ContentKey, WrappedKey), KeyVaultError> {
        let key_id = self.key_id.as_deref().ok_or_else(|| KeyVaultError::Refused("no content-key CMK is configured".into()))?;
        let out = self
            .client
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes128)
            .set_encryption_context(Some(encryption_context(tenant, content)))
            .send()
            .await
            .map_err(|e| KeyVaultError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(&e).to_string()))?;
        let blob = out.ciphertext_blob.clone().ok_or_else(|| KeyVaultError::Refused("KMS returned no ciphertext".into()))?;
        Ok((plaintext_key(out.plaintext)?, WrappedKey(blob.into_inner())))
    }

    async fn decrypt(&self, tenant: &TenantId, content: &ContentId, wrapped: &WrappedKey) -> Result<ContentKey, KeyVaultError> {
        let result = self.client.decrypt().ciphertext_blob(Blob::new(wrapped.0.clone())).set_encryption_context(Some(encryption_context(tenant, content))).send().await;
        match result {
            Ok(out) => plaintext_key(out.plaintext),
            Err(err) => Err(match err.as_service_error() {
                Some(DecryptError::InvalidCiphertextException(_)) | Some(DecryptError::IncorrectKeyException(_)) => KeyVaultError::Mismatch,
                Some(DecryptError::DisabledException(_)) | Some(DecryptError::KmsInvalidStateException(_)) | Some(DecryptError::NotFoundException(_)) => {
                    KeyVaultError::Refused(aws_sdk_kms::error::DisplayErrorContext(&err).to_string())
                }
                _ => KeyVaultError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(&err).to_string()),
            }),
        }
    }
}
