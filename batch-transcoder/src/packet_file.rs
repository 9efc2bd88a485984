//! Encoded packets kept between a chunk and the stitch: one stream a file, in FFmpeg's NUT
//! container, which keeps any codec's parameters and every packet's exact presentation time,
//! flags and bytes in the stream's own time base (Matroska would round them to milliseconds).
//! NUT stores no decode times (its demuxer infers them, and none for the first B-frame delay's
//! packets) and no negative times (libavformat shifts a stream starting below zero, as a chunk's
//! B-frame delay or an audio encoder's priming does) and no packet side data (where a source's
//! edit list says how many priming samples to skip), so each packet's times and side data are
//! kept beside the file (`.ts`: per packet, pts and dts as little-endian i64, `i64::MIN` for
//! none, then a u32 count of side data entries, each a u32 type, a u32 length and its bytes).

use std::path::{Path, PathBuf};

use ff::packet::Mut as _;
use ff::{codec, format, Packet, Rational};
use ffmpeg_next as ff;

use crate::error::{Result, TranscodeError};

/// Writes one stream's packets, as they come, to a NUT file.
pub struct PacketWriter {
    output: format::context::Output,
    time_base: Rational,
    stream_time_base: Rational,
    path: PathBuf,
    dts: Vec<u8>,
    pub packets: u64,
    pub bytes: u64,
}

fn times_file(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".ts");
    PathBuf::from(name)
}

impl PacketWriter {
    /// `parameters` describe the stream (an encoder's, or a source stream's); packets arrive in
    /// `time_base`.
    pub fn create(path: &Path, parameters: codec::Parameters, time_base: Rational) -> Result<PacketWriter> {
        let fail = |what: &str, e: ff::Error| TranscodeError::Fatal(format!("{what} {}: {e}", path.display()));
        let mut output = format::output_as(path, "nut").map_err(|e| fail("creating", e))?;
        {
            let mut stream = output.add_stream(codec::encoder::find(codec::Id::None)).map_err(|e| fail("adding a stream to", e))?;
            stream.set_parameters(parameters);
            stream.set_time_base(time_base);
            // SAFETY: a freshly added stream; a codec tag of zero lets the muxer choose its own.
            unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0 };
        }
        output.write_header().map_err(|e| fail("writing the header of", e))?;
        let stream_time_base = output.stream(0).map(|s| s.time_base()).unwrap_or(time_base);
        Ok(PacketWriter { output, time_base, stream_time_base, path: path.to_path_buf(), dts: Vec::new(), packets: 0, bytes: 0 })
    }

    /// A time in the packets' time base, as the file keeps it (its stream's own time base).
    pub fn stored_time(&self, ts: i64) -> i64 {
        use ff::Rescale;
        ts.rescale(self.time_base, self.stream_time_base)
    }

    pub fn write(&mut self, packet: &Packet) -> Result<()> {
        let mut packet = packet.clone();
        packet.set_stream(0);
        packet.set_position(-1);
        packet.rescale_ts(self.time_base, self.stream_time_base);
        self.bytes += packet.size() as u64;
        self.packets += 1;
        for ts in [packet.pts(), packet.dts()] {
            self.dts.extend_from_slice(&ts.unwrap_or(i64::MIN).to_le_bytes());
        }
        let side: Vec<_> = packet.side_data().collect();
        self.dts.extend_from_slice(&(side.len() as u32).to_le_bytes());
        for entry in side {
            let kind: ff::ffi::AVPacketSideDataType = entry.kind().into();
            self.dts.extend_from_slice(&(kind as u32).to_le_bytes());
            self.dts.extend_from_slice(&(entry.data().len() as u32).to_le_bytes());
            self.dts.extend_from_slice(entry.data());
        }
        packet.write(&mut self.output).map(|_| ()).map_err(|e| TranscodeError::Fatal(format!("writing {}: {e}", self.path.display())))
    }

    pub fn finish(mut self) -> Result<(u64, u64)> {
        self.output.write_trailer().map_err(|e| TranscodeError::Fatal(format!("finishing {}: {e}", self.path.display())))?;
        let dts = times_file(&self.path);
        std::fs::write(&dts, &self.dts).map_err(|e| TranscodeError::output(&format!("writing {}", dts.display()), e))?;
        Ok((self.packets, self.bytes))
    }
}

/// Reads the packets of several NUT files of one stream, one file after the other, checking that
/// decode times only ever go forward across them.
pub struct PacketChain {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(format::context::Input, Rational, PathBuf, Times)>,
    /// The time base packets are handed out in (the first file's).
    pub time_base: Rational,
    pub parameters: codec::Parameters,
    last_dts: Option<i64>,
}

/// A packet's times and side data, as the writer was given them.
struct Stored {
    pts: Option<i64>,
    dts: Option<i64>,
    side_data: Vec<(u32, Vec<u8>)>,
}

type Times = std::vec::IntoIter<Stored>;

fn parse_times(mut bytes: &[u8]) -> Option<Vec<Stored>> {
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = (bytes.get(..n)?, bytes.get(n..)?);
        bytes = rest;
        Some(head)
    };
    let mut out = Vec::new();
    loop {
        let Some(pts) = take(8) else { return Some(out) };
        let time = |b: &[u8]| Some(i64::from_le_bytes(b.try_into().ok()?)).filter(|&t| t != i64::MIN);
        let u32_of = |b: &[u8]| b.try_into().ok().map(u32::from_le_bytes);
        let pts = time(pts);
        let dts = time(take(8)?);
        let count = u32_of(take(4)?)?;
        let mut side_data = Vec::new();
        for _ in 0..count {
            let kind = u32_of(take(4)?)?;
            let len = u32_of(take(4)?)? as usize;
            side_data.push((kind, take(len)?.to_vec()));
        }
        out.push(Stored { pts, dts, side_data });
    }
}

fn open(path: &Path) -> Result<(format::context::Input, Rational, codec::Parameters, Times)> {
    let times_path = times_file(path);
    let bytes = std::fs::read(&times_path).map_err(|e| TranscodeError::Temporary(format!("reading {}: {e}", times_path.display())))?;
    let dts = parse_times(&bytes).ok_or_else(|| TranscodeError::Fatal(format!("{} is damaged", times_path.display())))?;
    let mut options = ff::Dictionary::new();
    options.set("format_whitelist", "nut");
    options.set("protocol_whitelist", "file");
    let input = format::input_with_dictionary(path, options)
        .map_err(|e| TranscodeError::Temporary(format!("reading the chunk file {}: {e}", path.display())))?;
    let stream = input.stream(0).ok_or_else(|| TranscodeError::Fatal(format!("{} holds no stream", path.display())))?;
    let (time_base, parameters) = (stream.time_base(), stream.parameters());
    Ok((input, time_base, parameters, dts.into_iter()))
}

impl PacketChain {
    pub fn open(files: Vec<PathBuf>) -> Result<PacketChain> {
        let first = files.first().ok_or_else(|| TranscodeError::Fatal("no chunk files to read".into()))?;
        let (input, time_base, parameters, dts) = open(first)?;
        let first = first.clone();
        let mut files = files.into_iter();
        files.next();
        Ok(PacketChain { files, current: Some((input, time_base, first, dts)), time_base, parameters, last_dts: None })
    }

    /// The next packet in `time_base`, or `None` after the last file's last.
    pub fn next_packet(&mut self) -> Result<Option<Packet>> {
        loop {
            let Some((input, file_time_base, path, dts)) = self.current.as_mut() else { return Ok(None) };
            let mut packet = Packet::empty();
            match packet.read(input) {
                Ok(()) => {
                    let stored =
                        dts.next().ok_or_else(|| TranscodeError::Fatal(format!("{} has more packets than timestamps", path.display())))?;
                    packet.set_pts(stored.pts);
                    packet.set_dts(stored.dts);
                    for (kind, data) in &stored.side_data {
                        // SAFETY: a packet we own; the new entry is allocated by FFmpeg with the
                        // size asked for and filled here before anything reads it. The type is
                        // one FFmpeg wrote (a source's or an encoder's).
                        unsafe {
                            let kind: ff::ffi::AVPacketSideDataType = std::mem::transmute(*kind);
                            let buffer = ff::ffi::av_packet_new_side_data(packet.as_mut_ptr(), kind, data.len());
                            if buffer.is_null() {
                                return Err(TranscodeError::Fatal("allocating packet side data".into()));
                            }
                            std::ptr::copy_nonoverlapping(data.as_ptr(), buffer, data.len());
                        }
                    }
                    packet.rescale_ts(*file_time_base, self.time_base);
                    packet.set_stream(0);
                    let dts = packet.dts().or(packet.pts());
                    if let (Some(dts), Some(last)) = (dts, self.last_dts) {
                        if dts <= last {
                            return Err(TranscodeError::Fatal(format!(
                                "{}: decode time {dts} follows {last}: the chunks overlap; re-encode the title",
                                path.display()
                            )));
                        }
                    }
                    self.last_dts = dts.or(self.last_dts);
                    return Ok(Some(packet));
                }
                Err(ff::Error::Eof) => {
                    self.current = match self.files.next() {
                        Some(next) => {
                            let (input, time_base, _, dts) = open(&next)?;
                            Some((input, time_base, next, dts))
                        }
                        None => None,
                    };
                }
                Err(e) => return Err(TranscodeError::Fatal(format!("reading {}: {e}", path.display()))),
            }
        }
    }
}
