//! Content records in memory, with the same conditional semantics as the DynamoDB adapter.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::catalog::{CatalogError, ContentCatalog, ContentRecord, Created, Expect, IdempotencyClaim, Page, Patch};
use crate::content_keys::WrappedKey;
use crate::ids::{ContentId, TenantId};
use crate::KeyId;

#[derive(Default)]
pub struct MemoryCatalog {
    records: Mutex<BTreeMap<(TenantId, ContentId), ContentRecord>>,
    /// (tenant, key hash) → (request hash, content id).
    idempotency: Mutex<HashMap<(TenantId, String), (String, ContentId)>>,
    down: AtomicBool,
}

impl MemoryCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// A catalog holding these records.
    pub fn with(records: impl IntoIterator<Item = ContentRecord>) -> Self {
        let catalog = Self::new();
        for r in records {
            catalog.insert(r);
        }
        catalog
    }

    /// Stores a record as it is, replacing any (test setup).
    pub fn insert(&self, record: ContentRecord) {
        self.lock().insert((record.tenant.clone(), record.content_id.clone()), record);
    }

    /// Makes every call fail as an unreachable table would (`false` restores it).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(TenantId, ContentId), ContentRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self) -> Result<(), CatalogError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(CatalogError::Unavailable("the in-memory catalog is switched off".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ContentCatalog for MemoryCatalog {
    async fn get(&self, tenant: &TenantId, content: &ContentId) -> Result<Option<ContentRecord>, CatalogError> {
        self.check()?;
        Ok(self.lock().get(&(tenant.clone(), content.clone())).cloned())
    }

    async fn create(&self, record: &ContentRecord, idempotency: Option<&IdempotencyClaim>) -> Result<Created, CatalogError> {
        self.check()?;
        let mut records = self.lock();
        let mut keys = self.idempotency.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(claim) = idempotency {
            if let Some((request_hash, content)) = keys.get(&(record.tenant.clone(), claim.key_hash.clone())) {
                if *request_hash != claim.request_hash {
                    return Err(CatalogError::IdempotencyConflict);
                }
                let existing = records.get(&(record.tenant.clone(), content.clone())).cloned();
                return existing
                    .map(|r| Created::Existing(Box::new(r)))
                    .ok_or_else(|| CatalogError::Corrupt("idempotent content is gone".into()));
            }
        }
        let slot = (record.tenant.clone(), record.content_id.clone());
        if records.contains_key(&slot) {
            return Err(CatalogError::AlreadyExists(record.content_id.clone()));
        }
        records.insert(slot, record.clone());
        if let Some(claim) = idempotency {
            keys.insert((record.tenant.clone(), claim.key_hash.clone()), (claim.request_hash.clone(), record.content_id.clone()));
        }
        Ok(Created::New)
    }

    async fn list(&self, tenant: &TenantId, limit: u32, after: Option<&ContentId>) -> Result<Page, CatalogError> {
        self.check()?;
        let records = self.lock();
        let limit = limit.clamp(1, 100) as usize;
        let mut newest_first = records.values().filter(|r| &r.tenant == tenant).rev().filter(|r| after.is_none_or(|a| r.content_id < *a));
        let items: Vec<ContentRecord> = newest_first.by_ref().take(limit).cloned().collect();
        let more = newest_first.next().is_some();
        let next_after = if more { items.last().map(|r| r.content_id.clone()) } else { None };
        Ok(Page { items, next_after })
    }

    async fn update(&self, tenant: &TenantId, content: &ContentId, expect: &Expect, patch: &Patch) -> Result<ContentRecord, CatalogError> {
        self.check()?;
        let mut records = self.lock();
        let record = records.get_mut(&(tenant.clone(), content.clone())).filter(|r| expect.holds_for(r));
        let Some(record) = record else {
            return Err(CatalogError::Precondition(content.clone()));
        };
        patch.apply_to(record);
        if let Some(Some(p)) = patch.progress {
            record.progress = Some((p.clamp(0.0, 100.0) * 10.0).round() / 10.0);
        }
        Ok(record.clone())
    }

    async fn put_key_if_absent(
        &self,
        tenant: &TenantId,
        content: &ContentId,
        key_id: &KeyId,
        wrapped: &WrappedKey,
    ) -> Result<WrappedKey, CatalogError> {
        self.check()?;
        let mut records = self.lock();
        let record = records.get_mut(&(tenant.clone(), content.clone())).ok_or_else(|| CatalogError::Precondition(content.clone()))?;
        Ok(record.keys.entry(key_id.clone()).or_insert_with(|| wrapped.clone()).clone())
    }
}
