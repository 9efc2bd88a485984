//! The deployment's root secret for session tokens, tenant CDN labels and wrapped key delivery.
//! Each use gets its own subkey through HKDF, so a subkey leaking from one use says nothing
//! about the others, and one secret is all an operator has to provision and rotate.

use std::fmt;

use aws_lc_rs::{hkdf, hmac};
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service secret: {0}")]
pub struct InvalidSecret(String);

pub struct ServiceSecret(Zeroizing<Vec<u8>>);

/// What a subkey is for; the label is the HKDF `info`, so subkeys never coincide.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    SessionTokens,
    TenantLabels,
    SessionWrap,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Purpose::SessionTokens => b"vaultstream/v1/session-tokens",
            Purpose::TenantLabels => b"vaultstream/v1/tenant-labels",
            Purpose::SessionWrap => b"vaultstream/v1/session-wrap",
        }
    }
}

pub(crate) struct Len(pub usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl ServiceSecret {
    pub const MIN_LEN: usize = 32;

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, InvalidSecret> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < Self::MIN_LEN {
            return Err(InvalidSecret(format!("needs at least {} bytes of entropy, got {}", Self::MIN_LEN, bytes.len())));
        }
        Ok(ServiceSecret(bytes))
    }

    /// Hex as an operator stores it in a secret store or environment variable.
    pub fn from_hex(text: &str) -> Result<Self, InvalidSecret> {
        let bytes = hex::decode(text.trim()).map_err(|e| InvalidSecret(format!("expected hex: {e}")))?;
        Self::from_bytes(bytes)
    }

    pub fn generate() -> Result<Self, crate::Error> {
        let mut bytes = vec![0u8; Self::MIN_LEN];
        getrandom::getrandom(&mut bytes).map_err(|e| crate::Error::Random(e.to_string()))?;
        Ok(ServiceSecret(Zeroizing::new(bytes)))
    }

    pub fn expose_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&*self.0))
    }

    pub(crate) fn subkey(&self, purpose: Purpose) -> Zeroizing<[u8; 32]> {
        self.derive(purpose, &[], 32).as_slice().try_into().map(Zeroizing::new).expect("32-byte HKDF output")
    }

    /// HKDF-SHA256 with the purpose and `context` parts (length-prefixed, so parts never run
    /// together) as `info`.
    pub(crate) fn derive(&self, purpose: Purpose, context: &[&[u8]], len: usize) -> Zeroizing<Vec<u8>> {
        let mut info = purpose.info().to_vec();
        for part in context {
            info.extend_from_slice(&(part.len() as u32).to_be_bytes());
            info.extend_from_slice(part);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vaultstream").extract(&self.0);
        let mut out = Zeroizing::new(vec![0u8; len]);
        prk.expand(&[&info], Len(len)).and_then(|okm| okm.fill(&mut out)).expect("HKDF-SHA256 output within 255 blocks");
        out
    }

    pub(crate) fn hmac_key(&self, purpose: Purpose) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &*self.subkey(purpose))
    }
}

impl fmt::Debug for ServiceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert!(ServiceSecret::from_hex("00ff").unwrap_err().to_string().contains("at least 32 bytes"));
        assert!(ServiceSecret::from_hex("zz").unwrap_err().to_string().contains("expected hex"));
    }

    #[test]
    fn purposes_get_distinct_subkeys() {
        let s = ServiceSecret::from_bytes(vec![7; 32]).unwrap();
        assert_ne!(*s.subkey(Purpose::SessionTokens), *s.subkey(Purpose::TenantLabels));
        assert_ne!(*s.derive(Purpose::SessionWrap, &[b"ab", b"c"], 16), *s.derive(Purpose::SessionWrap, &[b"a", b"bc"], 16));
        assert_eq!(format!("{s:?}"), "ServiceSecret(<redacted>)");
    }
}
