//! Check one: the session. Used by the API Gateway authorizer.

use crate::access::{record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::identity::{AuthError, Authenticator};
use crate::ids::TenantId;
use crate::principal::Principal;

impl From<AuthError> for AccessError {
    fn from(e: AuthError) -> Self {
        if e.is_retryable() {
            AccessError::Unavailable(e.to_string())
        } else {
            AccessError::Unauthenticated(e.to_string())
        }
    }
}

/// Authenticates the `Authorization` header for `route` and audits the decision: in the
/// principal's tenant when the credential verified, under the unauthenticated ledger otherwise.
pub async fn authorize(
    authenticator: &Authenticator,
    audit: &dyn AuditSink,
    authorization: Option<&str>,
    route: &str,
    meta: &RequestMeta,
) -> Result<Principal, AccessError> {
    let outcome = authenticator.authenticate(authorization, meta.now).await.map_err(AccessError::from);
    let (tenant, actor) = match &outcome {
        Ok(p) => (p.tenant.clone(), p.subject.clone()),
        Err(_) => (TenantId::unauthenticated(), "anonymous".to_string()),
    };
    tracing::Span::current().record("tenant", tenant.as_str());
    let decided = Decided { tenant, actor: &actor, action: "session.authorize", resource: format!("route/{route}") };
    record(audit, decided, meta, outcome).await
}
