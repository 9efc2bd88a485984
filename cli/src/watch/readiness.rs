//! When a file in a watch folder is whole. A file still being copied must never be taken:
//! - on Linux, the kernel says when a writer closes it (`IN_CLOSE_WRITE`, or a rename into the
//!   folder, which `rsync` and most tools do once the file is complete), and `/proc` says whether
//!   any process still holds it open for writing;
//! - elsewhere, and for files found already there at start, a file is whole once its size and
//!   modification time have not changed for the settle time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub use super::regular_file::Identity;

/// What the folder says about one file right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub size: u64,
    pub modified: SystemTime,
    /// Which file the name stood for: another file put under the same name is a change.
    pub identity: Identity,
}

#[derive(Debug)]
struct Candidate {
    last: Observed,
    /// Since when `last` has not changed.
    unchanged_since: Instant,
    /// A writer closed it (or it was renamed in) after the last change was seen.
    closed: bool,
}

/// The files not yet taken, and whether each is whole.
#[derive(Debug)]
pub struct Readiness {
    settle: Duration,
    candidates: HashMap<PathBuf, Candidate>,
}

impl Readiness {
    pub fn new(settle: Duration) -> Self {
        Readiness { settle, candidates: HashMap::new() }
    }

    /// Records what a scan saw of `path`.
    pub fn observe(&mut self, path: &Path, seen: Observed, now: Instant) {
        match self.candidates.get_mut(path) {
            Some(c) if c.last == seen => {}
            Some(c) => {
                // Changed since: an earlier close says nothing about these bytes.
                *c = Candidate { last: seen, unchanged_since: now, closed: false };
            }
            None => {
                self.candidates.insert(path.to_path_buf(), Candidate { last: seen, unchanged_since: now, closed: false });
            }
        }
    }

    /// A writer closed `path`, or it was renamed into the folder; `seen` is the file after that.
    pub fn closed(&mut self, path: &Path, seen: Observed, now: Instant) {
        self.observe(path, seen, now);
        if let Some(c) = self.candidates.get_mut(path) {
            c.closed = true;
        }
    }

    /// Whether `path` may be taken: nobody writes it, and it was closed or has settled.
    pub fn is_whole(&self, path: &Path, open_for_writing: bool, now: Instant) -> bool {
        let Some(c) = self.candidates.get(path) else { return false };
        !open_for_writing && (c.closed || now.duration_since(c.unchanged_since) >= self.settle)
    }

    /// Whether `path` is still as last observed.
    pub fn unchanged(&self, path: &Path, seen: Observed) -> bool {
        self.candidates.get(path).is_some_and(|c| c.last == seen)
    }

    /// Forgets `path` (taken, or gone).
    pub fn forget(&mut self, path: &Path) {
        self.candidates.remove(path);
    }

    /// The files being watched, in no particular order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.candidates.keys().cloned().collect()
    }
}

/// Whether a process this user can see holds `path` open for writing (Linux: `/proc/*/fdinfo`).
/// Elsewhere nothing can be seen, and the settle time alone decides.
#[cfg(target_os = "linux")]
pub fn open_for_writing(path: &Path) -> bool {
    let Ok(target) = path.canonicalize() else { return false };
    let Ok(processes) = std::fs::read_dir("/proc") else { return false };
    for process in processes.flatten() {
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).ok().as_deref() != Some(target.as_path()) {
                continue;
            }
            let info = std::fs::read_to_string(process.path().join("fdinfo").join(fd.file_name())).unwrap_or_default();
            // `flags:` is octal; O_WRONLY is 1 and O_RDWR 2.
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).and_then(|f| u32::from_str_radix(f.trim(), 8).ok());
            if flags.is_some_and(|f| f & 0o3 != 0) {
                return true;
            }
        }
    }
    false
}

#[cfg(not(target_os = "linux"))]
pub fn open_for_writing(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(size: u64, secs: u64) -> Observed {
        Observed { size, modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs), identity: Identity { device: 1, inode: 1 } }
    }

    #[test]
    fn a_file_settles_only_once_it_stops_changing() {
        let mut r = Readiness::new(Duration::from_secs(5));
        let p = Path::new("/w/a.mp4");
        let t0 = Instant::now();
        r.observe(p, seen(10, 1), t0);
        assert!(!r.is_whole(p, false, t0 + Duration::from_secs(4)));
        r.observe(p, seen(20, 2), t0 + Duration::from_secs(4));
        assert!(!r.is_whole(p, false, t0 + Duration::from_secs(6)), "it grew: the clock starts again");
        assert!(r.is_whole(p, false, t0 + Duration::from_secs(9)));
        assert!(!r.is_whole(Path::new("/w/unknown.mp4"), false, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn a_close_after_writing_makes_a_file_whole_at_once_unless_someone_still_writes() {
        let mut r = Readiness::new(Duration::from_secs(5));
        let p = Path::new("/w/a.mp4");
        let t0 = Instant::now();
        r.closed(p, seen(10, 1), t0);
        assert!(r.is_whole(p, false, t0));
        assert!(!r.is_whole(p, true, t0 + Duration::from_secs(60)), "another writer still has it open");
        assert!(r.unchanged(p, seen(10, 1)) && !r.unchanged(p, seen(11, 2)));
        r.observe(p, seen(11, 2), t0);
        assert!(!r.is_whole(p, false, t0), "written again after the close");
        r.forget(p);
        assert!(r.paths().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_held_open_for_writing_is_seen() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copying.mp4");
        let mut writer = std::fs::File::create(&path).unwrap();
        writer.write_all(b"half").unwrap();
        assert!(open_for_writing(&path));
        let reader = std::fs::File::open(&path).unwrap();
        drop(writer);
        assert!(!open_for_writing(&path), "a reader is not a writer");
        drop(reader);
    }
}
