//! `run` mode's input: the uploaded source, copied from the source bucket to a private scratch
//! file, and checked to be exactly the object dispatch accepted: the same ETag (the download is
//! conditional on it), the declared size, and an MD5 that reproduces the ETag (S3 computes it so
//! for SSE-S3 objects: the MD5 of a single PUT, or the MD5 of the parts' MD5s and `-N` for a
//! multipart upload).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aws_sdk_s3::error::DisplayErrorContext;
use openssl::hash::{Hasher, MessageDigest};

use crate::error::{Result, TranscodeError};

/// What the object must be.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// Quoted, as S3 reports it; `None` downloads whatever is there (manual runs).
    pub etag: Option<&'a str>,
    pub size: u64,
    /// For a multipart upload: the part size it was uploaded with.
    pub part_size: Option<u64>,
}

/// Computes S3's ETag for an SSE-S3 object as bytes stream past.
struct EtagHasher {
    part_size: Option<u64>,
    whole: Hasher,
    part: Hasher,
    in_part: u64,
    part_digests: Vec<u8>,
    parts: u64,
}

fn md5() -> Result<Hasher> {
    Hasher::new(MessageDigest::md5()).map_err(|e| TranscodeError::Fatal(format!("MD5: {e}")))
}

impl EtagHasher {
    fn new(part_size: Option<u64>) -> Result<Self> {
        Ok(EtagHasher { part_size, whole: md5()?, part: md5()?, in_part: 0, part_digests: Vec::new(), parts: 0 })
    }

    fn update(&mut self, mut bytes: &[u8]) -> Result<()> {
        let fail = |e: openssl::error::ErrorStack| TranscodeError::Fatal(format!("MD5: {e}"));
        self.whole.update(bytes).map_err(fail)?;
        let Some(part_size) = self.part_size else { return Ok(()) };
        while !bytes.is_empty() {
            let take = ((part_size - self.in_part) as usize).min(bytes.len());
            self.part.update(&bytes[..take]).map_err(fail)?;
            self.in_part += take as u64;
            bytes = &bytes[take..];
            if self.in_part == part_size {
                self.close_part()?;
            }
        }
        Ok(())
    }

    fn close_part(&mut self) -> Result<()> {
        let digest = self.part.finish().map_err(|e| TranscodeError::Fatal(format!("MD5: {e}")))?;
        self.part_digests.extend_from_slice(&digest);
        self.parts += 1;
        self.in_part = 0;
        self.part = md5()?;
        Ok(())
    }

    /// The ETag S3 would report, unquoted: single-PUT form, and multipart form when a part size is known.
    fn finish(mut self) -> Result<(String, Option<String>)> {
        let whole = hex::encode(self.whole.finish().map_err(|e| TranscodeError::Fatal(format!("MD5: {e}")))?);
        if self.part_size.is_none() {
            return Ok((whole, None));
        }
        if self.in_part > 0 {
            self.close_part()?;
        }
        let mut of_parts = md5()?;
        of_parts.update(&self.part_digests).map_err(|e| TranscodeError::Fatal(format!("MD5: {e}")))?;
        let multipart =
            format!("{}-{}", hex::encode(of_parts.finish().map_err(|e| TranscodeError::Fatal(format!("MD5: {e}")))?), self.parts);
        Ok((whole, Some(multipart)))
    }
}

/// Whether `etag` is one this download reproduces.
fn etag_matches(etag: &str, (whole, multipart): &(String, Option<String>)) -> Option<bool> {
    let etag = etag.trim_matches('"');
    if etag.contains('-') {
        multipart.as_ref().map(|m| m == etag)
    } else if etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(etag.eq_ignore_ascii_case(whole))
    } else {
        None
    }
}

/// Downloads `key` to `dest` (created, mode 0600) and checks it; returns its size.
pub async fn fetch(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, expected: &Expected<'_>, dest: &Path) -> Result<u64> {
    let mut request = s3.get_object().bucket(bucket).key(key);
    if let Some(etag) = expected.etag {
        request = request.if_match(etag);
    }
    let mut object = match request.send().await {
        Ok(object) => object,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
            return Err(TranscodeError::InvalidInput(
                "the uploaded source was replaced after it was accepted; upload it again as new content".into(),
            ));
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
            return Err(TranscodeError::InvalidInput("the uploaded source no longer exists; upload it again".into()));
        }
        Err(e) => return Err(TranscodeError::Temporary(format!("reading s3://{bucket}/{key}: {}", DisplayErrorContext(e)))),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| TranscodeError::output(&format!("creating {}", dest.display()), e))?;
    let mut hasher = EtagHasher::new(expected.part_size)?;
    let mut size = 0u64;
    while let Some(chunk) =
        object.body.try_next().await.map_err(|e| TranscodeError::Temporary(format!("reading s3://{bucket}/{key}: {e}")))?
    {
        size += chunk.len() as u64;
        if size > expected.size {
            return Err(TranscodeError::InvalidInput(format!("the source is larger than the declared {} bytes", expected.size)));
        }
        hasher.update(&chunk)?;
        file.write_all(&chunk).map_err(|e| TranscodeError::output(&format!("writing {}", dest.display()), e))?;
    }
    file.sync_all().map_err(|e| TranscodeError::output(&format!("writing {}", dest.display()), e))?;
    if size != expected.size {
        return Err(TranscodeError::Temporary(format!("the download ended after {size} of {} bytes", expected.size)));
    }
    let computed = hasher.finish()?;
    match expected.etag.map(|etag| (etag, etag_matches(etag, &computed))) {
        Some((etag, Some(false))) => {
            Err(TranscodeError::Temporary(format!("the downloaded source does not match its ETag {etag}; it was corrupted in transit")))
        }
        Some((etag, None)) => {
            tracing::warn!(%etag, "this ETag is not an MD5 form the download can reproduce; checked size and ETag precondition only");
            Ok(size)
        }
        _ => Ok(size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etags(bytes: &[u8], part_size: Option<u64>, chunk: usize) -> (String, Option<String>) {
        let mut h = EtagHasher::new(part_size).unwrap();
        for piece in bytes.chunks(chunk) {
            h.update(piece).unwrap();
        }
        h.finish().unwrap()
    }

    #[test]
    fn reproduces_s3_etags_whatever_the_chunking() {
        let (whole, _) = etags(b"hello", None, 2);
        assert_eq!(whole, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(etag_matches("\"5d41402abc4b2a76b9719d911017c592\"", &(whole, None)), Some(true));
        // Two parts of 3 bytes and a last one of 1: md5(md5("abc") ‖ md5("def") ‖ md5("g"))-3.
        let data = b"abcdefg";
        let a = etags(data, Some(3), 1);
        let b = etags(data, Some(3), 7);
        assert_eq!(a, b);
        let multipart = a.1.clone().unwrap();
        assert!(multipart.ends_with("-3"), "{multipart}");
        assert_eq!(etag_matches(&format!("\"{multipart}\""), &a), Some(true));
        assert_eq!(etag_matches("\"00000000000000000000000000000000-3\"", &a), Some(false));
        assert_eq!(etag_matches("\"not-an-md5\"", &(a.0.clone(), None)), None);
    }
}
