//! `vaultstream demo`: runs the main job end to end on this machine. It generates a sample clip,
//! transcodes it into an encrypted HLS ladder with `vaultstream-transcode`, checks the result
//! with a real player (FFmpeg decrypting and decoding the master playlist), and says where the
//! playable output is.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn tool(name: &str) -> Result<()> {
    match Command::new(name).arg("-version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!("`{name}` was not found on PATH; install FFmpeg (Debian: apt-get install ffmpeg) or run scripts/demo.sh, which does"),
    }
}

/// `vaultstream-transcode` from beside this binary (a cargo build puts both in one folder).
fn transcoder() -> Result<PathBuf> {
    let here = std::env::current_exe().context("locating the vaultstream binary")?;
    let sibling = here.with_file_name("vaultstream-transcode");
    if sibling.exists() {
        return Ok(sibling);
    }
    bail!("vaultstream-transcode is not next to {} ; build the workspace first: cargo build --release --workspace --bins", here.display())
}

fn run(cmd: &mut Command, what: &str) -> Result<std::process::Output> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed (exit {:?}):\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(out)
}

pub fn demo(parent: &Path, seconds: u32) -> Result<()> {
    tool("ffmpeg")?;
    let transcode = transcoder()?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let dir = std::path::absolute(parent)?.join(format!("run-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let sample = dir.join("sample.mp4");
    eprintln!("1/3 generating a {seconds} s 1080p30 sample clip with FFmpeg's test sources");
    run(
        Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", &format!("testsrc2=s=1920x1080:r=30:d={seconds}")])
            .args(["-f", "lavfi", "-i", &format!("sine=f=440:r=48000:d={seconds}")])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-c:a", "aac", "-shortest"])
            .arg(&sample),
        "ffmpeg (sample clip)",
    )?;

    eprintln!("2/3 transcoding into an AES-128 encrypted HLS ladder");
    let hls = dir.join("hls");
    let key = dir.join("content.key");
    let status = Command::new(&transcode)
        .arg("local")
        .arg(&sample)
        .arg("--out")
        .arg(&hls)
        .arg("--key-file")
        .arg(&key)
        .status()
        .context("running vaultstream-transcode")?;
    if !status.success() {
        bail!("vaultstream-transcode failed (exit {:?})", status.code());
    }

    eprintln!("3/3 checking playback: FFmpeg fetches the key, decrypts and decodes every rendition");
    let master = hls.join("master.m3u8");
    run(
        Command::new("ffmpeg")
            .args(["-v", "error", "-allowed_extensions", "ALL", "-i"])
            .arg(&master)
            .args(["-map", "0", "-f", "null", "-"]),
        "ffmpeg (playback check)",
    )?;
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(hls.join("manifest.json"))?)?;
    let renditions: Vec<String> = manifest["renditions"]
        .as_array()
        .map(|a| a.iter().map(|r| format!("{} ({})", r["name"].as_str().unwrap_or("?"), r["bandwidth"])).collect())
        .unwrap_or_default();

    println!("Playable encrypted HLS: {}", master.display());
    println!("  renditions (peak bit/s): {}", renditions.join(", "));
    println!("  encoder: {}", manifest["encoders"][0]["name"].as_str().unwrap_or("?"));
    println!("  content key (keep private): {}", key.display());
    println!("  wall time: {} s for {seconds} s of video", manifest["figures"]["wall_seconds"]);
    println!("Play it:  ffplay -allowed_extensions ALL {}", master.display());
    Ok(())
}
