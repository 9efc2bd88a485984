//! Choosing and opening encoders: NVENC > QSV > VAAPI > software, decided by actually opening
//! each candidate, with the reasons the others were passed over kept for the log and manifest.

use std::ptr;

use ff::{codec, encoder, format::Pixel, Dictionary, Rational};
use ffmpeg_next as ff;
use serde::Serialize;
use vaultstream::ladder::VideoCodec;

use crate::colour::Tags;
use crate::error::{Result, TranscodeError};
use crate::hdr10::Hdr10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Nvenc,
    Qsv,
    Vaapi,
    Software,
}

impl Backend {
    pub fn of(name: &str) -> Backend {
        if name.contains("nvenc") {
            Backend::Nvenc
        } else if name.contains("qsv") {
            Backend::Qsv
        } else if name.contains("vaapi") {
            Backend::Vaapi
        } else {
            Backend::Software
        }
    }
}

/// Encoders for a codec in order of preference; the last is the software fallback.
pub fn candidates(codec: VideoCodec) -> [&'static str; 4] {
    match codec {
        VideoCodec::H264 => ["h264_nvenc", "h264_qsv", "h264_vaapi", "libx264"],
        VideoCodec::Hevc => ["hevc_nvenc", "hevc_qsv", "hevc_vaapi", "libx265"],
        VideoCodec::Av1 => ["av1_nvenc", "av1_qsv", "av1_vaapi", "libsvtav1"],
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassedOver {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selection {
    pub codec: &'static str,
    pub name: String,
    pub backend: Backend,
    pub forced: bool,
    pub passed_over: Vec<PassedOver>,
}

/// Picks the encoder for `codec`. `requested` is `auto` or an encoder name; `try_open` reports
/// why a candidate cannot be used (absent from the FFmpeg build, no device, no driver, ...).
pub fn select(codec: VideoCodec, requested: &str, try_open: &mut dyn FnMut(&str) -> std::result::Result<(), String>) -> Result<Selection> {
    let all = candidates(codec);
    if requested != "auto" {
        try_open(requested)
            .map_err(|reason| TranscodeError::Fatal(format!("the requested encoder {requested} cannot be used here: {reason}")))?;
        return Ok(Selection {
            codec: codec.as_str(),
            name: requested.to_string(),
            backend: Backend::of(requested),
            forced: true,
            passed_over: Vec::new(),
        });
    }
    let mut passed_over = Vec::new();
    for name in all {
        match try_open(name) {
            Ok(()) => {
                return Ok(Selection {
                    codec: codec.as_str(),
                    name: name.to_string(),
                    backend: Backend::of(name),
                    forced: false,
                    passed_over,
                })
            }
            Err(reason) => passed_over.push(PassedOver { name: name.to_string(), reason }),
        }
    }
    let reasons: Vec<String> = passed_over.iter().map(|p| format!("{}: {}", p.name, p.reason)).collect();
    Err(TranscodeError::Fatal(format!("no usable {} encoder ({})", codec.as_str(), reasons.join("; "))))
}

/// Which codec an encoder name produces, for validating `--encoder NAME`.
pub fn codec_of(name: &str) -> Option<VideoCodec> {
    [VideoCodec::H264, VideoCodec::Hevc, VideoCodec::Av1]
        .into_iter()
        .find(|c| candidates(*c).contains(&name) || name.starts_with(c.as_str()))
}

pub const X264_PRESETS: [&str; 10] =
    ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"];

/// The pixel format each backend is fed (VAAPI takes it uploaded to GPU surfaces): 8-bit, or
/// 10-bit for rungs that keep HDR.
pub fn input_format(backend: Backend, ten_bit: bool) -> Pixel {
    match (backend, ten_bit) {
        (Backend::Qsv | Backend::Vaapi, false) => Pixel::NV12,
        (Backend::Nvenc | Backend::Software, false) => Pixel::YUV420P,
        (Backend::Software, true) => Pixel::YUV420P10LE,
        (Backend::Nvenc | Backend::Qsv | Backend::Vaapi, true) => Pixel::P010LE,
    }
}

/// Encoder options that give every backend the same contract: the speed preset, closed GOPs of
/// `gop` frames, no scene-cut keyframes, and an IDR wherever we force a keyframe. `ten_bit`
/// (HEVC rungs that keep HDR) asks for Main 10; `hdr10` is written by libx265 from its
/// parameters (hardware encoders read it from the frames).
pub fn options(name: &str, codec: VideoCodec, preset: &str, gop: u32, ten_bit: bool, hdr10: Option<&Hdr10>) -> Vec<(String, String)> {
    let speed = X264_PRESETS.iter().position(|p| *p == preset).unwrap_or(2);
    let profile = match (codec, ten_bit) {
        (VideoCodec::H264, _) => "high",
        (VideoCodec::Hevc, true) => "main10",
        (VideoCodec::Hevc | VideoCodec::Av1, _) => "main",
    };
    let o = |k: &str, v: String| (k.to_string(), v);
    match (Backend::of(name), name) {
        (Backend::Nvenc, _) => {
            let p = [1, 2, 3, 3, 4, 5, 6, 7, 7, 7][speed];
            vec![
                o("preset", format!("p{p}")),
                o("rc", "vbr".into()),
                o("profile", profile.into()),
                o("forced-idr", "1".into()),
                o("no-scenecut", "1".into()),
                o("strict_gop", "1".into()),
            ]
        }
        (Backend::Qsv, _) => vec![
            o("preset", X264_PRESETS[speed.clamp(2, 8)].into()),
            o("profile", profile.into()),
            o("forced_idr", "1".into()),
            o("idr_interval", "0".into()),
        ],
        (Backend::Vaapi, _) => vec![o("profile", profile.into()), o("idr_interval", "0".into()), o("rc_mode", "VBR".into())],
        (Backend::Software, "libx265") => vec![
            o("preset", preset.into()),
            o("forced-idr", "1".into()),
            o(
                "x265-params",
                format!(
                    "keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:log-level=error{}",
                    hdr10.map(|h| format!(":{}", h.x265_params())).unwrap_or_default()
                ),
            ),
        ],
        (Backend::Software, "libsvtav1") => {
            let p = [12, 11, 10, 9, 8, 7, 5, 4, 2, 1][speed];
            vec![o("preset", p.to_string()), o("sc_detection", "0".into())]
        }
        (Backend::Software, _) => vec![
            o("preset", preset.into()),
            o("profile", profile.into()),
            o("forced-idr", "1".into()),
            o("sc_threshold", "0".into()),
            o("keyint_min", gop.to_string()),
        ],
    }
}

/// x264 threads for each of a ladder's rungs, encoded side by side on `cores` cores, given each
/// rung's pixels per frame. The rungs already run in parallel, so x264's own default (1.5 threads
/// a core for every encoder: 12 frame threads and 4 lookaheads for a 4-rung ladder on 2 cores)
/// only adds switching and frame-thread stalls. Each rung gets cores in proportion to its share
/// of the pixels, and two frame threads a core to keep them busy through stalls: on 2 cores the
/// 1080p rung of the default ladder gets 2, the others 1; on 16 cores, 16, 8, 4 and 2.
pub fn software_threads(pixels: &[u64], cores: usize) -> Vec<u32> {
    let total: u64 = pixels.iter().sum();
    pixels
        .iter()
        .map(|&p| {
            let share = if total == 0 { 0.0 } else { p as f64 / total as f64 };
            (2.0 * cores as f64 * share).round().clamp(1.0, 16.0) as u32
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct VideoSettings {
    pub width: u32,
    pub height: u32,
    pub fps: (u32, u32),
    pub gop: u32,
    pub bitrate_kbps: u32,
    pub max_kbps: u32,
    pub global_header: bool,
    pub extra_options: Vec<(String, String)>,
    /// Colour tags written into the stream.
    pub colour: Tags,
    /// 4:2:0 10-bit input and profile (HEVC Main 10), for rungs that keep HDR.
    pub ten_bit: bool,
    /// The source's HDR10 metadata, for rungs that keep a PQ source's HDR.
    pub hdr10: Option<Hdr10>,
}

/// An opened video encoder and, for VAAPI, the GPU surface pool frames are uploaded into.
pub struct VideoEncoder {
    pub encoder: encoder::Video,
    pub input_format: Pixel,
    pub upload: Option<HwUpload>,
}

fn fresh_context(name: &str) -> std::result::Result<(ff::Codec, codec::Context), String> {
    let found = encoder::find_by_name(name).ok_or_else(|| "not included in this FFmpeg build".to_string())?;
    Ok((found, codec::Context::new_with_codec(found)))
}

pub fn open_video(name: &str, codec_kind: VideoCodec, preset: &str, s: &VideoSettings) -> std::result::Result<VideoEncoder, String> {
    let backend = Backend::of(name);
    let (found, context) = fresh_context(name)?;
    let mut enc = context.encoder().video().map_err(|e| e.to_string())?;
    enc.set_width(s.width);
    enc.set_height(s.height);
    enc.set_time_base(Rational::new(s.fps.1 as i32, s.fps.0 as i32));
    enc.set_frame_rate(Some(Rational::new(s.fps.0 as i32, s.fps.1 as i32)));
    enc.set_gop(s.gop);
    enc.set_bit_rate(s.bitrate_kbps as usize * 1000);
    enc.set_max_bit_rate(s.max_kbps as usize * 1000);
    if s.global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    s.colour.apply_to_encoder(&mut enc);
    let sw_format = input_format(backend, s.ten_bit);
    let upload = if backend == Backend::Vaapi {
        enc.set_format(Pixel::VAAPI);
        // SAFETY: the context is allocated and not yet opened; HwUpload only sets hw_frames_ctx.
        Some(unsafe { HwUpload::attach_vaapi(enc.as_mut_ptr(), s.width, s.height, sw_format)? })
    } else {
        enc.set_format(sw_format);
        None
    };
    let mut dict = Dictionary::new();
    dict.set("bufsize", &(u64::from(s.max_kbps) * 1500).to_string());
    for (k, v) in options(name, codec_kind, preset, s.gop, s.ten_bit, s.hdr10.as_ref()).into_iter().chain(s.extra_options.iter().cloned()) {
        dict.set(&k, &v);
    }
    let opened = enc.open_as_with(found, dict).map_err(|e| describe_open_error(name, e))?;
    Ok(VideoEncoder { encoder: opened, input_format: sw_format, upload })
}

fn describe_open_error(name: &str, e: ff::Error) -> String {
    match Backend::of(name) {
        Backend::Nvenc => format!("{e} (no NVIDIA GPU or driver with NVENC reachable)"),
        Backend::Qsv => format!("{e} (no Intel Quick Sync device or runtime reachable)"),
        Backend::Vaapi => format!("{e} (the VAAPI driver refused this configuration)"),
        Backend::Software => e.to_string(),
    }
}

/// Learns whether `name` works on this machine: software encoders only need to be in the
/// FFmpeg build; hardware encoders are opened at a small size, which is where a missing GPU,
/// device or driver shows.
pub fn probe(name: &str, codec_kind: VideoCodec) -> std::result::Result<(), String> {
    if encoder::find_by_name(name).is_none() {
        return Err("not included in this FFmpeg build".into());
    }
    if Backend::of(name) == Backend::Software {
        return Ok(());
    }
    let settings = VideoSettings {
        width: 640,
        height: 360,
        fps: (30, 1),
        gop: 60,
        bitrate_kbps: 800,
        max_kbps: 856,
        global_header: false,
        extra_options: Vec::new(),
        colour: Tags::BT709,
        ten_bit: false,
        hdr10: None,
    };
    let mut opened = open_video(name, codec_kind, "veryfast", &settings)?;
    // Close it the way encoders expect (some block in teardown without an end of stream).
    let _ = opened.encoder.send_eof();
    let mut packet = ff::Packet::empty();
    while opened.encoder.receive_packet(&mut packet).is_ok() {}
    Ok(())
}

pub fn open_aac(bitrate_kbps: u32, global_header: bool) -> Result<encoder::Audio> {
    let (found, context) = fresh_context("aac").map_err(|e| TranscodeError::Fatal(format!("AAC encoder: {e}")))?;
    let mut enc = context.encoder().audio().map_err(|e| TranscodeError::ffmpeg("AAC encoder", e))?;
    enc.set_rate(crate::normalize::AUDIO_RATE as i32);
    enc.set_format(ff::format::Sample::F32(ff::format::sample::Type::Planar));
    enc.set_channel_layout(ff::ChannelLayout::STEREO);
    enc.set_channels(2);
    enc.set_bit_rate(bitrate_kbps as usize * 1000);
    enc.set_time_base(Rational::new(1, crate::normalize::AUDIO_RATE as i32));
    if global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    enc.open_as(found).map_err(|e| TranscodeError::ffmpeg("opening the AAC encoder", e))
}

/// VAAPI encoders take GPU surfaces: a frame pool on the render node, filled by upload.
pub struct HwUpload {
    frames: *mut ff::ffi::AVBufferRef,
}

// SAFETY: the frames context is reference-counted by FFmpeg and used only by the owning worker.
unsafe impl Send for HwUpload {}

pub fn vaapi_device() -> String {
    std::env::var("VAULTSTREAM_VAAPI_DEVICE").unwrap_or_else(|_| "/dev/dri/renderD128".into())
}

impl HwUpload {
    /// # Safety
    /// `ctx` must be an allocated, unopened encoder context.
    unsafe fn attach_vaapi(
        ctx: *mut ff::ffi::AVCodecContext,
        width: u32,
        height: u32,
        sw_format: Pixel,
    ) -> std::result::Result<Self, String> {
        use ff::ffi::*;
        let device_path = vaapi_device();
        if !std::path::Path::new(&device_path).exists() {
            return Err(format!("no VAAPI render node at {device_path}"));
        }
        let c_path = std::ffi::CString::new(device_path.clone()).map_err(|e| e.to_string())?;
        let mut device: *mut AVBufferRef = ptr::null_mut();
        let r = av_hwdevice_ctx_create(&mut device, AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI, c_path.as_ptr(), ptr::null_mut(), 0);
        if r < 0 {
            return Err(format!("cannot open VAAPI device {device_path}: {}", ff::Error::from(r)));
        }
        let mut frames = av_hwframe_ctx_alloc(device);
        av_buffer_unref(&mut device);
        if frames.is_null() {
            return Err("cannot allocate VAAPI frames".into());
        }
        let fc = (*frames).data as *mut AVHWFramesContext;
        (*fc).format = AVPixelFormat::AV_PIX_FMT_VAAPI;
        (*fc).sw_format = sw_format.into();
        (*fc).width = width as i32;
        (*fc).height = height as i32;
        (*fc).initial_pool_size = 32;
        let r = av_hwframe_ctx_init(frames);
        if r < 0 {
            av_buffer_unref(&mut frames);
            return Err(format!("cannot initialise VAAPI frames: {}", ff::Error::from(r)));
        }
        (*ctx).hw_frames_ctx = av_buffer_ref(frames);
        Ok(HwUpload { frames })
    }

    /// Copies a system-memory NV12 or P010 frame into a GPU surface, keeping timestamp and picture type.
    pub fn upload(&self, frame: &ff::frame::Video) -> Result<ff::frame::Video> {
        // SAFETY: `frames` is a valid, initialised frames context for the lifetime of self, and
        // both frames are valid AVFrames.
        unsafe {
            let mut hw = ff::frame::Video::empty();
            let r = ff::ffi::av_hwframe_get_buffer(self.frames, hw.as_mut_ptr(), 0);
            if r < 0 {
                return Err(TranscodeError::Fatal(format!("VAAPI surface: {}", ff::Error::from(r))));
            }
            let r = ff::ffi::av_hwframe_transfer_data(hw.as_mut_ptr(), frame.as_ptr(), 0);
            if r < 0 {
                return Err(TranscodeError::Fatal(format!("VAAPI upload: {}", ff::Error::from(r))));
            }
            hw.set_pts(frame.pts());
            hw.set_kind(frame.kind());
            crate::closed_captions::carry(frame, &mut hw)?;
            Ok(hw)
        }
    }
}

impl Drop for HwUpload {
    fn drop(&mut self) {
        // SAFETY: we own one reference to the frames context.
        unsafe { ff::ffi::av_buffer_unref(&mut self.frames) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_share_the_cores_by_their_pixels() {
        let ladder = [1920 * 1080, 1280 * 720, 854 * 480, 640 * 360];
        assert_eq!(software_threads(&ladder, 2), [2, 1, 1, 1]);
        assert_eq!(software_threads(&ladder, 16), [16, 8, 4, 2]);
        assert_eq!(software_threads(&ladder, 64), [16, 16, 14, 8]);
        assert_eq!(software_threads(&[1280 * 720], 1), [2]);
        assert_eq!(software_threads(&[0, 0], 4), [1, 1]);
        assert!(software_threads(&[], 4).is_empty());
    }

    #[test]
    fn auto_prefers_hardware_in_order_and_records_why_others_were_skipped() {
        let mut calls = Vec::new();
        let mut try_open = |name: &str| {
            calls.push(name.to_string());
            match name {
                "h264_nvenc" => Err("no driver".to_string()),
                "h264_qsv" => Ok(()),
                _ => panic!("should have stopped at QSV"),
            }
        };
        let sel = select(VideoCodec::H264, "auto", &mut try_open).unwrap();
        assert_eq!(sel.name, "h264_qsv");
        assert_eq!(sel.backend, Backend::Qsv);
        assert_eq!(sel.passed_over, vec![PassedOver { name: "h264_nvenc".into(), reason: "no driver".into() }]);
        assert_eq!(calls, vec!["h264_nvenc", "h264_qsv"]);
    }

    #[test]
    fn auto_falls_back_to_software() {
        let mut try_open = |name: &str| if name == "libx265" { Ok(()) } else { Err(format!("{name} unavailable")) };
        let sel = select(VideoCodec::Hevc, "auto", &mut try_open).unwrap();
        assert_eq!(sel.name, "libx265");
        assert_eq!(sel.backend, Backend::Software);
        assert_eq!(sel.passed_over.len(), 3);
        assert!(!sel.forced);
    }

    #[test]
    fn forced_encoder_that_cannot_open_fails_clearly() {
        let mut try_open = |_: &str| Err("Cannot load libcuda.so.1".to_string());
        let err = select(VideoCodec::H264, "h264_nvenc", &mut try_open).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let text = err.to_string();
        assert!(text.contains("h264_nvenc") && text.contains("libcuda"), "{text}");
    }

    #[test]
    fn nothing_usable_names_every_reason() {
        let mut try_open = |name: &str| Err(format!("{name} broken"));
        let err = select(VideoCodec::Av1, "auto", &mut try_open).unwrap_err().to_string();
        assert!(err.contains("libsvtav1 broken") && err.contains("av1_nvenc broken"), "{err}");
    }

    #[test]
    fn every_backend_gets_closed_gops_and_forced_idr() {
        let x264 = options("libx264", VideoCodec::H264, "veryfast", 60, false, None);
        assert!(x264.contains(&("forced-idr".into(), "1".into())));
        assert!(x264.contains(&("sc_threshold".into(), "0".into())));
        assert!(x264.contains(&("keyint_min".into(), "60".into())));
        let nvenc = options("h264_nvenc", VideoCodec::H264, "veryfast", 60, false, None);
        assert!(nvenc.contains(&("preset".into(), "p3".into())));
        assert!(nvenc.contains(&("no-scenecut".into(), "1".into())));
        let qsv = options("hevc_qsv", VideoCodec::Hevc, "ultrafast", 60, false, None);
        assert!(qsv.contains(&("preset".into(), "veryfast".into())));
        assert!(qsv.contains(&("profile".into(), "main".into())));
        let x265 = options("libx265", VideoCodec::Hevc, "medium", 48, false, None);
        assert!(x265.iter().any(|(k, v)| k == "x265-params" && v.contains("keyint=48") && v.contains("scenecut=0")));
        assert_eq!(input_format(Backend::Vaapi, false), Pixel::NV12);
    }

    #[test]
    fn rungs_that_keep_hdr_are_fed_10_bit_and_ask_for_main_10() {
        assert_eq!(input_format(Backend::Software, true), Pixel::YUV420P10LE);
        for hardware in [Backend::Nvenc, Backend::Qsv, Backend::Vaapi] {
            assert_eq!(input_format(hardware, true), Pixel::P010LE);
        }
        for name in ["hevc_nvenc", "hevc_qsv", "hevc_vaapi"] {
            assert!(options(name, VideoCodec::Hevc, "veryfast", 48, true, None).contains(&("profile".into(), "main10".into())), "{name}");
        }
        assert!(options("hevc_nvenc", VideoCodec::Hevc, "veryfast", 48, false, None).contains(&("profile".into(), "main".into())));
    }

    #[test]
    fn encoder_names_map_to_codecs() {
        assert_eq!(codec_of("libx264"), Some(VideoCodec::H264));
        assert_eq!(codec_of("h264_vaapi"), Some(VideoCodec::H264));
        assert_eq!(codec_of("hevc_nvenc"), Some(VideoCodec::Hevc));
        assert_eq!(codec_of("libsvtav1"), Some(VideoCodec::Av1));
        assert_eq!(codec_of("mpeg4"), None);
    }
}
