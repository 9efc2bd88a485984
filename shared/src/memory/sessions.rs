//! Revoked sessions in memory.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::identity::SessionRevocations;
use crate::ids::{SessionId, TenantId};

#[derive(Default)]
pub struct MemorySessions {
    revoked: Mutex<HashSet<(TenantId, SessionId)>>,
}

impl MemorySessions {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl SessionRevocations for MemorySessions {
    async fn is_revoked(&self, tenant: &TenantId, session: &SessionId) -> Result<bool, String> {
        Ok(self.revoked.lock().unwrap_or_else(|p| p.into_inner()).contains(&(tenant.clone(), session.clone())))
    }

    async fn revoke(&self, tenant: &TenantId, session: &SessionId, _at: u64) -> Result<(), String> {
        self.revoked.lock().unwrap_or_else(|p| p.into_inner()).insert((tenant.clone(), session.clone()));
        Ok(())
    }
}
