//! Poster, periodic thumbnails and the trick-play storyboard made of them, taken from the same
//! decode pass as the ladder.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use ff::software::scaling;
use ff::{codec, encoder, format::Pixel, frame, Packet, Rational};
use ffmpeg_next as ff;
use serde::Serialize;

use crate::error::{Result, TranscodeError};
use crate::storyboard::Storyboard;

pub const THUMBNAIL_INTERVAL: f64 = 10.0;
pub const THUMBNAIL_WIDTH: u32 = 320;
/// The poster is taken from the first frame at or after this time (or the first frame at all).
pub const POSTER_AT: f64 = 1.0;

pub enum Shot {
    Poster(Arc<frame::Video>),
    Thumbnail { index: usize, time: f64, frame: Arc<frame::Video> },
}

/// Decides, frame by frame, which output frames become pictures.
#[derive(Debug, Default)]
pub struct ShotPicker {
    next_thumbnail: usize,
    poster_taken: bool,
}

impl ShotPicker {
    /// The picker of a chunk starting at `start_seconds`: the thumbnails from there on, and the
    /// poster only in the chunk that starts the title.
    pub fn from(start_seconds: f64) -> ShotPicker {
        ShotPicker {
            next_thumbnail: (start_seconds / THUMBNAIL_INTERVAL - 1e-6).ceil().max(0.0) as usize,
            poster_taken: start_seconds > 0.0,
        }
    }

    /// `time` of the current frame; `last` says whether it is the final frame (a clip shorter
    /// than `POSTER_AT` still gets a poster).
    pub fn pick(&mut self, time: f64) -> (bool, Option<usize>) {
        let poster = !self.poster_taken && time + 1e-6 >= POSTER_AT;
        if poster {
            self.poster_taken = true;
        }
        let thumb = (time + 1e-6 >= self.next_thumbnail as f64 * THUMBNAIL_INTERVAL).then(|| {
            self.next_thumbnail += 1;
            self.next_thumbnail - 1
        });
        (poster, thumb)
    }

    pub fn poster_taken(&self) -> bool {
        self.poster_taken
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Thumbnail {
    pub uri: String,
    pub time: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Pictures {
    pub poster: Option<String>,
    pub thumbnails: Vec<Thumbnail>,
    /// The trick-play track: WebVTT cues pointing into sprite sheets of the thumbnails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storyboard: Option<String>,
}

/// `input` scaled to `width`×`height` in JPEG's full-range 4:2:0.
fn scale_for_jpeg(input: &frame::Video, width: u32, height: u32) -> Result<frame::Video> {
    let fatal = |what: &str, e: ff::Error| TranscodeError::Fatal(format!("{what}: {e}"));
    let mut scaler =
        scaling::Context::get(input.format(), input.width(), input.height(), Pixel::YUVJ420P, width, height, scaling::Flags::BICUBIC)
            .map_err(|e| fatal("thumbnail scaler", e))?;
    let mut scaled = frame::Video::new(Pixel::YUVJ420P, width, height);
    scaler.run(input, &mut scaled).map_err(|e| fatal("thumbnail scaling", e))?;
    Ok(scaled)
}

/// A full-range 4:2:0 picture as a JPEG.
pub fn encode_jpeg(picture: &frame::Video) -> Result<Vec<u8>> {
    let fatal = |what: &str, e: ff::Error| TranscodeError::Fatal(format!("{what}: {e}"));
    let (width, height) = (picture.width(), picture.height());
    // Our own reference: pts and quality are set on it for this encode.
    let mut owned = picture.clone();
    owned.set_pts(Some(0));

    let mjpeg = encoder::find_by_name("mjpeg").ok_or_else(|| TranscodeError::Fatal("this FFmpeg build has no mjpeg encoder".into()))?;
    let mut enc = codec::Context::new_with_codec(mjpeg).encoder().video().map_err(|e| fatal("mjpeg encoder", e))?;
    enc.set_width(width);
    enc.set_height(height);
    enc.set_format(Pixel::YUVJ420P);
    enc.set_time_base(Rational::new(1, 25));
    enc.set_flags(codec::Flags::QSCALE);
    // Quality 3 on JPEG's 2..31 scale, in FFmpeg's lambda units.
    enc.set_global_quality(3 * ff::ffi::FF_QP2LAMBDA);
    enc.set_qmin(2);
    enc.set_qmax(5);
    let mut enc = enc.open_as(mjpeg).map_err(|e| fatal("opening mjpeg", e))?;
    // SAFETY: the quality field is read by the mjpeg encoder for this frame only.
    unsafe { (*owned.as_mut_ptr()).quality = 3 * ff::ffi::FF_QP2LAMBDA };
    enc.send_frame(&owned).map_err(|e| fatal("encoding jpeg", e))?;
    enc.send_eof().map_err(|e| fatal("encoding jpeg", e))?;
    let mut packet = Packet::empty();
    enc.receive_packet(&mut packet).map_err(|e| fatal("encoding jpeg", e))?;
    Ok(packet.data().unwrap_or_default().to_vec())
}

/// Writes `poster.jpg` (at `poster_size`), `thumbnails/thumb_NNNNN.jpg` and, with `storyboard`,
/// the storyboard (`thumbnails/storyboard.vtt` and its sheets) into `dir`. A chunk makes none:
/// the stitch tiles every chunk's thumbnails into one.
pub fn run(dir: PathBuf, poster_size: (u32, u32), shots: Receiver<Shot>, storyboard: bool) -> Result<Pictures> {
    let thumbs_dir = dir.join("thumbnails");
    std::fs::create_dir_all(&thumbs_dir).map_err(|e| TranscodeError::output(&format!("creating {}", thumbs_dir.display()), e))?;
    let mut pictures = Pictures::default();
    let make_storyboard = storyboard;
    let mut storyboard = Storyboard::new(thumbs_dir);
    for shot in shots.iter() {
        match shot {
            Shot::Poster(frame) => {
                let jpeg = encode_jpeg(&scale_for_jpeg(&frame, poster_size.0, poster_size.1)?)?;
                std::fs::write(dir.join("poster.jpg"), jpeg).map_err(|e| TranscodeError::output("writing poster.jpg", e))?;
                pictures.poster = Some("poster.jpg".into());
            }
            Shot::Thumbnail { index, time, frame } => {
                let height = vaultstream::ladder::even(f64::from(THUMBNAIL_WIDTH) * f64::from(frame.height()) / f64::from(frame.width()));
                let thumbnail = scale_for_jpeg(&frame, THUMBNAIL_WIDTH, height)?;
                let uri = format!("thumbnails/thumb_{index:05}.jpg");
                std::fs::write(dir.join(&uri), encode_jpeg(&thumbnail)?)
                    .map_err(|e| TranscodeError::output(&format!("writing {uri}"), e))?;
                if make_storyboard {
                    storyboard.add(&thumbnail, time)?;
                }
                pictures.thumbnails.push(Thumbnail { uri, time });
            }
        }
    }
    if make_storyboard {
        pictures.storyboard = storyboard.finish(THUMBNAIL_INTERVAL)?.map(|name| format!("thumbnails/{name}"));
    }
    Ok(pictures)
}

/// The storyboard of thumbnails already written (a chunked title's, gathered from its chunks),
/// each decoded from its JPEG and tiled as [`run`] tiles them.
pub fn storyboard_of(dir: &std::path::Path, thumbnails: &[Thumbnail]) -> Result<Option<String>> {
    let mut storyboard = Storyboard::new(dir.join("thumbnails"));
    for t in thumbnails {
        let picture = decode_jpeg(&dir.join(&t.uri))?;
        storyboard.add(&picture, t.time)?;
    }
    Ok(storyboard.finish(THUMBNAIL_INTERVAL)?.map(|name| format!("thumbnails/{name}")))
}

fn decode_jpeg(path: &std::path::Path) -> Result<frame::Video> {
    let fatal = |e: ff::Error| TranscodeError::Fatal(format!("reading the thumbnail {}: {e}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| TranscodeError::output(&format!("reading {}", path.display()), e))?;
    let mjpeg =
        ff::decoder::find(codec::Id::MJPEG).ok_or_else(|| TranscodeError::Fatal("this FFmpeg build has no mjpeg decoder".into()))?;
    let mut decoder = codec::Context::new_with_codec(mjpeg).decoder().video().map_err(fatal)?;
    decoder.send_packet(&Packet::copy(&bytes)).map_err(fatal)?;
    decoder.send_eof().map_err(fatal)?;
    let mut picture = frame::Video::empty();
    decoder.receive_frame(&mut picture).map_err(fatal)?;
    Ok(picture)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_every_ten_seconds_and_one_poster() {
        let mut picker = ShotPicker::default();
        let picks: Vec<_> = (0..750).map(|i| picker.pick(f64::from(i) / 30.0)).collect();
        let thumbs: Vec<usize> = picks.iter().enumerate().filter(|(_, p)| p.1.is_some()).map(|(i, _)| i).collect();
        assert_eq!(thumbs, vec![0, 300, 600]);
        let posters: Vec<usize> = picks.iter().enumerate().filter(|(_, p)| p.0).map(|(i, _)| i).collect();
        assert_eq!(posters, vec![30]);
    }
}
