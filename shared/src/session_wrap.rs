//! Wrapped key delivery for SDK clients: the content key leaves the key-delivery function
//! wrapped (AES key wrap, RFC 3394) under a key-encryption key derived with HKDF from the
//! service secret and the session (tenant, session, content). The playback call hands the same
//! KEK to the SDK over TLS once; intermediaries that log key responses then see only wrapped
//! bytes that are useless outside that session.

use aws_lc_rs::key_wrap::{AesKek, KeyWrap, AES_128};
use zeroize::Zeroizing;

use crate::content_key::{ContentKey, KEY_LEN};
use crate::ids::{ContentId, SessionId, TenantId};
use crate::service_secret::{Purpose, ServiceSecret};

/// AES-KW adds one 8-byte integrity block.
pub const WRAPPED_LEN: usize = KEY_LEN + 8;

/// The per-session key-encryption key. Zeroized on drop, never printed.
pub struct SessionKek(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for SessionKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKek(<redacted>)")
    }
}

impl SessionKek {
    pub fn derive(secret: &ServiceSecret, tenant: &TenantId, session: &SessionId, content: &ContentId) -> Self {
        SessionKek(secret.derive::<KEY_LEN>(
            Purpose::SessionWrap,
            &[tenant.as_str().as_bytes(), session.as_str().as_bytes(), content.as_str().as_bytes()],
        ))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SessionKek(Zeroizing::new(bytes))
    }

    /// For the one place it is meant to go: the playback response to the session's own client.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn kek(&self) -> Result<AesKek, crate::Error> {
        AesKek::new(&AES_128, &*self.0).map_err(|_| crate::Error::InvalidKey("the session key-encryption key was refused".into()))
    }

    pub fn wrap(&self, key: &ContentKey) -> Result<[u8; WRAPPED_LEN], crate::Error> {
        let mut out = [0u8; WRAPPED_LEN];
        self.kek()?.wrap(key.expose(), &mut out).map_err(|_| crate::Error::InvalidKey("the content key could not be wrapped".into()))?;
        Ok(out)
    }

    /// What an SDK client does with the wrapped bytes (AES-KW unwrap); fails when they were
    /// altered or wrapped for another session.
    pub fn open(&self, wrapped: &[u8]) -> Result<ContentKey, crate::Error> {
        let kek = self.kek()?;
        let mut out = Zeroizing::new([0u8; WRAPPED_LEN]);
        // RFC 3394's unwrap, named in full: it returns a Result, it does not panic.
        let plain = <AesKek as KeyWrap>::unwrap(kek, wrapped, &mut *out)
            .map_err(|_| crate::Error::InvalidKey("wrapped key failed its integrity check".into()))?;
        let bytes: [u8; KEY_LEN] = (&*plain).try_into().map_err(|_| crate::Error::InvalidKey("wrapped key has the wrong length".into()))?;
        Ok(ContentKey::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_for_one_session_only() {
        let secret = ServiceSecret::from_bytes(vec![9; 32]).unwrap();
        let (t, c) = (TenantId::parse("acme").unwrap(), ContentId::parse("c1").unwrap());
        let kek = SessionKek::derive(&secret, &t, &SessionId::parse("s1").unwrap(), &c);
        let other = SessionKek::derive(&secret, &t, &SessionId::parse("s2").unwrap(), &c);
        let key = ContentKey::from_bytes([5; KEY_LEN]);
        let wrapped = kek.wrap(&key).unwrap();
        assert_ne!(&wrapped[..KEY_LEN], key.expose());
        assert_eq!(kek.open(&wrapped).unwrap().expose(), key.expose());
        assert!(other.open(&wrapped).is_err());
    }

    #[test]
    fn rfc3394_vector() {
        // RFC 3394 §4.1: 128-bit key data wrapped with a 128-bit KEK.
        let kek = SessionKek::from_bytes(hex::decode("000102030405060708090A0B0C0D0E0F").unwrap().try_into().unwrap());
        let key = ContentKey::from_bytes(hex::decode("00112233445566778899AABBCCDDEEFF").unwrap().try_into().unwrap());
        assert_eq!(hex::encode_upper(kek.wrap(&key).unwrap()), "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5");
    }
}
