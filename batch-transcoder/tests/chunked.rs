//! Split-and-stitch against the whole-title transcode of the same source (3 minutes at 360p with
//! a scene cut every 7 s, in and out of GOPs, and a 440 Hz tone): the same frames, segments
//! and IDRs in every rung, every segment decoding, quality within 0.2 dB, and audio identical
//! sample for sample with no click at any seam. Then a chunk worker killed mid-way: retried
//! alone, one complete title published.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const SECONDS: u32 = 180;
const CHUNK_SECONDS: &str = "30";

fn source(dir: &Path) -> PathBuf {
    let path = dir.join("scenes.mp4");
    let video = format!("testsrc2=s=640x360:r=30:d={SECONDS}");
    let bars = format!("smptehdbars=s=640x360:r=30:d={SECONDS}");
    let tone = format!("sine=f=440:r=48000:d={SECONDS}");
    generate(
        &path,
        &[&video, &bars, &tone],
        &[
            "-filter_complex",
            "[0:v][1:v]blend=all_expr='if(lt(mod(T,7),3.5),A,B)'[v]",
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "250",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
    );
    path
}

fn local(dir: &Path, input: &Path, name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("local")
        .arg(input)
        .arg("--out")
        .arg(dir.join(name))
        .arg("--key-file")
        .arg(dir.join(format!("{name}.key")))
        .args(["--preset", "ultrafast", "--profile"])
        .arg(two_rungs(dir))
        .args(args)
        .env("RUST_LOG", "info");
    cmd
}

/// A 360p and a 240p rung: two rungs to align.
fn two_rungs(dir: &Path) -> PathBuf {
    let path = dir.join("two.json");
    std::fs::write(
        &path,
        r#"{"name": "two", "rungs": [
            {"name": "360p", "width": 640, "height": 360, "codec": "h264", "video_kbps": 700, "audio_kbps": 96},
            {"name": "240p", "width": 426, "height": 240, "codec": "h264", "video_kbps": 350, "audio_kbps": 64}]}"#,
    )
    .unwrap();
    path
}

fn manifest(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name).join("manifest.json")).unwrap()).unwrap()
}

/// Presentation times of a rung's key frames, in 90 kHz ticks.
fn key_frames(playlist: &Path) -> Vec<i64> {
    let out = ok(Command::new("ffprobe")
        .args(["-v", "error", "-allowed_extensions", "ALL", "-select_streams", "v", "-show_entries", "packet=pts,flags", "-of", "csv=p=0"])
        .arg(playlist));
    out.lines().filter(|l| l.contains('K')).filter_map(|l| l.split(',').next()?.parse().ok()).collect()
}

/// PSNR (dB) of every frame of a rung against the source scaled to it.
fn psnr(playlist: &Path, source: &Path, rung: &serde_json::Value) -> f64 {
    let (w, h) = (rung["width"].as_u64().unwrap(), rung["height"].as_u64().unwrap());
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-allowed_extensions", "ALL", "-i"])
        .arg(playlist)
        .arg("-i")
        .arg(source)
        .args(["-lavfi", &format!("[1:v]scale={w}:{h}:flags=bicubic[ref];[0:v][ref]psnr"), "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let average = text.rsplit("average:").next().and_then(|t| t.split_whitespace().next()).and_then(|v| v.parse().ok());
    average.unwrap_or_else(|| panic!("no PSNR for {}: {text}", playlist.display()))
}

/// The rung's audio decoded to 16-bit mono samples.
fn audio_samples(playlist: &Path) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-allowed_extensions", "ALL", "-i"])
        .arg(playlist)
        .args(["-map", "0:a", "-ac", "1", "-f", "s16le", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// The largest second difference |x[n] - 2x[n-1] + x[n-2]| in `samples[from..to]`: a click or
/// gap in a pure tone shows as a spike far above the tone's own.
fn roughness(samples: &[i16], from: usize, to: usize) -> i32 {
    (from.max(2)..to.min(samples.len()))
        .map(|n| (i32::from(samples[n]) - 2 * i32::from(samples[n - 1]) + i32::from(samples[n - 2])).abs())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_chunked_title_is_the_whole_titles_ladder() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    ok(&mut local(dir.path(), &src, "whole", &[]));
    ok(&mut local(dir.path(), &src, "chunked", &["--chunk-seconds", CHUNK_SECONDS, "--workers", "2"]));
    let (whole, chunked) = (manifest(dir.path(), "whole"), manifest(dir.path(), "chunked"));
    let figures = &chunked["figures"]["chunked"];
    assert_eq!(figures["chunks"], 6, "180 s in 30 s chunks: {figures}");
    assert!(whole["figures"]["chunked"].is_null());
    assert!(!dir.path().join("chunked.chunks").exists(), "a published title's chunks are removed");

    let mut first_keys = None;
    for (w, c) in whole["renditions"].as_array().unwrap().iter().zip(chunked["renditions"].as_array().unwrap()) {
        let name = w["name"].as_str().unwrap();
        assert_eq!(c["name"], w["name"]);
        assert_eq!(c["frames"], w["frames"], "{name}: the same frames");
        assert_eq!(c["frames"], SECONDS * 30, "{name}");
        let durations =
            |r: &serde_json::Value| r["segments"].as_array().unwrap().iter().map(|s| s["duration"].as_f64().unwrap()).collect::<Vec<_>>();
        assert_eq!(durations(c), durations(w), "{name}: the same segments, chunk edges on segment boundaries");
        // Quality over every frame against the source, by FFmpeg's own psnr filter (the
        // manifests' figures sample about a frame a GOP, at phases a chunk start moves).
        let (pw, pc) = (
            psnr(&dir.path().join("whole").join(name).join("index.m3u8"), &src, c),
            psnr(&dir.path().join("chunked").join(name).join("index.m3u8"), &src, c),
        );
        eprintln!("{name}: every-frame PSNR {pc:.3} dB chunked, {pw:.3} dB whole");
        assert!((pw - pc).abs() <= 0.2, "{name}: PSNR {pc:.3} dB chunked against {pw:.3} dB whole");

        let playlist = dir.path().join("chunked").join(name).join("index.m3u8");
        // Every segment decodes: FFmpeg stops at the first error.
        let decoded = Command::new("ffmpeg")
            .args(["-v", "error", "-xerror", "-allowed_extensions", "ALL", "-i"])
            .arg(&playlist)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(decoded.status.success() && decoded.stderr.is_empty(), "{name}: {}", String::from_utf8_lossy(&decoded.stderr));
        assert_eq!(frame_count(&playlist, "v"), u64::from(SECONDS * 30), "{name}");

        // IDRs where the whole title has them, and the same in every rung.
        let keys = key_frames(&playlist);
        assert_eq!(keys, key_frames(&dir.path().join("whole").join(name).join("index.m3u8")), "{name}: IDRs as the whole title's");
        match &first_keys {
            None => first_keys = Some(keys),
            Some(first) => assert_eq!(&keys, first, "{name}: IDRs aligned across rungs"),
        }

        // The audio, encoded once over every chunk's packets, is the whole title's to the sample.
        let (aw, ac) = (audio_samples(&dir.path().join("whole").join(name).join("index.m3u8")), audio_samples(&playlist));
        assert_eq!(ac.len(), aw.len(), "{name}: no audio gained or lost at a seam");
        assert!(ac == aw, "{name}: the stitched audio differs from the whole title's");
        let tone = roughness(&ac, 48_000 * 5, 48_000 * 25);
        for seam in 1..6 {
            let at = seam * 30 * 48_000;
            let around = roughness(&ac, at - 4_800, at + 4_800);
            assert!(around <= tone * 3 / 2 + 8, "{name}: a click at the {}s seam ({around} against the tone's {tone})", seam * 30);
        }
    }
    // The storyboard covers the whole title, its thumbnails from every chunk.
    let thumbnails = chunked["pictures"]["thumbnails"].as_array().unwrap();
    assert_eq!(thumbnails.len(), whole["pictures"]["thumbnails"].as_array().unwrap().len());
    let storyboard = std::fs::read_to_string(dir.path().join("chunked/thumbnails/storyboard.vtt")).unwrap();
    assert_eq!(storyboard.matches("#xywh=").count(), thumbnails.len(), "{storyboard}");
}

fn processes(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn a_chunk_killed_mid_way_is_retried_alone() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 426, 240, 30, 96, true);
    let child = local(dir.path(), &src, "out", &["--chunk-seconds", "24", "--workers", "2"])
        .env("VAULTSTREAM_KEEP_CHUNKS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Chunk 2's worker, killed as a lost host would be, once it has run a while.
    let needle = format!("chunk-worker --input {} --plan-dir", src.display());
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed = loop {
        let workers: Vec<u32> = processes(&needle)
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains("--index\u{0}2\u{0}"))
                    .unwrap_or(false)
            })
            .collect();
        if let Some(pid) = workers.first() {
            std::thread::sleep(Duration::from_millis(400));
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            break *pid;
        }
        assert!(Instant::now() < deadline, "chunk 2 never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "killed {killed}: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("retrying that chunk alone") && stderr.contains("\"chunk\":2"), "{stderr}");

    let m = manifest(dir.path(), "out");
    assert_eq!(m["status"], "complete");
    assert_eq!(m["figures"]["chunked"]["chunks"], 4);
    for r in m["renditions"].as_array().unwrap() {
        assert_eq!(r["frames"], 96 * 30, "{}", r["name"]);
    }
    // Only chunk 2 was encoded twice.
    let plan = std::fs::read_dir(dir.path().join("out.chunks")).unwrap().flatten().next().unwrap().path();
    for index in 0..4 {
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(plan.join(format!("chunk-{index:05}/chunk.json"))).unwrap()).unwrap();
        assert_eq!(report["attempt"], if index == 2 { 2 } else { 1 }, "chunk {index}: {report}");
    }
}

/// A source damaged across a seam (MPEG-TS with a stretch of garbage): the chunked title is the
/// whole title's, audio gap (filled as the whole title fills it) and all.
#[test]
fn a_source_damaged_across_a_seam_stitches_as_the_whole_title_transcodes() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = clip(dir.path(), "src.mp4", 426, 240, 30, 72, true);
    let ts = dir.path().join("src.ts");
    ok(Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&mp4).args(["-c", "copy", "-f", "mpegts"]).arg(&ts));
    let mut bytes = std::fs::read(&ts).unwrap();
    let (from, to) = (bytes.len() * 40 / 100, bytes.len() * 55 / 100);
    let mut state = 1u32;
    for b in &mut bytes[from..to] {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        *b = (state >> 24) as u8;
    }
    let damaged = dir.path().join("damaged.ts");
    std::fs::write(&damaged, bytes).unwrap();
    ok(&mut local(dir.path(), &damaged, "whole", &[]));
    ok(&mut local(dir.path(), &damaged, "chunked", &["--chunk-seconds", "24", "--workers", "2"]));
    let (whole, chunked) = (manifest(dir.path(), "whole"), manifest(dir.path(), "chunked"));
    assert_eq!(chunked["figures"]["chunked"]["chunks"], 3);
    for (w, c) in whole["renditions"].as_array().unwrap().iter().zip(chunked["renditions"].as_array().unwrap()) {
        let name = w["name"].as_str().unwrap();
        assert_eq!(c["frames"], w["frames"], "{name}");
        let audio = |which: &str| audio_samples(&dir.path().join(which).join(name).join("index.m3u8"));
        assert!(audio("chunked") == audio("whole"), "{name}: the damaged title's audio differs chunked");
    }
}
