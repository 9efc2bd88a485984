//! The local stack as its users meet it: the `vaultstream` binary started as a process (`dev`,
//! `demo`), its ready file, tokens from `vaultstream token mint`, plain HTTP to the API and the
//! CDN edge, and Chromium driving the pages. Nothing here calls into the product's crates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::workspace_binary;

/// The multipart threshold the tests run the stack with, so a few MiB exercise multipart.
pub const MULTIPART_THRESHOLD: u64 = 5 * 1024 * 1024;

pub struct Running {
    pub child: Child,
    pub state_dir: PathBuf,
    pub ready: Value,
    /// Lines the process printed on stdout (JSON lines for `demo` when not a terminal).
    pub lines: mpsc::Receiver<String>,
}

fn base_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(workspace_binary("vaultstream"));
    cmd.args(args)
        .env("VAULTSTREAM_MULTIPART_THRESHOLD_BYTES", MULTIPART_THRESHOLD.to_string())
        .env("VAULTSTREAM_MAX_UPLOAD_BYTES", (64 * 1024 * 1024).to_string())
        // URL imports store S3's smallest parts, so a few MiB exercise a multipart import.
        .env("VAULTSTREAM_IMPORT_PART_BYTES", MULTIPART_THRESHOLD.to_string())
        // Feeds are read every 2 s rather than every minute.
        .env("VAULTSTREAM_FEED_POLL_SECONDS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    cmd
}

impl Running {
    /// Starts `vaultstream COMMAND --state-dir DIR --port 0 --ready-file …` and waits for its
    /// ready file. `extra` are further arguments.
    pub fn start(command: &str, state_dir: &Path, extra: &[&str]) -> Running {
        Self::start_with(command, state_dir, extra, &[])
    }

    /// [`Running::start`] with further environment variables.
    pub fn start_with(command: &str, state_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Running {
        let ready_file = state_dir.with_extension(format!("{command}.ready.json"));
        let _ = std::fs::remove_file(&ready_file);
        let state = state_dir.display().to_string();
        let ready = ready_file.display().to_string();
        let mut args = vec![command, "--state-dir", &state, "--port", "0", "--ready-file", &ready];
        args.extend_from_slice(extra);
        let log = std::fs::File::create(state_dir.with_extension(format!("{command}.stderr.log"))).unwrap();
        let mut child = base_command(&args).envs(env.iter().copied()).stderr(log).spawn().expect("vaultstream starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready_file) {
                if let Ok(ready) = serde_json::from_str::<Value>(&text) {
                    return Running { child, state_dir: state_dir.to_path_buf(), ready, lines };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("vaultstream {command} exited with {status} before it was ready: {}", stderr_of(state_dir, command));
            }
            assert!(Instant::now() < deadline, "vaultstream {command} was not ready in 180 s: {}", stderr_of(state_dir, command));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self, name: &str) -> String {
        self.ready[name].as_str().unwrap_or_else(|| panic!("the ready file has no {name}: {}", self.ready)).to_string()
    }

    /// The next stdout line that is a JSON object with `"event": event`.
    pub fn wait_for_event(&self, event: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no {event:?} event within {timeout:?}"));
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                if value["event"] == event {
                    return value;
                }
            }
        }
    }

    /// Ctrl-C, then waits for the process to stop everything and exit.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "vaultstream did not stop within 90 s of Ctrl-C");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn stderr_of(state_dir: &Path, command: &str) -> String {
    std::fs::read_to_string(state_dir.with_extension(format!("{command}.stderr.log"))).unwrap_or_default()
}

/// `vaultstream ARGS…` to completion.
pub fn cli(args: &[&str]) -> std::process::Output {
    base_command(args).stderr(Stdio::piped()).output().expect("vaultstream runs")
}

/// A token from `vaultstream token mint`.
pub fn mint(state_dir: &Path, tenant: &str, sub: &str, scope: &str) -> String {
    let out = cli(&["token", "mint", "--state-dir", &state_dir.display().to_string(), "--tenant", tenant, "--sub", sub, "--scope", scope]);
    assert!(out.status.success(), "token mint: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Processes whose command line mentions `needle` (a state folder): what a stopped stack must
/// not leave behind.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat.split(") ").nth(1).is_some_and(|rest| rest.starts_with('Z'));
        if text.contains(needle) && !zombie {
            found.push(text);
        }
    }
    found
}

/// Runs `tests/browser/viewer.mjs` with `scenario` and returns what the page saw.
pub fn browser(scenario: &Value) -> Value {
    let result = browser_script("viewer.mjs", scenario);
    assert!(result.get("exception").is_none(), "the page script failed: {result}");
    result
}

/// Runs `tests/browser/{script}` (headless Chromium) with `scenario` and returns what it printed.
pub fn browser_script(script: &str, scenario: &Value) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser").join(script);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), scenario.to_string()).unwrap();
    let out = Command::new("node").arg(&path).arg(file.path()).output().expect("node runs");
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Where tests keep what a person would look at (screenshots): `target/test-output/`.
pub fn output_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).expect("target/<profile>/deps/<test>").to_path_buf();
    let dir = target.join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The HTTP status of each response the page saw whose URL contains `part`.
pub fn statuses(result: &Value, part: &str) -> Vec<u64> {
    result["responses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["url"].as_str().is_some_and(|u| u.contains(part)))
        .filter_map(|r| r["status"].as_u64())
        .collect()
}

/// Puts `srt` on the title as its default German caption track ("Deutsch"), as a creator does.
pub async fn put_german_captions(http: &reqwest::Client, api: &str, title: &str, token: &str, srt: String) -> reqwest::Response {
    http.put(format!("{api}/v1/content/{title}/captions/de?label=Deutsch&default=true"))
        .bearer_auth(token)
        .header("content-type", "application/x-subrip")
        .body(srt)
        .send()
        .await
        .unwrap()
}

/// `GET url` with a bearer token, its JSON answer.
pub async fn get_json(http: &reqwest::Client, url: String, token: &str) -> Value {
    http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

/// Asks `check` every 300 ms for up to `seconds`; what it found, if it did.
pub async fn until(seconds: u64, mut check: impl AsyncFnMut() -> Option<Value>) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A 320x180 H.264 clip of `seconds`, made with FFmpeg's lavfi source.
pub fn clip(seconds: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc2=s=320x180:r=25:d={seconds}"), "-c:v", "libx264"])
        .args(["-preset", "ultrafast"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(path).unwrap()
}
