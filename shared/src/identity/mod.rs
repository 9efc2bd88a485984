//! The first check: who is calling. Bearer JWTs from the identity provider (RS256/ES256 against
//! its JWKS; HS256 only where configured) and opaque `vst_…` API tokens for machine clients.

pub mod api_token;
pub mod jwks;
pub mod jwt;
pub mod sessions;

use std::sync::Arc;

pub use api_token::{ApiTokenRecord, ApiTokenStore, NewApiToken};
pub use jwks::{FileJwks, HttpJwks, JwksCache, JwksSource};
pub use jwt::{JwtSettings, JwtVerifier};
pub use sessions::SessionRevocations;

use crate::principal::Principal;

/// Why a credential was refused. Messages are safe to return and to log: they never contain
/// the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer credential was presented")]
    Missing,
    #[error("the credential is malformed: {0}")]
    Malformed(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued for another audience")]
    WrongAudience,
    #[error("the token was issued by an untrusted issuer")]
    WrongIssuer,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token's algorithm {0} is not accepted here")]
    AlgorithmNotAllowed(String),
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the token's `{0}` claim is invalid")]
    InvalidClaim(&'static str),
    #[error("the API token is unknown or revoked")]
    UnknownApiToken,
    #[error("the session was revoked; sign in again")]
    Revoked,
    /// Not the caller's fault: the identity provider or token store could not be reached.
    #[error("credentials cannot be checked right now: {0}")]
    Unavailable(String),
}

impl AuthError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuthError::Unavailable(_))
    }
}

/// Authenticates a bearer credential of either kind, and refuses a revoked session.
pub struct Authenticator {
    pub jwt: JwtVerifier,
    pub api_tokens: Arc<dyn ApiTokenStore>,
    pub revocations: Arc<dyn SessionRevocations>,
}

impl Authenticator {
    /// `authorization` is the raw `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>, now: u64) -> Result<Principal, AuthError> {
        self.authenticate_until(authorization, now).await.map(|(principal, _)| principal)
    }

    /// [`Self::authenticate`], and when the credential expires (Unix seconds): what a session
    /// that outlives one request (an FTP login) must be held to.
    pub async fn authenticate_until(&self, authorization: Option<&str>, now: u64) -> Result<(Principal, u64), AuthError> {
        let header = authorization.map(str::trim).filter(|h| !h.is_empty()).ok_or(AuthError::Missing)?;
        let (scheme, credential) = header.split_once(' ').ok_or_else(|| AuthError::Malformed("expected `Bearer <token>`".into()))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed("expected the Bearer scheme".into()));
        }
        let credential = credential.trim();
        let (principal, expires_at) = if credential.starts_with(api_token::PREFIX) {
            api_token::authenticate_until(self.api_tokens.as_ref(), credential, now).await?
        } else {
            self.jwt.verify_until(credential, now).await?
        };
        match self.revocations.is_revoked(&principal.tenant, &principal.session).await {
            Ok(false) => Ok((principal, expires_at)),
            Ok(true) => Err(AuthError::Revoked),
            Err(e) => Err(AuthError::Unavailable(format!("session revocations: {e}"))),
        }
    }
}
