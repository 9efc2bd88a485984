//! Staging and publishing. Everything is written under `DIR/.staging-<pid>` first; publishing
//! moves renditions into place, then writes manifest.json, then master.m3u8 last, so a reader
//! who sees a master playlist always sees a complete set. A failed run leaves nothing behind.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Result, TranscodeError};

pub struct Staging {
    out_dir: PathBuf,
    dir: PathBuf,
    created_out_dir: bool,
}

pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).map_err(|e| TranscodeError::output(&format!("writing {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| TranscodeError::output(&format!("publishing {}", path.display()), e))
}

impl Staging {
    /// Creates `out` (or accepts it when empty) and a private staging folder inside it.
    pub fn prepare(out: &Path) -> Result<Staging> {
        let out_dir = std::path::absolute(out).map_err(|e| TranscodeError::Usage(format!("bad --out {}: {e}", out.display())))?;
        let created_out_dir = match fs::read_dir(&out_dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(TranscodeError::Usage(format!(
                        "output folder {} is not empty; choose a new folder (published output is never overwritten)",
                        out_dir.display()
                    )));
                }
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&out_dir).map_err(|e| TranscodeError::output(&format!("creating {}", out_dir.display()), e))?;
                true
            }
            Err(e) => return Err(TranscodeError::Usage(format!("cannot use output folder {}: {e}", out_dir.display()))),
        };
        let dir = out_dir.join(format!(".staging-{}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| TranscodeError::output(&format!("creating {}", dir.display()), e))?;
        Ok(Staging { out_dir, dir, created_out_dir })
    }

    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn write(&self, relative: &str, contents: &[u8]) -> Result<()> {
        write_atomically(&self.dir.join(relative), contents)
    }

    /// Publishes `entries` (files or folders in staging, in order), then manifest.json, then
    /// master.m3u8.
    pub fn publish(self, entries: &[String], manifest: &[u8], master: &[u8]) -> Result<()> {
        for entry in entries {
            let (from, to) = (self.dir.join(entry), self.out_dir.join(entry));
            fs::rename(&from, &to).map_err(|e| TranscodeError::output(&format!("publishing {}", to.display()), e))?;
        }
        write_atomically(&self.out_dir.join("manifest.json"), manifest)?;
        write_atomically(&self.out_dir.join("master.m3u8"), master)?;
        // Whatever is left (folders of failed renditions) is not part of the output.
        let _ = fs::remove_dir_all(&self.dir);
        Ok(())
    }

    /// Removes everything this run wrote.
    pub fn abandon(self) {
        abandon_paths(&self.dir, &self.out_dir, self.created_out_dir);
    }

    pub fn cleanup_handle(&self) -> (PathBuf, PathBuf, bool) {
        (self.dir.clone(), self.out_dir.clone(), self.created_out_dir)
    }
}

pub fn abandon_paths(staging: &Path, out_dir: &Path, created_out_dir: bool) {
    let _ = fs::remove_dir_all(staging);
    if created_out_dir {
        // Only removes the folder when it is empty, i.e. we made it and nothing else is there.
        let _ = fs::remove_dir(out_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_non_empty_output_folder() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("keep.txt"), "x").unwrap();
        let err = Staging::prepare(dir.path()).err().unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("not empty"));
    }

    #[test]
    fn master_is_written_last_and_abandon_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let staging = Staging::prepare(&out).unwrap();
        fs::create_dir(staging.dir().join("360p")).unwrap();
        staging.write("360p/index.m3u8", b"#EXTM3U\n").unwrap();
        staging.publish(&["360p".into()], b"{}", b"#EXTM3U\n").unwrap();
        assert!(out.join("360p/index.m3u8").exists());
        assert!(out.join("master.m3u8").exists());
        assert_eq!(fs::read_dir(&out).unwrap().count(), 3);

        let out2 = dir.path().join("out2");
        let staging = Staging::prepare(&out2).unwrap();
        staging.write("x", b"1").unwrap();
        staging.abandon();
        assert!(!out2.exists());
    }
}
