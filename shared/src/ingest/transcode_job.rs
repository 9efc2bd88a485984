//! Flow 3's rules for the transcode job itself (`vaultstream-transcode run`): the content key it
//! encrypts with, and the record changes it makes as it starts, progresses, publishes or rejects
//! the source. Each change expects the state the job left, so a job that lost its content (to a
//! rerun, or a record that moved on) cannot overwrite it.

use crate::catalog::{ContentCatalog, ContentStatus, Expect, Failure, JobFigures, Patch, Publication};
use crate::content_key::{ContentKey, KeyId};
use crate::content_keys::{KeyVault, KeyVaultError};
use crate::ids::{ContentId, TenantId};
use crate::metadata::container::ContainerTags;
use crate::metadata::{self, Described, MetadataProvider};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Vault(#[from] KeyVaultError),
    #[error("{0}")]
    Catalog(#[from] crate::catalog::CatalogError),
}

/// The content's key `k0`: the stored one (unwrapped by KMS), or a fresh one from KMS whose blob
/// is stored with a condition. When two runs race, both end up with the key stored first, so a
/// retry reuses the key and a content item never has two.
pub async fn content_key(
    catalog: &dyn ContentCatalog,
    vault: &dyn KeyVault,
    tenant: &TenantId,
    content: &ContentId,
) -> Result<ContentKey, KeyError> {
    content_key_with_id(catalog, vault, tenant, content, &KeyId::for_period(0)).await
}

/// [`content_key`] for any of the content's keys (`c0`, the CMAF packaging's), on the same terms.
pub async fn content_key_with_id(
    catalog: &dyn ContentCatalog,
    vault: &dyn KeyVault,
    tenant: &TenantId,
    content: &ContentId,
    id: &KeyId,
) -> Result<ContentKey, KeyError> {
    let id = id.clone();
    let record = catalog.get(tenant, content).await?.ok_or_else(|| crate::catalog::CatalogError::Precondition(content.clone()))?;
    if let Some(stored) = record.keys.get(&id) {
        return Ok(vault.decrypt(tenant, content, stored).await?);
    }
    let (fresh, wrapped) = vault.generate(tenant, content).await?;
    let stored = catalog.put_key_if_absent(tenant, content, &id, &wrapped).await?;
    if stored == wrapped {
        Ok(fresh)
    } else {
        Ok(vault.decrypt(tenant, content, &stored).await?)
    }
}

/// The job starts (or a rerun restarts) work on queued content.
pub fn start() -> (Expect, Patch) {
    (
        Expect::status(&[ContentStatus::Queued, ContentStatus::Processing]),
        Patch { status: Some(ContentStatus::Processing), progress: Some(Some(0.0)), failure: Some(None), ..Default::default() },
    )
}

/// How far the running job got, in percent of the source.
pub fn heartbeat(percent: f64) -> (Expect, Patch) {
    (Expect::status(&[ContentStatus::Processing]), Patch { progress: Some(Some(percent)), ..Default::default() })
}

/// Everything is uploaded: name the new version. `partial` carries why some renditions are missing.
pub fn publish(publication: Publication, figures: JobFigures, partial: Option<String>) -> (Expect, Patch) {
    let (status, failure) = match partial {
        None => (ContentStatus::Ready, None),
        Some(reason) => (ContentStatus::Partial, Some(Failure::new("partial", reason))),
    };
    (
        Expect::status(&[ContentStatus::Processing]),
        Patch {
            status: Some(status),
            publication: Some(publication),
            figures: Some(figures),
            progress: Some(None),
            failure: Some(failure),
            ..Default::default()
        },
    )
}

/// The record's description with the source file's own tags added below what it already has
/// (the request's and a sidecar's word outrank the file's). Tags that fail the checks are logged
/// and dropped: a hostile file can fail nothing by its tags.
pub fn described_with_tags(described: Option<&Described>, tags: &BTreeMap<String, String>) -> Described {
    let provided = ContainerTags { tags }.provide();
    for ignored in &provided.ignored {
        tracing::info!(%ignored, "a container tag was not kept");
    }
    let earlier = described.map(Described::layers).unwrap_or_default();
    metadata::merge(earlier.into_iter().chain([(metadata::Source::Container, provided.metadata)]))
}

/// The source is not something we can transcode; the reason is for the creator.
pub fn reject(reason: impl Into<String>) -> (Expect, Patch) {
    (
        Expect::status(&[ContentStatus::Queued, ContentStatus::Processing]),
        Patch {
            status: Some(ContentStatus::FailedInvalid),
            failure: Some(Some(Failure::new("invalid_source", reason))),
            progress: Some(None),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalog::{ContentRecord, ContentStatus};
    use crate::memory::{MemoryCatalog, MemoryKeyVault};

    #[tokio::test]
    async fn a_content_item_gets_one_key_however_many_runs_ask() {
        let (tenant, content) = (TenantId::parse("acme").unwrap(), ContentId::parse("c1").unwrap());
        let catalog = Arc::new(MemoryCatalog::with([ContentRecord::new(tenant.clone(), content.clone(), ContentStatus::Queued, "t")]));
        let vault = MemoryKeyVault::new();
        let first = content_key(catalog.as_ref(), &vault, &tenant, &content).await.unwrap();
        let again = content_key(catalog.as_ref(), &vault, &tenant, &content).await.unwrap();
        assert_eq!(first, again);
        // Two runs racing on content that has no key yet.
        let fresh = ContentId::parse("c2").unwrap();
        catalog.insert(ContentRecord::new(tenant.clone(), fresh.clone(), ContentStatus::Queued, "t"));
        let (a, b) =
            tokio::join!(content_key(catalog.as_ref(), &vault, &tenant, &fresh), content_key(catalog.as_ref(), &vault, &tenant, &fresh));
        assert_eq!(a.unwrap(), b.unwrap());
        assert_eq!(catalog.get(&tenant, &content).await.unwrap().unwrap().keys.len(), 1);
    }
}
