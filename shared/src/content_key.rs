//! The content key: 16 random bytes per content item (or key period).
//!
//! The plaintext lives only in memory: `ContentKey` zeroizes on drop, has no `Display`, no
//! `Serialize`, and its `Debug` prints only a redaction marker, so it cannot leak through logs.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

pub const KEY_LEN: usize = 16;

#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct ContentKey([u8; KEY_LEN]);

impl ContentKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::getrandom(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        Ok(ContentKey(bytes))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        ContentKey(bytes)
    }

    /// Parses 32 hex digits (an optional `0x` prefix is accepted).
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        let digits = trimmed.strip_prefix("0x").unwrap_or(trimmed);
        let mut bytes = [0u8; KEY_LEN];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| {
            Error::InvalidKey(format!("expected {} hex digits (a 128-bit key), got {} characters", KEY_LEN * 2, digits.len()))
        })?;
        Ok(ContentKey(bytes))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

/// Names one key of a content item: `k0` for the first key period, `k1` for the next, …
///
/// Key ids appear in URLs (`/v1/keys/{content_id}/{key_id}`), so they are restricted to a
/// small, path-safe alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    pub fn for_period(period: usize) -> Self {
        KeyId(format!("k{period}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = Error;

    fn try_from(value: String) -> Result<Self, Error> {
        let ok = !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(KeyId(value))
        } else {
            Err(Error::InvalidKey(format!("key id {value:?} must be 1-64 characters of A-Z, a-z, 0-9, '-' or '_'")))
        }
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> String {
        id.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let key = ContentKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let printed = format!("{key:?}");
        assert_eq!(printed, "ContentKey(<redacted>)");
        assert!(!printed.contains("0011"));
    }

    #[test]
    fn hex_parsing_checks_length_and_digits() {
        assert!(ContentKey::from_hex("0x00112233445566778899aabbccddeeff").is_ok());
        let err = ContentKey::from_hex("abcd").unwrap_err().to_string();
        assert!(err.contains("32 hex digits"), "{err}");
        assert!(ContentKey::from_hex("zz112233445566778899aabbccddeeff").is_err());
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(ContentKey::generate().unwrap(), ContentKey::generate().unwrap());
    }

    #[test]
    fn key_ids_are_path_safe() {
        assert_eq!(KeyId::for_period(3).as_str(), "k3");
        assert!(KeyId::try_from("../etc".to_string()).is_err());
        assert!(KeyId::try_from("a/b".to_string()).is_err());
        assert!(KeyId::try_from(String::new()).is_err());
    }
}
