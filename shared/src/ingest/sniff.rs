//! A look at an ISO-BMFF (MP4/MOV) source's header through a few ranged reads, for the first
//! video track's presentation size: enough to route 4K to GPU workers before anything decodes.
//! The bytes are the creator's and untrusted: every size is checked, the walk is bounded, and
//! anything unexpected simply means "unknown".

use crate::ingest::ports::{SourceError, SourceStore};

/// The largest `moov` read (a 12-hour title's sample tables fit well within it).
const MAX_MOOV: u64 = 16 * 1024 * 1024;
/// Top-level boxes visited before giving up (ftyp, free, mdat, moov, ... rarely exceed a handful).
const MAX_TOP_LEVEL: usize = 32;
const MAX_DEPTH: usize = 6;

struct BoxHeader {
    kind: [u8; 4],
    /// Header length (8, or 16 with a 64-bit size).
    header: u64,
    /// Whole box, header included.
    size: u64,
}

fn header(bytes: &[u8], remaining: u64) -> Option<BoxHeader> {
    let size32 = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as u64;
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let (header, size) = match size32 {
        0 => (8, remaining),
        1 => (16, u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?)),
        n => (8, n),
    };
    (size >= header && size <= remaining).then_some(BoxHeader { kind, header, size })
}

/// The presentation size of the first video track, or `None` when the file is not ISO-BMFF or
/// does not say.
pub async fn video_size(store: &dyn SourceStore, key: &str, etag: &str, object_size: u64) -> Result<Option<(u32, u32)>, SourceError> {
    let mut offset = 0u64;
    for index in 0..MAX_TOP_LEVEL {
        if offset + 8 > object_size {
            return Ok(None);
        }
        let bytes = store.read_range(key, etag, offset, 16.min(object_size - offset)).await?;
        let Some(b) = header(&bytes, object_size - offset) else { return Ok(None) };
        if index == 0 && &b.kind != b"ftyp" {
            return Ok(None);
        }
        if &b.kind == b"moov" {
            let body_len = b.size - b.header;
            if body_len > MAX_MOOV {
                return Ok(None);
            }
            let body = store.read_range(key, etag, offset + b.header, body_len).await?;
            return Ok(first_video_size(&body, 0));
        }
        offset += b.size.max(b.header);
    }
    Ok(None)
}

/// Walks `moov` (or a `trak`) for a `trak` whose handler is `vide`, and reads its `tkhd` size.
fn first_video_size(body: &[u8], depth: usize) -> Option<(u32, u32)> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut offset = 0usize;
    while offset + 8 <= body.len() {
        let b = header(&body[offset..], (body.len() - offset) as u64)?;
        let content = &body[offset + b.header as usize..offset + b.size as usize];
        if &b.kind == b"trak" {
            if let Some(size) = video_track_size(content) {
                return Some(size);
            }
        }
        offset += b.size as usize;
        if b.size == 0 {
            return None;
        }
    }
    None
}

fn children(body: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    while offset + 8 <= body.len() {
        let Some(b) = header(&body[offset..], (body.len() - offset) as u64) else { break };
        if b.size == 0 {
            break;
        }
        out.push((b.kind, &body[offset + b.header as usize..offset + b.size as usize]));
        offset += b.size as usize;
    }
    out
}

fn video_track_size(trak: &[u8]) -> Option<(u32, u32)> {
    let boxes = children(trak);
    let is_video = boxes.iter().filter(|(k, _)| k == b"mdia").flat_map(|(_, mdia)| children(mdia)).any(|(k, hdlr)| {
        // hdlr: version/flags (4), pre_defined (4), handler_type (4).
        &k == b"hdlr" && hdlr.get(8..12) == Some(b"vide")
    });
    if !is_video {
        return None;
    }
    let tkhd = boxes.iter().find(|(k, _)| k == b"tkhd")?.1;
    // Width and height are the payload's last 8 bytes (16.16 fixed point), in versions 0 and 1.
    let expected = match tkhd.first()? {
        0 => 84,
        1 => 96,
        _ => return None,
    };
    if tkhd.len() < expected {
        return None;
    }
    let fixed = |at: usize| u32::from_be_bytes(tkhd[at..at + 4].try_into().unwrap_or_default()) >> 16;
    let (w, h) = (fixed(expected - 8), fixed(expected - 4));
    (w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn tkhd(w: u32, h: u32) -> Vec<u8> {
        let mut body = vec![0u8; 84];
        body[76..80].copy_from_slice(&(w << 16).to_be_bytes());
        body[80..84].copy_from_slice(&(h << 16).to_be_bytes());
        boxed(b"tkhd", &body)
    }

    fn trak(handler: &[u8; 4], w: u32, h: u32) -> Vec<u8> {
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(handler);
        let mdia = boxed(b"mdia", &boxed(b"hdlr", &hdlr));
        boxed(b"trak", &[tkhd(w, h), mdia].concat())
    }

    #[test]
    fn finds_the_video_track_not_the_audio_one() {
        let moov = boxed(b"moov", &[trak(b"soun", 0, 0), trak(b"vide", 3840, 2160)].concat());
        assert_eq!(first_video_size(&moov[8..], 0), Some((3840, 2160)));
    }

    #[test]
    fn hostile_sizes_are_unknown_not_a_panic() {
        let mut lying = boxed(b"moov", &trak(b"vide", 640, 360));
        lying[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(first_video_size(&lying[8..], 0), None);
        assert_eq!(first_video_size(&[0, 0, 0, 1, b't', b'r', b'a', b'k'], 0), None);
        assert_eq!(first_video_size(&[], 0), None);
        let short_tkhd = boxed(
            b"trak",
            &[boxed(b"tkhd", &[0u8; 10]), boxed(b"mdia", &boxed(b"hdlr", &[0, 0, 0, 0, 0, 0, 0, 0, b'v', b'i', b'd', b'e']))].concat(),
        );
        assert_eq!(first_video_size(&short_tkhd, 0), None);
    }
}
