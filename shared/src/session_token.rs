//! Session-bound playback and key tokens: an HMAC-SHA256 over tenant, content, session, key id,
//! delivery mode and expiry. They are minted only after the session and content checks passed,
//! so holding one is the third check's proof; verification compares in constant time.
//!
//! Format: `base64url(payload) "." base64url(HMAC(subkey, "vst1." base64url(payload)))`.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::ids::{ContentId, SessionId, TenantId};
use crate::service_secret::{Purpose, ServiceSecret};
use crate::KeyId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Lets its holder read the personalised playlists of one content item.
    Playback,
    /// Lets its holder fetch one key of one content item.
    Key,
    /// Proves, from an `HttpOnly` cookie playback set on the API host, that a key request comes
    /// from the session that started playback (for players that cannot add an `Authorization`
    /// header). Useless on its own: it opens nothing without a key token of the same session.
    Session,
}

/// The cookie that carries a [`TokenKind::Session`] token.
pub const SESSION_COOKIE: &str = "VaultStream-Session";

/// How key bytes leave the key-delivery function: raw for HLS players, AES-KW wrapped under a
/// per-session key for SDK clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    #[default]
    Raw,
    Wrapped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    #[serde(rename = "k")]
    pub kind: TokenKind,
    #[serde(rename = "t")]
    pub tenant: TenantId,
    #[serde(rename = "c")]
    pub content: ContentId,
    #[serde(rename = "s")]
    pub session: SessionId,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<KeyId>,
    #[serde(rename = "d", default)]
    pub delivery: Delivery,
    /// Expiry, seconds since the Unix epoch.
    #[serde(rename = "e")]
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token expired")]
    Expired,
    #[error("the token is a {0:?} token, not a {1:?} token")]
    WrongKind(TokenKind, TokenKind),
    #[error("the token was issued for another content item")]
    WrongContent,
    #[error("the token was issued for another key")]
    WrongKey,
    #[error("the token was issued for another session")]
    WrongSession,
    /// Minting failed: ours, not the caller's.
    #[error("a token could not be encoded: {0}")]
    Encoding(String),
}

/// What the request names; a token is accepted only for exactly this.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub kind: TokenKind,
    pub content: &'a ContentId,
    pub key_id: Option<&'a KeyId>,
    pub session: Option<&'a SessionId>,
}

pub struct TokenSigner {
    key: hmac::Key,
}

const DOMAIN: &[u8] = b"vst1.";

impl TokenSigner {
    pub fn new(secret: &ServiceSecret) -> Self {
        TokenSigner { key: secret.hmac_key(Purpose::SessionTokens) }
    }

    fn tag(&self, payload_b64: &str) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(DOMAIN);
        ctx.update(payload_b64.as_bytes());
        ctx.sign()
    }

    pub fn mint(&self, claims: &TokenClaims) -> Result<String, TokenError> {
        let claims = serde_json::to_vec(claims).map_err(|e| TokenError::Encoding(e.to_string()))?;
        let payload = URL_SAFE_NO_PAD.encode(claims);
        let tag = self.tag(&payload);
        Ok(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
    }

    /// Checks the MAC first (constant time), then what the claims say against the request.
    pub fn verify(&self, token: &str, expected: Expected<'_>, now: u64) -> Result<TokenClaims, TokenError> {
        let claims = self.open(token)?;
        claims.check(expected, now)?;
        Ok(claims)
    }

    /// The claims of a token whose MAC verifies, before they are checked against a request:
    /// enough to know whose token it is (and so whose ledger a refusal belongs in).
    pub fn open(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        let mut message = DOMAIN.to_vec();
        message.extend_from_slice(payload.as_bytes());
        hmac::verify(&self.key, &message, &tag).map_err(|_| TokenError::BadSignature)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
    }
}

impl TokenClaims {
    pub fn check(&self, expected: Expected<'_>, now: u64) -> Result<(), TokenError> {
        if self.kind != expected.kind {
            return Err(TokenError::WrongKind(self.kind, expected.kind));
        }
        if now >= self.expires_at {
            return Err(TokenError::Expired);
        }
        if &self.content != expected.content {
            return Err(TokenError::WrongContent);
        }
        if self.key_id.as_ref() != expected.key_id {
            return Err(TokenError::WrongKey);
        }
        if expected.session.is_some_and(|s| s != &self.session) {
            return Err(TokenError::WrongSession);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(&ServiceSecret::from_bytes(vec![1; 32]).unwrap())
    }

    fn claims() -> TokenClaims {
        TokenClaims {
            kind: TokenKind::Key,
            tenant: TenantId::parse("acme").unwrap(),
            content: ContentId::parse("c1").unwrap(),
            session: SessionId::parse("s1").unwrap(),
            key_id: Some(KeyId::for_period(0)),
            delivery: Delivery::Raw,
            expires_at: 1_000,
        }
    }

    fn expect<'a>(c: &'a ContentId, k: &'a KeyId) -> Expected<'a> {
        Expected { kind: TokenKind::Key, content: c, key_id: Some(k), session: None }
    }

    #[test]
    fn round_trip_and_every_mismatch() {
        let s = signer();
        let token = s.mint(&claims()).unwrap();
        let (c1, k0) = (ContentId::parse("c1").unwrap(), KeyId::for_period(0));
        assert_eq!(s.verify(&token, expect(&c1, &k0), 999).unwrap(), claims());
        assert_eq!(s.verify(&token, expect(&c1, &k0), 1_000), Err(TokenError::Expired));
        let c2 = ContentId::parse("c2").unwrap();
        assert_eq!(s.verify(&token, expect(&c2, &k0), 0), Err(TokenError::WrongContent));
        let k1 = KeyId::for_period(1);
        assert_eq!(s.verify(&token, expect(&c1, &k1), 0), Err(TokenError::WrongKey));
        let other = SessionId::parse("s2").unwrap();
        let e = Expected { session: Some(&other), ..expect(&c1, &k0) };
        assert_eq!(s.verify(&token, e, 0), Err(TokenError::WrongSession));
        let e = Expected { kind: TokenKind::Playback, key_id: None, ..expect(&c1, &k0) };
        assert!(matches!(s.verify(&token, e, 0), Err(TokenError::WrongKind(..))));
    }

    #[test]
    fn tampering_and_foreign_keys_fail() {
        let s = signer();
        let token = s.mint(&claims()).unwrap();
        let (c1, k0) = (ContentId::parse("c1").unwrap(), KeyId::for_period(0));
        let mut forged = claims();
        forged.expires_at = u64::MAX;
        let (_, tag) = token.split_once('.').unwrap();
        let tampered = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap()));
        assert_eq!(s.verify(&tampered, expect(&c1, &k0), 0), Err(TokenError::BadSignature));
        let other = TokenSigner::new(&ServiceSecret::from_bytes(vec![2; 32]).unwrap());
        assert_eq!(other.verify(&token, expect(&c1, &k0), 0), Err(TokenError::BadSignature));
        for junk in ["", "abc", "a.b", "!!.!!"] {
            assert!(s.verify(junk, expect(&c1, &k0), 0).is_err());
        }
    }
}
