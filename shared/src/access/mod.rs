//! The access path's use cases, one module each, over the ports (catalog, key vault, playlist
//! store, audit sink, session revocations, policy signer). The Lambda handlers only translate
//! HTTP to these calls and back. [`AccessError`] is how every API use case (the ingest ones in
//! [`crate::ingest`] too) refuses, and [`record`] how every decision reaches the ledger.
//!
//! Three checks per playback (DESIGN.md): the session ([`authorize`]), content authorization
//! ([`playback`]: `content:read`, same tenant, playable), and the key token ([`key_delivery`]),
//! which is minted only by [`manifest`] after the first two passed. Every decision is audited;
//! a grant whose audit record cannot be written is not given.

pub mod authorize;
pub mod key_delivery;
pub mod manifest;
pub mod personalize;
pub mod playback;

use crate::audit::{AuditError, AuditEvent, AuditSink, Decision};
use crate::ids::TenantId;

/// What an audit `resource` says in place of a path part that did not validate: the ledger names
/// only validated ids, never raw request text.
pub(crate) const INVALID_PART: &str = "(invalid id)";
pub(crate) const INVALID_RESOURCE: &str = "content/(invalid id)";

/// The audit resource `content/{id}`, from a validated id only.
pub(crate) fn content_resource<E>(content: &Result<crate::ids::ContentId, E>) -> String {
    match content {
        Ok(c) => format!("content/{c}"),
        Err(_) => INVALID_RESOURCE.to_string(),
    }
}

/// Facts about the request that go into the audit record.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub source_ip: Option<String>,
    /// Epoch seconds.
    pub now: u64,
}

/// How a refusal is answered. Messages say what was wrong and never carry keys, tokens or
/// another tenant's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or another tenant's: the two answer alike.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The content exists but is not in a state that can be played.
    #[error("{0}")]
    Conflict(String),
    /// The content exists but is in the wrong state for this request.
    #[error("{0}")]
    WrongState(String),
    /// An idempotency key was reused with a different request.
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl AccessError {
    pub fn status(&self) -> u16 {
        match self {
            AccessError::BadRequest(_) => 400,
            AccessError::Unauthenticated(_) => 401,
            AccessError::Forbidden(_) => 403,
            AccessError::NotFound(_) => 404,
            AccessError::Conflict(_) | AccessError::WrongState(_) | AccessError::IdempotencyConflict(_) => 409,
            AccessError::TooLarge(_) => 413,
            AccessError::UnsupportedMediaType(_) => 415,
            AccessError::Unavailable(_) => 503,
            AccessError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AccessError::BadRequest(_) => "invalid_request",
            AccessError::Unauthenticated(_) => "unauthenticated",
            AccessError::Forbidden(_) => "forbidden",
            AccessError::NotFound(_) => "not_found",
            AccessError::Conflict(_) => "not_playable",
            AccessError::WrongState(_) => "wrong_state",
            AccessError::IdempotencyConflict(_) => "idempotency_conflict",
            AccessError::TooLarge(_) => "too_large",
            AccessError::UnsupportedMediaType(_) => "unsupported_media_type",
            AccessError::Unavailable(_) => "try_again",
            AccessError::Internal(_) => "internal_error",
        }
    }

    /// Details of our own failures stay in the logs.
    pub fn public_message(&self) -> String {
        match self {
            AccessError::Unavailable(_) => "a dependency is unavailable; retry shortly".into(),
            AccessError::Internal(_) => "something went wrong on our side".into(),
            other => other.to_string(),
        }
    }

    fn audit_reason(&self) -> String {
        format!("{}: {}", self.code(), self)
    }
}

/// One decision for the ledger.
pub struct Decided<'a> {
    pub tenant: TenantId,
    pub actor: &'a str,
    pub action: &'a str,
    pub resource: String,
}

impl Decided<'_> {
    fn event(self, decision: Decision, reason: String, meta: &RequestMeta) -> AuditEvent {
        AuditEvent {
            tenant: self.tenant,
            actor: self.actor.to_string(),
            action: self.action.to_string(),
            resource: self.resource,
            decision,
            reason,
            request_id: meta.request_id.clone(),
            source_ip: meta.source_ip.clone(),
        }
    }
}

fn audit_failed(e: AuditError) -> AccessError {
    tracing::error!(error = %e, "audit append failed");
    AccessError::Unavailable(format!("audit: {e}"))
}

/// Records the outcome. A grant that cannot be recorded becomes a 503: nothing is granted
/// off the books. A denial is returned as it was even when its record could not be written.
pub async fn record<T>(
    audit: &dyn AuditSink,
    decided: Decided<'_>,
    meta: &RequestMeta,
    outcome: Result<T, AccessError>,
) -> Result<T, AccessError> {
    match outcome {
        Ok(value) => {
            audit.append(decided.event(Decision::Allow, "granted".into(), meta)).await.map_err(audit_failed)?;
            Ok(value)
        }
        Err(err) => {
            if let Err(e) = audit.append(decided.event(Decision::Deny, err.audit_reason(), meta)).await {
                tracing::error!(error = %e, "audit append of a denial failed");
            }
            Err(err)
        }
    }
}
