//! `audit_digest`: on a schedule (EventBridge, hourly), signs a digest of every audit chain head
//! and stores it in the Object Lock archive. The only principal allowed to sign with the digest
//! key, and it reads the ledger without writing it.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use time::OffsetDateTime;
use tracing::Instrument;
use vaultstream::audit::digest::{publish, Digest, DigestError};
use vaultstream::aws::{DynamoHeads, KmsDigestSigner, S3DigestStore};

use crate::env::{ConfigError, Env};
use crate::wiring::{self, Aws};

pub struct AuditDigest {
    store: S3DigestStore,
    heads: DynamoHeads,
    signer: KmsDigestSigner,
    shards: u16,
}

impl AuditDigest {
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        const KEY: &str = "VAULTSTREAM_AUDIT_DIGEST_KEY_ID";
        let signer =
            KmsDigestSigner::connect(aws.kms().clone(), wiring::name(env, KEY)?).await.map_err(|e| ConfigError::new(KEY, e.to_string()))?;
        Ok(AuditDigest {
            store: S3DigestStore::new(aws.s3().clone(), wiring::name(env, "VAULTSTREAM_AUDIT_ARCHIVE_BUCKET")?),
            heads: DynamoHeads::new(aws.dynamodb().clone(), wiring::name(env, "VAULTSTREAM_AUDIT_TABLE")?),
            signer,
            shards: env.number("VAULTSTREAM_AUDIT_SHARDS", 4u16)?,
        })
    }

    /// Writes the digest as of `now`. An error fails the invocation, so the schedule's retries and
    /// the function's error alarm see it.
    pub async fn digest_at(&self, now: OffsetDateTime) -> Result<Digest, DigestError> {
        let digest = publish(&self.store, &self.heads, &self.signer, now, self.shards).await?;
        let chains: usize = digest.days.iter().map(|d| d.chains.len()).sum();
        tracing::info!(digest = digest.seq, key = %digest.key(), chains, closed_through = ?digest.closed_through, "audit digest signed");
        Ok(digest)
    }

    pub async fn handle(&self, event: EventBridgeEvent<serde_json::Value>) -> Result<Digest, DigestError> {
        let span = tracing::info_span!("audit_digest", request_id = %event.id.unwrap_or_default());
        self.digest_at(OffsetDateTime::now_utc()).instrument(span).await
    }
}
