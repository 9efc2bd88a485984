//! The deployment's root secret for session tokens, tenant CDN labels and wrapped key delivery.
//! Each use gets its own subkey through HKDF, so a subkey leaking from one use says nothing
//! about the others, and one secret is all an operator has to provision and rotate.

use std::fmt;

use aws_lc_rs::hmac;
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
        self.derive::<32>(purpose, &[])
    }

    /// HKDF-SHA256 (RFC 5869) with the purpose and `context` parts (length-prefixed, so parts
    /// never run together) as `info`, for outputs of at most one hash length: then the expand step
    /// is a single HMAC block, `T(1) = HMAC(PRK, info || 0x01)`, which cannot fail (the general
    /// expand can, for lengths these keys never need).
    pub(crate) fn derive<const N: usize>(&self, purpose: Purpose, context: &[&[u8]]) -> Zeroizing<[u8; N]> {
        const { assert!(N <= 32, "one HKDF-SHA256 block holds at most 32 bytes") };
        let mut info = Zeroizing::new(purpose.info().to_vec());
        for part in context {
            info.extend_from_slice(&(part.len() as u32).to_be_bytes());
            info.extend_from_slice(part);
        }
        info.push(0x01);
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"vaultstream"), &self.0);
        let block = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &info);
        let mut out = Zeroizing::new([0u8; N]);
        out.copy_from_slice(&block.as_ref()[..N]);
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
        assert_ne!(*s.derive::<16>(Purpose::SessionWrap, &[b"ab", b"c"]), *s.derive::<16>(Purpose::SessionWrap, &[b"a", b"bc"]));
        assert_eq!(format!("{s:?}"), "ServiceSecret(<redacted>)");
    }

    #[test]
    fn derive_is_rfc_5869_hkdf_sha256() {
        use aws_lc_rs::hkdf;
        struct Len(usize);
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let s = ServiceSecret::from_bytes(vec![5; 32]).unwrap();
        let mut info = Purpose::SessionWrap.info().to_vec();
        info.extend_from_slice(&2u32.to_be_bytes());
        info.extend_from_slice(b"ab");
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vaultstream").extract(&s.0);
        let mut expected = [0u8; 16];
        prk.expand(&[&info], Len(16)).unwrap().fill(&mut expected).unwrap();
        assert_eq!(*s.derive::<16>(Purpose::SessionWrap, &[b"ab"]), expected);
    }
}
