//! The ingest ports in memory: a source bucket, a Batch that records submissions, and the queues
//! and notifications that failures and retries go to.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::catalog::JobRef;
use crate::ingest::ports::{
    CompletedPart, ContentFailed, FailureReports, ImportMessage, ImportQueue, JobRequest, JobSubmitter, ObjectHead, PresignedRequest,
    QueueMessage, Redelivery, RetryMessage, RetryQueue, SourceError, SourceStore, SourceWriter, SubmitError,
};
use crate::ingest::post_policy::{self, PostTarget, PresignedPost, SigningCredentials};

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone)]
struct StoredObject {
    bytes: Vec<u8>,
    content_type: String,
    etag: String,
}

/// An upload's parts by number: (ETag, bytes).
type StoredParts = BTreeMap<u32, (String, Vec<u8>)>;

/// A source bucket in memory. Presigned URLs point at `memory://`; tests put objects directly.
#[derive(Default)]
pub struct MemorySourceStore {
    objects: Mutex<HashMap<String, StoredObject>>,
    uploads: Mutex<HashMap<String, (String, String)>>,
    /// Parts stored through [`SourceWriter::upload_part`], by upload id.
    parts: Mutex<HashMap<String, StoredParts>>,
    next: AtomicU32,
}

impl MemorySourceStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an object as an upload would; returns its ETag.
    pub fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> String {
        let etag = format!("\"{}\"", hex::encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref()[..16]));
        locked(&self.objects).insert(key.to_string(), StoredObject { bytes, content_type: content_type.to_string(), etag: etag.clone() });
        etag
    }

    /// An object's bytes.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        locked(&self.objects).get(key).map(|o| o.bytes.clone())
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        locked(&self.uploads).len()
    }
}

#[async_trait::async_trait]
impl SourceStore for MemorySourceStore {
    async fn presign_put(&self, key: &str, content_type: &str, size: u64, _ttl: Duration) -> Result<PresignedRequest, SourceError> {
        let headers =
            BTreeMap::from([("content-type".to_string(), content_type.to_string()), ("content-length".to_string(), size.to_string())]);
        Ok(PresignedRequest { url: format!("memory://source/{key}"), headers })
    }

    async fn presign_post(&self, key: &str, content_type: &str, size: u64, ttl: Duration) -> Result<PresignedPost, SourceError> {
        let signer = SigningCredentials { access_key_id: "memory", secret_access_key: "memory", session_token: None, region: "local" };
        let target = PostTarget { bucket: "source", key, content_type, size };
        Ok(post_policy::presign_post("memory://source/".into(), &target, &signer, SystemTime::now(), ttl))
    }

    async fn start_multipart(&self, key: &str, content_type: &str) -> Result<String, SourceError> {
        let id = format!("upload-{}", self.next.fetch_add(1, Ordering::SeqCst));
        locked(&self.uploads).insert(id.clone(), (key.to_string(), content_type.to_string()));
        Ok(id)
    }

    async fn presign_part(&self, key: &str, upload_id: &str, part_number: u32, _ttl: Duration) -> Result<String, SourceError> {
        Ok(format!("memory://source/{key}?uploadId={upload_id}&partNumber={part_number}"))
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[CompletedPart]) -> Result<String, SourceError> {
        let (upload_key, content_type) =
            locked(&self.uploads).remove(upload_id).ok_or_else(|| SourceError::Rejected(format!("upload {upload_id} does not exist")))?;
        if upload_key != key {
            return Err(SourceError::Rejected(format!("upload {upload_id} is not for {key}")));
        }
        let stored = locked(&self.parts).remove(upload_id);
        let body: Vec<u8> = match stored {
            // Parts sent through this store: their bytes, checked against the ETags given.
            Some(stored) => {
                let mut body = Vec::new();
                for part in parts {
                    match stored.get(&part.part_number) {
                        Some((etag, bytes)) if *etag == part.etag => body.extend_from_slice(bytes),
                        _ => return Err(SourceError::Rejected(format!("InvalidPart: part {} does not match", part.part_number))),
                    }
                }
                body
            }
            // Parts a client sent to presigned URLs (not here): the ETags stand for the bytes.
            None => parts.iter().flat_map(|p| p.etag.bytes()).collect(),
        };
        Ok(self.put(key, &content_type, body))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, SourceError> {
        Ok(locked(&self.objects).get(key).map(|o| ObjectHead {
            size: o.bytes.len() as u64,
            etag: o.etag.clone(),
            content_type: Some(o.content_type.clone()),
        }))
    }

    async fn read_range(&self, key: &str, etag: &str, start: u64, len: u64) -> Result<Vec<u8>, SourceError> {
        let objects = locked(&self.objects);
        let object = objects.get(key).ok_or(SourceError::Changed)?;
        if object.etag != etag {
            return Err(SourceError::Changed);
        }
        let start = (start as usize).min(object.bytes.len());
        let end = start.saturating_add(len as usize).min(object.bytes.len());
        Ok(object.bytes[start..end].to_vec())
    }
}

#[async_trait::async_trait]
impl SourceWriter for MemorySourceStore {
    async fn put_object(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<String, SourceError> {
        Ok(self.put(key, content_type, body))
    }

    async fn upload_part(&self, key: &str, upload_id: &str, part_number: u32, body: Vec<u8>) -> Result<String, SourceError> {
        match locked(&self.uploads).get(upload_id) {
            Some((upload_key, _)) if upload_key == key => {}
            _ => return Err(SourceError::Rejected(format!("NoSuchUpload: {upload_id}"))),
        }
        let etag =
            format!("\"part-{part_number}-{}\"", hex::encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body).as_ref()[..8]));
        locked(&self.parts).entry(upload_id.to_string()).or_default().insert(part_number, (etag.clone(), body));
        Ok(etag)
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> Result<(), SourceError> {
        locked(&self.uploads).remove(upload_id);
        locked(&self.parts).remove(upload_id);
        Ok(())
    }
}

struct DroppedBody {
    head: crate::ingest::ports::FetchedHead,
    bytes: Option<Vec<u8>>,
}

#[async_trait::async_trait]
impl crate::ingest::ports::FetchedBody for DroppedBody {
    fn head(&self) -> &crate::ingest::ports::FetchedHead {
        &self.head
    }

    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, crate::ingest::ports::FetchError> {
        Ok(self.bytes.take().map(bytes::Bytes::from))
    }
}

#[async_trait::async_trait]
impl crate::ingest::ports::DropBox for MemorySourceStore {
    async fn open_dropped(
        &self,
        key: &str,
        etag: &str,
    ) -> Result<Box<dyn crate::ingest::ports::FetchedBody>, crate::ingest::ports::FetchError> {
        use crate::ingest::ports::FetchError;
        let object = locked(&self.objects)
            .get(key)
            .cloned()
            .ok_or_else(|| FetchError::Refused("the dropped file was deleted before it could be imported".into()))?;
        if object.etag.trim_matches('"') != etag {
            return Err(FetchError::Refused(
                "the dropped file was replaced after its upload finished; the new one is imported on its own".into(),
            ));
        }
        let final_url = url::Url::parse("ftp://drop/")
            .and_then(|u| u.join(key.strip_prefix("drop/").unwrap_or(key)))
            .map_err(|e| FetchError::Refused(e.to_string()))?;
        let head = crate::ingest::ports::FetchedHead {
            status: 200,
            content_type: Some(object.content_type.clone()),
            content_length: Some(object.bytes.len() as u64),
            final_url,
            etag: Some(object.etag.clone()),
            last_modified: None,
        };
        Ok(Box::new(DroppedBody { head, bytes: Some(object.bytes) }))
    }

    async fn quarantine_dropped(&self, key: &str, etag: &str, to: &str, reason: &str) -> Result<(), SourceError> {
        let mut objects = locked(&self.objects);
        let object = objects.get(key).filter(|o| o.etag.trim_matches('"') == etag).cloned();
        let object = object.ok_or(SourceError::Changed)?;
        let tagged = StoredObject { content_type: format!("{}; quarantine={reason}", object.content_type), ..object };
        objects.insert(to.to_string(), tagged);
        Ok(())
    }

    async fn remove_dropped(&self, key: &str) -> Result<(), SourceError> {
        locked(&self.objects).remove(key);
        Ok(())
    }
}

/// Batch in memory: records every submission and can be told to refuse.
#[derive(Default)]
pub struct MemoryJobs {
    submitted: Mutex<Vec<(JobRef, JobRequest)>>,
    refusing: Mutex<Option<String>>,
}

impl MemoryJobs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn submitted(&self) -> Vec<(JobRef, JobRequest)> {
        locked(&self.submitted).clone()
    }

    /// Every submission fails with `reason` until cleared with `None`.
    pub fn set_refusing(&self, reason: Option<&str>) {
        *locked(&self.refusing) = reason.map(str::to_string);
    }
}

#[async_trait::async_trait]
impl JobSubmitter for MemoryJobs {
    async fn submit(&self, request: &JobRequest) -> Result<JobRef, SubmitError> {
        if let Some(reason) = locked(&self.refusing).clone() {
            return Err(SubmitError(reason));
        }
        let mut submitted = locked(&self.submitted);
        let job = JobRef { id: format!("job-{}", submitted.len() + 1), queue: request.queue.as_str().to_string() };
        submitted.push((job.clone(), request.clone()));
        Ok(job)
    }
}

/// Retries, dead letters, notifications and postponed messages, kept for inspection.
#[derive(Default)]
pub struct MemoryQueues {
    retries: Mutex<Vec<(RetryMessage, Duration)>>,
    dead_letters: Mutex<Vec<ContentFailed>>,
    notifications: Mutex<Vec<ContentFailed>>,
    postponed: Mutex<Vec<(String, Duration)>>,
    imports: Mutex<Vec<ImportMessage>>,
}

impl MemoryQueues {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn retries(&self) -> Vec<(RetryMessage, Duration)> {
        locked(&self.retries).clone()
    }

    pub fn dead_letters(&self) -> Vec<ContentFailed> {
        locked(&self.dead_letters).clone()
    }

    pub fn notifications(&self) -> Vec<ContentFailed> {
        locked(&self.notifications).clone()
    }

    /// (message id, delay) of every postponed message.
    pub fn postponed(&self) -> Vec<(String, Duration)> {
        locked(&self.postponed).clone()
    }

    /// Every URL import queued, in order.
    pub fn imports(&self) -> Vec<ImportMessage> {
        locked(&self.imports).clone()
    }
}

#[async_trait::async_trait]
impl ImportQueue for MemoryQueues {
    async fn enqueue(&self, message: &ImportMessage) -> Result<(), String> {
        locked(&self.imports).push(message.clone());
        Ok(())
    }
}

#[async_trait::async_trait]
impl RetryQueue for MemoryQueues {
    async fn schedule(&self, message: &RetryMessage, delay: Duration) -> Result<(), String> {
        locked(&self.retries).push((message.clone(), delay));
        Ok(())
    }
}

#[async_trait::async_trait]
impl FailureReports for MemoryQueues {
    async fn dead_letter(&self, failed: &ContentFailed) -> Result<(), String> {
        locked(&self.dead_letters).push(failed.clone());
        Ok(())
    }

    async fn notify(&self, failed: &ContentFailed) -> Result<(), String> {
        locked(&self.notifications).push(failed.clone());
        Ok(())
    }
}

#[async_trait::async_trait]
impl Redelivery for MemoryQueues {
    async fn postpone(&self, message: &QueueMessage, delay: Duration) -> Result<(), String> {
        locked(&self.postponed).push((message.message_id.clone(), delay));
        Ok(())
    }
}
