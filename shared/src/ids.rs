//! Validated identifiers. Every storage key is built from these, so a value that could escape its
//! prefix (`/`, `..`, `#`, whitespace) is refused before it reaches a table or a bucket.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused; the message names the kind of id and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub reason: String,
}

fn check(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    let fail = |reason: String| Err(InvalidId { kind, reason });
    if value.is_empty() {
        return fail("must not be empty".into());
    }
    if value.len() > 64 {
        return fail(format!("must be at most 64 characters, got {}", value.len()));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return fail(format!("may contain only letters, digits, '-' and '_', found {c:?}"));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check($kind, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant: the outermost prefix of every key in every table and bucket.
    TenantId,
    "tenant id"
);
id_type!(
    /// A content item within a tenant.
    ContentId,
    "content id"
);
id_type!(
    /// A viewer session (`sid` claim); session-bound tokens and revocation hang off it.
    SessionId,
    "session id"
);
id_type!(
    /// A published version of a content item (`v` + a time-ordered id), one folder in the origin.
    VersionId,
    "version id"
);
id_type!(
    /// A rendition folder name (`720p`, `audio`), as the transcoder writes it.
    RenditionName,
    "rendition name"
);
id_type!(
    /// A feed a tenant follows (a time-ordered id, 32 hex digits).
    FeedId,
    "feed id"
);
id_type!(
    /// A cloud bucket a tenant's monitor watches (a time-ordered id, 32 hex digits).
    MonitorId,
    "monitor id"
);
id_type!(
    /// A caption track of a content item (`en`, `en-sdh`, `fr-forced`), chosen by its creator.
    TrackName,
    "caption track name"
);

impl TenantId {
    /// The ledger for decisions about requests that carried no verifiable identity. A leading
    /// `_` never comes from an identity provider's tenant ids in this deployment.
    pub const UNAUTHENTICATED: &'static str = "_unauthenticated";

    pub fn unauthenticated() -> Self {
        TenantId(Self::UNAUTHENTICATED.to_string())
    }

    /// The ledger for pipeline decisions about events that name no valid tenant (an object
    /// written outside the source layout, a malformed message).
    pub const SYSTEM: &'static str = "_system";

    pub fn system() -> Self {
        TenantId(Self::SYSTEM.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_escapes_are_refused() {
        for bad in ["", "a/b", "..", "a#b", "a b", "ü", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(ContentId::parse("c_01-Ab").unwrap().as_str(), "c_01-Ab");
    }

    #[test]
    fn the_unauthenticated_tenant_is_a_valid_id() {
        assert_eq!(TenantId::parse(TenantId::UNAUTHENTICATED).unwrap(), TenantId::unauthenticated());
    }

    #[test]
    fn errors_name_the_id_and_rule() {
        let err = ContentId::parse("../x").unwrap_err();
        assert_eq!(err.to_string(), "invalid content id: may contain only letters, digits, '-' and '_', found '.'");
    }

    #[test]
    fn deserialisation_validates() {
        assert!(serde_json::from_str::<TenantId>("\"a/b\"").is_err());
        assert_eq!(serde_json::from_str::<TenantId>("\"acme\"").unwrap().as_str(), "acme");
    }
}
