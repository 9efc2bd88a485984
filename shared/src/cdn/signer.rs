//! Who signs policies: a PEM key in process (local stack, tests, operators' CLI;
//! `cdn::pem_signer`, behind the `pem` feature) or an asymmetric KMS key, so the production
//! signing key never leaves KMS.

use async_trait::async_trait;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// CloudFront's default; nothing is added to the URL or cookies.
    Sha1,
    /// Announced with `Hash-Algorithm=SHA256` (URLs) or `CloudFront-Hash-Algorithm` (cookies).
    Sha256,
}

impl HashAlgorithm {
    pub fn parse(text: &str) -> Result<Self, SignError> {
        match text.to_ascii_uppercase().as_str() {
            "SHA1" | "SHA-1" => Ok(HashAlgorithm::Sha1),
            "SHA256" | "SHA-256" => Ok(HashAlgorithm::Sha256),
            _ => Err(SignError::Config(format!("hash algorithm {text:?} is not SHA1 or SHA256"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
        }
    }
}

/// The key types CloudFront accepts in a trusted key group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    EcP256,
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("invalid signing key: {0}")]
    Key(String),
    #[error("invalid signing configuration: {0}")]
    Config(String),
    #[error("signing failed: {0}")]
    Failed(String),
    #[error("KMS could not sign right now: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait PolicySigner: Send + Sync {
    /// The public key's id in CloudFront (`Key-Pair-Id`).
    fn key_pair_id(&self) -> &str;
    fn hash_algorithm(&self) -> HashAlgorithm;
    /// Signs the policy bytes: PKCS#1 v1.5 for RSA, DER-encoded ECDSA for P-256.
    async fn sign(&self, policy: &[u8]) -> Result<Vec<u8>, SignError>;
}
