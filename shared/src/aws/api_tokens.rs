//! API token records in the tokens table: `pk` = `TOKEN#{sha256 hex}`, `sk` = `TOKEN`. Lookups
//! happen before the tenant is known, so this is the one item keyed by something else.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::identity::{ApiTokenRecord, ApiTokenStore};
use crate::ids::TenantId;
use crate::principal::Scope;

pub struct DynamoApiTokens {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoApiTokens {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoApiTokens { client, table: table.into() }
    }
}

#[async_trait::async_trait]
impl ApiTokenStore for DynamoApiTokens {
    async fn find(&self, hash: &str) -> Result<Option<ApiTokenRecord>, String> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("TOKEN#{hash}")))
            .key("sk", AttributeValue::S("TOKEN".into()))
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())?;
        let Some(item) = out.item else { return Ok(None) };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().ok_or(format!("API token record lacks `{name}`"));
        let expires_at =
            item.get("expires_at").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).ok_or("API token record lacks `expires_at`")?;
        Ok(Some(ApiTokenRecord {
            tenant: TenantId::parse(text("tenant")?).map_err(|e| e.to_string())?,
            subject: text("sub")?,
            scopes: Scope::parse_list(&text("scope")?),
            expires_at,
            revoked: item.get("revoked").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        }))
    }

    async fn insert(&self, hash: &str, record: &ApiTokenRecord) -> Result<(), String> {
        let scope = record.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        let item = HashMap::from([
            ("pk".to_string(), AttributeValue::S(format!("TOKEN#{hash}"))),
            ("sk".to_string(), AttributeValue::S("TOKEN".into())),
            ("tenant".to_string(), AttributeValue::S(record.tenant.to_string())),
            ("sub".to_string(), AttributeValue::S(record.subject.clone())),
            ("scope".to_string(), AttributeValue::S(scope)),
            ("expires_at".to_string(), AttributeValue::N(record.expires_at.to_string())),
            ("revoked".to_string(), AttributeValue::Bool(record.revoked)),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
    }

    async fn set_revoked(&self, hash: &str) -> Result<bool, String> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("TOKEN#{hash}")))
            .key("sk", AttributeValue::S("TOKEN".into()))
            .update_expression("SET revoked = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()),
        }
    }
}
