//! Playback in a real browser: hls.js in Debian's headless Chromium (driven by playwright-core)
//! fetches the playlists, the key and the encrypted segments over HTTP on 127.0.0.1, decrypts
//! with WebCrypto and plays through Media Source Extensions.

use std::path::Path;
use std::process::Command;

use vaultstream_tests::{transcode_local, two_rung_source};

fn play(root: &Path, master: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/play.mjs");
    assert!(
        script.with_file_name("node_modules").exists(),
        "tests/browser/node_modules is missing: run `npm ci --prefix tests/browser` (scripts/test.sh does)"
    );
    let out = Command::new("node").arg(&script).arg(root).arg(master).arg("4").output().expect("node runs");
    assert!(out.status.success(), "play.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("play.mjs printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn transcode(root: &Path) {
    let src = root.join("src.mp4");
    two_rung_source(&src, 8);
    transcode_local(&src, &root.join("out"), Some(&root.join("out.key")), &[]);
}

#[test]
fn hls_js_in_chromium_plays_the_encrypted_ladder() {
    let dir = tempfile::tempdir().unwrap();
    transcode(dir.path());
    let result = play(dir.path(), "out/master.m3u8");
    let fatal: Vec<&serde_json::Value> = result["errors"].as_array().unwrap().iter().filter(|e| e["fatal"] == true).collect();
    assert!(fatal.is_empty(), "fatal player errors: {result}");
    assert!(result["current_time"].as_f64().unwrap() >= 4.0, "playback did not reach 4 s: {result}");
    assert!(result["decoded_frames"].as_u64().unwrap() >= 90, "{result}");
    assert!(result["width"].as_u64().unwrap() > 0, "{result}");
    assert_eq!(result["levels"], serde_json::json!([360, 480]), "{result}");
}

#[test]
fn hls_js_cannot_play_with_the_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    transcode(dir.path());
    std::fs::write(dir.path().join("out.key"), [0x5a; 16]).unwrap();
    let result = play(dir.path(), "out/master.m3u8");
    let fatal = result["errors"].as_array().unwrap().iter().any(|e| e["fatal"] == true);
    assert!(fatal || result["current_time"].as_f64().unwrap() < 0.5, "played without the right key: {result}");
    assert_eq!(result["decoded_frames"], 0, "{result}");
}
