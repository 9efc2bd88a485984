//! HDR10 static metadata: the mastering display's colour volume (SMPTE ST 2086) and the
//! content light levels (MaxCLL, MaxFALL), which displays use to tone-map PQ content to what they
//! can show. Rungs that keep a PQ source's HDR carry the source's values on.
//!
//! Containers (MP4 `mdcv`/`clli`, Matroska) state them for the stream; HEVC sources often state
//! them only in SEI messages, which FFmpeg hands over with decoded frames. Encoders are opened
//! before decoding starts, so for those the probe decodes the first frame on its own.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ff::ffi::AVRational;
use ff::frame;
use ffmpeg_next as ff;
use serde::Serialize;

use crate::error::{Result, TranscodeError};

/// libavutil's `AVMasteringDisplayMetadata` (mastering_display_metadata.h), which the FFI
/// bindings leave out; its layout has been stable since FFmpeg 3.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
struct AVMasteringDisplayMetadata {
    display_primaries: [[AVRational; 2]; 3],
    white_point: [AVRational; 2],
    min_luminance: AVRational,
    max_luminance: AVRational,
    has_primaries: i32,
    has_luminance: i32,
}

/// libavutil's `AVContentLightMetadata`.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types, non_snake_case)]
struct AVContentLightMetadata {
    MaxCLL: u32,
    MaxFALL: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mastering {
    /// CIE 1931 xy of the display's red, green and blue primaries.
    pub primaries: [[f64; 2]; 3],
    pub white_point: [f64; 2],
    /// cd/m².
    pub max_luminance: f64,
    pub min_luminance: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hdr10 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mastering: Option<Mastering>,
    /// Maximum content and maximum frame-average light level, cd/m².
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cll: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_fall: Option<u32>,
}

fn value(r: AVRational) -> f64 {
    if r.den == 0 {
        0.0
    } else {
        f64::from(r.num) / f64::from(r.den)
    }
}

fn rational(v: f64, den: i32) -> AVRational {
    AVRational { num: (v * f64::from(den)).round() as i32, den }
}

/// Reads the C structs FFmpeg stores as side data, when the bytes are long enough to hold them.
fn from_raw(mastering: Option<&[u8]>, light: Option<&[u8]>) -> Option<Hdr10> {
    let mastering = mastering.filter(|b| b.len() >= std::mem::size_of::<AVMasteringDisplayMetadata>()).and_then(|bytes| {
        // SAFETY: FFmpeg allocates this side data as one AVMasteringDisplayMetadata (length
        // checked above); read_unaligned copies it out whatever the buffer's alignment.
        let m = unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const AVMasteringDisplayMetadata) };
        (m.has_primaries != 0 && m.has_luminance != 0).then(|| Mastering {
            primaries: m.display_primaries.map(|xy| [value(xy[0]), value(xy[1])]),
            white_point: [value(m.white_point[0]), value(m.white_point[1])],
            max_luminance: value(m.max_luminance),
            min_luminance: value(m.min_luminance),
        })
    });
    let light = light.filter(|b| b.len() >= std::mem::size_of::<AVContentLightMetadata>()).map(|bytes| {
        // SAFETY: as above, for AVContentLightMetadata.
        unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const AVContentLightMetadata) }
    });
    let found = Hdr10 { mastering, max_cll: light.map(|l| l.MaxCLL), max_fall: light.map(|l| l.MaxFALL) };
    (found.mastering.is_some() || found.max_cll.is_some()).then_some(found)
}

impl Hdr10 {
    /// What the container states for the stream.
    pub fn of_stream(stream: &ff::format::stream::Stream) -> Option<Hdr10> {
        use ff::codec::packet::side_data::Type;
        let find = |kind: Type| stream.side_data().find(|s| s.kind() == kind).map(|s| s.data().to_vec());
        from_raw(find(Type::MasteringDisplayMetadata).as_deref(), find(Type::ContentLightLevel).as_deref())
    }

    /// What a decoded frame carries (from SEI).
    pub fn of_frame(frame: &frame::Video) -> Option<Hdr10> {
        use frame::side_data::Type;
        let mastering = frame.side_data(Type::MasteringDisplayMetadata);
        let light = frame.side_data(Type::ContentLightLevel);
        from_raw(mastering.as_ref().map(|s| s.data()), light.as_ref().map(|s| s.data()))
    }

    /// The first video frame's metadata, read with a decoder of its own (a regular file only:
    /// a pipe cannot be read twice). `None` when it carries none or cannot be read.
    pub fn of_first_frame(path: &Path, abort: Arc<AtomicBool>) -> Option<Hdr10> {
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let (mut input, _) = crate::probe::open(path, abort).ok()?;
        let stream = input.streams().best(ff::media::Type::Video)?;
        let index = stream.index();
        let context = ff::codec::context::Context::from_parameters(stream.parameters()).ok()?;
        let mut decoder = context.decoder().video().ok()?;
        let mut frame = frame::Video::empty();
        // An IDR opens the stream; SEI metadata sits in front of it. Give up after a few seconds' worth.
        for (stream, packet) in input.packets().take(600) {
            if stream.index() != index || decoder.send_packet(&packet).is_err() {
                continue;
            }
            if decoder.receive_frame(&mut frame).is_ok() {
                return Hdr10::of_frame(&frame);
            }
        }
        None
    }

    /// libx265's parameters for it (`master-display` in its units: 0.00002 for chromaticity,
    /// 0.0001 cd/m² for luminance, green first).
    pub fn x265_params(&self) -> String {
        let mut params = vec!["hdr10=1".to_string()];
        if let Some(m) = &self.mastering {
            let xy = |p: [f64; 2]| format!("({},{})", (p[0] * 50_000.0).round() as u32, (p[1] * 50_000.0).round() as u32);
            let [red, green, blue] = m.primaries;
            params.push(format!(
                "master-display=G{}B{}R{}WP{}L({},{})",
                xy(green),
                xy(blue),
                xy(red),
                xy(m.white_point),
                (m.max_luminance * 10_000.0).round() as u64,
                (m.min_luminance * 10_000.0).round() as u64
            ));
        }
        if let (Some(cll), Some(fall)) = (self.max_cll, self.max_fall) {
            params.push(format!("max-cll={cll},{fall}"));
        }
        params.join(":")
    }

    /// Puts it on a frame as side data: what hardware encoders (NVENC, QSV, VAAPI) read it from.
    pub fn attach(&self, to: &mut frame::Video) -> Result<()> {
        // SAFETY: new side-data buffers of exactly the structs' sizes on a frame we own; each is
        // written whole with write_unaligned.
        unsafe {
            if let Some(m) = &self.mastering {
                let size = std::mem::size_of::<AVMasteringDisplayMetadata>();
                let side = ff::ffi::av_frame_new_side_data(
                    to.as_mut_ptr(),
                    ff::ffi::AVFrameSideDataType::AV_FRAME_DATA_MASTERING_DISPLAY_METADATA,
                    size as _,
                );
                if side.is_null() {
                    return Err(TranscodeError::Fatal("allocating mastering-display side data".into()));
                }
                let metadata = AVMasteringDisplayMetadata {
                    display_primaries: m.primaries.map(|p| [rational(p[0], 50_000), rational(p[1], 50_000)]),
                    white_point: [rational(m.white_point[0], 50_000), rational(m.white_point[1], 50_000)],
                    min_luminance: rational(m.min_luminance, 10_000),
                    max_luminance: rational(m.max_luminance, 10_000),
                    has_primaries: 1,
                    has_luminance: 1,
                };
                std::ptr::write_unaligned((*side).data as *mut AVMasteringDisplayMetadata, metadata);
            }
            if let (Some(cll), Some(fall)) = (self.max_cll, self.max_fall) {
                let size = std::mem::size_of::<AVContentLightMetadata>();
                let side = ff::ffi::av_frame_new_side_data(
                    to.as_mut_ptr(),
                    ff::ffi::AVFrameSideDataType::AV_FRAME_DATA_CONTENT_LIGHT_LEVEL,
                    size as _,
                );
                if side.is_null() {
                    return Err(TranscodeError::Fatal("allocating content-light side data".into()));
                }
                std::ptr::write_unaligned(
                    (*side).data as *mut AVContentLightMetadata,
                    AVContentLightMetadata { MaxCLL: cll, MaxFALL: fall },
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p3_d65_1000() -> Hdr10 {
        Hdr10 {
            mastering: Some(Mastering {
                primaries: [[0.68, 0.32], [0.265, 0.69], [0.15, 0.06]],
                white_point: [0.3127, 0.329],
                max_luminance: 1000.0,
                min_luminance: 0.005,
            }),
            max_cll: Some(1000),
            max_fall: Some(400),
        }
    }

    #[test]
    fn x265_gets_its_own_units_green_first() {
        assert_eq!(
            p3_d65_1000().x265_params(),
            "hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400"
        );
        let light_only = Hdr10 { mastering: None, max_cll: Some(600), max_fall: Some(200) };
        assert_eq!(light_only.x265_params(), "hdr10=1:max-cll=600,200");
    }

    #[test]
    fn what_is_attached_reads_back() {
        let mut frame = frame::Video::new(ff::format::Pixel::YUV420P10LE, 16, 16);
        assert_eq!(Hdr10::of_frame(&frame), None);
        p3_d65_1000().attach(&mut frame).unwrap();
        assert_eq!(Hdr10::of_frame(&frame), Some(p3_d65_1000()));
    }
}
