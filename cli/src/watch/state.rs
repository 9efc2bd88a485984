//! What the agent remembers across restarts, in `DIR/.vaultstream-watch/state.json`: for each file
//! it started on, the content it created and the parts S3 already has; and the SHA-256 of every
//! file it delivered, so the same bytes dropped again are not delivered twice. Written whole to a
//! temporary file and renamed over the old one, so a crash leaves either state, never half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One file's upload in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// The file as it was when taken; a file changed since is a new upload.
    pub size: u64,
    pub modified_ns: u128,
    /// Sent with each declaration, so a restart gets the same content back (and fresh URLs).
    pub idempotency_key: String,
    /// SHA-256 of the bytes, hex, once computed: retries of a large file do not read it again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Part number to the ETag S3 returned for it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<u32, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    files: BTreeMap<String, Started>,
    /// SHA-256 (hex) of each delivered file's bytes, to the content it became.
    #[serde(default)]
    delivered: BTreeMap<String, String>,
}

pub struct State {
    path: PathBuf,
    stored: Stored,
}

impl State {
    /// The folder the agent keeps to itself inside the watched one.
    pub const DIR: &'static str = ".vaultstream-watch";

    pub fn load(watched: &Path) -> Result<State> {
        let dir = watched.join(Self::DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("state.json");
        let stored = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a state file this agent wrote; move it away to start afresh", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(State { path, stored })
    }

    pub fn get(&self, name: &str) -> Option<&Started> {
        self.stored.files.get(name)
    }

    pub fn put(&mut self, name: &str, started: Started) -> Result<()> {
        self.stored.files.insert(name.to_string(), started);
        self.save()
    }

    /// The content these bytes already became, if they were delivered before.
    pub fn delivered(&self, sha256: &str) -> Option<&String> {
        self.stored.delivered.get(sha256)
    }

    /// `name` is done: forget its upload, remember its bytes.
    pub fn finish(&mut self, name: &str, sha256: &str, content_id: &str) -> Result<()> {
        self.stored.files.remove(name);
        self.stored.delivered.insert(sha256.to_string(), content_id.to_string());
        self.save()
    }

    pub fn remove(&mut self, name: &str) -> Result<()> {
        if self.stored.files.remove(name).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<()> {
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(&self.stored)?).with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path).with_context(|| format!("replacing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_started_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::load(dir.path()).unwrap();
        let started = Started {
            size: 7,
            modified_ns: 1,
            idempotency_key: "k".into(),
            sha256: "abc".into(),
            content_id: Some("c".into()),
            upload_id: Some("u".into()),
            parts: BTreeMap::from([(1, "\"e1\"".to_string())]),
        };
        state.put("a.mp4", started.clone()).unwrap();
        assert_eq!(State::load(dir.path()).unwrap().get("a.mp4"), Some(&started));
        state.finish("a.mp4", "abc", "c").unwrap();
        let again = State::load(dir.path()).unwrap();
        assert_eq!((again.get("a.mp4"), again.delivered("abc").map(String::as_str)), (None, Some("c")));
        std::fs::write(dir.path().join(State::DIR).join("state.json"), "{not json").unwrap();
        let err = State::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("move it away"), "{err}");
    }
}
