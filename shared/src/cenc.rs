//! Common encryption's identifiers and the W3C ClearKey licence exchange: what the transcoder
//! writes into `tenc`/`pssh` and the key service answers, so both agree without sharing state.
//!
//! A KID is derived, never stored as a secret: SHA-256 over the tenant, the content and the key
//! id (`c0`), first 16 bytes. The same title always has the same KIDs (a re-transcode keeps
//! licences valid for what players cached), two titles never share one, and the catalog
//! records them beside the wrapped keys so a licence request's KID finds its key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// W3C Common PSSH box format's system id for ClearKey (`1077efec-c0b2-4d02-ace3-3c1e52e2fb4b`).
pub const CLEARKEY_SYSTEM_ID: [u8; 16] = [0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b];
pub const CLEARKEY_URN: &str = "urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b";
/// The key id the CMAF packaging's content key has in a title's key set.
pub const CMAF_KEY_ID: &str = "c0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kid([u8; 16]);

impl Kid {
    pub fn derive(tenant: &str, content: &str, key_id: &str) -> Kid {
        let mut input = Vec::with_capacity(64);
        for part in ["vaultstream/kid/v1", tenant, content, key_id] {
            input.extend_from_slice(part.as_bytes());
            input.push(0);
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
        let mut kid = [0u8; 16];
        kid.copy_from_slice(&digest.as_ref()[..16]);
        Kid(kid)
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Kid {
        Kid(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// `8-4-4-4-12` hex, as DASH's `cenc:default_KID` and the catalog write it.
    pub fn uuid(&self) -> String {
        uuid::Uuid::from_bytes(self.0).hyphenated().to_string()
    }

    pub fn parse_uuid(text: &str) -> Option<Kid> {
        uuid::Uuid::parse_str(text).ok().map(|u| Kid(*u.as_bytes()))
    }

    /// Base64url without padding, as ClearKey licence requests and answers carry KIDs.
    pub fn base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn parse_base64url(text: &str) -> Option<Kid> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        Some(Kid(bytes.try_into().ok()?))
    }
}

impl std::fmt::Display for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uuid())
    }
}

/// A `pssh` box of `system_id`: version 1 listing `kids`, or version 0 when there are none.
pub fn pssh_box(system_id: &[u8; 16], kids: &[&Kid], data: &[u8]) -> Vec<u8> {
    let mut body = vec![u8::from(!kids.is_empty()), 0, 0, 0];
    body.extend_from_slice(system_id);
    if !kids.is_empty() {
        body.extend_from_slice(&(kids.len() as u32).to_be_bytes());
        for kid in kids {
            body.extend_from_slice(kid.as_bytes());
        }
    }
    body.extend_from_slice(&(data.len() as u32).to_be_bytes());
    body.extend_from_slice(data);
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(b"pssh");
    out.extend_from_slice(&body);
    out
}

/// What a browser's ClearKey CDM posts (`{"kids": [...], "type": "temporary"}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearKeyRequest {
    pub kids: Vec<String>,
    #[serde(rename = "type", default)]
    pub session_type: Option<String>,
}

/// One key of a ClearKey licence: `{"kty": "oct", "kid": …, "k": …}`.
#[derive(Debug, Clone, Serialize)]
pub struct ClearKeyJwk {
    pub kty: &'static str,
    pub kid: String,
    pub k: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClearKeyLicense {
    pub keys: Vec<ClearKeyJwk>,
    #[serde(rename = "type")]
    pub session_type: String,
}

impl ClearKeyLicense {
    pub fn key(kid: &Kid, key: &crate::ContentKey) -> ClearKeyJwk {
        ClearKeyJwk { kty: "oct", kid: kid.base64url(), k: URL_SAFE_NO_PAD.encode(key.expose()) }
    }
}
