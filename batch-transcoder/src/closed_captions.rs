//! CEA-608/708 closed captions embedded in the source's video (A/53 user data, as broadcast and
//! camera H.264 and MPEG-2 carry them) are kept in every rung whose encoder writes them.
//!
//! FFmpeg's decoders hand them over as `A53_CC` frame side data and the encoders (libx264,
//! h264_nvenc, h264_qsv; libx265 from FFmpeg 6.1) write that data back as SEI. Filters carry
//! side data along; a frame made anew (scaled, uploaded to a GPU) must be given it again.

use ff::frame;
use ffmpeg_next as ff;

use crate::error::{Result, TranscodeError};

/// Copies the captions `from` carries onto `to`.
pub fn carry(from: &frame::Video, to: &mut frame::Video) -> Result<()> {
    let Some(captions) = from.side_data(frame::side_data::Type::A53CC) else { return Ok(()) };
    let bytes = captions.data();
    // SAFETY: a new side-data buffer of `bytes.len()` bytes on a frame we own, filled from a
    // slice of exactly that length.
    unsafe {
        let side = ff::ffi::av_frame_new_side_data(to.as_mut_ptr(), ff::ffi::AVFrameSideDataType::AV_FRAME_DATA_A53_CC, bytes.len() as _);
        if side.is_null() {
            return Err(TranscodeError::Fatal("allocating closed-caption side data".into()));
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (*side).data, bytes.len());
    }
    Ok(())
}

/// Whether an encoded access unit (Annex B) carries A/53 captions: an SEI NAL unit (H.264 type 6,
/// HEVC prefix SEI 39) holding registered ITU-T T.35 user data tagged `GA94`.
pub fn in_access_unit(data: &[u8], hevc: bool) -> bool {
    let kind = |nal: &[u8]| nal.first().map(|&header| if hevc { (header >> 1) & 0x3f } else { header & 0x1f });
    // SEI comes before the first slice: nothing after it is looked at.
    let is_slice = |kind: u8| if hevc { kind < 32 } else { (1..=5).contains(&kind) };
    nal_units(data)
        .take_while(|nal| !kind(nal).is_some_and(is_slice))
        .any(|nal| kind(nal) == Some(if hevc { 39 } else { 6 }) && nal.windows(4).any(|w| w == b"GA94"))
}

/// The NAL units of an Annex B byte stream (each without its start code), found lazily.
fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let start_code_after =
        move |from: usize| (from..data.len().saturating_sub(2)).find(|&i| data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1);
    let mut next = start_code_after(0);
    std::iter::from_fn(move || {
        let start = next? + 3;
        next = start_code_after(start);
        Some(&data[start..next.unwrap_or(data.len()).max(start)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_follow_a_frame_that_is_made_anew() {
        let mut source = frame::Video::new(ff::format::Pixel::YUV420P, 16, 16);
        let mut scaled = frame::Video::new(ff::format::Pixel::YUV420P, 8, 8);
        carry(&source, &mut scaled).unwrap();
        assert!(scaled.side_data(frame::side_data::Type::A53CC).is_none(), "nothing to carry");
        // SAFETY: as in `carry`.
        unsafe {
            let side = ff::ffi::av_frame_new_side_data(source.as_mut_ptr(), ff::ffi::AVFrameSideDataType::AV_FRAME_DATA_A53_CC, 3);
            std::ptr::copy_nonoverlapping([0xfc, 0x94, 0x20].as_ptr(), (*side).data, 3);
        }
        carry(&source, &mut scaled).unwrap();
        assert_eq!(scaled.side_data(frame::side_data::Type::A53CC).unwrap().data(), [0xfc, 0x94, 0x20]);
    }

    #[test]
    fn the_a53_tag_is_found_in_sei_only() {
        let sei = |header: &[u8]| {
            let mut unit = vec![0, 0, 0, 1];
            unit.extend_from_slice(header);
            unit.extend_from_slice(&[4, 47, 181, 0, 49]);
            unit.extend_from_slice(b"GA94");
            unit.extend_from_slice(&[0, 0, 1, 0x65, 9, 9, 9]);
            unit
        };
        assert!(in_access_unit(&sei(&[0x06]), false), "H.264 SEI");
        assert!(in_access_unit(&sei(&[0x4e, 0x01]), true), "HEVC prefix SEI");
        assert!(!in_access_unit(&sei(&[0x06]), true), "an H.264 SEI header is no HEVC SEI");
        let mut slice = vec![0, 0, 1, 0x65, 1, 2];
        slice.extend_from_slice(b"GA94");
        assert!(!in_access_unit(&slice, false), "the tag in slice data is not captions");
    }
}
