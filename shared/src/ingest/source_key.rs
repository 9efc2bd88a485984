//! Where an upload lands: `source/{tenant}/{content_id}/original` in the source bucket. Keys in S3
//! event notifications arrive URL-encoded (spaces as `+`); only keys of exactly this shape, with
//! valid ids, name content.

use crate::ids::{ContentId, TenantId};

pub const PREFIX: &str = "source/";
pub const LEAF: &str = "original";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceKey {
    pub tenant: TenantId,
    pub content: ContentId,
}

impl SourceKey {
    pub fn new(tenant: TenantId, content: ContentId) -> Self {
        SourceKey { tenant, content }
    }

    pub fn object_key(&self) -> String {
        format!("{PREFIX}{}/{}/{LEAF}", self.tenant, self.content)
    }

    /// Parses a key as S3 event notifications carry it (URL-encoded).
    pub fn from_event_key(encoded: &str) -> Result<Self, String> {
        let plus_as_space = encoded.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&plus_as_space)
            .decode_utf8()
            .map_err(|_| "the key is not valid UTF-8 once decoded".to_string())?;
        Self::parse(&decoded)
    }

    /// Parses a plain object key.
    pub fn parse(key: &str) -> Result<Self, String> {
        let rest = key.strip_prefix(PREFIX).ok_or_else(|| format!("{key:?} is not under {PREFIX}"))?;
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            [tenant, content, leaf] if *leaf == LEAF => Ok(SourceKey {
                tenant: TenantId::parse(*tenant).map_err(|e| format!("{key:?}: {e}"))?,
                content: ContentId::parse(*content).map_err(|e| format!("{key:?}: {e}"))?,
            }),
            _ => Err(format!("{key:?} is not source/{{tenant}}/{{content_id}}/{LEAF}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_decodes() {
        let key = SourceKey::new(TenantId::parse("acme").unwrap(), ContentId::parse("c_1").unwrap());
        assert_eq!(key.object_key(), "source/acme/c_1/original");
        assert_eq!(SourceKey::parse(&key.object_key()).unwrap(), key);
        assert_eq!(SourceKey::from_event_key("source%2Facme%2Fc_1%2Foriginal").unwrap(), key);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "source/acme/c1/original/x",
            "source/acme/c1/other",
            "source/acme/original",
            "other/acme/c1/original",
            "source/../c1/original",
            "source/acme/c%2F1/original",
            "source/ac+me/c1/original",
            "source/acme/c1/original%00",
        ] {
            assert!(SourceKey::from_event_key(bad).is_err(), "{bad} accepted");
        }
    }
}
