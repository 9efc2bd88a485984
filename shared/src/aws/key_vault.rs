//! Content keys in KMS: `GenerateDataKey` (AES_128) when content is transcoded, `Decrypt` when a
//! viewer's key request passed every check (or a rerun of the transcode needs the same key). Both
//! bind the key to `{tenant, content_id}` through the encryption context.

use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use crate::content_key::{ContentKey, KEY_LEN};
use crate::content_keys::{encryption_context, KeyVault, KeyVaultError, WrappedKey};
use crate::ids::{ContentId, TenantId};

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
    let key: [u8; KEY_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyVaultError::Refused(format!("KMS returned {} key bytes, not {KEY_LEN}", bytes.len())))?;
    zeroize::Zeroize::zeroize(&mut *bytes);
    Ok(ContentKey::from_bytes(key))
}

#[async_trait::async_trait]
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
        Ok((plaintext_key(out.plaintext)?, WrappedKey::new(blob.into_inner())))
    }

    async fn decrypt(&self, tenant: &TenantId, content: &ContentId, wrapped: &WrappedKey) -> Result<ContentKey, KeyVaultError> {
        let result = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(wrapped.as_bytes().to_vec()))
            .set_encryption_context(Some(encryption_context(tenant, content)))
            .send()
            .await;
        match result {
            Ok(out) => plaintext_key(out.plaintext),
            Err(err) => Err(match err.as_service_error() {
                Some(DecryptError::InvalidCiphertextException(_)) | Some(DecryptError::IncorrectKeyException(_)) => KeyVaultError::Mismatch,
                Some(DecryptError::DisabledException(_))
                | Some(DecryptError::KmsInvalidStateException(_))
                | Some(DecryptError::NotFoundException(_)) => {
                    KeyVaultError::Refused(aws_sdk_kms::error::DisplayErrorContext(&err).to_string())
                }
                _ => KeyVaultError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(&err).to_string()),
            }),
        }
    }
}
