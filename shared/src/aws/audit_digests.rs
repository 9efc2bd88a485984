//! The digest side of the ledger in AWS: an asymmetric KMS key signs, the Object Lock archive
//! bucket keeps the digests, and the ledger's `heads` index names every chain of a day.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use aws_sdk_s3::primitives::ByteStream;

use crate::audit::changes::check_archived;
use crate::audit::digest::{
    check_day, open_run, DayReport, Digest, DigestError, DigestProblem, DigestSigner, DigestStore, HeadEntry, HeadSource, SignedDigest,
    DIGEST_PREFIX,
};
use crate::audit::ledger::{HEAD_INDEX, HEAD_SLOTS};
use crate::audit::record::ChainId;
use crate::aws::audit_changes::S3ChangeArchive;
use crate::ids::TenantId;

const SIGNATURE_METADATA: &str = "signature";
const KEY_METADATA: &str = "signing-key";

fn kms_error<E: std::error::Error + 'static>(e: aws_sdk_kms::error::SdkError<E>) -> String {
    aws_sdk_kms::error::DisplayErrorContext(&e).to_string()
}

/// Signs digests with a KMS `ECC_NIST_P256` key (`ECDSA_SHA_256`); the private half never leaves KMS.
pub struct KmsDigestSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
    public_key: Vec<u8>,
}

impl KmsDigestSigner {
    /// Reads the public key once and checks the key can sign digests.
    pub async fn connect(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Result<Self, DigestError> {
        let key_id = key_id.into();
        let public_key = kms_public_key(&client, &key_id).await.map_err(DigestError::Signing)?;
        Ok(KmsDigestSigner { client, key_id, public_key })
    }
}

/// The digest key's public half (DER `SubjectPublicKeyInfo`), refusing a key that cannot sign
/// `ECDSA_SHA_256`.
pub async fn kms_public_key(client: &aws_sdk_kms::Client, key_id: &str) -> Result<Vec<u8>, String> {
    let out = client.get_public_key().key_id(key_id).send().await.map_err(|e| format!("cannot read KMS key {key_id}: {}", kms_error(e)))?;
    if !out.signing_algorithms().contains(&SigningAlgorithmSpec::EcdsaSha256) {
        return Err(format!("KMS key {key_id} cannot sign with ECDSA_SHA_256: the audit digest key must be ECC_NIST_P256, SIGN_VERIFY"));
    }
    out.public_key.map(Blob::into_inner).ok_or_else(|| format!("KMS returned no public key for {key_id}"))
}

#[async_trait::async_trait]
impl DigestSigner for KmsDigestSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    async fn sign(&self, bytes: &[u8]) -> Result<Vec<u8>, DigestError> {
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(bytes))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| DigestError::Signing(kms_error(e)))?;
        out.signature.map(Blob::into_inner).ok_or_else(|| DigestError::Signing("KMS returned no signature".into()))
    }
}

/// Digests as objects of the archive bucket, the signature and key id in the object's metadata
/// (as CloudTrail stores its digest signatures). The bucket's Object Lock keeps every version.
pub struct S3DigestStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

fn s3_error<E: std::error::Error + 'static>(e: aws_sdk_s3::error::SdkError<E>) -> DigestError {
    DigestError::Store(aws_sdk_s3::error::DisplayErrorContext(&e).to_string())
}

impl S3DigestStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3DigestStore { client, bucket: bucket.into() }
    }

    /// Keys under `prefix` (or after `start_after`, within [`DIGEST_PREFIX`]), in order.
    async fn keys(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, DigestError> {
        let keys = crate::aws::object_keys::list_keys(&self.client, &self.bucket, prefix, start_after).await.map_err(DigestError::Store)?;
        Ok(keys.into_iter().filter(|k| k.ends_with(".json")).collect())
    }

    pub async fn get(&self, key: &str) -> Result<SignedDigest, DigestError> {
        let out = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(s3_error)?;
        let metadata = out.metadata().cloned().unwrap_or_default();
        let bytes = out.body.collect().await.map_err(|e| DigestError::Store(format!("{key}: {e}")))?.into_bytes().to_vec();
        let signature = metadata.get(SIGNATURE_METADATA).and_then(|h| hex::decode(h).ok()).unwrap_or_default();
        let key_id = metadata.get(KEY_METADATA).cloned().unwrap_or_default();
        Ok(SignedDigest { key: key.to_string(), bytes, signature, key_id })
    }

    /// Every digest from the first one written on `day` up to the one that closes `day` (or the
    /// newest, while the day is open), in order, unverified.
    pub async fn run_covering(&self, day: &str) -> Result<Vec<SignedDigest>, DigestError> {
        let mut run = Vec::new();
        for key in self.keys(DIGEST_PREFIX, Some(&format!("{DIGEST_PREFIX}{day}"))).await? {
            let signed = self.get(&key).await?;
            let closes = signed.digest().ok().and_then(|d| d.day(day).map(|h| h.closed)).unwrap_or(false);
            run.push(signed);
            if closes {
                break;
            }
        }
        Ok(run)
    }
}

#[async_trait::async_trait]
impl DigestStore for S3DigestStore {
    async fn latest(&self, today: &str) -> Result<Option<SignedDigest>, DigestError> {
        // The writer runs hourly, so the newest digest is almost always in today's or
        // yesterday's folder; a full listing is the fallback after a long outage.
        let mut day = time::Date::parse(today, time::macros::format_description!("[year]-[month]-[day]")).ok();
        for _ in 0..7 {
            let Some(d) = day else { break };
            let folder = format!("{DIGEST_PREFIX}{:04}-{:02}-{:02}/", d.year(), d.month() as u8, d.day());
            if let Some(key) = self.keys(&folder, None).await?.pop() {
                return Ok(Some(self.get(&key).await?));
            }
            day = d.previous_day();
        }
        match self.keys(DIGEST_PREFIX, None).await?.pop() {
            Some(key) => Ok(Some(self.get(&key).await?)),
            None => Ok(None),
        }
    }

    async fn put(&self, digest: &SignedDigest) -> Result<(), DigestError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&digest.key)
            .if_none_match("*")
            .content_type("application/json")
            .metadata(SIGNATURE_METADATA, hex::encode(&digest.signature))
            .metadata(KEY_METADATA, &digest.key_id)
            .body(ByteStream::from(digest.bytes.clone()))
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }
}

/// Chain heads from the ledger's sparse `heads` index.
pub struct DynamoHeads {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoHeads {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoHeads { client, table: table.into() }
    }
}

#[async_trait::async_trait]
impl HeadSource for DynamoHeads {
    async fn heads(&self, days: &[String]) -> Result<Vec<HeadEntry>, DigestError> {
        let mut heads = Vec::new();
        for day in days {
            for slot in 0..HEAD_SLOTS {
                let mut pages = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(HEAD_INDEX)
                    .key_condition_expression("head_slot = :slot")
                    .expression_attribute_values(":slot", AttributeValue::S(format!("{day}#{slot}")))
                    .into_paginator()
                    .items()
                    .send();
                while let Some(item) = pages.next().await {
                    let item = item.map_err(|e| DigestError::Ledger(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()))?;
                    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                    let seq = item.get("seq").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
                    // A head whose fields do not read is recorded as seq 0 with no hash: the
                    // verifier then reports its chain as differing from the digest.
                    heads.push(HeadEntry {
                        chain: text("pk").unwrap_or_default(),
                        seq: seq.unwrap_or(0),
                        hash: text("hash").unwrap_or_default(),
                    });
                }
            }
        }
        Ok(heads)
    }
}

/// A tenant's day verified against the signed digests.
#[derive(Debug)]
pub struct SignedDayReport {
    pub report: DayReport,
    /// Set when the digests themselves do not verify; then nothing else is trusted.
    pub digest_problem: Option<DigestProblem>,
    pub digests_read: usize,
    /// Change-archive objects read, and the changes to this tenant's day among them.
    pub archive_objects_read: usize,
    pub changes_read: usize,
}

/// Verifies one tenant's day: the digests that cover it (signature, order, links), then every
/// chain of the day against them and against the change stream archived beside them in the same
/// bucket. `min_shards` widens the shards read beyond what the digests say (never narrows it).
pub async fn verify_day_signed(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    store: &S3DigestStore,
    public_key: &[u8],
    tenant: &TenantId,
    day: &str,
    min_shards: u16,
) -> Result<SignedDayReport, String> {
    let run = store.run_covering(day).await.map_err(|e| e.to_string())?;
    let (digests, digest_problem): (Vec<Digest>, _) = match open_run(&run, public_key) {
        Ok(digests) => (digests, None),
        Err(problem) => (Vec::new(), Some(problem)),
    };
    let shards = digests.iter().filter(|d| d.day(day).is_some()).map(|d| d.shards).max().unwrap_or(0).max(min_shards);
    let stored: BTreeMap<_, _> = crate::aws::ledger::read_day(dynamodb, table, tenant, day, shards).await?;
    let written = stored
        .iter()
        .map(|(shard, items)| {
            let chain = ChainId { tenant: tenant.clone(), day: day.to_string(), shard: *shard };
            let records = items.records.iter().filter_map(|(_, r)| r.as_ref().ok().map(|r| (r.seq, r.time.clone()))).collect();
            (chain.to_string(), records)
        })
        .collect();
    let archive = S3ChangeArchive::new(store.client.clone(), store.bucket.clone());
    let changes = archive.changes_since(day, &format!("{tenant}#{day}#")).await?;
    let mut report = check_day(tenant, day, &digests, stored);
    check_archived(&mut report, &written, &changes, time::OffsetDateTime::now_utc());
    Ok(SignedDayReport {
        report,
        digest_problem,
        digests_read: run.len(),
        archive_objects_read: changes.objects_read,
        changes_read: changes.count(),
    })
}
