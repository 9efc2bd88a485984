//! Bucket monitors, their claims, the buckets they watch and the keys they hold, in memory, for
//! the rules' tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::ids::{MonitorId, TenantId};
use crate::ingest::ports::{
    CloudBuckets, FetchError, FetchedBody, FetchedHead, ListedObject, Monitor, MonitorSecrets, MonitorStore, MonitorStoreError, ObjectPage,
};

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
pub struct MemoryMonitors {
    monitors: Mutex<BTreeMap<(TenantId, MonitorId), Monitor>>,
    /// (tenant, monitor, digest) → outcome.
    objects: Mutex<BTreeMap<(TenantId, MonitorId, String), String>>,
    claims: std::sync::atomic::AtomicUsize,
}

impl MemoryMonitors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims asked for so far, won or not.
    pub fn claims(&self) -> usize {
        self.claims.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl MonitorStore for MemoryMonitors {
    async fn create(&self, monitor: &Monitor) -> Result<(), MonitorStoreError> {
        locked(&self.monitors).insert((monitor.tenant.clone(), monitor.monitor_id.clone()), monitor.clone());
        Ok(())
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<Monitor>, MonitorStoreError> {
        Ok(locked(&self.monitors).values().filter(|m| m.tenant == *tenant).cloned().collect())
    }

    async fn get(&self, tenant: &TenantId, monitor: &MonitorId) -> Result<Option<Monitor>, MonitorStoreError> {
        Ok(locked(&self.monitors).get(&(tenant.clone(), monitor.clone())).cloned())
    }

    async fn remove(&self, tenant: &TenantId, monitor: &MonitorId) -> Result<Option<Monitor>, MonitorStoreError> {
        Ok(locked(&self.monitors).remove(&(tenant.clone(), monitor.clone())))
    }

    async fn all(&self) -> Result<Vec<Monitor>, MonitorStoreError> {
        Ok(locked(&self.monitors).values().cloned().collect())
    }

    async fn record_poll(&self, monitor: &Monitor) -> Result<(), MonitorStoreError> {
        match locked(&self.monitors).get_mut(&(monitor.tenant.clone(), monitor.monitor_id.clone())) {
            Some(stored) => {
                *stored = monitor.clone();
                Ok(())
            }
            None => Err(MonitorStoreError::Absent(monitor.monitor_id.clone())),
        }
    }

    async fn unclaimed(&self, monitor: &Monitor, digests: &[String]) -> Result<Vec<String>, MonitorStoreError> {
        let objects = locked(&self.objects);
        Ok(digests
            .iter()
            .filter(|d| !objects.contains_key(&(monitor.tenant.clone(), monitor.monitor_id.clone(), d.to_string())))
            .cloned()
            .collect())
    }

    async fn claim_object(&self, monitor: &Monitor, digest: &str, _key: &str) -> Result<bool, MonitorStoreError> {
        self.claims.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut objects = locked(&self.objects);
        let key = (monitor.tenant.clone(), monitor.monitor_id.clone(), digest.to_string());
        if objects.contains_key(&key) {
            return Ok(false);
        }
        objects.insert(key, "claimed".into());
        Ok(true)
    }

    async fn settle_object(&self, monitor: &Monitor, digest: &str, outcome: &str) -> Result<(), MonitorStoreError> {
        locked(&self.objects).insert((monitor.tenant.clone(), monitor.monitor_id.clone(), digest.to_string()), outcome.to_string());
        Ok(())
    }

    async fn release_object(&self, monitor: &Monitor, digest: &str) -> Result<(), MonitorStoreError> {
        locked(&self.objects).remove(&(monitor.tenant.clone(), monitor.monitor_id.clone(), digest.to_string()));
        Ok(())
    }
}

/// A bucket's objects: key → (version, bytes).
type Objects = BTreeMap<String, (String, Vec<u8>)>;

/// Buckets by name: key → (version, bytes). Every monitor of a bucket reads the same objects;
/// a bucket named in `denied` refuses every request, as a role that does not trust us would.
#[derive(Default)]
pub struct MemoryBuckets {
    buckets: Mutex<BTreeMap<String, Objects>>,
    denied: Mutex<Vec<String>>,
    /// Objects per listing page.
    pub page_size: usize,
}

impl MemoryBuckets {
    pub fn new() -> Self {
        MemoryBuckets { page_size: 1000, ..Default::default() }
    }

    /// Writes (or overwrites, as a new version) an object.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let mut buckets = locked(&self.buckets);
        let objects = buckets.entry(bucket.to_string()).or_default();
        let version = crate::ingest::upload::sha256_hex(bytes)[..32].to_string();
        objects.insert(key.to_string(), (version, bytes.to_vec()));
    }

    pub fn deny(&self, bucket: &str) {
        locked(&self.denied).push(bucket.to_string());
    }

    fn check(&self, monitor: &Monitor) -> Result<(), FetchError> {
        if locked(&self.denied).contains(&monitor.bucket) {
            return Err(FetchError::Refused(format!("access to bucket {} was denied", monitor.bucket)));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl CloudBuckets for MemoryBuckets {
    async fn list(&self, monitor: &Monitor, page_token: Option<String>, start_after: Option<&str>) -> Result<ObjectPage, FetchError> {
        let after = page_token.or_else(|| start_after.map(str::to_string));
        self.check(monitor)?;
        let buckets = locked(&self.buckets);
        let Some(objects) = buckets.get(&monitor.bucket) else {
            return Err(FetchError::Refused(format!("bucket {} does not exist", monitor.bucket)));
        };
        let mut page = ObjectPage::default();
        for (key, (version, bytes)) in objects.iter().filter(|(k, _)| k.starts_with(&monitor.prefix)) {
            if after.as_ref().is_some_and(|a| key <= a) {
                continue;
            }
            if page.objects.len() == self.page_size.max(1) {
                page.next = page.objects.last().map(|o: &ListedObject| o.key.clone());
                break;
            }
            page.objects.push(ListedObject { key: key.clone(), version: version.clone(), size: bytes.len() as u64 });
        }
        Ok(page)
    }

    async fn open(&self, monitor: &Monitor, key: &str, version: &str) -> Result<Box<dyn FetchedBody>, FetchError> {
        self.check(monitor)?;
        let found = locked(&self.buckets).get(&monitor.bucket).and_then(|o| o.get(key).cloned());
        match found {
            Some((current, bytes)) if current == version => {
                let final_url = monitor.object_url(key).map_err(FetchError::Refused)?;
                let head = FetchedHead {
                    status: 200,
                    content_type: Some("binary/octet-stream".into()),
                    content_length: Some(bytes.len() as u64),
                    final_url,
                    etag: Some(current),
                    last_modified: None,
                };
                Ok(Box::new(MemoryBody { head, bytes: Some(bytes) }))
            }
            Some(_) => Err(FetchError::Refused(format!("{key} changed after it was listed; its new version is imported on its own"))),
            None => Err(FetchError::Refused(format!("{key} no longer exists in bucket {}", monitor.bucket))),
        }
    }
}

struct MemoryBody {
    head: FetchedHead,
    bytes: Option<Vec<u8>>,
}

#[async_trait::async_trait]
impl FetchedBody for MemoryBody {
    fn head(&self) -> &FetchedHead {
        &self.head
    }

    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        Ok(self.bytes.take().map(bytes::Bytes::from))
    }
}

/// Secrets by id.
#[derive(Default)]
pub struct MemorySecrets {
    pub secrets: Mutex<BTreeMap<String, String>>,
}

#[async_trait::async_trait]
impl MonitorSecrets for MemorySecrets {
    async fn store(&self, tenant: &TenantId, monitor: &MonitorId, key_json: &str) -> Result<String, String> {
        let id = format!("monitors/{tenant}/{monitor}");
        locked(&self.secrets).insert(id.clone(), key_json.to_string());
        Ok(id)
    }

    async fn remove(&self, secret_id: &str) -> Result<(), String> {
        locked(&self.secrets).remove(secret_id);
        Ok(())
    }
}
