//! Service account keys of GCS monitors, in Secrets Manager, each under
//! `{prefix}{tenant}/{monitor_id}`: a name VaultStream makes, so no request can name another
//! tenant's key, and deployments can grant access to that prefix alone.

use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::ids::{MonitorId, TenantId};
use crate::ingest::ports::MonitorSecrets;

pub struct SecretsManagerKeys {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

impl SecretsManagerKeys {
    /// `prefix` ends with `/` (`vaultstream-prod/monitors/`).
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: impl Into<String>) -> Self {
        SecretsManagerKeys { client, prefix: prefix.into() }
    }
}

#[async_trait::async_trait]
impl MonitorSecrets for SecretsManagerKeys {
    async fn store(&self, tenant: &TenantId, monitor: &MonitorId, key_json: &str) -> Result<String, String> {
        let out = self
            .client
            .create_secret()
            .name(format!("{}{tenant}/{monitor}", self.prefix))
            .description(format!("GCS service account key of VaultStream monitor {monitor} (tenant {tenant})"))
            .secret_string(key_json)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        out.arn.ok_or_else(|| "Secrets Manager answered without the secret's ARN".to_string())
    }

    async fn remove(&self, secret_id: &str) -> Result<(), String> {
        // Recoverable for a week, in case the removal was a mistake.
        self.client
            .delete_secret()
            .secret_id(secret_id)
            .recovery_window_in_days(7)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(())
    }
}
