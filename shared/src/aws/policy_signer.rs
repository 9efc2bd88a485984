//! CloudFront policies signed by an asymmetric KMS key, so the production signing key never
//! leaves KMS.

use aws_sdk_kms::primitives::Blob;
#[allow(deprecated)]
use aws_sdk_kms::types::CustomerMasterKeySpec;
use aws_sdk_kms::types::{KeySpec, MessageType, SigningAlgorithmSpec};

use crate::cdn::{HashAlgorithm, PolicySigner, SignError};

/// Signs with an asymmetric KMS key (`RSA_2048` or `ECC_NIST_P256`, `SIGN_VERIFY`). KMS signs
/// SHA-256 digests only, so these signatures always use `Hash-Algorithm=SHA256`.
pub struct KmsPolicySigner {
    client: aws_sdk_kms::Client,
    key_id: String,
    key_pair_id: String,
    algorithm: SigningAlgorithmSpec,
}

impl KmsPolicySigner {
    /// Reads the key's spec once (`GetPublicKey`) to pick the signing algorithm.
    pub async fn connect(
        client: aws_sdk_kms::Client,
        key_id: impl Into<String>,
        key_pair_id: impl Into<String>,
    ) -> Result<Self, SignError> {
        let key_id = key_id.into();
        let public = client
            .get_public_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| SignError::Config(format!("cannot read KMS key {key_id}: {}", aws_sdk_kms::error::DisplayErrorContext(&e))))?;
        #[allow(deprecated)]
        let spec = public.key_spec().map(KeySpec::as_str).or(public.customer_master_key_spec().map(CustomerMasterKeySpec::as_str));
        if let Some(spec) = spec {
            if !matches!(spec, "RSA_2048" | "ECC_NIST_P256") {
                return Err(SignError::Config(format!("KMS key {key_id} has spec {spec}; CloudFront needs RSA_2048 or ECC_NIST_P256")));
            }
        }
        let offered = public.signing_algorithms();
        let algorithm = [SigningAlgorithmSpec::RsassaPkcs1V15Sha256, SigningAlgorithmSpec::EcdsaSha256]
            .into_iter()
            .find(|a| offered.contains(a))
            .ok_or_else(|| SignError::Config(format!("KMS key {key_id} cannot sign with RSASSA_PKCS1_V1_5_SHA_256 or ECDSA_SHA_256; CloudFront needs an RSA_2048 or ECC_NIST_P256 signing key")))?;
        Ok(KmsPolicySigner { client, key_id, key_pair_id: key_pair_id.into(), algorithm })
    }
}

#[async_trait::async_trait]
impl PolicySigner for KmsPolicySigner {
    fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    fn hash_algorithm(&self) -> HashAlgorithm {
        HashAlgorithm::Sha256
    }

    async fn sign(&self, policy: &[u8]) -> Result<Vec<u8>, SignError> {
        // KMS takes up to 4 KiB as a raw message (policies are a few hundred bytes); anything
        // longer is sent as its SHA-256 digest.
        let (message, kind) = if policy.len() <= 4096 {
            (policy.to_vec(), MessageType::Raw)
        } else {
            (aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, policy).as_ref().to_vec(), MessageType::Digest)
        };
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(kind)
            .signing_algorithm(self.algorithm.clone())
            .send()
            .await
            .map_err(|e| SignError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(&e).to_string()))?;
        out.signature.map(Blob::into_inner).ok_or_else(|| SignError::Failed("KMS returned no signature".into()))
    }
}
