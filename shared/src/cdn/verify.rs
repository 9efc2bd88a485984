//! What a CloudFront edge checks before it serves private content: the signed cookies (or signed
//! URL parameters) against a trusted key group. The local stack's edge runs this rule; tests use
//! it to prove that what playback signs is what CloudFront would accept.
//!
//! The checks follow the CloudFront developer guide: the key pair id names a trusted public key;
//! the signature (PKCS#1 v1.5 for RSA, DER ECDSA for P-256, SHA-1 unless
//! `CloudFront-Hash-Algorithm`/`Hash-Algorithm` says SHA256) covers the policy bytes; the request
//! URL matches the policy's `Resource` (`*` any run of characters, `?` one); the request arrives
//! before `DateLessThan`, after `DateGreaterThan` when given, from inside `IpAddress` when given.
//! A canned policy is rebuilt from the URL and `Expires`, exactly as CloudFront does.

use std::collections::HashMap;
use std::net::IpAddr;

use openssl::pkey::{PKey, Public};
use serde::Deserialize;

use crate::cdn::cloudfront_base64_decode;
use crate::cdn::policy::Policy;
use crate::cdn::signer::HashAlgorithm;

/// Why the edge refuses a request; CloudFront answers each with 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("no signed cookies or signed URL parameters: sign in and start playback first")]
    MissingKey,
    #[error("the key pair id {0:?} is not in the trusted key group")]
    UnknownKeyPair(String),
    #[error("the signed policy is malformed: {0}")]
    MalformedPolicy(String),
    #[error("the signature does not match the policy")]
    BadSignature,
    #[error("the signed policy expired at {0}")]
    Expired(u64),
    #[error("the signed policy is not valid before {0}")]
    NotYetValid(u64),
    #[error("the request's address is outside the policy's IpAddress {0}")]
    WrongAddress(String),
    #[error("the policy's resource {0:?} does not cover this URL")]
    WrongResource(String),
}

/// The credential parts CloudFront reads, from cookies or from query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedCredentials {
    pub policy: Option<String>,
    pub expires: Option<String>,
    pub signature: Option<String>,
    pub key_pair_id: Option<String>,
    pub hash_algorithm: Option<String>,
}

impl SignedCredentials {
    /// From `CloudFront-*` cookies (the pairs of every `Cookie` header).
    pub fn from_cookies<'a>(cookies: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut c = SignedCredentials::default();
        for (name, value) in cookies {
            let slot = match name {
                "CloudFront-Policy" => &mut c.policy,
                "CloudFront-Expires" => &mut c.expires,
                "CloudFront-Signature" => &mut c.signature,
                "CloudFront-Key-Pair-Id" => &mut c.key_pair_id,
                "CloudFront-Hash-Algorithm" => &mut c.hash_algorithm,
                _ => continue,
            };
            *slot = Some(value.to_string());
        }
        c
    }

    /// From a signed URL's query parameters (`Policy`/`Expires`, `Signature`, `Key-Pair-Id`,
    /// `Hash-Algorithm`).
    pub fn from_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut c = SignedCredentials::default();
        for (name, value) in pairs {
            let slot = match name {
                "Policy" => &mut c.policy,
                "Expires" => &mut c.expires,
                "Signature" => &mut c.signature,
                "Key-Pair-Id" => &mut c.key_pair_id,
                "Hash-Algorithm" => &mut c.hash_algorithm,
                _ => continue,
            };
            *slot = Some(value.to_string());
        }
        c
    }

    fn is_empty(&self) -> bool {
        self.policy.is_none() && self.expires.is_none() && self.signature.is_none() && self.key_pair_id.is_none()
    }
}

/// A trusted key group: public keys by their CloudFront id.
#[derive(Default)]
pub struct TrustedKeys(HashMap<String, PKey<Public>>);

impl TrustedKeys {
    pub fn with_pem(mut self, key_pair_id: impl Into<String>, pem: &[u8]) -> Result<Self, Denial> {
        let key = PKey::public_key_from_pem(pem).map_err(|_| Denial::MalformedPolicy("the trusted public key is not PEM".into()))?;
        self.0.insert(key_pair_id.into(), key);
        Ok(self)
    }
}

/// The request as the edge sees it.
pub struct EdgeRequest<'a> {
    /// `scheme://host[:port]/path[?query]`, without the signing parameters.
    pub url: &'a str,
    pub client_ip: IpAddr,
    pub now: u64,
}

/// Allows the request or says why not.
pub fn verify(keys: &TrustedKeys, credentials: &SignedCredentials, request: &EdgeRequest<'_>) -> Result<(), Denial> {
    if credentials.is_empty() {
        return Err(Denial::MissingKey);
    }
    let key_pair_id = credentials.key_pair_id.as_deref().ok_or(Denial::MissingKey)?;
    let key = keys.0.get(key_pair_id).ok_or_else(|| Denial::UnknownKeyPair(key_pair_id.to_string()))?;
    let signature = credentials
        .signature
        .as_deref()
        .and_then(cloudfront_base64_decode)
        .ok_or_else(|| Denial::MalformedPolicy("the signature is missing or not CloudFront base64".into()))?;
    let hash = match credentials.hash_algorithm.as_deref() {
        None => HashAlgorithm::Sha1,
        Some(name) => HashAlgorithm::parse(name).map_err(|e| Denial::MalformedPolicy(e.to_string()))?,
    };
    let (policy_bytes, policy) = match (&credentials.policy, &credentials.expires) {
        (Some(encoded), _) => {
            let bytes =
                cloudfront_base64_decode(encoded).ok_or_else(|| Denial::MalformedPolicy("the policy is not CloudFront base64".into()))?;
            let policy = parse_policy(&bytes)?;
            (bytes, policy)
        }
        (None, Some(expires)) => {
            let expires = expires.parse::<u64>().map_err(|_| Denial::MalformedPolicy(format!("Expires {expires:?} is not a number")))?;
            let policy = Policy::expiring(request.url, expires);
            let json = policy.to_json().map_err(|e| Denial::MalformedPolicy(e.to_string()))?;
            (json.into_bytes(), policy)
        }
        (None, None) => return Err(Denial::MalformedPolicy("neither a policy nor an expiry".into())),
    };
    let digest = match hash {
        HashAlgorithm::Sha1 => openssl::hash::MessageDigest::sha1(),
        HashAlgorithm::Sha256 => openssl::hash::MessageDigest::sha256(),
    };
    let valid = openssl::sign::Verifier::new(digest, key).and_then(|mut v| v.verify_oneshot(&signature, &policy_bytes)).unwrap_or(false);
    if !valid {
        return Err(Denial::BadSignature);
    }
    if request.now >= policy.date_less_than {
        return Err(Denial::Expired(policy.date_less_than));
    }
    if let Some(start) = policy.date_greater_than {
        if request.now <= start {
            return Err(Denial::NotYetValid(start));
        }
    }
    if let Some(range) = &policy.ip_address {
        if !cidr_contains(range, request.client_ip) {
            return Err(Denial::WrongAddress(range.clone()));
        }
    }
    if !wildcard_match(&policy.resource, request.url) {
        return Err(Denial::WrongResource(policy.resource));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "Statement")]
    statement: Vec<Statement>,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "Resource")]
    resource: Option<String>,
    #[serde(rename = "Condition")]
    condition: Condition,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "DateLessThan")]
    date_less_than: Option<Epoch>,
    #[serde(rename = "DateGreaterThan")]
    date_greater_than: Option<Epoch>,
    #[serde(rename = "IpAddress")]
    ip_address: Option<SourceIp>,
}

#[derive(Deserialize)]
struct Epoch {
    #[serde(rename = "AWS:EpochTime")]
    time: u64,
}

#[derive(Deserialize)]
struct SourceIp {
    #[serde(rename = "AWS:SourceIp")]
    ip: String,
}

/// A custom policy: one statement, `DateLessThan` required (as CloudFront requires it); a
/// missing `Resource` means every URL.
fn parse_policy(bytes: &[u8]) -> Result<Policy, Denial> {
    let document: Document = serde_json::from_slice(bytes).map_err(|e| Denial::MalformedPolicy(e.to_string()))?;
    let [statement] = <[Statement; 1]>::try_from(document.statement)
        .map_err(|_| Denial::MalformedPolicy("a policy holds exactly one statement".into()))?;
    let date_less_than = statement.condition.date_less_than.ok_or_else(|| Denial::MalformedPolicy("DateLessThan is required".into()))?;
    Ok(Policy {
        resource: statement.resource.unwrap_or_else(|| "*".into()),
        date_less_than: date_less_than.time,
        date_greater_than: statement.condition.date_greater_than.map(|e| e.time),
        ip_address: statement.condition.ip_address.map(|s| s.ip),
    })
}

/// CloudFront's resource patterns: `*` matches any run of characters (none included), `?` one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn cidr_contains(range: &str, ip: IpAddr) -> bool {
    let (address, bits) = range.split_once('/').unwrap_or((range, if range.contains(':') { "128" } else { "32" }));
    let Ok(bits) = bits.parse::<u32>() else { return false };
    match (address.parse::<IpAddr>(), ip) {
        (Ok(IpAddr::V4(net)), IpAddr::V4(ip)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (Ok(IpAddr::V6(net)), IpAddr::V6(ip)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdn::{sign_cookies, PemPolicySigner, PolicySigner};

    fn signer(hash: HashAlgorithm) -> (PemPolicySigner, TrustedKeys) {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let signer = PemPolicySigner::from_pem(&rsa.private_key_to_pem().unwrap(), "K1", hash).unwrap();
        let keys = TrustedKeys::default().with_pem("K1", signer.public_key_pem().unwrap().as_bytes()).unwrap();
        (signer, keys)
    }

    async fn cookies(signer: &dyn PolicySigner, policy: &Policy) -> SignedCredentials {
        let signed = sign_cookies(signer, policy).await.unwrap();
        SignedCredentials::from_cookies(signed.0.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    fn at(url: &str, now: u64) -> EdgeRequest<'_> {
        EdgeRequest { url, client_ip: "192.0.2.10".parse().unwrap(), now }
    }

    const BASE: &str = "http://abc.cdn.localhost:8081/acme/c1/";

    #[tokio::test]
    async fn a_wildcard_policy_opens_its_prefix_and_nothing_else() {
        for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
            let (signer, keys) = signer(hash);
            let c = cookies(&signer, &Policy::expiring(format!("{BASE}*"), 2000)).await;
            assert_eq!(verify(&keys, &c, &at(&format!("{BASE}v1/720p/seg_00000.ts"), 1000)), Ok(()));
            assert!(matches!(
                verify(&keys, &c, &at("http://abc.cdn.localhost:8081/acme/c2/master.m3u8", 1000)),
                Err(Denial::WrongResource(_))
            ));
            assert_eq!(verify(&keys, &c, &at(&format!("{BASE}x"), 2000)), Err(Denial::Expired(2000)));
        }
    }

    #[tokio::test]
    async fn tampering_and_strangers_are_refused() {
        let (signer, keys) = signer(HashAlgorithm::Sha1);
        let url = format!("{BASE}a.ts");
        let good = cookies(&signer, &Policy::expiring(format!("{BASE}*"), 2000)).await;
        assert_eq!(verify(&keys, &SignedCredentials::default(), &at(&url, 1000)), Err(Denial::MissingKey));

        // A policy widened after signing.
        let widened = SignedCredentials {
            policy: Some(crate::cdn::cloudfront_base64(Policy::expiring("http://*", 2000).to_json().unwrap().as_bytes())),
            ..good.clone()
        };
        assert_eq!(verify(&keys, &widened, &at(&url, 1000)), Err(Denial::BadSignature));

        // Signed by another key under the trusted id.
        let (other, _) = signer_pair();
        let forged = cookies(&other, &Policy::expiring(format!("{BASE}*"), 2000)).await;
        assert_eq!(verify(&keys, &forged, &at(&url, 1000)), Err(Denial::BadSignature));

        let unknown = SignedCredentials { key_pair_id: Some("K9".into()), ..good.clone() };
        assert_eq!(verify(&keys, &unknown, &at(&url, 1000)), Err(Denial::UnknownKeyPair("K9".into())));

        // The hash algorithm is part of what was signed: claiming SHA256 over a SHA-1 signature fails.
        let switched = SignedCredentials { hash_algorithm: Some("SHA256".into()), ..good };
        assert_eq!(verify(&keys, &switched, &at(&url, 1000)), Err(Denial::BadSignature));
    }

    fn signer_pair() -> (PemPolicySigner, TrustedKeys) {
        signer(HashAlgorithm::Sha1)
    }

    #[tokio::test]
    async fn start_time_and_address_conditions_hold() {
        let (signer, keys) = signer(HashAlgorithm::Sha1);
        let policy = Policy {
            resource: format!("{BASE}*"),
            date_less_than: 2000,
            date_greater_than: Some(1500),
            ip_address: Some("192.0.2.0/24".into()),
        };
        let c = cookies(&signer, &policy).await;
        let url = format!("{BASE}a.ts");
        assert_eq!(verify(&keys, &c, &at(&url, 1000)), Err(Denial::NotYetValid(1500)));
        assert_eq!(verify(&keys, &c, &at(&url, 1600)), Ok(()));
        let elsewhere = EdgeRequest { url: &url, client_ip: "198.51.100.1".parse().unwrap(), now: 1600 };
        assert_eq!(verify(&keys, &c, &elsewhere), Err(Denial::WrongAddress("192.0.2.0/24".into())));
    }

    #[tokio::test]
    async fn canned_policies_are_rebuilt_from_the_url() {
        let (signer, keys) = signer(HashAlgorithm::Sha1);
        let url = format!("{BASE}master.m3u8");
        let signed = crate::cdn::sign_url(&signer, &url, &Policy::expiring(url.clone(), 2000)).await.unwrap();
        let query = url::Url::parse(&signed).unwrap();
        let pairs: Vec<(String, String)> = query.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let c = SignedCredentials::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(verify(&keys, &c, &at(&url, 1000)), Ok(()));
        assert_eq!(verify(&keys, &c, &at(&format!("{BASE}other.m3u8"), 1000)), Err(Denial::BadSignature));
    }

    #[test]
    fn wildcards_match_as_cloudfront_documents() {
        assert!(wildcard_match("https://d.net/a/*", "https://d.net/a/"));
        assert!(wildcard_match("https://d.net/a/*", "https://d.net/a/b/c.ts?x=1"));
        assert!(wildcard_match("https://d.net/a/?.ts", "https://d.net/a/1.ts"));
        assert!(!wildcard_match("https://d.net/a/?.ts", "https://d.net/a/12.ts"));
        assert!(!wildcard_match("https://d.net/a/*", "https://d.net/ab/c"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("https://*.net/*/x", "https://d.net/a/b/x"));
    }
}
