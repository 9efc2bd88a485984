//! The local stack's identity provider: HS256 JWTs with the contract's claims, signed with the
//! state folder's secret. Only the local stack accepts them (deployments configure RS256/ES256
//! against their identity provider's JWKS).

use anyhow::{bail, Context, Result};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use vaultstream::ids::{SessionId, TenantId};
use vaultstream::principal::Scope;

use crate::dev::state::Identity;

/// Longest lifetime a dev token may have: one day.
pub const MAX_TTL_SECONDS: u64 = 24 * 3600;

pub struct TokenRequest<'a> {
    pub tenant: &'a str,
    pub sub: &'a str,
    pub scope: &'a str,
    pub ttl_seconds: u64,
    pub sid: Option<&'a str>,
}

/// Checks what a token would claim, so a typo is an error rather than a token that fails later.
pub fn validate(request: &TokenRequest<'_>) -> Result<(), String> {
    TenantId::parse(request.tenant).map_err(|e| format!("--tenant: {e}"))?;
    if request.sub.trim().is_empty() || request.sub.len() > 128 {
        return Err("--sub: give the user's id, 1 to 128 characters".into());
    }
    let scopes: Vec<&str> = request.scope.split_whitespace().collect();
    if scopes.is_empty() {
        return Err("--scope: give at least one of content:read, content:write, admin".into());
    }
    if let Some(unknown) = scopes.iter().find(|s| Scope::parse(s).is_none()) {
        return Err(format!("--scope: {unknown:?} is not one of content:read, content:write, admin"));
    }
    if request.ttl_seconds == 0 || request.ttl_seconds > MAX_TTL_SECONDS {
        return Err(format!("--ttl: {} is not between 1 and {MAX_TTL_SECONDS} seconds", request.ttl_seconds));
    }
    if let Some(sid) = request.sid {
        SessionId::parse(sid).map_err(|e| format!("--sid: {e}"))?;
    }
    Ok(())
}

/// A signed token for `request`; a fresh session id unless one is given.
pub fn mint(identity: &Identity, request: &TokenRequest<'_>) -> Result<String> {
    if let Err(problem) = validate(request) {
        bail!(problem);
    }
    let now = vaultstream::clock::now_seconds();
    let sid = match request.sid {
        Some(sid) => sid.to_string(),
        None => format!("dev-{}", uuid::Uuid::new_v4().simple()),
    };
    let claims = json!({
        "iss": identity.issuer, "aud": identity.audience, "sub": request.sub, "tenant": request.tenant,
        "scope": request.scope.split_whitespace().collect::<Vec<_>>().join(" "), "sid": sid,
        "iat": now, "nbf": now, "exp": now + request.ttl_seconds,
    });
    let key = EncodingKey::from_secret(identity.hs256_secret.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).context("signing the token")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(tenant: &'a str, scope: &'a str, ttl_seconds: u64) -> TokenRequest<'a> {
        TokenRequest { tenant, sub: "ada", scope, ttl_seconds, sid: None }
    }

    #[test]
    fn typos_are_named() {
        assert!(validate(&request("acme", "content:read", 60)).is_ok());
        assert!(validate(&request("ac/me", "content:read", 60)).unwrap_err().starts_with("--tenant"));
        assert!(validate(&request("acme", "content:reed", 60)).unwrap_err().contains("content:reed"));
        assert!(validate(&request("acme", "", 60)).unwrap_err().starts_with("--scope"));
        assert!(validate(&request("acme", "admin", 0)).unwrap_err().starts_with("--ttl"));
        let bad_sid = TokenRequest { sid: Some("a b"), ..request("acme", "admin", 60) };
        assert!(validate(&bad_sid).unwrap_err().starts_with("--sid"));
    }
}
