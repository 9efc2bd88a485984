//! `vaultstream demo --exit` as a script runs it: JSON lines on stdout, a 1080p clip uploaded
//! through the API, the full ladder published and each rendition proven through the CDN edge,
//! every phase timed, and nothing left running afterwards.

use std::process::Command;

use serde_json::Value;
use vaultstream_tests::local::processes_mentioning;
use vaultstream_tests::workspace_binary;

#[test]
fn demo_publishes_the_full_ladder_and_proves_each_rendition() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    let out = Command::new(workspace_binary("vaultstream"))
        .args(["demo", "--exit", "--port", "0", "--seconds", "4", "--state-dir", &state])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON line: {l}"))).collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for step in ["starting", "stack_up", "clip", "upload", "waiting", "progress", "ready", "verified", "done"] {
        assert!(names.contains(&step), "the demo reports {step}: {names:?}");
    }
    // Progress is a fraction that only grows, to 1 when the title is published.
    let progress: Vec<f64> = events.iter().filter(|e| e["event"] == "progress").map(|e| e["progress"].as_f64().unwrap()).collect();
    assert!(progress.iter().all(|p| (0.0..=1.0).contains(p)) && progress.is_sorted(), "{progress:?}");
    assert_eq!(progress.last(), Some(&1.0), "{progress:?}");
    let verified = events.iter().find(|e| e["event"] == "verified").unwrap();
    let playlists: Vec<&str> = verified["renditions"].as_array().unwrap().iter().filter_map(|r| r["playlist"].as_str()).collect();
    assert_eq!(playlists.len(), 4, "a 1080p clip gets the full ladder: {verified}");
    assert!(playlists.iter().any(|p| p.ends_with("/1080p/index.m3u8")) && playlists.iter().any(|p| p.ends_with("/360p/index.m3u8")));
    let done = events.last().unwrap();
    assert_eq!(done["event"], "done");
    assert!(done["viewer_url"].as_str().unwrap().starts_with("http://localhost:"));
    assert!(done["figures"]["transcode_seconds"].as_f64().unwrap() > 0.0, "{done}");
    assert_eq!(processes_mentioning(&state), Vec::<String>::new(), "--exit leaves nothing running");
}
