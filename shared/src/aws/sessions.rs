//! Revoked sessions in the tokens table: `pk` = `SESSION#{tenant}#{sid}`, `sk` = `SESSION`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::identity::SessionRevocations;
use crate::ids::{SessionId, TenantId};

pub struct DynamoSessions {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoSessions {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoSessions { client, table: table.into() }
    }

    fn pk(tenant: &TenantId, session: &SessionId) -> AttributeValue {
        AttributeValue::S(format!("SESSION#{tenant}#{session}"))
    }
}

#[async_trait::async_trait]
impl SessionRevocations for DynamoSessions {
    async fn is_revoked(&self, tenant: &TenantId, session: &SessionId) -> Result<bool, String> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::pk(tenant, session))
            .key("sk", AttributeValue::S("SESSION".into()))
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())?;
        Ok(out.item.is_some_and(|item| item.contains_key("revoked_at")))
    }

    async fn revoke(&self, tenant: &TenantId, session: &SessionId, at: u64) -> Result<(), String> {
        let item = HashMap::from([
            ("pk".to_string(), Self::pk(tenant, session)),
            ("sk".to_string(), AttributeValue::S("SESSION".into())),
            ("revoked_at".to_string(), AttributeValue::N(at.to_string())),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
    }
}
