//! Content records: status, and the KMS ciphertext of each content key (never the key itself).
//!
//! DynamoDB layout: `pk` = `TENANT#{tenant}`, `sk` = `CONTENT#{content_id}`. Every lookup is
//! keyed by the caller's own tenant, so another tenant's content is simply absent.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::content_keys::WrappedKey;
use crate::ids::{ContentId, TenantId};
use crate::KeyId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContentStatus {
    AwaitingUpload,
    Queued,
    Processing,
    Ready,
    Partial,
    Failed,
    FailedInvalid,
}

impl ContentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentStatus::AwaitingUpload => "AWAITING_UPLOAD",
            ContentStatus::Queued => "QUEUED",
            ContentStatus::Processing => "PROCESSING",
            ContentStatus::Ready => "READY",
            ContentStatus::Partial => "PARTIAL",
            ContentStatus::Failed => "FAILED",
            ContentStatus::FailedInvalid => "FAILED_INVALID",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::from(text)).ok()
    }

    /// Only published content can be played; `PARTIAL` published what succeeded.
    pub fn is_playable(self) -> bool {
        matches!(self, ContentStatus::Ready | ContentStatus::Partial)
    }
}

impl fmt::Display for ContentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRecord {
    pub tenant: TenantId,
    pub content_id: ContentId,
    pub status: ContentStatus,
    pub title: String,
    /// KMS ciphertext blobs, bound to `{tenant, content_id}` by the encryption context.
    pub keys: BTreeMap<KeyId, WrappedKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the content catalog is unavailable: {0}")]
    Unavailable(String),
    #[error("content {0} already exists")]
    AlreadyExists(ContentId),
    #[error("stored content record is unreadable: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait ContentCatalog: Send + Sync {
    async fn get(&self, tenant: &TenantId, content: &ContentId) -> Result<Option<ContentRecord>, CatalogError>;
    /// Creates a record; never overwrites one.
    async fn create(&self, record: &ContentRecord) -> Result<(), CatalogError>;
}

pub struct DynamoCatalog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCatalog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoCatalog { client, table: table.into() }
    }

    fn key(tenant: &TenantId, content: &ContentId) -> [(String, AttributeValue); 2] {
        [("pk".into(), AttributeValue::S(format!("TENANT#{tenant}"))), ("sk".into(), AttributeValue::S(format!("CONTENT#{content}")))]
    }
}

fn unavailable<E: std::error::Error + 'static>(e: E) -> CatalogError {
    CatalogError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

#[async_trait]
impl ContentCatalog for DynamoCatalog {
    async fn get(&self, tenant: &TenantId, content: &ContentId) -> Result<Option<ContentRecord>, CatalogError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(HashMap::from(Self::key(tenant, content)))).send().await.map_err(unavailable)?;
        let Some(item) = out.item else { return Ok(None) };
        let corrupt = |what: &str| CatalogError::Corrupt(format!("content {content}: {what}"));
        let status = item.get("status").and_then(|v| v.as_s().ok()).and_then(|s| ContentStatus::parse(s)).ok_or_else(|| corrupt("bad status"))?;
        let title = item.get("title").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let mut keys = BTreeMap::new();
        if let Some(AttributeValue::M(map)) = item.get("keys") {
            for (id, blob) in map {
                let id = KeyId::try_from(id.clone()).map_err(|_| corrupt("bad key id"))?;
                let blob = blob.as_b().map_err(|_| corrupt("key blob is not binary"))?;
                keys.insert(id, WrappedKey::new(blob.as_ref().to_vec()));
            }
        }
        Ok(Some(ContentRecord { tenant: tenant.clone(), content_id: content.clone(), status, title, keys }))
    }

    async fn create(&self, record: &ContentRecord) -> Result<(), CatalogError> {
        let mut item = HashMap::from(Self::key(&record.tenant, &record.content_id));
        item.insert("status".into(), AttributeValue::S(record.status.as_str().into()));
        item.insert("title".into(), AttributeValue::S(record.title.clone()));
        item.insert("tenant".into(), AttributeValue::S(record.tenant.to_string()));
        item.insert("content_id".into(), AttributeValue::S(record.content_id.to_string()));
        let keys = record.keys.iter().map(|(id, blob)| (id.to_string(), AttributeValue::B(blob.as_bytes().to_vec().into()))).collect();
        item.insert("keys".into(), AttributeValue::M(keys));
        let result = self.client.put_item().table_name(&self.table).set_item(Some(item)).condition_expression("attribute_not_exists(pk)").send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Err(CatalogError::AlreadyExists(record.content_id.clone())),
            Err(e) => Err(unavailable(e)),
        }
    }
}
