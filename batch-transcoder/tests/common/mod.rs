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
