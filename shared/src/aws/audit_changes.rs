//! The ledger's change stream as Firehose archives it in the Object Lock bucket (`ledger/`).

use aws_sdk_s3::error::DisplayErrorContext;

use crate::audit::changes::{archive_day_prefix, read_archive_object, ArchivedChanges, ARCHIVE_PREFIX};
use crate::aws::object_keys::list_keys;

pub struct S3ChangeArchive {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3ChangeArchive {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3ChangeArchive { client, bucket: bucket.into() }
    }

    /// Every change to the chains starting `chain_prefix` archived from `day` on. A rewrite can
    /// come any time after the day, so every later object is read too.
    pub async fn changes_since(&self, day: &str, chain_prefix: &str) -> Result<ArchivedChanges, String> {
        let keys = list_keys(&self.client, &self.bucket, ARCHIVE_PREFIX, Some(&archive_day_prefix(day)))
            .await
            .map_err(|e| format!("cannot list the change archive: {e}"))?;
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            let object = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| format!("cannot read change archive object {key}: {}", DisplayErrorContext(&e)))?;
            let bytes = object.body.collect().await.map_err(|e| format!("cannot read change archive object {key}: {e}"))?.into_bytes();
            objects.push(read_archive_object(&bytes).map_err(|e| format!("change archive object {key}: {e}"))?);
        }
        Ok(ArchivedChanges::collect(chain_prefix, objects))
    }
}
