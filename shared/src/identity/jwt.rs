//! JWT verification (`jsonwebtoken` on aws-lc-rs). The algorithm is chosen by the deployment and
//! the key, never by the token: the header's `alg` must be one the deployment configured and the
//! one the key is pinned to; `none` does not parse; HS256 uses only the configured secret.

use std::collections::HashSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::identity::jwks::JwksCache;
use crate::identity::AuthError;
use crate::ids::{SessionId, TenantId};
use crate::principal::{Credential, Principal, Scope};

/// What the deployment accepts.
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    /// Any of RS256, ES256, HS256.
    pub algorithms: Vec<Algorithm>,
    /// The shared secret for HS256 (the local stack); required when HS256 is accepted.
    pub hs256_secret: Option<Zeroizing<Vec<u8>>>,
    /// Allowed clock skew, at most 60 s.
    pub leeway_seconds: u64,
}

impl JwtSettings {
    pub fn parse_algorithms(list: &str) -> Result<Vec<Algorithm>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| match a {
                "RS256" => Ok(Algorithm::RS256),
                "ES256" => Ok(Algorithm::ES256),
                "HS256" => Ok(Algorithm::HS256),
                other => Err(format!("algorithm {other:?} is not supported; use RS256, ES256 or HS256")),
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct Claims {
    /// Checked by `jsonwebtoken` (required); kept for callers that must know when it ends.
    exp: u64,
    sub: Option<String>,
    tenant: Option<String>,
    scope: Option<String>,
    sid: Option<String>,
    iat: Option<u64>,
    nbf: Option<u64>,
}

pub struct JwtVerifier {
    settings: JwtSettings,
    jwks: Option<JwksCache>,
    hs256: Option<DecodingKey>,
}

impl JwtVerifier {
    pub fn new(mut settings: JwtSettings, jwks: Option<JwksCache>) -> Result<Self, String> {
        settings.leeway_seconds = settings.leeway_seconds.min(60);
        if settings.algorithms.is_empty() {
            return Err("no JWT algorithm is configured".into());
        }
        let asymmetric = settings.algorithms.iter().any(|a| *a != Algorithm::HS256);
        if asymmetric && jwks.is_none() {
            return Err("RS256/ES256 need a JWKS URL or file".into());
        }
        let hs256 = if settings.algorithms.contains(&Algorithm::HS256) {
            let secret = settings.hs256_secret.as_ref().ok_or("HS256 is enabled but no shared secret is configured")?;
            if secret.len() < 32 {
                return Err("the HS256 secret must be at least 32 bytes".into());
            }
            Some(DecodingKey::from_secret(secret))
        } else {
            None
        };
        Ok(JwtVerifier { settings, jwks, hs256 })
    }

    pub async fn verify(&self, token: &str, now: u64) -> Result<Principal, AuthError> {
        self.verify_until(token, now).await.map(|(principal, _)| principal)
    }

    /// [`Self::verify`], and the token's expiry (`exp`, Unix seconds).
    pub async fn verify_until(&self, token: &str, now: u64) -> Result<(Principal, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName => AuthError::AlgorithmNotAllowed("named in the header".into()),
            _ => AuthError::Malformed("not a JWT".into()),
        })?;
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(AuthError::AlgorithmNotAllowed(format!("{:?}", header.alg)));
        }
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.clone().ok_or(AuthError::AlgorithmNotAllowed("HS256".into()))?,
            alg => {
                let kid = header.kid.as_deref().ok_or(AuthError::MissingClaim("kid"))?;
                let jwks = self.jwks.as_ref().ok_or(AuthError::UnknownKey)?;
                let found = jwks.key(kid).await?;
                if found.algorithm != alg {
                    return Err(AuthError::AlgorithmNotAllowed(format!("{alg:?} with this key")));
                }
                (*found.key).clone()
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.settings.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.required_spec_claims = HashSet::from(["exp".to_string(), "iss".to_string(), "aud".to_string(), "sub".to_string()]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAllowed(format!("{:?}", header.alg)),
            ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(match c.as_str() {
                "exp" => "exp",
                "iss" => "iss",
                "aud" => "aud",
                _ => "sub",
            }),
            _ => AuthError::Malformed("the token's payload is not valid".into()),
        })?;
        let claims = data.claims;
        // `iat` or `nbf` must be present, and neither may lie in the future beyond the skew.
        let issued = claims.iat.or(claims.nbf).ok_or(AuthError::MissingClaim("iat"))?;
        if issued > now + self.settings.leeway_seconds {
            return Err(AuthError::NotYetValid);
        }
        let subject = claims
            .sub
            .filter(|s| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control))
            .ok_or(AuthError::InvalidClaim("sub"))?;
        let tenant =
            TenantId::parse(claims.tenant.ok_or(AuthError::MissingClaim("tenant"))?).map_err(|_| AuthError::InvalidClaim("tenant"))?;
        let session = SessionId::parse(claims.sid.ok_or(AuthError::MissingClaim("sid"))?).map_err(|_| AuthError::InvalidClaim("sid"))?;
        let scopes = Scope::parse_list(&claims.scope.ok_or(AuthError::MissingClaim("scope"))?);
        Ok((Principal { tenant, subject, session, scopes, credential: Credential::Jwt }, claims.exp))
    }
}
