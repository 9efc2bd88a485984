//! Common encryption, `cbcs` scheme (ISO/IEC 23001-7), of the fragmented MP4 FFmpeg's mp4 muxer
//! writes: the same segments then serve FairPlay, Widevine, PlayReady and ClearKey.
//!
//! FFmpeg's muxer encrypts only with `cenc` (AES-CTR), so this module does what a packager does
//! after muxing: it encrypts each sample in place (video: a 1:9 pattern over each VCL NAL unit
//! after its header and the first bytes of its slice header; audio: every whole block), records
//! the subsample map in `senc` with `saiz`/`saio` pointing at it, and turns the init segment's
//! sample entry into `encv`/`enca` with `sinf` (`frma`, `schm` = `cbcs`, `tenc` with the KID,
//! the pattern and the constant IV), plus the `pssh` boxes that start a player's licence
//! request: ClearKey's, or those a DRM vendor's key provider gave. The IV is constant per track
//! (as `cbcs` requires for FairPlay) and reset at every subsample.
//!
//! The box parsing here is deliberately small: only the boxes on the paths it edits are opened,
//! everything else is copied byte for byte. mp4-atom (the maintained box crate) decodes the result
//! in the tests; it has no `sinf`/`tenc`/`pssh` types to write them with.

use vaultstream::cenc::Kid;
use vaultstream::ContentKey;

use crate::error::{Result, TranscodeError};

/// What kind of samples a track carries, which decides how they are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Samples {
    /// H.264 or HEVC access units: length-prefixed NAL units.
    Video { hevc: bool, nal_length_size: usize },
    /// AAC frames: whole-sample encryption, no subsamples.
    Audio,
}

/// One track's protection: its key, the KID players ask a licence for, the constant IV.
pub struct TrackProtection {
    pub key: ContentKey,
    pub kid: Kid,
    pub iv: [u8; 16],
}

/// Pattern (encrypted blocks, skipped blocks): 1:9 for video as the scheme asks; audio has no
/// pattern (every whole block is encrypted).
fn pattern(samples: Samples) -> (u8, u8) {
    match samples {
        Samples::Video { .. } => (1, 9),
        Samples::Audio => (0, 0),
    }
}

/// Bytes of a VCL NAL unit left clear after its header, covering the slice header (which
/// decoders and secure pipelines parse before decryption). 32 is Apple's rule for SAMPLE-AES;
/// the clear part is then grown so the protected part is whole 16-byte blocks.
const CLEAR_SLICE_HEADER_BYTES: usize = 32;

fn fail(what: &str) -> TranscodeError {
    TranscodeError::Fatal(format!("cbcs: {what}"))
}

/// An ISO BMFF box as found in a buffer: its type and the body after the 8-byte header.
#[derive(Debug, Clone)]
struct RawBox {
    kind: [u8; 4],
    body: Vec<u8>,
}

fn parse_boxes(mut bytes: &[u8]) -> Result<Vec<RawBox>> {
    let mut boxes = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 8 {
            return Err(fail("a truncated box header"));
        }
        let size = u32::from_be_bytes(bytes[0..4].try_into().unwrap_or_default()) as usize;
        let kind: [u8; 4] = bytes[4..8].try_into().unwrap_or_default();
        let (header, size) = match size {
            1 => {
                if bytes.len() < 16 {
                    return Err(fail("a truncated large box header"));
                }
                (16, u64::from_be_bytes(bytes[8..16].try_into().unwrap_or_default()) as usize)
            }
            0 => (8, bytes.len()),
            n => (8, n),
        };
        if size < header || size > bytes.len() {
            return Err(fail(&format!("box {} claims {size} bytes, {} are left", String::from_utf8_lossy(&kind), bytes.len())));
        }
        boxes.push(RawBox { kind, body: bytes[header..size].to_vec() });
        bytes = &bytes[size..];
    }
    Ok(boxes)
}

fn write_box(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
}

fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    write_box(&mut out, kind, body);
    out
}

fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(body.len() + 4);
    inner.extend_from_slice(&((u32::from(version) << 24) | (flags & 0x00ff_ffff)).to_be_bytes());
    inner.extend_from_slice(body);
    boxed(kind, &inner)
}

fn serialize(boxes: &[RawBox]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in boxes {
        write_box(&mut out, &b.kind, &b.body);
    }
    out
}

/// Replaces the body of the box on `path` (each step the first box of that type) with what
/// `edit` makes of it; every box above it is re-sized.
fn edit_path(boxes: &mut [RawBox], path: &[&[u8; 4]], edit: &mut dyn FnMut(&mut Vec<u8>) -> Result<()>) -> Result<()> {
    let Some((first, rest)) = path.split_first() else { return Ok(()) };
    let found = boxes.iter_mut().find(|b| &b.kind == *first).ok_or_else(|| fail(&format!("no {} box", String::from_utf8_lossy(*first))))?;
    if rest.is_empty() {
        return edit(&mut found.body);
    }
    let mut children = parse_boxes(&found.body)?;
    edit_path(&mut children, rest, edit)?;
    found.body = serialize(&children);
    Ok(())
}

/// Bytes of a sample entry's fixed fields before its child boxes.
fn sample_entry_fields(kind: &[u8; 4]) -> Result<usize> {
    match kind {
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" => Ok(78),
        b"mp4a" => Ok(28),
        other => Err(fail(&format!("cannot protect a {} track", String::from_utf8_lossy(other)))),
    }
}

/// Turns the init segment's only track into a protected one and adds the `pssh` boxes
/// (ClearKey's, or those a vendor's key provider returned). Returns the new init segment and
/// what the samples are.
pub fn protect_init(init: &[u8], protection: &TrackProtection, pssh: &[Vec<u8>]) -> Result<(Vec<u8>, Samples)> {
    let mut top = parse_boxes(init)?;
    let mut samples = None;
    edit_path(&mut top, &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"], &mut |stsd| {
        // FullBox header (4) and entry count (4), then the one sample entry.
        if stsd.len() < 8 {
            return Err(fail("a truncated stsd"));
        }
        let mut entries = parse_boxes(&stsd[8..])?;
        let entry = entries.first_mut().ok_or_else(|| fail("stsd has no sample entry"))?;
        let format = entry.kind;
        let fields = sample_entry_fields(&format)?;
        if entry.body.len() < fields {
            return Err(fail("a truncated sample entry"));
        }
        let found = match &format {
            b"mp4a" => Samples::Audio,
            kind => {
                let hevc = matches!(kind, b"hvc1" | b"hev1");
                let children = parse_boxes(&entry.body[fields..])?;
                let config = children
                    .iter()
                    .find(|c| &c.kind == if hevc { b"hvcC" } else { b"avcC" })
                    .ok_or_else(|| fail("the video sample entry has no decoder configuration"))?;
                let at = if hevc { 21 } else { 4 };
                let byte = *config.body.get(at).ok_or_else(|| fail("a truncated decoder configuration"))?;
                Samples::Video { hevc, nal_length_size: usize::from(byte & 3) + 1 }
            }
        };
        entry.kind = if found == Samples::Audio { *b"enca" } else { *b"encv" };
        entry.body.extend_from_slice(&sinf(&format, protection, found));
        let mut body = stsd[..8].to_vec();
        body.extend_from_slice(&serialize(&entries));
        *stsd = body;
        samples = Some(found);
        Ok(())
    })?;
    edit_path(&mut top, &[b"moov"], &mut |moov| {
        for pssh in pssh {
            moov.extend_from_slice(pssh);
        }
        Ok(())
    })?;
    Ok((serialize(&top), samples.ok_or_else(|| fail("no sample entry"))?))
}

fn sinf(format: &[u8; 4], protection: &TrackProtection, samples: Samples) -> Vec<u8> {
    let frma = boxed(b"frma", format);
    let mut schm = Vec::new();
    schm.extend_from_slice(b"cbcs");
    schm.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    let schm = full_box(b"schm", 0, 0, &schm);
    let (crypt, skip) = pattern(samples);
    let mut tenc = vec![0u8, (crypt << 4) | skip, 1, 0];
    tenc.extend_from_slice(protection.kid.as_bytes());
    tenc.push(16);
    tenc.extend_from_slice(&protection.iv);
    let schi = boxed(b"schi", &full_box(b"tenc", 1, 0, &tenc));
    boxed(b"sinf", &[frma, schm, schi].concat())
}

/// One subsample: clear bytes, then protected bytes.
type Subsample = (u16, u32);

/// The sizes, per-sample defaults and data offset a fragment's `tfhd`/`trun` give.
struct Runs {
    sizes: Vec<usize>,
}

fn read_u32(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes(s.try_into().unwrap_or_default())).ok_or_else(|| fail("a truncated fragment box"))
}

/// Sample sizes from `tfhd` and every `trun` of a `traf`, and each trun's data offset position.
fn sample_sizes(traf: &[RawBox]) -> Result<(Runs, Vec<i64>)> {
    let tfhd = traf.iter().find(|b| &b.kind == b"tfhd").ok_or_else(|| fail("no tfhd"))?;
    let flags = read_u32(&tfhd.body, 0)? & 0x00ff_ffff;
    let mut at = 8; // version/flags, track id
    if flags & 0x01 != 0 {
        return Err(fail("tfhd has a base data offset; the muxer should write default-base-is-moof fragments"));
    }
    if flags & 0x02 != 0 {
        at += 4;
    }
    if flags & 0x08 != 0 {
        at += 4;
    }
    let default_size = if flags & 0x10 != 0 { Some(read_u32(&tfhd.body, at)? as usize) } else { None };
    let mut sizes = Vec::new();
    let mut offsets = Vec::new();
    for trun in traf.iter().filter(|b| &b.kind == b"trun") {
        let flags = read_u32(&trun.body, 0)? & 0x00ff_ffff;
        let count = read_u32(&trun.body, 4)? as usize;
        let mut at = 8;
        if flags & 0x01 == 0 {
            return Err(fail("trun has no data offset"));
        }
        offsets.push(i64::from(read_u32(&trun.body, at)? as i32));
        at += 4;
        if flags & 0x04 != 0 {
            at += 4;
        }
        for _ in 0..count {
            if flags & 0x100 != 0 {
                at += 4;
            }
            let size = if flags & 0x200 != 0 {
                let s = read_u32(&trun.body, at)? as usize;
                at += 4;
                s
            } else {
                default_size.ok_or_else(|| fail("a sample without a size"))?
            };
            sizes.push(size);
            if flags & 0x400 != 0 {
                at += 4;
            }
            if flags & 0x800 != 0 {
                at += 4;
            }
        }
    }
    Ok((Runs { sizes }, offsets))
}

/// Encrypts every sample of a fragment (`moof` + `mdat`, optionally after `styp`) in place and
/// adds its `senc`, `saiz` and `saio`.
pub fn protect_fragment(fragment: &[u8], samples: Samples, protection: &TrackProtection) -> Result<Vec<u8>> {
    let top = parse_boxes(fragment)?;
    let moof_at = top.iter().position(|b| &b.kind == b"moof").ok_or_else(|| fail("a fragment without moof"))?;
    let mdat_at = top.iter().position(|b| &b.kind == b"mdat").ok_or_else(|| fail("a fragment without mdat"))?;
    if mdat_at != moof_at + 1 {
        return Err(fail("mdat does not follow its moof"));
    }
    let moof_size = top[moof_at].body.len() + 8;
    let mut moof = parse_boxes(&top[moof_at].body)?;
    let traf_index = moof.iter().position(|b| &b.kind == b"traf").ok_or_else(|| fail("no traf"))?;
    if moof.iter().filter(|b| &b.kind == b"traf").count() != 1 {
        return Err(fail("a CMAF fragment has exactly one track"));
    }
    let mut traf = parse_boxes(&moof[traf_index].body)?;
    let (runs, offsets) = sample_sizes(&traf)?;
    let mut mdat = top[mdat_at].body.clone();
    // Samples are contiguous from the first trun's data offset (relative to the moof's start).
    let first = offsets.first().copied().unwrap_or(moof_size as i64 + 8);
    let mut at = usize::try_from(first - moof_size as i64 - 8).map_err(|_| fail("a data offset before mdat"))?;
    let mut maps: Vec<Vec<Subsample>> = Vec::with_capacity(runs.sizes.len());
    for size in &runs.sizes {
        let sample = mdat.get_mut(at..at + size).ok_or_else(|| fail("a sample past the end of mdat"))?;
        maps.push(encrypt_sample(sample, samples, protection)?);
        at += size;
    }

    let subsamples = matches!(samples, Samples::Video { .. });
    let mut senc = (maps.len() as u32).to_be_bytes().to_vec();
    let mut info_sizes = Vec::with_capacity(maps.len());
    for map in &maps {
        if subsamples {
            senc.extend_from_slice(&(map.len() as u16).to_be_bytes());
            for (clear, protected) in map {
                senc.extend_from_slice(&clear.to_be_bytes());
                senc.extend_from_slice(&protected.to_be_bytes());
            }
            info_sizes.push(2 + 6 * map.len());
        } else {
            info_sizes.push(0);
        }
    }
    let senc = full_box(b"senc", 0, if subsamples { 2 } else { 0 }, &senc);
    let mut saiz = vec![0u8];
    saiz.extend_from_slice(&(info_sizes.len() as u32).to_be_bytes());
    saiz.extend(info_sizes.iter().map(|s| u8::try_from(*s).unwrap_or(u8::MAX)));
    if info_sizes.iter().any(|s| *s > 255) {
        return Err(fail("a sample with more subsamples than saiz can describe"));
    }
    let saiz = full_box(b"saiz", 0, 0, &saiz);
    let saio_len = 8 + 4 + 4 + 4;
    let added = senc.len() + saiz.len() + saio_len;

    // The senc entries start after moof and mfhd headers, the traf's boxes before senc, and
    // senc's own header (8), version/flags (4) and count (4).
    let before_traf: usize = moof[..traf_index].iter().map(|b| b.body.len() + 8).sum();
    let traf_before_senc: usize = traf.iter().map(|b| b.body.len() + 8).sum();
    let senc_entries = 8 + before_traf + 8 + traf_before_senc + 16;
    let saio = full_box(b"saio", 0, 0, &[1u32.to_be_bytes(), (senc_entries as u32).to_be_bytes()].concat());
    debug_assert_eq!(saio.len(), saio_len);

    for trun in traf.iter_mut().filter(|b| &b.kind == b"trun") {
        let offset = read_u32(&trun.body, 8)? as i32;
        let moved = offset.checked_add(added as i32).ok_or_else(|| fail("a data offset overflow"))?;
        trun.body[8..12].copy_from_slice(&moved.to_be_bytes());
    }
    let mut traf_body = serialize(&traf);
    traf_body.extend_from_slice(&senc);
    traf_body.extend_from_slice(&saiz);
    traf_body.extend_from_slice(&saio);
    moof[traf_index].body = traf_body;

    let mut out = Vec::with_capacity(fragment.len() + added);
    for b in &top[..moof_at] {
        write_box(&mut out, &b.kind, &b.body);
    }
    write_box(&mut out, b"moof", &serialize(&moof));
    write_box(&mut out, b"mdat", &mdat);
    for b in &top[mdat_at + 1..] {
        write_box(&mut out, &b.kind, &b.body);
    }
    Ok(out)
}

/// Encrypts one sample in place and returns its subsample map (empty for whole-sample audio).
fn encrypt_sample(sample: &mut [u8], samples: Samples, protection: &TrackProtection) -> Result<Vec<Subsample>> {
    match samples {
        Samples::Audio => {
            let whole = sample.len() / 16 * 16;
            cbc_blocks(&protection.key, &protection.iv, &mut sample[..whole], (0, 0));
            Ok(Vec::new())
        }
        Samples::Video { hevc, nal_length_size } => {
            let mut map = Vec::new();
            let mut clear_run = 0usize;
            let mut at = 0;
            while at < sample.len() {
                let length_bytes = sample.get(at..at + nal_length_size).ok_or_else(|| fail("a truncated NAL length"))?;
                let nal = length_bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
                let start = at + nal_length_size;
                let end = start.checked_add(nal).filter(|e| *e <= sample.len()).ok_or_else(|| fail("a NAL unit past its sample"))?;
                let header = if hevc { 2 } else { 1 };
                let vcl = match sample.get(start) {
                    Some(b) if hevc => (b >> 1) & 0x3f < 32,
                    Some(b) => matches!(b & 0x1f, 1..=5),
                    None => false,
                };
                let lead = nal_length_size + header + CLEAR_SLICE_HEADER_BYTES;
                if vcl && end - at > lead + 16 {
                    let protected = (end - at - lead) / 16 * 16;
                    let clear = end - at - protected;
                    cbc_blocks(&protection.key, &protection.iv, &mut sample[end - protected..end], pattern(samples));
                    push_subsample(&mut map, clear_run + clear, protected as u32);
                    clear_run = 0;
                } else {
                    clear_run += end - at;
                }
                at = end;
            }
            if clear_run > 0 || map.is_empty() {
                push_subsample(&mut map, clear_run, 0);
            }
            Ok(map)
        }
    }
}

/// Adds a subsample, splitting clear runs longer than a subsample's 16-bit clear count.
fn push_subsample(map: &mut Vec<Subsample>, mut clear: usize, protected: u32) {
    while clear > usize::from(u16::MAX) {
        map.push((u16::MAX, 0));
        clear -= usize::from(u16::MAX);
    }
    map.push((clear as u16, protected));
}

fn cbc_blocks(key: &ContentKey, iv: &[u8; 16], data: &mut [u8], pattern: (u8, u8)) {
    // The chain starts from the constant IV for each call: each subsample, each audio sample.
    vaultstream::segment_cipher::cbcs_encrypt_in_place(key, iv, data, pattern);
}

/// Timing of one fragment as DASH's `SegmentTimeline` needs it: decode time of its first
/// sample and the sum of its durations, both in the track's timescale.
pub fn fragment_timing(fragment: &[u8], default_duration: u32) -> Result<(u64, u64)> {
    let top = parse_boxes(fragment)?;
    let moof = top.iter().find(|b| &b.kind == b"moof").ok_or_else(|| fail("a fragment without moof"))?;
    let moof = parse_boxes(&moof.body)?;
    let traf = moof.iter().find(|b| &b.kind == b"traf").ok_or_else(|| fail("no traf"))?;
    let traf = parse_boxes(&traf.body)?;
    let tfdt = traf.iter().find(|b| &b.kind == b"tfdt").ok_or_else(|| fail("no tfdt"))?;
    let start = if tfdt.body.first() == Some(&1) {
        u64::from_be_bytes(tfdt.body.get(4..12).and_then(|s| s.try_into().ok()).ok_or_else(|| fail("a truncated tfdt"))?)
    } else {
        u64::from(read_u32(&tfdt.body, 4)?)
    };
    let tfhd = traf.iter().find(|b| &b.kind == b"tfhd").ok_or_else(|| fail("no tfhd"))?;
    let flags = read_u32(&tfhd.body, 0)? & 0x00ff_ffff;
    let at = 8 + if flags & 0x01 != 0 { 8 } else { 0 } + if flags & 0x02 != 0 { 4 } else { 0 };
    let default_duration = if flags & 0x08 != 0 { read_u32(&tfhd.body, at)? } else { default_duration };
    let mut total = 0u64;
    for trun in traf.iter().filter(|b| &b.kind == b"trun") {
        let flags = read_u32(&trun.body, 0)? & 0x00ff_ffff;
        let count = read_u32(&trun.body, 4)?;
        let mut at = 8 + if flags & 0x01 != 0 { 4 } else { 0 } + if flags & 0x04 != 0 { 4 } else { 0 };
        for _ in 0..count {
            if flags & 0x100 != 0 {
                total += u64::from(read_u32(&trun.body, at)?);
                at += 4;
            } else {
                total += u64::from(default_duration);
            }
            at += [0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count() * 4;
        }
    }
    Ok((start, total))
}

/// The timescale of the init segment's track (`mdhd`) and the default sample duration its
/// `trex` gives (0 without one).
pub fn track_timescale(init: &[u8]) -> Result<(u32, u32)> {
    let top = parse_boxes(init)?;
    let moov = parse_boxes(&top.iter().find(|b| &b.kind == b"moov").ok_or_else(|| fail("no moov"))?.body)?;
    let trak = parse_boxes(&moov.iter().find(|b| &b.kind == b"trak").ok_or_else(|| fail("no trak"))?.body)?;
    let mdia = parse_boxes(&trak.iter().find(|b| &b.kind == b"mdia").ok_or_else(|| fail("no mdia"))?.body)?;
    let mdhd = mdia.iter().find(|b| &b.kind == b"mdhd").ok_or_else(|| fail("no mdhd"))?;
    let timescale = if mdhd.body.first() == Some(&1) { read_u32(&mdhd.body, 20)? } else { read_u32(&mdhd.body, 12)? };
    let default_duration = moov
        .iter()
        .find(|b| &b.kind == b"mvex")
        .map(|mvex| parse_boxes(&mvex.body))
        .transpose()?
        .and_then(|children| children.into_iter().find(|b| &b.kind == b"trex"))
        .map(|trex| read_u32(&trex.body, 12))
        .transpose()?
        .unwrap_or(0);
    Ok((timescale, default_duration))
}
