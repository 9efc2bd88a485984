//! Probe and validate the source before any work: what streams it has, how big and how long it
//! claims to be, and whether we can decode it at all.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ff::format::context::Input;
use ff::media::Type as Media;
use ffmpeg_next as ff;
use serde::Serialize;

use vaultstream::ingest::media_types;
use vaultstream::metadata::container;

use crate::colour::{DynamicRange, Tags};
use crate::error::{Result, TranscodeError};
use crate::hdr10::Hdr10;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_duration: f64,
}

/// How the source's pictures are scanned, as its stream declares it (display order for
/// interlaced ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scan {
    Progressive,
    TopFieldFirst,
    BottomFieldFirst,
    /// The stream does not say; each decoded frame's own interlaced flag decides.
    Undeclared,
}

impl Scan {
    pub fn from_field_order(order: ff::FieldOrder) -> Self {
        match order {
            ff::FieldOrder::Progressive => Scan::Progressive,
            // The second letter is the field displayed first.
            ff::FieldOrder::TT | ff::FieldOrder::BT => Scan::TopFieldFirst,
            ff::FieldOrder::BB | ff::FieldOrder::TB => Scan::BottomFieldFirst,
            ff::FieldOrder::Unknown => Scan::Undeclared,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VideoSource {
    pub index: usize,
    pub codec: String,
    /// Coded size.
    pub width: u32,
    pub height: u32,
    /// Size as displayed: square pixels, rotation applied.
    pub display_width: u32,
    pub display_height: u32,
    /// Clockwise rotation to apply for display: 0, 90, 180 or 270.
    pub rotation: u32,
    pub pixel_format: String,
    pub average_frame_rate: Option<(u32, u32)>,
    pub nominal_frame_rate: Option<(u32, u32)>,
    pub scan: Scan,
    /// The colour tags the stream declares, and what they make of it: SDR, PQ or HLG.
    pub colour: Tags,
    pub dynamic_range: DynamicRange,
    /// HDR10 static metadata: what the container states, or else (for PQ sources) what the
    /// first frame carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hdr10: Option<Hdr10>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AudioSource {
    pub index: usize,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    pub format: String,
    pub size_bytes: u64,
    /// Declared duration in seconds, when the container states one.
    pub duration: Option<f64>,
    /// Earliest start time (seconds) of the chosen streams; output timestamps start from here.
    pub start_time: f64,
    pub video: Option<VideoSource>,
    pub audio: Option<AudioSource>,
    /// The container's own tags (title, artist, date…), as found: the file is untrusted, so they
    /// are only ever read through `vaultstream::metadata::container`'s checks.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// The container's tags, bounded, with the audio stream's language when the container names none
/// (MP4 and Matroska keep it per stream; `und` says nothing).
fn tags(input: &Input, audio: Option<&AudioSource>) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = input
        .metadata()
        .iter()
        .take(container::MAX_TAGS)
        .filter(|(_, v)| v.len() <= container::MAX_VALUE_BYTES)
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    if !tags.contains_key("language") {
        let language = audio.and_then(|a| input.stream(a.index)).and_then(|s| s.metadata().get("language").map(str::to_string));
        if let Some(language) = language.filter(|l| l != "und") {
            tags.insert("language".into(), language);
        }
    }
    tags
}

/// Opens the source for demuxing; `abort` interrupts blocking I/O when the watchdog fires.
///
/// Only the accepted containers' demuxers may read it, and only through FFmpeg's `file` protocol:
/// formats that name other files or URLs (HLS and DASH playlists, concat lists, SDP) are refused
/// before they open anything, so an upload can never make the worker read beyond itself.
pub fn open(path: &Path, abort: Arc<AtomicBool>) -> Result<(Input, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| TranscodeError::Usage(format!("cannot read input {}: {e}", path.display())))?;
    if !meta.is_file() && !is_fifo(&meta) {
        return Err(TranscodeError::Usage(format!("input {} is not a file", path.display())));
    }
    if meta.len() == 0 && meta.is_file() {
        return Err(TranscodeError::InvalidInput(format!("{} is empty (0 bytes)", path.display())));
    }
    let allowed = media_types::demuxer_allow_list();
    let input = open_confined(path, &allowed, move || abort.load(Ordering::Relaxed)).map_err(|e| match e {
        ff::Error::Exit => TranscodeError::Temporary("reading the input was interrupted".into()),
        e => match detected_format(path, &meta) {
            Some((name, long_name)) if !allowed.split(',').any(|a| name.split(',').any(|n| n == a)) => {
                TranscodeError::InvalidInput(format!(
                "{} is {long_name} (FFmpeg's `{name}` format), which is not an accepted media container; upload the media file itself ({})",
                path.display(),
                media_types::accepted_list()
            ))
            }
            _ => TranscodeError::InvalidInput(format!(
                "{} is not a media file FFmpeg can read ({e}); it may be truncated, damaged or not a video at all",
                path.display()
            )),
        },
    })?;
    Ok((input, meta.len()))
}

/// A source object read where it lies, by ranged HTTP GETs (a chunk of a chunked title reads only
/// its own span): a presigned GET URL of the source bucket, the headers it was signed with
/// (`If-Match` the accepted ETag, so a replaced object is never read), and its size.
#[derive(Debug, Clone)]
pub struct RemoteSource {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub size: u64,
}

/// Opens a remote source for demuxing, confined as [`open`] confines a file: only the accepted
/// demuxers, and only HTTPS (plain HTTP where the URL is the emulator's, on loopback).
pub fn open_remote(source: &RemoteSource, abort: Arc<AtomicBool>) -> Result<(Input, u64)> {
    let loopback = source.url.starts_with("http://127.0.0.1:") || source.url.starts_with("http://localhost:");
    if !(source.url.starts_with("https://") || loopback) {
        return Err(TranscodeError::Usage("a remote source must be an https URL".into()));
    }
    let protocols = if loopback { "http,tcp" } else { "https,tls,tcp" };
    let headers: String =
        source.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("host")).map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let mut options = ff::Dictionary::new();
    options.set("headers", &headers);
    options.set("rw_timeout", "30000000");
    options.set("reconnect", "1");
    let allowed = media_types::demuxer_allow_list();
    let input = open_with(source.url.as_bytes().to_vec(), &allowed, protocols, options, move || abort.load(Ordering::Relaxed)).map_err(
        |e| match e {
            ff::Error::Exit => TranscodeError::Temporary("reading the source was interrupted".into()),
            ff::Error::HttpBadRequest
            | ff::Error::HttpUnauthorized
            | ff::Error::HttpOther4xx
            | ff::Error::HttpForbidden
            | ff::Error::HttpNotFound => {
                TranscodeError::Fatal(format!("the source object cannot be read ({e}); it may have been replaced since it was accepted"))
            }
            ff::Error::HttpServerError => TranscodeError::Temporary(format!("the source bucket failed: {e}")),
            e => TranscodeError::InvalidInput(format!(
                "the uploaded file is not a media file FFmpeg can read ({e}); it may be truncated, damaged or not a video at all"
            )),
        },
    )?;
    Ok((input, source.size))
}

/// `avformat_open_input` with `format_whitelist` and `protocol_whitelist=file` (which demuxers
/// that open nested inputs inherit), and the watchdog's interrupt callback.
fn open_confined<F: FnMut() -> bool>(path: &Path, allowed_demuxers: &str, interrupt: F) -> std::result::Result<Input, ff::Error> {
    use std::os::unix::ffi::OsStrExt;
    // The `file:` prefix keeps a colon in the file name from being read as a protocol.
    let mut url = b"file:".to_vec();
    url.extend_from_slice(path.as_os_str().as_bytes());
    open_with(url, allowed_demuxers, "file", ff::Dictionary::new(), interrupt)
}

fn open_with<F: FnMut() -> bool>(
    url: Vec<u8>,
    allowed_demuxers: &str,
    protocols: &str,
    mut options: ff::Dictionary,
    interrupt: F,
) -> std::result::Result<Input, ff::Error> {
    let url = std::ffi::CString::new(url).map_err(|_| ff::Error::InvalidData)?;
    options.set("format_whitelist", allowed_demuxers);
    options.set("protocol_whitelist", protocols);
    // SAFETY: the context is allocated here and either handed to `Input` (which closes it) or
    // freed by FFmpeg itself when `avformat_open_input` fails; the callback box is leaked on
    // purpose, as ffmpeg-next's own `input_with_interrupt` does, because the context refers to it
    // for as long as it lives.
    unsafe {
        let mut context = ff::ffi::avformat_alloc_context();
        if context.is_null() {
            return Err(ff::Error::Other { errno: libc::ENOMEM });
        }
        (*context).interrupt_callback = ff::util::interrupt::new(Box::new(interrupt)).interrupt;
        let mut raw_options = options.disown();
        let opened = ff::ffi::avformat_open_input(&mut context, url.as_ptr(), std::ptr::null(), &mut raw_options);
        drop(ff::Dictionary::own(raw_options));
        if opened < 0 {
            return Err(ff::Error::from(opened));
        }
        let found = ff::ffi::avformat_find_stream_info(context, std::ptr::null_mut());
        if found < 0 {
            ff::ffi::avformat_close_input(&mut context);
            return Err(ff::Error::from(found));
        }
        Ok(Input::wrap(context))
    }
}

/// What FFmpeg's probe takes a regular file for, `(name, long name)`, to say why it was refused.
fn detected_format(path: &Path, meta: &std::fs::Metadata) -> Option<(String, String)> {
    use std::io::Read;
    if !meta.is_file() {
        return None;
    }
    let padding = ff::ffi::AVPROBE_PADDING_SIZE as usize;
    let mut buf = Vec::with_capacity(PROBE_BYTES + padding);
    std::fs::File::open(path).ok()?.take(PROBE_BYTES as u64).read_to_end(&mut buf).ok()?;
    let size = buf.len();
    buf.resize(size + padding, 0);
    let filename = std::ffi::CString::new(path.to_string_lossy().as_bytes()).ok()?;
    let probe = ff::ffi::AVProbeData {
        filename: filename.as_ptr(),
        buf: buf.as_mut_ptr(),
        buf_size: size as libc::c_int,
        mime_type: std::ptr::null(),
    };
    let mut score = 0;
    // SAFETY: `probe` points at a buffer with the zeroed padding FFmpeg requires and a
    // NUL-terminated name, both alive for the call; the result is a static format descriptor.
    unsafe {
        let format = ff::ffi::av_probe_input_format3(&probe, 1, &mut score);
        if format.is_null() {
            return None;
        }
        let text = |p: *const libc::c_char| (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned());
        let name = text((*format).name)?;
        let long_name = text((*format).long_name).unwrap_or_else(|| name.clone());
        Some((name, long_name))
    }
}

const PROBE_BYTES: usize = 1 << 20;

fn is_fifo(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_fifo()
}

fn rational(r: ff::Rational) -> Option<(u32, u32)> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| (r.numerator() as u32, r.denominator() as u32))
}

/// Clockwise display rotation from a stream's display matrix, as FFmpeg's CLI computes it.
fn rotation(stream: &ff::format::stream::Stream) -> u32 {
    for side in stream.side_data() {
        if side.kind() == ff::codec::packet::side_data::Type::DisplayMatrix && side.data().len() >= 36 {
            // SAFETY: the display matrix side data is nine i32 values (checked length above);
            // av_display_rotation_get only reads them.
            let theta = unsafe { ff::ffi::av_display_rotation_get(side.data().as_ptr() as *const i32) };
            if theta.is_nan() {
                return 0;
            }
            let clockwise = (-theta).round() as i64;
            return (((clockwise % 360) + 360) % 360 / 90 * 90) as u32;
        }
    }
    0
}

fn codec_name(id: ff::codec::Id) -> String {
    format!("{id:?}").to_lowercase()
}

/// Describes and validates the opened source. Errors here are exit 65: the file itself is bad.
pub fn inspect(input: &Input, size_bytes: u64, limits: &Limits) -> Result<SourceInfo> {
    let mut video: Option<VideoSource> = None;
    let mut audio: Option<AudioSource> = None;
    let mut starts = Vec::new();
    let mut rejected = Vec::new();

    for stream in input.streams() {
        let params = stream.parameters();
        let id = params.id();
        let medium = params.medium();
        if medium != Media::Video && medium != Media::Audio {
            continue;
        }
        if stream.disposition().contains(ff::format::stream::Disposition::ATTACHED_PIC) {
            continue;
        }
        if ff::decoder::find(id).is_none() {
            rejected.push(format!("stream {} ({}) has no decoder", stream.index(), codec_name(id)));
            continue;
        }
        let Ok(ctx) = ff::codec::Context::from_parameters(params) else {
            rejected.push(format!("stream {} has unusable codec parameters", stream.index()));
            continue;
        };
        let tb = stream.time_base();
        let start = (stream.start_time() != ff::ffi::AV_NOPTS_VALUE).then(|| stream.start_time() as f64 * f64::from(tb));
        match medium {
            Media::Video if video.is_none() => {
                let Ok(dec) = ctx.decoder().video() else {
                    rejected.push(format!("stream {} ({}) cannot be decoded", stream.index(), codec_name(id)));
                    continue;
                };
                let (w, h) = (dec.width(), dec.height());
                if w == 0 || h == 0 {
                    rejected.push(format!("video stream {} declares no picture size", stream.index()));
                    continue;
                }
                if w > limits.max_width || h > limits.max_height {
                    return Err(TranscodeError::InvalidInput(format!(
                        "the video is {w}x{h}, larger than the accepted {}x{} (--max-width/--max-height)",
                        limits.max_width, limits.max_height
                    )));
                }
                let sar = dec.aspect_ratio();
                let square_w = if sar.numerator() > 0 && sar.denominator() > 0 && sar.numerator() != sar.denominator() {
                    ((f64::from(w) * f64::from(sar)).round() as u32).max(2)
                } else {
                    w
                };
                let rot = rotation(&stream);
                let colour = Tags {
                    primaries: dec.color_primaries(),
                    transfer: dec.color_transfer_characteristic(),
                    matrix: dec.color_space(),
                    range: dec.color_range(),
                };
                let (dw, dh) = if rot % 180 == 90 { (h, square_w) } else { (square_w, h) };
                video = Some(VideoSource {
                    index: stream.index(),
                    codec: codec_name(id),
                    width: w,
                    height: h,
                    display_width: dw,
                    display_height: dh,
                    rotation: rot,
                    pixel_format: format!("{:?}", dec.format()).to_lowercase(),
                    average_frame_rate: rational(stream.avg_frame_rate()),
                    nominal_frame_rate: rational(stream.rate()),
                    // SAFETY: `dec` owns a valid codec context; field_order is a plain enum field
                    // ffmpeg-next has no getter for.
                    scan: Scan::from_field_order(unsafe { (*dec.as_ptr()).field_order }.into()),
                    dynamic_range: colour.dynamic_range(),
                    colour,
                    hdr10: Hdr10::of_stream(&stream),
                });
                starts.extend(start);
            }
            Media::Audio if audio.is_none() => {
                let Ok(dec) = ctx.decoder().audio() else {
                    rejected.push(format!("stream {} ({}) cannot be decoded", stream.index(), codec_name(id)));
                    continue;
                };
                if dec.rate() == 0 || dec.channels() == 0 {
                    rejected.push(format!("audio stream {} declares no sample rate or channels", stream.index()));
                    continue;
                }
                audio =
                    Some(AudioSource { index: stream.index(), codec: codec_name(id), sample_rate: dec.rate(), channels: dec.channels() });
                starts.extend(start);
            }
            _ => {}
        }
    }

    if video.is_none() && audio.is_none() {
        let detail = if rejected.is_empty() { "it has no video or audio stream".to_string() } else { rejected.join("; ") };
        return Err(TranscodeError::InvalidInput(format!("nothing to transcode: {detail}")));
    }

    let duration = (input.duration() > 0).then(|| input.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE));
    if let Some(d) = duration {
        if d > limits.max_duration {
            return Err(TranscodeError::InvalidInput(format!(
                "the source declares {d:.1} s, longer than the accepted {:.0} s (--max-duration)",
                limits.max_duration
            )));
        }
    }

    Ok(SourceInfo {
        format: input.format().name().to_string(),
        size_bytes,
        duration,
        start_time: starts.into_iter().reduce(f64::min).unwrap_or(0.0),
        tags: tags(input, audio.as_ref()),
        video,
        audio,
    })
}
