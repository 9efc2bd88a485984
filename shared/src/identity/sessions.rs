//! Revoked sessions. A revoked session's playback and key tokens stop working at once, before
//! they expire. DynamoDB layout (tokens table): `pk` = `SESSION#{tenant}#{sid}`, `sk` = `SESSION`.

use async_trait::async_trait;

use crate::ids::{SessionId, TenantId};

#[async_trait]
pub trait SessionRevocations: Send + Sync {
    async fn is_revoked(&self, tenant: &TenantId, session: &SessionId) -> Result<bool, String>;
    async fn revoke(&self, tenant: &TenantId, session: &SessionId, at: u64) -> Result<(), String>;
}
