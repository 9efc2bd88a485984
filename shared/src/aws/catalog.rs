//! Content records in DynamoDB (the content table).
//!
//! Layout: `pk` = `TENANT#{tenant}`, `sk` = `CONTENT#{content_id}` for a record, and
//! `sk` = `IDEMPOTENCY#{sha256 of the client's key}` for an idempotent create (expiring after a
//! day through the table's `expires_at` TTL). Content ids are time-ordered (UUIDv7), so a query on
//! the tenant's partition in reverse sort order lists titles newest first. Conditional changes
//! become one `UpdateItem` whose condition is the [`Expect`] and whose update is the [`Patch`].

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use serde::{Deserialize, Serialize};

use crate::catalog::{
    CaptionTrack, CatalogError, ContentCatalog, ContentRecord, ContentStatus, Created, Expect, Failure, IdempotencyClaim, JobFigures,
    JobRef, Page, Patch, Publication, SourceFile, UploadPlan,
};
use crate::content_keys::WrappedKey;
use crate::ids::{ContentId, TenantId};
use crate::KeyId;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_SECONDS: u64 = 24 * 3600;

pub struct DynamoCatalog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// The item as stored. Absent optional fields are absent attributes (never NULL), so conditions
/// can test them with `attribute_not_exists`.
#[derive(Serialize, Deserialize)]
struct Stored {
    pk: String,
    sk: String,
    tenant: String,
    content_id: String,
    status: ContentStatus,
    #[serde(default)]
    title: String,
    #[serde(default)]
    created_at: String,
    #[serde(default = "default_profile")]
    profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<SourceFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upload: Option<UploadPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dispatch_claim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job: Option<JobRef>,
    #[serde(default)]
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    progress: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    publication: Option<Publication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    figures: Option<JobFigures>,
    #[serde(default)]
    keys: BTreeMap<String, serde_bytes::ByteBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    captions: Vec<CaptionTrack>,
    #[serde(default)]
    captions_revision: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<crate::metadata::Described>,
}

fn default_profile() -> String {
    "default".into()
}

#[derive(Serialize, Deserialize)]
struct StoredIdempotency {
    pk: String,
    sk: String,
    content_id: String,
    request_hash: String,
    expires_at: u64,
}

fn pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}")
}

fn content_sk(content: &ContentId) -> String {
    format!("CONTENT#{content}")
}

fn key(tenant: &TenantId, content: &ContentId) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".into(), AttributeValue::S(pk(tenant))), ("sk".into(), AttributeValue::S(content_sk(content)))])
}

fn unavailable<E: std::error::Error + 'static>(e: E) -> CatalogError {
    CatalogError::Unavailable(DisplayErrorContext(e).to_string())
}

fn to_item<T: Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>, CatalogError> {
    serde_dynamo::to_item(value).map_err(|e| CatalogError::Corrupt(format!("cannot encode a record: {e}")))
}

fn to_value<T: Serialize>(value: &T) -> Result<AttributeValue, CatalogError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| CatalogError::Corrupt(format!("cannot encode a field: {e}")))
}

fn from_item(item: HashMap<String, AttributeValue>) -> Result<ContentRecord, CatalogError> {
    let stored: Stored = serde_dynamo::from_item(item).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
    let corrupt = |what: String| CatalogError::Corrupt(format!("content {}: {what}", stored.content_id));
    let mut keys = BTreeMap::new();
    for (id, blob) in &stored.keys {
        let id = KeyId::try_from(id.clone()).map_err(|e| corrupt(e.to_string()))?;
        keys.insert(id, WrappedKey::new(blob.to_vec()));
    }
    Ok(ContentRecord {
        tenant: TenantId::parse(&stored.tenant).map_err(|e| corrupt(e.to_string()))?,
        content_id: ContentId::parse(&stored.content_id).map_err(|e| corrupt(e.to_string()))?,
        status: stored.status,
        title: stored.title,
        created_at: stored.created_at,
        profile: stored.profile,
        source: stored.source,
        upload: stored.upload,
        source_etag: stored.source_etag,
        dispatch_claim: stored.dispatch_claim,
        job: stored.job,
        attempts: stored.attempts,
        progress: stored.progress,
        publication: stored.publication,
        failure: stored.failure,
        figures: stored.figures,
        keys,
        captions: stored.captions,
        captions_revision: stored.captions_revision,
        metadata: stored.metadata,
    })
}

fn to_stored(r: &ContentRecord) -> Stored {
    Stored {
        pk: pk(&r.tenant),
        sk: content_sk(&r.content_id),
        tenant: r.tenant.to_string(),
        content_id: r.content_id.to_string(),
        status: r.status,
        title: r.title.clone(),
        created_at: r.created_at.clone(),
        profile: r.profile.clone(),
        source: r.source.clone(),
        upload: r.upload.clone(),
        source_etag: r.source_etag.clone(),
        dispatch_claim: r.dispatch_claim.clone(),
        job: r.job.clone(),
        attempts: r.attempts,
        progress: r.progress,
        publication: r.publication.clone(),
        failure: r.failure.clone(),
        figures: r.figures.clone(),
        keys: r.keys.iter().map(|(id, blob)| (id.to_string(), serde_bytes::ByteBuf::from(blob.as_bytes().to_vec()))).collect(),
        captions: r.captions.clone(),
        captions_revision: r.captions_revision,
        metadata: r.metadata.clone(),
    }
}

/// Builds condition and update expressions with numbered placeholders.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_string());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn condition(&mut self, expect: &Expect) -> String {
        let mut parts = vec!["attribute_exists(pk)".to_string()];
        if !expect.status_in.is_empty() {
            let status = self.name("status");
            let values: Vec<String> = expect.status_in.iter().map(|s| self.value(AttributeValue::S(s.as_str().into()))).collect();
            parts.push(format!("{status} IN ({})", values.join(", ")));
        }
        for (attribute, expected) in [("source_etag", &expect.source_etag), ("dispatch_claim", &expect.dispatch_claim)] {
            match expected {
                None => {}
                Some(None) => parts.push(format!("attribute_not_exists({})", self.name(attribute))),
                Some(Some(v)) => {
                    let (n, v) = (self.name(attribute), self.value(AttributeValue::S(v.clone())));
                    parts.push(format!("{n} = {v}"));
                }
            }
        }
        match &expect.job_id {
            None => {}
            Some(None) => parts.push(format!("attribute_not_exists({})", self.name("job"))),
            Some(Some(id)) => {
                let (job, idn, v) = (self.name("job"), self.name("id"), self.value(AttributeValue::S(id.clone())));
                parts.push(format!("{job}.{idn} = {v}"));
            }
        }
        if let Some(attempts) = expect.attempts {
            let (n, v) = (self.name("attempts"), self.value(AttributeValue::N(attempts.to_string())));
            parts.push(format!("{n} = {v}"));
        }
        if let Some(revision) = expect.captions_revision {
            let (n, v) = (self.name("captions_revision"), self.value(AttributeValue::N(revision.to_string())));
            // Records written before captions existed have no counter: that is revision 0.
            let absent = if revision == 0 { format!("attribute_not_exists({n}) OR ") } else { String::new() };
            parts.push(format!("({absent}{n} = {v})"));
        }
        parts.join(" AND ")
    }

    fn update(&mut self, patch: &Patch, now: &str) -> Result<String, CatalogError> {
        let mut set = Vec::new();
        let mut remove = Vec::new();
        let mut assign = |this: &mut Self, attribute: &str, value: AttributeValue| {
            let (n, v) = (this.name(attribute), this.value(value));
            set.push(format!("{n} = {v}"));
        };
        assign(self, "updated_at", AttributeValue::S(now.into()));
        if let Some(s) = patch.status {
            assign(self, "status", AttributeValue::S(s.as_str().into()));
        }
        if let Some(s) = &patch.source {
            assign(self, "source", to_value(s)?);
        }
        if let Some(e) = &patch.source_etag {
            assign(self, "source_etag", AttributeValue::S(e.clone()));
        }
        if let Some(c) = &patch.dispatch_claim {
            assign(self, "dispatch_claim", AttributeValue::S(c.clone()));
        }
        if let Some(a) = patch.attempts {
            assign(self, "attempts", AttributeValue::N(a.to_string()));
        }
        if let Some(p) = &patch.publication {
            assign(self, "publication", to_value(p)?);
        }
        if let Some(f) = &patch.figures {
            assign(self, "figures", to_value(f)?);
        }
        if let Some(m) = &patch.metadata {
            assign(self, "metadata", to_value(m)?);
        }
        if let Some(c) = &patch.captions {
            assign(self, "captions", to_value(c)?);
        }
        match &patch.job {
            Some(Some(j)) => assign(self, "job", to_value(j)?),
            Some(None) => remove.push(self.name("job")),
            None => {}
        }
        match patch.progress {
            Some(Some(p)) => assign(self, "progress", AttributeValue::N(format!("{:.1}", p.clamp(0.0, 100.0)))),
            Some(None) => remove.push(self.name("progress")),
            None => {}
        }
        match &patch.failure {
            Some(Some(f)) => assign(self, "failure", to_value(f)?),
            Some(None) => remove.push(self.name("failure")),
            None => {}
        }
        if patch.captions.is_some() {
            let (n, zero, one) =
                (self.name("captions_revision"), self.value(AttributeValue::N("0".into())), self.value(AttributeValue::N("1".into())));
            set.push(format!("{n} = if_not_exists({n}, {zero}) + {one}"));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        Ok(expression)
    }
}

impl DynamoCatalog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoCatalog { client, table: table.into() }
    }

    fn put(&self, item: HashMap<String, AttributeValue>) -> Result<TransactWriteItem, CatalogError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| CatalogError::Corrupt(format!("cannot build a write: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn idempotency_record(&self, tenant: &TenantId, claim: &IdempotencyClaim) -> Result<Option<StoredIdempotency>, CatalogError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk(tenant)))
            .key("sk", AttributeValue::S(format!("IDEMPOTENCY#{}", claim.key_hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.map(|item| serde_dynamo::from_item(item).map_err(|e| CatalogError::Corrupt(e.to_string()))).transpose()
    }
}

#[async_trait::async_trait]
impl ContentCatalog for DynamoCatalog {
    async fn get(&self, tenant: &TenantId, content: &ContentId) -> Result<Option<ContentRecord>, CatalogError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(key(tenant, content))).send().await.map_err(unavailable)?;
        out.item.map(from_item).transpose()
    }

    async fn create(&self, record: &ContentRecord, idempotency: Option<&IdempotencyClaim>) -> Result<Created, CatalogError> {
        let item = to_item(&to_stored(record))?;
        let Some(claim) = idempotency else {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            return match result {
                Ok(_) => Ok(Created::New),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                    Err(CatalogError::AlreadyExists(record.content_id.clone()))
                }
                Err(e) => Err(unavailable(e)),
            };
        };
        let expires_at = crate::clock::now_seconds() + IDEMPOTENCY_SECONDS;
        let marker = StoredIdempotency {
            pk: pk(&record.tenant),
            sk: format!("IDEMPOTENCY#{}", claim.key_hash),
            content_id: record.content_id.to_string(),
            request_hash: claim.request_hash.clone(),
            expires_at,
        };
        let result =
            self.client.transact_write_items().transact_items(self.put(item)?).transact_items(self.put(to_item(&marker)?)?).send().await;
        match result {
            Ok(_) => Ok(Created::New),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception()) => {
                let Some(earlier) = self.idempotency_record(&record.tenant, claim).await? else {
                    return Err(CatalogError::AlreadyExists(record.content_id.clone()));
                };
                if earlier.request_hash != claim.request_hash {
                    return Err(CatalogError::IdempotencyConflict);
                }
                let content = ContentId::parse(&earlier.content_id).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
                let existing = self
                    .get(&record.tenant, &content)
                    .await?
                    .ok_or_else(|| CatalogError::Corrupt(format!("idempotent content {content} is gone")))?;
                Ok(Created::Existing(Box::new(existing)))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn list(&self, tenant: &TenantId, limit: u32, after: Option<&ContentId>) -> Result<Page, CatalogError> {
        let start = after.map(|a| key(tenant, a));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(pk(tenant)))
            .expression_attribute_values(":prefix", AttributeValue::S("CONTENT#".into()))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let items = out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let next_after = if more { items.last().map(|r| r.content_id.clone()) } else { None };
        Ok(Page { items, next_after })
    }

    async fn update(&self, tenant: &TenantId, content: &ContentId, expect: &Expect, patch: &Patch) -> Result<ContentRecord, CatalogError> {
        let mut expression = Expression::default();
        let condition = expression.condition(expect);
        let update = expression.update(patch, &crate::clock::now_rfc3339())?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, content)))
            .condition_expression(condition)
            .update_expression(update)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => from_item(out.attributes.unwrap_or_default()),
            Err(e) if matches!(e.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                Err(CatalogError::Precondition(content.clone()))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn put_key_if_absent(
        &self,
        tenant: &TenantId,
        content: &ContentId,
        key_id: &KeyId,
        wrapped: &WrappedKey,
    ) -> Result<WrappedKey, CatalogError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant, content)))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(#keys.#id)")
            .update_expression("SET #keys.#id = :blob")
            .expression_attribute_names("#keys", "keys")
            .expression_attribute_names("#id", key_id.as_str())
            .expression_attribute_values(":blob", AttributeValue::B(wrapped.as_bytes().to_vec().into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(wrapped.clone()),
            Err(e) if matches!(e.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                let stored = self.get(tenant, content).await?.ok_or_else(|| CatalogError::Precondition(content.clone()))?;
                stored.keys.get(key_id).cloned().ok_or_else(|| CatalogError::Precondition(content.clone()))
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}
