//! Cross-crate end-to-end tests live in `tests/`; this library holds what they share: the
//! workspace's built binaries, the moto server, and a provisioned access-path stack.

pub mod flow;
pub mod gcs;
pub mod ingest;
pub mod local;
pub mod moto;
pub mod observability;
pub mod origin;
pub mod proxy;
pub mod runtime_api;
pub mod speke;
pub mod stack;

use std::path::PathBuf;

/// Path of a workspace binary built into the same target folder as the running test.
///
/// The README's test command builds every binary before running the tests.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target layout");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins), as scripts/test.sh does",
        path.display()
    );
    path
}

/// Runs `vaultstream-transcode local SRC --out OUT [--key-file KEY_FILE] EXTRA…`, which must
/// succeed; its JSON summary.
pub fn transcode_local(
    src: &std::path::Path,
    out: &std::path::Path,
    key_file: Option<&std::path::Path>,
    extra: &[&str],
) -> serde_json::Value {
    let mut command = std::process::Command::new(workspace_binary("vaultstream-transcode"));
    command.arg("local").arg(src).arg("--out").arg(out);
    if let Some(key_file) = key_file {
        command.arg("--key-file").arg(key_file);
    }
    let run = command.args(extra).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", String::from_utf8_lossy(&run.stdout)))
}

/// A 854x480 30 fps test pattern with a sine tone, `seconds` long, written to `path` (H.264 +
/// AAC): a source whose default ladder has two rungs (480p and 360p).
pub fn two_rung_source(path: &std::path::Path, seconds: u32) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", &format!("testsrc2=s=854x480:r=30:d={seconds}")])
        .args(["-f", "lavfi", "-i", &format!("sine=r=48000:d={seconds}")])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg could not make the test source");
}
