//! Policies signed with a PEM key in process: the local stack, tests and operators' CLI. Built
//! only with the `pem` feature, so Lambda packages (which sign with KMS) carry no OpenSSL.
//!
//! PEM signing goes through OpenSSL: it does RSA-SHA1 (CloudFront's default) as well as SHA-256
//! and ECDSA, and the pure-Rust `rsa` crate carries an open timing advisory for private-key use.

use async_trait::async_trait;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};

use crate::cdn::signer::{HashAlgorithm, KeyKind, PolicySigner, SignError};

pub(crate) fn digest(hash: HashAlgorithm) -> MessageDigest {
    match hash {
        HashAlgorithm::Sha1 => MessageDigest::sha1(),
        HashAlgorithm::Sha256 => MessageDigest::sha256(),
    }
}

pub struct PemPolicySigner {
    key: PKey<Private>,
    kind: KeyKind,
    hash: HashAlgorithm,
    key_pair_id: String,
}

impl std::fmt::Debug for PemPolicySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemPolicySigner")
            .field("kind", &self.kind)
            .field("hash", &self.hash)
            .field("key_pair_id", &self.key_pair_id)
            .finish_non_exhaustive()
    }
}

impl PemPolicySigner {
    /// Accepts PKCS#1 (`BEGIN RSA PRIVATE KEY`), SEC1 (`BEGIN EC PRIVATE KEY`) and PKCS#8
    /// (`BEGIN PRIVATE KEY`) PEM; the key type is detected, and must be RSA-2048 or P-256.
    pub fn from_pem(pem: &[u8], key_pair_id: impl Into<String>, hash: HashAlgorithm) -> Result<Self, SignError> {
        let key_pair_id = key_pair_id.into();
        if key_pair_id.is_empty() || !key_pair_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SignError::Config(format!("key pair id {key_pair_id:?} must be non-empty and alphanumeric")));
        }
        if !pem.windows(10).any(|w| w == b"-----BEGIN") {
            return Err(SignError::Key("not a PEM file (no -----BEGIN line)".into()));
        }
        let key = PKey::private_key_from_pem(pem)
            .map_err(|_| SignError::Key("the PEM does not hold a readable private key (a public key or certificate will not do)".into()))?;
        let kind = match key.id() {
            Id::RSA => {
                let bits = key.bits();
                if bits != 2048 {
                    return Err(SignError::Key(format!("CloudFront accepts RSA keys of 2048 bits; this one has {bits}")));
                }
                KeyKind::Rsa2048
            }
            Id::EC => {
                let curve = key.ec_key().ok().and_then(|ec| ec.group().curve_name());
                if curve != Some(Nid::X9_62_PRIME256V1) {
                    return Err(SignError::Key("CloudFront accepts ECDSA keys on P-256 (prime256v1) only".into()));
                }
                KeyKind::EcP256
            }
            other => return Err(SignError::Key(format!("unsupported key type {other:?}; use RSA-2048 or ECDSA P-256"))),
        };
        Ok(PemPolicySigner { key, kind, hash, key_pair_id })
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn sign_now(&self, policy: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut signer = openssl::sign::Signer::new(digest(self.hash), &self.key).map_err(|e| SignError::Failed(e.to_string()))?;
        signer.sign_oneshot_to_vec(policy).map_err(|e| SignError::Failed(e.to_string()))
    }

    /// The public half as PEM (SubjectPublicKeyInfo), as uploaded to CloudFront.
    pub fn public_key_pem(&self) -> Result<String, SignError> {
        let pem = self.key.public_key_to_pem().map_err(|e| SignError::Failed(e.to_string()))?;
        String::from_utf8(pem).map_err(|e| SignError::Failed(e.to_string()))
    }
}

#[async_trait]
impl PolicySigner for PemPolicySigner {
    fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    fn hash_algorithm(&self) -> HashAlgorithm {
        self.hash
    }

    async fn sign(&self, policy: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_now(policy)
    }
}
