//! Test helpers: media generated with FFmpeg's lavfi sources, the transcoder binary run as a
//! user would, and real clients (ffprobe, ffmpeg, openssl) to check what it wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_vaultstream-transcode");

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Generates a clip with `ffmpeg -f lavfi`; `args` go between the inputs and the output.
pub fn generate(path: &Path, inputs: &[&str], args: &[&str]) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y"]);
    for input in inputs {
        cmd.args(["-f", "lavfi", "-i", input]);
    }
    cmd.args(args).arg(path);
    ok(&mut cmd);
}

/// A `w`x`h` clip of `seconds` at `fps`, with a sine tone unless `audio` is false.
pub fn clip(dir: &Path, name: &str, w: u32, h: u32, fps: u32, seconds: u32, audio: bool) -> PathBuf {
    let path = dir.join(name);
    let video = format!("testsrc2=s={w}x{h}:r={fps}:d={seconds}");
    let tone = format!("sine=f=440:r=48000:d={seconds}");
    let mut inputs = vec![video.as_str()];
    if audio {
        inputs.push(tone.as_str());
    }
    generate(&path, &inputs, &["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]);
    path
}

pub struct Transcode {
    pub out: PathBuf,
    pub key_file: PathBuf,
    pub output: Output,
}

impl Transcode {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn manifest(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.out.join("manifest.json")).expect("manifest.json");
        serde_json::from_str(&text).expect("manifest.json is JSON")
    }

    pub fn key_hex(&self) -> String {
        hex(&std::fs::read(&self.key_file).expect("key file"))
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `vaultstream-transcode local INPUT --out DIR/out --key-file DIR/out.key ARGS`.
pub fn transcode(dir: &Path, input: &Path, args: &[&str]) -> Transcode {
    let out = dir.join("out");
    let key_file = dir.join("out.key");
    let output = run(Command::new(BIN)
        .arg("local")
        .arg(input)
        .arg("--out")
        .arg(&out)
        .arg("--key-file")
        .arg(&key_file)
        .args(args)
        .env("RUST_LOG", "info"));
    Transcode { out, key_file, output }
}

pub fn transcode_ok(dir: &Path, input: &Path, args: &[&str]) -> Transcode {
    let t = transcode(dir, input, args);
    assert_eq!(t.code(), 0, "transcode failed: {}", t.stderr());
    t
}

/// ffprobe over an HLS playlist (decrypting with the key its EXT-X-KEY names).
pub fn probe_playlist(playlist: &Path, entries: &str, select: &str) -> Vec<String> {
    let out = ok(Command::new("ffprobe")
        .args(["-v", "error", "-allowed_extensions", "ALL", "-count_frames", "-select_streams", select])
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg("-i")
        .arg(playlist));
    let mut lines: Vec<String> = out.lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
    // ffprobe lists an HLS stream once per program and once on its own: keep distinct values.
    lines.dedup();
    lines
}

pub fn frame_count(path: &Path, select: &str) -> u64 {
    let lines = probe_playlist(path, "stream=nb_read_frames", select);
    lines.first().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("no frame count for {}: {lines:?}", path.display()))
}

/// (URI, IV hex) for each segment of a media playlist.
pub fn segments(playlist: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut key = (String::new(), String::new());
    for line in playlist.lines() {
        if let Some(attrs) = line.strip_prefix("#EXT-X-KEY:") {
            let uri = attrs.split("URI=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_string();
            let iv = attrs.split("IV=0x").nth(1).map(|r| r.split(',').next().unwrap_or_default().to_lowercase()).unwrap_or_default();
            key = (uri, iv);
        } else if !line.starts_with('#') && !line.is_empty() {
            out.push((line.to_string(), key.0.clone(), key.1.clone()));
        }
    }
    out
}

/// Decrypts a segment with `openssl enc -d -aes-128-cbc` into `dest`.
pub fn openssl_decrypt(segment: &Path, key_hex: &str, iv_hex: &str, dest: &Path) {
    ok(Command::new("openssl").args(["enc", "-d", "-aes-128-cbc", "-K", key_hex, "-iv", iv_hex, "-in"]).arg(segment).arg("-out").arg(dest));
}

/// (key_frame, pict_type) of the first video frame of a plain media file.
pub fn first_video_frame(path: &Path) -> (bool, String) {
    let out = ok(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=key_frame,pict_type",
            "-of",
            "csv=p=0",
        ])
        .arg(path));
    let line = out.lines().next().unwrap_or_default().to_string();
    let mut parts = line.split(',');
    (parts.next() == Some("1"), parts.next().unwrap_or_default().to_string())
}

/// EIA-608 bytes carry odd parity in their top bit.
fn odd_parity(byte: u8) -> u8 {
    if (byte & 0x7f).count_ones() % 2 == 0 {
        byte | 0x80
    } else {
        byte & 0x7f
    }
}

/// The CEA-608 pair (channel 1, field 1) frame `i` carries: a pop-on caption of `text` loaded
/// and shown at frame 2 (resume caption loading, the characters, end of caption, each control
/// code twice as broadcast sends them), erased at frame `clear`; padding in between.
fn cea608_pair(i: u32, text: &[u8], clear: u32) -> [u8; 2] {
    let control = |code: u8| [odd_parity(0x14), odd_parity(code)];
    let chars = text.len().div_ceil(2) as u32;
    match i {
        0 | 1 => control(0x20),
        n if n >= 2 && n < 2 + chars => {
            let k = ((n - 2) * 2) as usize;
            [odd_parity(text[k]), odd_parity(*text.get(k + 1).unwrap_or(&0))]
        }
        n if n == 2 + chars || n == 3 + chars => control(0x2f),
        n if n == clear || n == clear + 1 => control(0x2c),
        _ => [0x80, 0x80],
    }
}

/// A 640x360 H.264 clip of `frames` at 30 fps whose frames carry CEA-608 captions (A/53 side
/// data that libx264 writes as SEI, as broadcast H.264 carries them): `text` shown from frame 2
/// to frame `frames / 2`.
pub fn clip_with_cea608(path: &Path, frames: u32, text: &str) {
    use ffmpeg_next as ff;
    ff::init().unwrap();
    let codec = ff::encoder::find_by_name("libx264").unwrap();
    let mut output = ff::format::output(&path).unwrap();
    let global = output.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
    let mut setup = ff::codec::context::Context::new_with_codec(codec).encoder().video().unwrap();
    setup.set_width(640);
    setup.set_height(360);
    setup.set_format(ff::format::Pixel::YUV420P);
    setup.set_time_base((1, 30));
    setup.set_frame_rate(Some((30, 1)));
    if global {
        setup.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    let mut options = ff::Dictionary::new();
    options.set("preset", "ultrafast");
    let mut encoder = setup.open_as_with(codec, options).unwrap();
    let mut stream = output.add_stream(codec).unwrap();
    stream.set_parameters(&encoder);
    output.write_header().unwrap();
    let stream_time_base = output.stream(0).unwrap().time_base();
    let drain = |encoder: &mut ff::encoder::Video, output: &mut ff::format::context::Output| {
        let mut packet = ff::Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            packet.rescale_ts((1, 30), stream_time_base);
            packet.set_stream(0);
            packet.write_interleaved(output).unwrap();
        }
    };
    for i in 0..frames {
        let mut frame = ff::frame::Video::new(ff::format::Pixel::YUV420P, 640, 360);
        for plane in 0..3 {
            frame.data_mut(plane).iter_mut().enumerate().for_each(|(k, b)| *b = ((k as u32 + i * 3) % 200) as u8 + 28);
        }
        frame.set_pts(Some(i64::from(i)));
        let pair = cea608_pair(i, text.as_bytes(), frames / 2);
        // SAFETY: a fresh side-data buffer of 3 bytes on a frame we own.
        unsafe {
            let side = ff::ffi::av_frame_new_side_data(frame.as_mut_ptr(), ff::ffi::AVFrameSideDataType::AV_FRAME_DATA_A53_CC, 3);
            assert!(!side.is_null());
            // cc_valid, cc_type 0 (field 1), then the pair.
            std::ptr::copy_nonoverlapping([0xfc, pair[0], pair[1]].as_ptr(), (*side).data, 3);
        }
        encoder.send_frame(&frame).unwrap();
        drain(&mut encoder, &mut output);
    }
    encoder.send_eof().unwrap();
    drain(&mut encoder, &mut output);
    output.write_trailer().unwrap();
}

/// The captions FFmpeg decodes from the CEA-608 data in a file's video stream, as SubRip.
pub fn cea608_text(path: &Path) -> String {
    let source = format!("movie={}[out0+subcc]", path.display());
    ok(Command::new("ffmpeg").args(["-v", "error", "-f", "lavfi", "-i", &source, "-map", "0:s", "-f", "srt", "-"]))
}
