//! Files of the watch folder, opened once: never through a symbolic link (`O_NOFOLLOW`), never a
//! FIFO or device that would block or stream forever, and checked on the opened handle (`fstat`)
//! rather than by name. Everything the agent reads of a file (its hash, its parts, its sidecar)
//! comes from that one handle, so swapping the name for a link or another file after the check
//! changes nothing that is read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenRefusal {
    #[error("{0} is a symbolic link; the agent takes only regular files inside the folder (copy the file itself in)")]
    Link(String),
    #[error("{0} is not a regular file; the agent takes only regular files")]
    NotRegular(String),
    #[error("{0} was replaced while it was being taken; it is tried again once it settles")]
    Replaced(String),
    #[error("{0} is {1} bytes, more than the {2} read")]
    TooLarge(String, u64, u64),
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
}

/// Where a file lives: device and inode, what tells a file from another of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub device: u64,
    pub inode: u64,
}

impl Identity {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Identity { device: meta.dev(), inode: meta.ino() }
    }
}

/// A regular file, opened without following a link.
pub struct RegularFile {
    pub file: File,
    pub size: u64,
}

impl RegularFile {
    /// Opens `path` itself (not what a link names); `expected`, when given, is the identity the
    /// folder showed when the file was judged whole.
    pub fn open(path: &Path, expected: Option<Identity>) -> Result<Self, OpenRefusal> {
        let shown = path.display().to_string();
        let file =
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path).map_err(
                |e| match e.raw_os_error() {
                    Some(libc::ELOOP) => OpenRefusal::Link(shown.clone()),
                    _ => OpenRefusal::Io(shown.clone(), e),
                },
            )?;
        let meta = file.metadata().map_err(|e| OpenRefusal::Io(shown.clone(), e))?;
        if !meta.file_type().is_file() {
            return Err(OpenRefusal::NotRegular(shown));
        }
        let identity = Identity::of(&meta);
        if expected.is_some_and(|e| e != identity) {
            return Err(OpenRefusal::Replaced(shown));
        }
        Ok(RegularFile { file, size: meta.len() })
    }

    /// The whole file, refused before anything is read when it holds more than `limit` bytes.
    pub fn read_all(mut self, limit: u64, shown: &str) -> Result<Vec<u8>, OpenRefusal> {
        if self.size > limit {
            return Err(OpenRefusal::TooLarge(shown.to_string(), self.size, limit));
        }
        let mut bytes = Vec::with_capacity(self.size as usize);
        (&mut self.file).take(limit + 1).read_to_end(&mut bytes).map_err(|e| OpenRefusal::Io(shown.to_string(), e))?;
        if bytes.len() as u64 > limit {
            return Err(OpenRefusal::TooLarge(shown.to_string(), bytes.len() as u64, limit));
        }
        Ok(bytes)
    }

    /// The bytes `[start, start + len)` of the opened file.
    pub fn range(&self, start: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(start))?;
        let mut buffer = Vec::with_capacity(len as usize);
        file.take(len).read_to_end(&mut buffer)?;
        Ok(buffer)
    }

    /// SHA-256 of the opened file's bytes, hex.
    pub fn sha256(&self) -> std::io::Result<String> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))?;
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            context.update(&buffer[..n]);
        }
        Ok(hex::encode(context.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_swapped_files_are_refused_and_the_handle_keeps_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("secret.txt");
        std::fs::write(&outside, b"outside the folder").unwrap();
        let link = dir.path().join("film.mp4");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert!(matches!(RegularFile::open(&link, None), Err(OpenRefusal::Link(_))));

        let fifo = dir.path().join("pipe.mp4");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        assert!(matches!(RegularFile::open(&fifo, None), Err(OpenRefusal::NotRegular(_))), "a FIFO neither blocks nor is read");

        // Opened, then the name swapped for a link to a file outside: reads still see the
        // opened file's bytes.
        let media = dir.path().join("clip.mp4");
        std::fs::write(&media, b"the real clip").unwrap();
        let opened = RegularFile::open(&media, None).unwrap();
        let identity = Identity::of(&std::fs::symlink_metadata(&media).unwrap());
        std::fs::remove_file(&media).unwrap();
        std::os::unix::fs::symlink(&outside, &media).unwrap();
        assert_eq!(opened.range(0, opened.size).unwrap(), b"the real clip");
        assert_eq!(opened.sha256().unwrap(), hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"the real clip")));

        // Another regular file put in its place is told apart by its identity.
        std::fs::remove_file(&media).unwrap();
        std::fs::write(&media, b"another").unwrap();
        assert!(matches!(RegularFile::open(&media, Some(identity)), Err(OpenRefusal::Replaced(_))));

        // Too large: refused by its size before a byte is read.
        let big = dir.path().join("big.json");
        std::fs::File::create(&big).unwrap().set_len(384 << 20).unwrap();
        let refused = RegularFile::open(&big, None).unwrap().read_all(64 * 1024, "big.json").unwrap_err();
        assert!(refused.to_string().contains("402653184 bytes, more than the 65536"), "{refused}");
    }
}
