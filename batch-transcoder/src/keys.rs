//! Content keys for one transcode: key periods, key files and the URIs playlists name.
//!
//! Key `k0` is the one given with `--key-hex` (or a fresh random one, or in `run` mode the one
//! KMS unwrapped); each later period (`--key-period-segments N`) gets a fresh random key. Every
//! rendition asks for the key of a segment index, so all rungs switch keys at the same segment.
//! `local` writes each key to a file it was asked for; `run` keeps keys in memory only.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use vaultstream::cenc::CMAF_KEY_ID;
use vaultstream::{ContentKey, KeyId};

use crate::cmaf::CmafKey;
use crate::error::{Result, TranscodeError};

pub const KEY_ID_PLACEHOLDER: &str = "{key_id}";

/// Where keys are kept besides memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStorage {
    /// A key file (16 raw bytes, mode 0600); `None` until the default path is known.
    File(Option<PathBuf>),
    /// Nowhere: `run` mode, where KMS holds the wrapped key and nothing may touch disk.
    MemoryOnly,
}

struct PeriodKey {
    id: KeyId,
    key: ContentKey,
    file: Option<PathBuf>,
}

/// What manifest.json records about a key: never the key itself.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub id: KeyId,
    pub first_segment: usize,
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CmafKeyRecord {
    pub id: KeyId,
    pub kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// `vaultstream` (KMS or the key file) or `key-provider` (a DRM vendor's SPEKE service).
    pub held_by: &'static str,
    /// The DRM systems signalled besides ClearKey's (a key provider's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub systems: Vec<String>,
}

pub struct KeyRing {
    keys: Mutex<Vec<PeriodKey>>,
    /// The CMAF packaging's key (`c0`), one for the whole title.
    cmaf: Option<(PeriodKey, CmafKey)>,
    period_segments: Option<usize>,
    base_file: Option<PathBuf>,
    uri_template: Option<String>,
    /// The default URI: the key file's path relative to a rendition folder.
    relative_uri: String,
}

impl KeyRing {
    /// `out_dir` must already exist (it anchors the default relative URI).
    pub fn new(
        first: ContentKey,
        storage: KeyStorage,
        period_segments: Option<usize>,
        uri_template: Option<String>,
        out_dir: &Path,
    ) -> Result<Self> {
        if let (Some(template), Some(_)) = (&uri_template, period_segments) {
            if !template.contains(KEY_ID_PLACEHOLDER) {
                return Err(TranscodeError::Usage(format!(
                    "--key-uri must contain {KEY_ID_PLACEHOLDER} when --key-period-segments is set, so each key period names its own key"
                )));
            }
        }
        let (base_file, relative_uri) = match storage {
            KeyStorage::File(Some(file)) => {
                let key_file = absolute(&file)?;
                let key_dir_probe = out_dir.join("rendition");
                let relative_uri =
                    pathdiff::diff_paths(&key_file, &key_dir_probe).map(|p| p.to_string_lossy().replace('\\', "/")).ok_or_else(|| {
                        TranscodeError::Usage("cannot express the key file relative to the output folder; pass --key-uri".into())
                    })?;
                (Some(key_file), relative_uri)
            }
            KeyStorage::File(None) => return Err(TranscodeError::Fatal("a key file was asked for without a path".into())),
            KeyStorage::MemoryOnly => {
                if uri_template.is_none() || period_segments.is_some() {
                    return Err(TranscodeError::Fatal("keys kept in memory need a key URI template and a single key period".into()));
                }
                (None, String::new())
            }
        };
        let ring = KeyRing { keys: Mutex::new(Vec::new()), cmaf: None, period_segments, base_file, uri_template, relative_uri };
        ring.store(PeriodKey { id: KeyId::for_period(0), key: first, file: ring.file_for(0) })?;
        Ok(ring)
    }

    /// Adds the CMAF packaging's key; `local` writes one it holds beside `k0` as `KEYFILE.c0`
    /// (a key provider's key stays the vendor's: no file).
    pub fn with_cmaf_key(mut self, cmaf: CmafKey) -> Result<Self> {
        let base = if cmaf.vendor.is_none() { self.base_file.as_ref() } else { None };
        let file = base.map(|base| {
            let mut name = base.as_os_str().to_owned();
            name.push(format!(".{CMAF_KEY_ID}"));
            PathBuf::from(name)
        });
        if let Some(file) = &file {
            write_key_file(file, &cmaf.key)?;
        }
        let id = KeyId::try_from(CMAF_KEY_ID.to_string()).map_err(|e| TranscodeError::Fatal(e.to_string()))?;
        self.cmaf = Some((PeriodKey { id, key: cmaf.key.clone(), file }, cmaf));
        Ok(self)
    }

    pub fn cmaf_key(&self) -> Option<CmafKey> {
        self.cmaf.as_ref().map(|(_, cmaf)| cmaf.clone())
    }

    /// What the CMAF media playlists name as the `identity` key's URI: the `--key-uri` template
    /// with `c0`, or the `.c0` key file relative to a rendition folder.
    pub fn cmaf_uri(&self) -> String {
        match &self.uri_template {
            Some(template) => template.replace(KEY_ID_PLACEHOLDER, CMAF_KEY_ID),
            None => {
                let name =
                    self.base_file.as_ref().and_then(|f| f.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let name = format!("{name}.{CMAF_KEY_ID}");
                match self.relative_uri.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/{name}"),
                    None => name,
                }
            }
        }
    }

    /// What manifest.json records of the CMAF key: its id, KID and file, never the key.
    pub fn cmaf_record(&self) -> Option<CmafKeyRecord> {
        self.cmaf.as_ref().map(|(k, cmaf)| CmafKeyRecord {
            id: k.id.clone(),
            kid: cmaf.kid.uuid(),
            file: k.file.clone(),
            held_by: if cmaf.vendor.is_some() { "key-provider" } else { "vaultstream" },
            systems: cmaf.vendor.iter().flatten().map(|s| s.system.name().to_string()).collect(),
        })
    }

    fn store(&self, period: PeriodKey) -> Result<()> {
        if let Some(file) = &period.file {
            write_key_file(file, &period.key)?;
        }
        self.keys.lock().map_err(|_| TranscodeError::Fatal("key ring lock poisoned".into()))?.push(period);
        Ok(())
    }

    fn file_for(&self, period: usize) -> Option<PathBuf> {
        let base = self.base_file.as_ref()?;
        if period == 0 {
            return Some(base.clone());
        }
        let mut name = base.as_os_str().to_owned();
        name.push(format!(".{}", KeyId::for_period(period)));
        Some(PathBuf::from(name))
    }

    fn uri_for(&self, period: usize) -> String {
        let id = KeyId::for_period(period);
        match &self.uri_template {
            Some(template) => template.replace(KEY_ID_PLACEHOLDER, id.as_str()),
            None => {
                let file = self.file_for(period).unwrap_or_default();
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                match self.relative_uri.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/{name}"),
                    None => name,
                }
            }
        }
    }

    /// The key (and the URI naming it) that encrypts segment `segment` of every rendition.
    pub fn for_segment(&self, segment: usize) -> Result<(ContentKey, String)> {
        let period = self.period_segments.map_or(0, |n| segment / n);
        let mut keys = self.keys.lock().map_err(|_| TranscodeError::Fatal("key ring lock poisoned".into()))?;
        while keys.len() <= period {
            let next = keys.len();
            let key = ContentKey::generate()?;
            let file = self.file_for(next);
            if let Some(file) = &file {
                write_key_file(file, &key)?;
            }
            keys.push(PeriodKey { id: KeyId::for_period(next), key, file });
        }
        Ok((keys[period].key.clone(), self.uri_for(period)))
    }

    pub fn records(&self) -> Vec<KeyRecord> {
        let keys = match self.keys.lock() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.iter()
            .enumerate()
            .map(|(i, k)| KeyRecord {
                id: k.id.clone(),
                first_segment: i * self.period_segments.unwrap_or(0),
                uri: self.uri_for(i),
                file: k.file.clone(),
            })
            .collect()
    }

    /// Removes every key file this run wrote (used when nothing gets published).
    pub fn discard(&self) {
        let cmaf = self.cmaf_record().and_then(|r| r.file);
        for file in self.records().into_iter().filter_map(|r| r.file).chain(cmaf) {
            let _ = std::fs::remove_file(file);
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| TranscodeError::Usage(format!("bad key file path {}: {e}", path.display())))
}

/// Writes the 16 raw key bytes (the format HLS clients fetch) readable by the owner only.
fn write_key_file(path: &Path, key: &ContentKey) -> Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            TranscodeError::Usage(format!("refusing to overwrite the existing key file {}; choose another --key-file", path.display()))
        } else {
            TranscodeError::output(&format!("cannot write key file {}", path.display()), e)
        }
    })?;
    file.write_all(key.expose()).map_err(|e| TranscodeError::output("writing key file", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_files_are_private_and_uris_relative() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let key = ContentKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let ring = KeyRing::new(key.clone(), KeyStorage::File(Some(dir.path().join("out.key"))), Some(2), None, &out).unwrap();
        let (k0, uri0) = ring.for_segment(1).unwrap();
        assert_eq!(k0, key);
        assert_eq!(uri0, "../../out.key");
        let (k1, uri1) = ring.for_segment(2).unwrap();
        assert_ne!(k1, key);
        assert_eq!(uri1, "../../out.key.k1");
        let bytes = std::fs::read(dir.path().join("out.key")).unwrap();
        assert_eq!(bytes, key.expose());
        let mode = std::fs::metadata(dir.path().join("out.key.k1")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let records = ring.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].first_segment, 2);
        ring.discard();
        assert!(!dir.path().join("out.key").exists());
    }

    #[test]
    fn templates_need_the_placeholder_with_periods() {
        let dir = tempfile::tempdir().unwrap();
        let key = ContentKey::generate().unwrap();
        let err =
            KeyRing::new(key.clone(), KeyStorage::File(Some(dir.path().join("a.key"))), Some(3), Some("https://k/x".into()), dir.path())
                .err()
                .unwrap();
        assert!(err.to_string().contains("{key_id}"));
        let ring =
            KeyRing::new(key, KeyStorage::File(Some(dir.path().join("b.key"))), Some(3), Some("skd://c1/{key_id}".into()), dir.path())
                .unwrap();
        assert_eq!(ring.for_segment(7).unwrap().1, "skd://c1/k2");
    }

    #[test]
    fn memory_only_keys_write_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = ContentKey::generate().unwrap();
        let ring = KeyRing::new(key.clone(), KeyStorage::MemoryOnly, None, Some("key://{key_id}".into()), dir.path()).unwrap();
        assert_eq!(ring.for_segment(40).unwrap(), (key, "key://k0".to_string()));
        assert!(ring.records()[0].file.is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was written");
        assert!(KeyRing::new(ContentKey::generate().unwrap(), KeyStorage::MemoryOnly, Some(2), Some("key://{key_id}".into()), dir.path())
            .is_err());
    }

    #[test]
    fn existing_key_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.key"), b"old").unwrap();
        let err = KeyRing::new(ContentKey::generate().unwrap(), KeyStorage::File(Some(dir.path().join("x.key"))), None, None, dir.path())
            .err()
            .unwrap();
        assert!(err.to_string().contains("refusing to overwrite"));
        assert_eq!(std::fs::read(dir.path().join("x.key")).unwrap(), b"old");
    }
}
