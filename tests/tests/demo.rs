//! `vaultstream demo` end to end: generate, transcode, verify playback, report the output.

use std::process::Command;

use vaultstream_tests::workspace_binary;

#[test]
fn demo_produces_a_playable_encrypted_ladder() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(workspace_binary("vaultstream")).args(["demo", "--seconds", "4", "--out"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));

    let master_line = stdout.lines().find(|l| l.starts_with("Playable encrypted HLS: ")).expect("the demo says where the output is");
    let master = std::path::PathBuf::from(master_line.trim_start_matches("Playable encrypted HLS: "));
    assert!(master.starts_with(dir.path()));
    let text = std::fs::read_to_string(&master).unwrap();
    assert_eq!(text.matches("#EXT-X-STREAM-INF").count(), 4, "a 1080p sample gets the full ladder: {text}");
    assert!(stdout.contains("1080p") && stdout.contains("360p"), "{stdout}");

    // The key sits outside the published folder.
    let run_dir = master.parent().and_then(|p| p.parent()).unwrap();
    assert_eq!(std::fs::metadata(run_dir.join("content.key")).unwrap().len(), 16);
    assert!(!master.parent().unwrap().join("content.key").exists());
}
