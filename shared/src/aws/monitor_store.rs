//! Bucket monitors and the object versions they claimed, in DynamoDB: the feeds table, which
//! holds every tenant subscription that a scheduled poll reads.
//!
//! Layout: `pk` = `TENANT#{tenant}`; `sk` = `MONITOR#{monitor_id}` for a monitor, which carries
//! `subscription` (`monitor/{id}`), the key of the sparse index the pollers scan (feeds and
//! monitors each filter their own); `sk` = `OBJECT#{monitor_id}#{digest}` for a claimed object
//! version, written once with a condition.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use serde::{Deserialize, Serialize};

use crate::aws::subscriptions;
use crate::ids::{MonitorId, TenantId};
use crate::ingest::ports::{BucketAccess, Monitor, MonitorStore, MonitorStoreError};

/// BatchGetItem's most keys per call.
const BATCH_GET_KEYS: usize = 100;

pub struct DynamoMonitors {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoMonitors {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoMonitors { client, table: table.into() }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    pk: String,
    sk: String,
    subscription: String,
    tenant: TenantId,
    monitor_id: MonitorId,
    provider: String,
    bucket: String,
    prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_email: Option<String>,
    profile: String,
    created_at: String,
    created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_polled_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    #[serde(default)]
    imported: u32,
    #[serde(default)]
    refused: u32,
}

fn pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}")
}

fn monitor_sk(monitor: &MonitorId) -> String {
    format!("MONITOR#{monitor}")
}

fn object_sk(monitor: &Monitor, digest: &str) -> String {
    format!("OBJECT#{}#{digest}", monitor.monitor_id)
}

fn unavailable<E: std::error::Error + 'static>(e: E) -> MonitorStoreError {
    MonitorStoreError::Unavailable(DisplayErrorContext(e).to_string())
}

fn key(tenant: &TenantId, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), AttributeValue::S(pk(tenant))), ("sk".to_string(), AttributeValue::S(sk))])
}

fn encode(monitor: &Monitor) -> Stored {
    let (region, role_arn, external_id, secret_id, client_email) = match &monitor.access {
        BucketAccess::S3 { region, role_arn, external_id } => {
            (Some(region.clone()), Some(role_arn.clone()), Some(external_id.clone()), None, None)
        }
        BucketAccess::Gcs { secret_id, client_email } => (None, None, None, Some(secret_id.clone()), Some(client_email.clone())),
    };
    Stored {
        pk: pk(&monitor.tenant),
        sk: monitor_sk(&monitor.monitor_id),
        subscription: format!("monitor/{}", monitor.monitor_id),
        tenant: monitor.tenant.clone(),
        monitor_id: monitor.monitor_id.clone(),
        provider: monitor.access.provider().to_string(),
        bucket: monitor.bucket.clone(),
        prefix: monitor.prefix.clone(),
        region,
        role_arn,
        external_id,
        secret_id,
        client_email,
        profile: monitor.profile.clone(),
        created_at: monitor.created_at.clone(),
        created_by: monitor.created_by.clone(),
        last_polled_at: monitor.last_polled_at.clone(),
        last_error: monitor.last_error.clone(),
        last_refusal: monitor.last_refusal.clone(),
        cursor: monitor.cursor.clone(),
        imported: monitor.imported,
        refused: monitor.refused,
    }
}

fn decode(item: HashMap<String, AttributeValue>) -> Result<Monitor, MonitorStoreError> {
    let unreadable = |why: String| MonitorStoreError::Unavailable(format!("an unreadable monitor: {why}"));
    let s: Stored = serde_dynamo::from_item(item).map_err(|e| unreadable(e.to_string()))?;
    let access = match (s.provider.as_str(), s.region, s.role_arn, s.external_id, s.secret_id, s.client_email) {
        ("s3", Some(region), Some(role_arn), Some(external_id), _, _) => BucketAccess::S3 { region, role_arn, external_id },
        ("gcs", _, _, _, Some(secret_id), Some(client_email)) => BucketAccess::Gcs { secret_id, client_email },
        (provider, ..) => return Err(unreadable(format!("provider {provider:?} without its access"))),
    };
    Ok(Monitor {
        tenant: s.tenant,
        monitor_id: s.monitor_id,
        access,
        bucket: s.bucket,
        prefix: s.prefix,
        profile: s.profile,
        created_at: s.created_at,
        created_by: s.created_by,
        last_polled_at: s.last_polled_at,
        last_error: s.last_error,
        last_refusal: s.last_refusal,
        cursor: s.cursor,
        imported: s.imported,
        refused: s.refused,
    })
}

#[async_trait::async_trait]
impl MonitorStore for DynamoMonitors {
    async fn create(&self, monitor: &Monitor) -> Result<(), MonitorStoreError> {
        let item = serde_dynamo::to_item(encode(monitor)).map_err(|e| MonitorStoreError::Unavailable(e.to_string()))?;
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

    async fn list(&self, tenant: &TenantId) -> Result<Vec<Monitor>, MonitorStoreError> {
        let items =
            subscriptions::items_of(&self.client, &self.table, pk(tenant), "MONITOR#").await.map_err(MonitorStoreError::Unavailable)?;
        items.into_iter().map(decode).collect()
    }

    async fn get(&self, tenant: &TenantId, monitor: &MonitorId) -> Result<Option<Monitor>, MonitorStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, monitor_sk(monitor))))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.map(decode).transpose()
    }

    async fn remove(&self, tenant: &TenantId, monitor: &MonitorId) -> Result<Option<Monitor>, MonitorStoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, monitor_sk(monitor))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        out.attributes.filter(|a| !a.is_empty()).map(decode).transpose()
    }

    async fn all(&self) -> Result<Vec<Monitor>, MonitorStoreError> {
        let items = subscriptions::all_of(&self.client, &self.table, "MONITOR#").await.map_err(MonitorStoreError::Unavailable)?;
        items.into_iter().map(decode).collect()
    }

    async fn record_poll(&self, monitor: &Monitor) -> Result<(), MonitorStoreError> {
        let set = vec![
            ("imported", AttributeValue::N(monitor.imported.to_string())),
            ("refused", AttributeValue::N(monitor.refused.to_string())),
        ];
        let optional = [
            ("last_polled_at", &monitor.last_polled_at),
            ("last_error", &monitor.last_error),
            ("last_refusal", &monitor.last_refusal),
            ("cursor", &monitor.cursor),
        ];
        let at = key(&monitor.tenant, monitor_sk(&monitor.monitor_id));
        match subscriptions::record_poll(&self.client, &self.table, at, set, &optional).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(MonitorStoreError::Absent(monitor.monitor_id.clone())),
            Err(e) => Err(MonitorStoreError::Unavailable(e)),
        }
    }

    async fn unclaimed(&self, monitor: &Monitor, digests: &[String]) -> Result<Vec<String>, MonitorStoreError> {
        let mut claimed = std::collections::HashSet::new();
        for chunk in digests.chunks(BATCH_GET_KEYS) {
            let keys: Vec<_> = chunk.iter().map(|d| key(&monitor.tenant, object_sk(monitor, d))).collect();
            let mut pending =
                Some(KeysAndAttributes::builder().set_keys(Some(keys)).projection_expression("sk").build().map_err(unavailable)?);
            // Unprocessed keys (throttling) are asked again, a few times.
            for _ in 0..5 {
                let Some(request) = pending.take() else { break };
                let out = self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(unavailable)?;
                for item in out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    if let Some(AttributeValue::S(sk)) = item.get("sk") {
                        claimed.insert(sk.clone());
                    }
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys.is_empty());
            }
            if pending.is_some() {
                return Err(MonitorStoreError::Unavailable("the claims could not all be read (throttled)".into()));
            }
        }
        Ok(digests.iter().filter(|d| !claimed.contains(&object_sk(monitor, d))).cloned().collect())
    }

    async fn claim_object(&self, monitor: &Monitor, digest: &str, object_key: &str) -> Result<bool, MonitorStoreError> {
        let at = key(&monitor.tenant, object_sk(monitor, digest));
        subscriptions::claim(&self.client, &self.table, at, ("key", object_key)).await.map_err(MonitorStoreError::Unavailable)
    }

    async fn settle_object(&self, monitor: &Monitor, digest: &str, outcome: &str) -> Result<(), MonitorStoreError> {
        let at = key(&monitor.tenant, object_sk(monitor, digest));
        subscriptions::settle(&self.client, &self.table, at, outcome).await.map_err(MonitorStoreError::Unavailable)
    }

    async fn release_object(&self, monitor: &Monitor, digest: &str) -> Result<(), MonitorStoreError> {
        let at = key(&monitor.tenant, object_sk(monitor, digest));
        subscriptions::release(&self.client, &self.table, at).await.map_err(MonitorStoreError::Unavailable)
    }
}
