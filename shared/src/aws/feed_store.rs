//! Feed subscriptions and the items seen in them, in DynamoDB (the feeds table, which also keeps
//! the bucket monitors: [`crate::aws::monitor_store`]).
//!
//! Layout: `pk` = `TENANT#{tenant}`; `sk` = `FEED#{feed_id}` for a subscription, which alone
//! carries `subscription` (the feed id), the key of the sparse index `subscriptions` the poller
//! scans; `sk` = `ITEM#{feed_id}#{sha256 of the GUID}` for an item, written once with a condition
//! so that an item is claimed once.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Serialize};

use crate::aws::subscriptions;
use crate::ids::{FeedId, TenantId};
use crate::ingest::ports::{Feed, FeedStore, FeedStoreError};

pub use crate::aws::subscriptions::SUBSCRIPTIONS_INDEX;

pub struct DynamoFeeds {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoFeeds {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoFeeds { client, table: table.into() }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    pk: String,
    sk: String,
    subscription: String,
    tenant: TenantId,
    feed_id: FeedId,
    url: String,
    profile: String,
    created_at: String,
    created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_polled_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_refusal: Option<String>,
    #[serde(default)]
    seen: Vec<String>,
    #[serde(default)]
    imported: u32,
    #[serde(default)]
    refused: u32,
}

fn pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}")
}

fn feed_sk(feed: &FeedId) -> String {
    format!("FEED#{feed}")
}

fn item_sk(feed: &Feed, item: &str) -> String {
    format!("ITEM#{}#{item}", feed.feed_id)
}

fn unavailable<E: std::error::Error + 'static>(e: E) -> FeedStoreError {
    FeedStoreError::Unavailable(DisplayErrorContext(e).to_string())
}

fn decode(item: HashMap<String, AttributeValue>) -> Result<Feed, FeedStoreError> {
    let s: Stored = serde_dynamo::from_item(item).map_err(|e| FeedStoreError::Unavailable(format!("an unreadable feed: {e}")))?;
    Ok(Feed {
        tenant: s.tenant,
        feed_id: s.feed_id,
        url: s.url,
        profile: s.profile,
        created_at: s.created_at,
        created_by: s.created_by,
        etag: s.etag,
        last_modified: s.last_modified,
        last_polled_at: s.last_polled_at,
        last_error: s.last_error,
        last_refusal: s.last_refusal,
        seen: s.seen,
        imported: s.imported,
        refused: s.refused,
    })
}

fn key(tenant: &TenantId, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), AttributeValue::S(pk(tenant))), ("sk".to_string(), AttributeValue::S(sk))])
}

#[async_trait::async_trait]
impl FeedStore for DynamoFeeds {
    async fn create(&self, feed: &Feed) -> Result<(), FeedStoreError> {
        let stored = Stored {
            pk: pk(&feed.tenant),
            sk: feed_sk(&feed.feed_id),
            subscription: feed.feed_id.to_string(),
            tenant: feed.tenant.clone(),
            feed_id: feed.feed_id.clone(),
            url: feed.url.clone(),
            profile: feed.profile.clone(),
            created_at: feed.created_at.clone(),
            created_by: feed.created_by.clone(),
            etag: None,
            last_modified: None,
            last_polled_at: None,
            last_error: None,
            last_refusal: None,
            seen: Vec::new(),
            imported: 0,
            refused: 0,
        };
        let item = serde_dynamo::to_item(&stored).map_err(|e| FeedStoreError::Unavailable(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<Feed>, FeedStoreError> {
        let items = subscriptions::items_of(&self.client, &self.table, pk(tenant), "FEED#").await.map_err(FeedStoreError::Unavailable)?;
        items.into_iter().map(decode).collect()
    }

    async fn remove(&self, tenant: &TenantId, feed: &FeedId) -> Result<bool, FeedStoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, feed_sk(feed))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn all(&self) -> Result<Vec<Feed>, FeedStoreError> {
        let items = subscriptions::all_of(&self.client, &self.table, "FEED#").await.map_err(FeedStoreError::Unavailable)?;
        items.into_iter().map(decode).collect()
    }

    async fn record_poll(&self, feed: &Feed) -> Result<(), FeedStoreError> {
        let set = vec![
            ("imported", AttributeValue::N(feed.imported.to_string())),
            ("refused", AttributeValue::N(feed.refused.to_string())),
            ("seen", AttributeValue::L(feed.seen.iter().map(|d| AttributeValue::S(d.clone())).collect())),
        ];
        let optional = [
            ("etag", &feed.etag),
            ("last_modified", &feed.last_modified),
            ("last_polled_at", &feed.last_polled_at),
            ("last_error", &feed.last_error),
            ("last_refusal", &feed.last_refusal),
        ];
        let at = key(&feed.tenant, feed_sk(&feed.feed_id));
        match subscriptions::record_poll(&self.client, &self.table, at, set, &optional).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(FeedStoreError::Absent(feed.feed_id.clone())),
            Err(e) => Err(FeedStoreError::Unavailable(e)),
        }
    }

    async fn claim_item(&self, feed: &Feed, item: &str, guid: &str) -> Result<bool, FeedStoreError> {
        subscriptions::claim(&self.client, &self.table, key(&feed.tenant, item_sk(feed, item)), ("guid", guid))
            .await
            .map_err(FeedStoreError::Unavailable)
    }

    async fn settle_item(&self, feed: &Feed, item: &str, outcome: &str) -> Result<(), FeedStoreError> {
        subscriptions::settle(&self.client, &self.table, key(&feed.tenant, item_sk(feed, item)), outcome)
            .await
            .map_err(FeedStoreError::Unavailable)
    }

    async fn release_item(&self, feed: &Feed, item: &str) -> Result<(), FeedStoreError> {
        subscriptions::release(&self.client, &self.table, key(&feed.tenant, item_sk(feed, item))).await.map_err(FeedStoreError::Unavailable)
    }
}
