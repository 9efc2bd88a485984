//! The trick-play track: the thumbnails tiled into sprite sheets (JPEG, five by five) and a
//! WebVTT file whose cues name a sheet and the tile's place in it (`sheet.jpg#xywh=x,y,w,h`), the
//! form players' scrub bars read. Both sit beside the thumbnails and are fetched like them.

use std::fmt::Write as _;
use std::path::PathBuf;

use ff::format::Pixel;
use ff::frame;
use ffmpeg_next as ff;

use crate::error::{Result, TranscodeError};
use crate::thumbnails::encode_jpeg;

pub const COLUMNS: u32 = 5;
pub const ROWS: u32 = 5;
pub const TRACK: &str = "storyboard.vtt";

pub struct Storyboard {
    dir: PathBuf,
    /// The sheet being filled, its tile size, and how many tiles it holds.
    sheet: Option<(frame::Video, (u32, u32), u32)>,
    sheets: u32,
    /// (time, `sheet#xywh=…`) of every tile so far.
    cues: Vec<(f64, String)>,
}

impl Storyboard {
    pub fn new(dir: PathBuf) -> Storyboard {
        Storyboard { dir, sheet: None, sheets: 0, cues: Vec::new() }
    }

    /// Adds a thumbnail (full-range 4:2:0, even size) shown from `time` on.
    pub fn add(&mut self, thumbnail: &frame::Video, time: f64) -> Result<()> {
        let tile = (thumbnail.width(), thumbnail.height());
        if self.sheet.as_ref().is_some_and(|(_, size, _)| *size != tile) {
            self.flush()?;
        }
        let (sheet, size, count) = self.sheet.get_or_insert_with(|| (blank(tile.0 * COLUMNS, tile.1 * ROWS), tile, 0));
        let (x, y) = ((*count % COLUMNS) * size.0, (*count / COLUMNS) * size.1);
        paste(sheet, thumbnail, x, y);
        *count += 1;
        self.cues.push((time, format!("{}#xywh={x},{y},{},{}", sheet_name(self.sheets), size.0, size.1)));
        if *count == COLUMNS * ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the last sheet and the track (the last cue lasting `last_cue_seconds`); the
    /// track's file name, if there were thumbnails.
    pub fn finish(mut self, last_cue_seconds: f64) -> Result<Option<String>> {
        self.flush()?;
        if self.cues.is_empty() {
            return Ok(None);
        }
        let mut track = String::from("WEBVTT\n");
        for (i, (start, target)) in self.cues.iter().enumerate() {
            let end = self.cues.get(i + 1).map_or(start + last_cue_seconds, |(next, _)| *next);
            let _ = write!(track, "\n{} --> {}\n{target}\n", timestamp(*start), timestamp(end));
        }
        std::fs::write(self.dir.join(TRACK), track).map_err(|e| TranscodeError::output(&format!("writing {TRACK}"), e))?;
        Ok(Some(TRACK.to_string()))
    }

    /// Writes the sheet being filled, cropped to the tiles it holds.
    fn flush(&mut self) -> Result<()> {
        let Some((sheet, (w, h), count)) = self.sheet.take() else { return Ok(()) };
        let (columns, rows) = (count.min(COLUMNS), count.div_ceil(COLUMNS));
        let mut used = blank(w * columns, h * rows);
        paste(&mut used, &sheet, 0, 0);
        let name = sheet_name(self.sheets);
        std::fs::write(self.dir.join(&name), encode_jpeg(&used)?).map_err(|e| TranscodeError::output(&format!("writing {name}"), e))?;
        self.sheets += 1;
        Ok(())
    }
}

fn sheet_name(index: u32) -> String {
    format!("storyboard_{index:05}.jpg")
}

/// A black full-range 4:2:0 picture.
fn blank(width: u32, height: u32) -> frame::Video {
    let mut picture = frame::Video::new(Pixel::YUVJ420P, width, height);
    for (plane, value) in [(0, 0u8), (1, 128), (2, 128)] {
        picture.data_mut(plane).fill(value);
    }
    picture
}

/// Copies as much of `tile` as fits into `into` with its top left corner at (`x`, `y`), both even.
fn paste(into: &mut frame::Video, tile: &frame::Video, x: u32, y: u32) {
    let width = tile.width().min(into.width().saturating_sub(x));
    let height = tile.height().min(into.height().saturating_sub(y));
    for plane in 0..3 {
        // Chroma planes are half the size each way.
        let shift = u32::from(plane > 0);
        let (x, y) = ((x >> shift) as usize, (y >> shift) as usize);
        let (width, height) = ((width >> shift) as usize, (height >> shift) as usize);
        let (from_stride, to_stride) = (tile.stride(plane), into.stride(plane));
        for row in 0..height {
            let from = &tile.data(plane)[row * from_stride..][..width];
            into.data_mut(plane)[(y + row) * to_stride + x..][..width].copy_from_slice(from);
        }
    }
}

/// `HH:MM:SS.mmm`, as WebVTT writes cue times.
fn timestamp(seconds: f64) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}.{:03}", millis / 3_600_000, millis / 60_000 % 60, millis / 1000 % 60, millis % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(width: u32, height: u32, luma: u8) -> frame::Video {
        let mut picture = blank(width, height);
        picture.data_mut(0).fill(luma);
        picture
    }

    #[test]
    fn tiles_fill_sheets_row_by_row_and_cues_name_their_place() {
        ff::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut board = Storyboard::new(dir.path().to_path_buf());
        for i in 0..27 {
            board.add(&flat(32, 18, 10 * i as u8), f64::from(i) * 10.0).unwrap();
        }
        assert_eq!(board.finish(10.0).unwrap().as_deref(), Some(TRACK));
        let track = std::fs::read_to_string(dir.path().join(TRACK)).unwrap();
        assert!(track.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:10.000\nstoryboard_00000.jpg#xywh=0,0,32,18\n"), "{track}");
        assert!(track.contains("00:01:10.000 --> 00:01:20.000\nstoryboard_00000.jpg#xywh=64,18,32,18\n"), "{track}");
        // The 26th tile starts the second sheet; the last cue lasts one interval.
        assert!(track.contains("00:04:10.000 --> 00:04:20.000\nstoryboard_00001.jpg#xywh=0,0,32,18\n"), "{track}");
        assert!(track.ends_with("00:04:20.000 --> 00:04:30.000\nstoryboard_00001.jpg#xywh=32,0,32,18\n"), "{track}");
        for (sheet, size) in [("storyboard_00000.jpg", (160, 90)), ("storyboard_00001.jpg", (64, 18))] {
            let bytes = std::fs::read(dir.path().join(sheet)).unwrap();
            assert_eq!(&bytes[..2], [0xFF, 0xD8], "{sheet} is a JPEG");
            assert_eq!(jpeg_size(&dir.path().join(sheet)), size, "{sheet}");
        }
        assert_eq!(timestamp(3723.4567), "01:02:03.457");
    }

    #[test]
    fn no_thumbnails_no_track() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Storyboard::new(dir.path().to_path_buf()).finish(10.0).unwrap(), None);
        assert!(!dir.path().join(TRACK).exists());
    }

    /// (width, height) as ffprobe reads the file.
    fn jpeg_size(path: &std::path::Path) -> (u32, u32) {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.trim().split(',').map(|v| v.parse().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    }
}
