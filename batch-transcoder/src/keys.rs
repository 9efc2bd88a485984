//! Content keys for one transcode: key periods, key files and the URIs playlists name.
//!
//! Key `k0` is the one given with `--key-hex` (or a fresh random one); each later period
//! (`--key-period-segments N`) gets a fresh random key. Every rendition asks for the key of a
//! segment index, so all rungs switch keys at the same segment.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use vaultstream::{ContentKey, KeyId};

use crate::error::{Result, TranscodeError};

pub const KEY_ID_PLACEHOLDER: &str = "{key_id}";

struct PeriodKey {
    id: KeyId,
    key: ContentKey,
    file: PathBuf,
}

/// What manifest.json records about a key: never the key itself.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub id: KeyId,
    pub first_segment: usize,
    pub uri: String,
    pub file: PathBuf,
}

pub struct KeyRing {
    keys: Mutex<Vec<PeriodKey>>,
    period_segments: Option<usize>,
    base_file: PathBuf,
    uri_template: Option<String>,
    /// The default URI: the key file's path relative to a rendition folder.
    relative_uri: String,
}

impl KeyRing {
    /// `out_dir` must already exist (it anchors the default relative URI).
    pub fn new(
        first: ContentKey,
        key_file: PathBuf,
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
        let key_file = absolute(&key_file)?;
        let key_dir_probe = out_dir.join("rendition");
        let relative_uri = pathdiff::diff_paths(&key_file, &key_dir_probe)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .ok_or_else(|| TranscodeError::Usage("cannot express the key file relative to the output folder; pass --key-uri".into()))?;
        let ring = KeyRing {
            keys: Mutex::new(Vec::new()),
            period_segments,
            base_file: key_file.clone(),
            uri_template,
            relative_uri,
        };
        ring.store(PeriodKey { id: KeyId::for_period(0), key: first, file: key_file })?;
        Ok(ring)
    }

    fn store(&self, period: PeriodKey) -> Result<()> {
        write_key_file(&period.file, &period.key)?;
        self.keys.lock().map_err(|_| TranscodeError::Fatal("key ring lock poisoned".into()))?.push(period);
        Ok(())
    }

    fn file_for(&self, period: usize) -> PathBuf {
        if period == 0 {
            return self.base_file.clone();
        }
        let mut name = self.base_file.as_os_str().to_owned();
        name.push(format!(".{}", KeyId::for_period(period)));
        PathBuf::from(name)
    }

    fn uri_for(&self, period: usize) -> String {
        let id = KeyId::for_period(period);
        match &self.uri_template {
            Some(template) => template.replace(KEY_ID_PLACEHOLDER, id.as_str()),
            None => {
                let file = self.file_for(period);
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
            write_key_file(&file, &key)?;
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
        for record in self.records() {
            let _ = std::fs::remove_file(record.file);
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
        let ring = KeyRing::new(key.clone(), dir.path().join("out.key"), Some(2), None, &out).unwrap();
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
        let err = KeyRing::new(key.clone(), dir.path().join("a.key"), Some(3), Some("https://k/x".into()), dir.path())
            .err()
            .unwrap();
        assert!(err.to_string().contains("{key_id}"));
        let ring = KeyRing::new(key, dir.path().join("b.key"), Some(3), Some("skd://c1/{key_id}".into()), dir.path()).unwrap();
        assert_eq!(ring.for_segment(7).unwrap().1, "skd://c1/k2");
    }

    #[test]
    fn existing_key_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.key"), b"old").unwrap();
        let err = KeyRing::new(ContentKey::generate().unwrap(), dir.path().join("x.key"), None, None, dir.path()).err().unwrap();
        assert!(err.to_string().contains("refusing to overwrite"));
        assert_eq!(std::fs::read(dir.path().join("x.key")).unwrap(), b"old");
    }
}
