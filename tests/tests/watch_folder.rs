//! `vaultstream ingest watch` against the local stack, as an on-premise operator runs it: files
//! dropped into a folder become titles that reach READY, named after the file and described by
//! its sidecar and its own tags; a file still being written is never taken; the same bytes dropped
//! again are not delivered twice; a file the API refuses goes to failed/ with its reason; a link
//! is never followed; an agent killed in the middle of a multipart upload resumes it after a restart,
//! sending only the parts S3 does not have. Only processes, files and HTTP.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vaultstream_tests::local::{get_json, mint, Running, MULTIPART_THRESHOLD};
use vaultstream_tests::workspace_binary;

/// A running agent and the JSON lines it prints.
struct Agent {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Agent {
    fn start(dir: &Path, api: &str, token_file: &Path) -> Agent {
        let mut child = Command::new(workspace_binary("vaultstream"))
            .args(["ingest", "watch"])
            .arg(dir)
            .args(["--api", api, "--settle-seconds", "1", "--token-file"])
            .arg(token_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the agent starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("the agent printed a line that is not JSON: {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let mut agent = Agent { child, lines, seen: Vec::new() };
        agent.until(|e| e["event"] == "watching", Duration::from_secs(20));
        agent
    }

    /// Events up to and including the first one `stop` accepts.
    fn until(&mut self, stop: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event =
                self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("not seen within {timeout:?}; the agent said: {:#?}", self.seen));
            self.seen.push(event.clone());
            if stop(&event) {
                return event;
            }
        }
    }

    /// Everything said within `window`.
    fn drain(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        while let Ok(event) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.seen.push(event);
        }
    }

    fn said(&self, event: &str, file: &str) -> Vec<&Value> {
        self.seen.iter().filter(|e| e["event"] == event && e["file"] == file).collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A clip whose container says who made it (artist) and what it is (comment).
fn clip(path: &Path, seconds: u32) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc2=s=320x180:r=25:d={seconds}")])
        .args(["-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-metadata", "artist=Camera Crew", "-metadata", "comment=tagged by the camera"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The title's view once its status is none of `passing` (or after three minutes).
async fn settled(http: &reqwest::Client, api: &str, token: &str, content_id: &str, passing: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let view: Value = http.get(format!("{api}/v1/content/{content_id}")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        if !passing.contains(&view["status"].as_str().unwrap_or_default()) || Instant::now() > deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_watch_folder_uploads_whole_files_refuses_bad_ones_and_resumes_after_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let state_dir = root.path().join("stack");
    let stack = Running::start("dev", &state_dir, &[]);
    let api = stack.url("api_url");
    let token = mint(&state_dir, "demo", "ingest-agent", "content:write content:read");
    let token_file = root.path().join("token");
    std::fs::write(&token_file, &token).unwrap();
    let drop_dir = root.path().join("dropbox");
    std::fs::create_dir(&drop_dir).unwrap();
    let mut agent = Agent::start(&drop_dir, &api, &token_file);
    let http = reqwest::Client::new();

    // A file copied slowly: half of it, a pause longer than the settle time, the rest. The
    // agent sees a writer holding it open and waits for the close.
    let source = root.path().join("source.mp4");
    clip(&source, 2);
    let bytes = std::fs::read(&source).unwrap();
    // Its sidecar, dropped first: the description outranks the file's own comment.
    std::fs::write(drop_dir.join("Quarterly review.json"), r#"{"description": "Q3 numbers", "language": "en", "rating": 5}"#).unwrap();
    let copying = drop_dir.join("Quarterly review.mp4");
    let mut writer = std::fs::File::create(&copying).unwrap();
    writer.write_all(&bytes[..bytes.len() / 2]).unwrap();
    writer.flush().unwrap();
    agent.drain(Duration::from_secs(3));
    assert!(agent.said("taken", "Quarterly review.mp4").is_empty(), "a half-written file was taken: {:#?}", agent.seen);
    writer.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(writer);
    let uploaded = agent.until(|e| e["event"] == "uploaded" && e["file"] == "Quarterly review.mp4", Duration::from_secs(60));
    let content_id = uploaded["content_id"].as_str().unwrap().to_string();
    assert!(drop_dir.join("done/Quarterly review.mp4").exists() && !copying.exists(), "{uploaded}");
    assert!(
        drop_dir.join("done/Quarterly review.json").exists(),
        "the sidecar follows its file, and is never taken itself: {:#?}",
        agent.seen
    );
    let taken = agent.said("taken", "Quarterly review.mp4")[0].clone();
    assert!(taken["sidecar_ignored"][0].as_str().unwrap().starts_with("rating"), "{taken}");

    // The same bytes again, under another name: delivered once only.
    std::fs::write(root.path().join("copy.mp4"), &bytes).unwrap();
    std::fs::rename(root.path().join("copy.mp4"), drop_dir.join("Quarterly review (copy).mp4")).unwrap();
    let duplicate = agent.until(|e| e["file"] == "Quarterly review (copy).mp4" && e["event"] != "taken", Duration::from_secs(30));
    assert_eq!(
        (&duplicate["event"], duplicate["content_id"].as_str()),
        (&serde_json::json!("duplicate"), Some(content_id.as_str())),
        "{duplicate}"
    );
    assert!(drop_dir.join("done/Quarterly review (copy).mp4").exists());

    // Not media, and a link to a file elsewhere: refused with a reason, and never followed.
    std::fs::write(drop_dir.join("notes.txt"), "minutes").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", drop_dir.join("link.mp4")).unwrap();
    let failed = agent.until(|e| e["event"] == "failed" && e["file"] == "notes.txt", Duration::from_secs(30));
    let reason: Value = serde_json::from_slice(&std::fs::read(drop_dir.join("failed/notes.txt.reason.json")).unwrap()).unwrap();
    assert_eq!(reason["error"]["code"], "unsupported_media_type", "{failed}");
    assert!(reason["error"]["message"].as_str().unwrap().contains("video/mp4"), "{reason}");
    assert!(drop_dir.join("failed/notes.txt").exists());
    agent.drain(Duration::from_secs(2));
    assert!(agent.said("taken", "link.mp4").is_empty(), "a link was followed: {:#?}", agent.seen);

    // A sidecar that is a link to a file outside the folder is refused, not read; one larger
    // than a sidecar may be is refused by its size before it is read. The titles keep their
    // own names and say nothing of the other files.
    let outside = root.path().join("elsewhere.json");
    std::fs::write(&outside, r#"{"title": "Stolen", "description": "read through a link"}"#).unwrap();
    std::os::unix::fs::symlink(&outside, drop_dir.join("Linked sidecar.json")).unwrap();
    std::fs::File::create(drop_dir.join("Huge sidecar.json")).unwrap().set_len(384 << 20).unwrap();
    for (name, seconds) in [("Linked sidecar", 1), ("Huge sidecar", 3)] {
        let staging = root.path().join(format!("{name}.mp4"));
        clip(&staging, seconds);
        std::fs::rename(&staging, drop_dir.join(format!("{name}.mp4"))).unwrap();
    }
    let linked = agent.until(|e| e["event"] == "uploaded" && e["file"] == "Linked sidecar.mp4", Duration::from_secs(60));
    agent.until(|e| e["event"] == "uploaded" && e["file"] == "Huge sidecar.mp4", Duration::from_secs(60));
    let ignored = |file: &str| agent.said("taken", file)[0]["sidecar_ignored"].to_string();
    assert!(ignored("Linked sidecar.mp4").contains("is a symbolic link"), "{}", ignored("Linked sidecar.mp4"));
    assert!(ignored("Huge sidecar.mp4").contains("402653184 bytes, more than the 65536"), "{}", ignored("Huge sidecar.mp4"));
    let view = get_json(&http, format!("{api}/v1/content/{}", linked["content_id"].as_str().unwrap()), &token).await;
    assert_eq!(view["title"], "Linked sidecar", "{view}");
    assert!(!view.to_string().contains("read through a link"), "the link's target became metadata: {view}");

    // The title reaches READY under the file's name.
    let view = settled(&http, &api, &token, &content_id, &["AWAITING_UPLOAD", "QUEUED", "PROCESSING"]).await;
    assert_eq!((view["status"].as_str(), view["title"].as_str()), (Some("READY"), Some("Quarterly review")), "{view}\n{:#?}", agent.seen);
    // Described by the sidecar (sent as the request's metadata) and, below it, the file's tags.
    let described = (&view["metadata"], &view["metadata_sources"]);
    assert_eq!(described.0["description"], "Q3 numbers", "{view}");
    assert_eq!((&described.0["language"], &described.1["language"]), (&serde_json::json!("en"), &serde_json::json!("request")), "{view}");
    assert_eq!(
        (&described.0["artist"], &described.1["artist"]),
        (&serde_json::json!("Camera Crew"), &serde_json::json!("container")),
        "{view}"
    );

    // A large file uploads in parts; the agent is killed after the first and started again.
    let parts_total = 8usize;
    let big: Vec<u8> = (0..parts_total as u64 * MULTIPART_THRESHOLD - 1000).map(|i| ((i * 2_654_435_761) >> 13) as u8).collect();
    let staging = root.path().join("archive.mp4");
    std::fs::write(&staging, &big).unwrap();
    std::fs::rename(&staging, drop_dir.join("archive.mp4")).unwrap();
    agent.until(|e| e["event"] == "part" && e["file"] == "archive.mp4", Duration::from_secs(60));
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    agent.drain(Duration::from_millis(200));
    let before: BTreeSet<u64> = agent.said("part", "archive.mp4").iter().filter_map(|e| e["part_number"].as_u64()).collect();
    assert!(before.len() < parts_total, "the kill came too late to test a resume: {before:?}");
    assert!(drop_dir.join("archive.mp4").exists(), "an unfinished upload stays in the folder");

    let mut again = Agent::start(&drop_dir, &api, &token_file);
    let uploaded = again.until(|e| e["event"] == "uploaded" && e["file"] == "archive.mp4", Duration::from_secs(120));
    assert_eq!(again.said("taken", "archive.mp4")[0]["resuming"], true, "{:#?}", again.seen);
    let after: BTreeSet<u64> = again.said("part", "archive.mp4").iter().filter_map(|e| e["part_number"].as_u64()).collect();
    let all: BTreeSet<u64> = before.union(&after).copied().collect();
    assert_eq!(all, (1..=parts_total as u64).collect::<BTreeSet<_>>(), "before {before:?}, after {after:?}");
    assert!(after.len() < parts_total, "the restart sent every part again: {after:?}");
    // Its bytes are not a video: the completed upload is dispatched, then refused as invalid.
    let view = settled(&http, &api, &token, uploaded["content_id"].as_str().unwrap(), &["AWAITING_UPLOAD"]).await;
    assert_ne!(view["status"], "AWAITING_UPLOAD", "the multipart upload was completed and dispatched: {view}");
    assert!(drop_dir.join("done/archive.mp4").exists());
    assert_eq!(agent.said("uploaded", "archive.mp4").len(), 0);
    drop(stack);
}
