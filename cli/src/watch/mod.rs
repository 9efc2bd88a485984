//! `vaultstream ingest watch DIR`: an on-premise agent that uploads each media file dropped into a
//! folder through the public API, as one title named after the file, then moves it to `done/`;
//! a file the API refuses goes to `failed/` beside `NAME.reason.json`. It never takes a file
//! still being written ([`readiness`]), and a restart resumes a multipart upload where it
//! stopped ([`state`]). Each step is one JSON line on stdout.

mod api_upload;
mod readiness;
mod regular_file;
mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use serde_json::{json, Value};

use crate::serve::{interrupted, runtime};
use crate::Failure;
use api_upload::{Api, UploadError};
use readiness::{open_for_writing, Observed, Readiness};
use regular_file::{Identity, OpenRefusal, RegularFile};
use state::{Started, State};
use vaultstream::metadata::sidecar::{Sidecar, MAX_BYTES as SIDECAR_MAX_BYTES};
use vaultstream::metadata::{MetadataProvider, Provided};

#[derive(clap::Args)]
pub struct WatchArgs {
    /// The folder to watch; `done/` and `failed/` are made inside it.
    dir: PathBuf,
    /// The API's base URL (`https://api.example.com`; the local stack's `api_url`).
    #[arg(long)]
    api: String,
    /// A file holding a token with `content:write` (a JWT or an API token). Read again for each
    /// file, so it can be rotated while the agent runs.
    #[arg(long)]
    token_file: PathBuf,
    /// The built-in profile every title is transcoded with (the API's default when absent).
    #[arg(long)]
    profile: Option<String>,
    /// Seconds a file must stay unchanged before it is taken when no writer's close was seen
    /// (files already there at start; systems without close events).
    #[arg(long, default_value_t = 5)]
    settle_seconds: u64,
    /// Try each file once, as soon as it is whole, then exit instead of watching (for cron); exit
    /// status 1 when some file must wait for the next run.
    #[arg(long)]
    once: bool,
}

/// One line of what the agent did.
fn emit(event: &str, fields: Value) {
    let mut line = json!({"event": event, "at": vaultstream::clock::now_rfc3339()});
    if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
        line.extend(fields);
    }
    println!("{line}");
}

fn observed(path: &Path) -> Option<Observed> {
    // Not followed: a link dropped into the folder could point anywhere on this machine.
    let meta = std::fs::symlink_metadata(path).ok().filter(std::fs::Metadata::is_file)?;
    Some(Observed { size: meta.len(), modified: meta.modified().ok()?, identity: Identity::of(&meta) })
}

/// Files the agent leaves alone: its own and `done/`/`failed/` (folders), hidden files (editors'
/// and copy tools' temporaries), and JSON sidecars that go with a media file.
fn ignored(name: &str) -> bool {
    name.starts_with('.') || name.to_ascii_lowercase().ends_with(".json")
}

/// A writer closed the file or renamed it into the folder: the kernel's word that it is whole.
fn is_close_after_write(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To))
            | EventKind::Modify(ModifyKind::Name(RenameMode::Both))
    )
}

/// Where a file goes when it is done with: `to/NAME`, or `to/STEM-SUFFIX.EXT` if that is taken.
fn move_into(path: &Path, to: &Path, suffix: &str) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| anyhow!("{} has no file name", path.display()))?;
    let mut target = to.join(name);
    if target.exists() {
        let name = name.to_string_lossy();
        let renamed = match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}-{suffix}.{ext}"),
            None => format!("{name}-{suffix}"),
        };
        target = to.join(renamed);
    }
    std::fs::rename(path, &target).with_context(|| format!("moving {} to {}", path.display(), target.display()))?;
    Ok(target)
}

/// The file's sidecar (`NAME.json`), if any, checked by the same rules as the API's. It is opened
/// as the media file is (never through a link), and one larger than a sidecar may be is refused
/// by its size before a byte of it is read.
fn read_sidecar(media: &Path) -> Provided {
    let Some(path) = Sidecar::beside(media) else { return Provided::default() };
    let shown = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().to_string());
    match RegularFile::open(&path, None).and_then(|file| file.read_all(SIDECAR_MAX_BYTES as u64, &shown)) {
        Ok(bytes) => Sidecar { bytes }.provide(),
        Err(e) => Provided { ignored: vec![format!("the sidecar was not read: {e}")], ..Default::default() },
    }
}

/// A sidecar follows its media file to `done/` or `failed/`, under the media's new name.
fn move_sidecar(media: &Path, moved: &Path) -> Result<()> {
    if let Some(sidecar) = Sidecar::beside(media) {
        let target = moved.with_extension("json");
        std::fs::rename(&sidecar, &target).with_context(|| format!("moving {} to {}", sidecar.display(), target.display()))?;
    }
    Ok(())
}

struct Agent {
    dir: PathBuf,
    args: WatchArgs,
    http: reqwest::Client,
    state: State,
    /// Files that failed for a reason worth retrying: when to try again, and the wait after that.
    waits: HashMap<PathBuf, (Instant, Duration)>,
}

impl Agent {
    fn token(&self) -> Result<String, UploadError> {
        let text = std::fs::read_to_string(&self.args.token_file)
            .map_err(|e| UploadError::Unauthorized(format!("cannot read the token file {}: {e}", self.args.token_file.display())))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(UploadError::Unauthorized(format!("the token file {} is empty", self.args.token_file.display())));
        }
        Ok(token.to_string())
    }

    /// Uploads one whole file and moves it where it belongs. Errors are what the agent itself
    /// could not do (read the file, write its state file, move it); the file is tried again later.
    async fn take(&mut self, path: &Path, seen: Observed) -> Result<()> {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            return self.refuse(path, "-", 400, "invalid_request", "the file name is not valid UTF-8; rename the file");
        };
        // Opened once, here, and read only through this handle: the name may be swapped for a
        // link or another file from now on without changing what is hashed and uploaded.
        let file = match RegularFile::open(path, Some(seen.identity)) {
            Ok(file) if file.size == seen.size => file,
            Ok(_) | Err(OpenRefusal::Replaced(_)) => {
                return Err(anyhow!("{name} changed while it was being taken; it is tried again once it settles"))
            }
            Err(e @ (OpenRefusal::Link(_) | OpenRefusal::NotRegular(_))) => {
                return self.refuse(path, &name, 400, "not_a_regular_file", &e.to_string());
            }
            Err(e) => return Err(anyhow!(e)),
        };
        let modified_ns = seen.modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut started = match self.state.get(&name) {
            Some(s) if s.size == seen.size && s.modified_ns == modified_ns => s.clone(),
            _ => Started {
                size: seen.size,
                modified_ns,
                idempotency_key: format!("watch-{}", uuid::Uuid::new_v4().simple()),
                ..Default::default()
            },
        };
        if started.sha256.is_empty() {
            started.sha256 = file.sha256().with_context(|| format!("reading {}", path.display()))?;
        }
        self.state.put(&name, started.clone())?;
        let sha256 = started.sha256.clone();
        if let Some(content_id) = self.state.delivered(&sha256).cloned() {
            let moved = move_into(path, &self.dir.join("done"), &content_id)?;
            move_sidecar(path, &moved)?;
            self.state.remove(&name)?;
            emit("duplicate", json!({"file": name, "content_id": content_id, "sha256": sha256, "moved_to": moved}));
            return Ok(());
        }
        let sidecar = read_sidecar(path);
        emit("taken", json!({"file": name, "bytes": seen.size, "resuming": !started.parts.is_empty(), "sidecar_ignored": sidecar.ignored}));
        let began = Instant::now();
        let result = async {
            let api = Api {
                http: self.http.clone(),
                base: self.args.api.trim_end_matches('/').to_string(),
                token: self.token()?,
                profile: self.args.profile.clone(),
            };
            let grant = api.declare(&name, &started, &sidecar.metadata).await?;
            let content_id = grant["content_id"].as_str().unwrap_or_default().to_string();
            let upload_id = grant["upload"]["upload_id"].as_str().map(str::to_string);
            if started.content_id.as_deref() != Some(content_id.as_str()) || started.upload_id != upload_id {
                started.parts.clear();
            }
            started.content_id = Some(content_id.clone());
            started.upload_id = upload_id;
            self.state.put(&name, started.clone()).map_err(|e| UploadError::Temporary(format!("{e:#}")))?;
            let parts_total = grant["upload"]["parts"].as_array().map_or(0, Vec::len);
            let mut remembered = started.clone();
            let state = &mut self.state;
            api.send(&file, &name, &grant, &started, |number, etag| {
                remembered.parts.insert(number, etag);
                state.put(&name, remembered.clone())?;
                emit("part", json!({"file": name, "part_number": number, "parts": parts_total}));
                Ok(())
            })
            .await?;
            Ok::<String, UploadError>(content_id)
        }
        .await;
        match result {
            Ok(content_id) => self.done(path, &name, &content_id, &sha256, began, seen.size),
            // The same key answers "already uploaded": an earlier run sent it all but stopped
            // before moving the file.
            Err(UploadError::Refused { status: 409, code, .. }) if code == "wrong_state" && started.content_id.is_some() => {
                let content_id = started.content_id.clone().unwrap_or_default();
                self.done(path, &name, &content_id, &sha256, began, seen.size)
            }
            Err(UploadError::Refused { status, code, message }) => self.refuse(path, &name, status, &code, &message),
            Err(e @ (UploadError::Unauthorized(_) | UploadError::Temporary(_))) => {
                let (_, wait) = self.waits.get(path).copied().unwrap_or((Instant::now(), Duration::from_secs(1)));
                let wait = if matches!(e, UploadError::Unauthorized(_)) { wait.max(Duration::from_secs(30)) } else { wait };
                emit("retrying", json!({"file": name, "reason": e.to_string(), "in_seconds": wait.as_secs()}));
                self.waits.insert(path.to_path_buf(), (Instant::now() + wait, (wait * 2).min(Duration::from_secs(300))));
                Ok(())
            }
        }
    }

    fn done(&mut self, path: &Path, name: &str, content_id: &str, sha256: &str, began: Instant, bytes: u64) -> Result<()> {
        let moved = move_into(path, &self.dir.join("done"), content_id)?;
        move_sidecar(path, &moved)?;
        self.state.finish(name, sha256, content_id)?;
        self.waits.remove(path);
        emit(
            "uploaded",
            json!({"file": name, "content_id": content_id, "bytes": bytes, "seconds": began.elapsed().as_secs_f64(), "moved_to": moved}),
        );
        Ok(())
    }

    fn refuse(&mut self, path: &Path, name: &str, status: u16, code: &str, message: &str) -> Result<()> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let moved = move_into(path, &self.dir.join("failed"), &suffix[..8])?;
        move_sidecar(path, &moved)?;
        let reason = json!({
            "file": name,
            "error": {"status": status, "code": code, "message": message},
            "failed_at": vaultstream::clock::now_rfc3339(),
        });
        let mut reason_path = moved.clone().into_os_string();
        reason_path.push(".reason.json");
        std::fs::write(&reason_path, serde_json::to_vec_pretty(&reason)?).with_context(|| format!("writing {reason_path:?}"))?;
        if name != "-" {
            self.state.remove(name)?;
        }
        self.waits.remove(path);
        emit("failed", json!({"file": name, "error": reason["error"], "moved_to": moved}));
        Ok(())
    }
}

/// The next event that may change what is whole. Reads are events too (the agent's own listing
/// and hashing among them): waking on those would keep the agent busy while a file waits.
async fn next_change(events: &mut tokio::sync::mpsc::UnboundedReceiver<notify::Event>) -> Option<notify::Event> {
    loop {
        let event = events.recv().await?;
        if !matches!(event.kind, EventKind::Access(_)) || is_close_after_write(&event.kind) {
            return Some(event);
        }
    }
}

async fn watch(args: WatchArgs, dir: PathBuf) -> Result<()> {
    for sub in ["done", "failed"] {
        std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let _ = tx.send(event);
        }
    })
    .context("starting the folder watcher")?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", dir.display()))?;
    let mut readiness = Readiness::new(Duration::from_secs(args.settle_seconds));
    let once = args.once;
    let mut agent = Agent { state: State::load(&dir)?, http: api_upload::client()?, dir: dir.clone(), args, waits: HashMap::new() };
    emit("watching", json!({"dir": dir, "api": agent.args.api, "once": once}));
    let stop = interrupted();
    tokio::pin!(stop);
    let mut left_to_retry = std::collections::HashSet::new();
    // The event that ended the wait: it is the first to look at.
    let mut woke_by: Option<notify::Event> = None;
    loop {
        let now = Instant::now();
        while let Some(event) = woke_by.take().or_else(|| events.try_recv().ok()) {
            if is_close_after_write(&event.kind) {
                let watched =
                    |p: &&PathBuf| p.parent() == Some(dir.as_path()) && p.file_name().is_some_and(|n| !ignored(&n.to_string_lossy()));
                for path in event.paths.iter().filter(watched) {
                    if let Some(seen) = observed(path) {
                        readiness.closed(path, seen, now);
                    }
                }
            }
        }
        for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if let (false, Some(seen)) = (ignored(&name), observed(&path)) {
                readiness.observe(&path, seen, now);
            }
        }
        let mut pending = readiness.paths();
        pending.sort();
        let mut waiting = false;
        for path in pending {
            // One try each in a single pass: what must wait is left for the next run.
            if left_to_retry.contains(&path) {
                continue;
            }
            if agent.waits.get(&path).is_some_and(|(until, _)| *until > now) {
                waiting = true;
                continue;
            }
            if !readiness.is_whole(&path, open_for_writing(&path), now) {
                waiting = true;
                continue;
            }
            // Looking for writers takes a while, and a writer may finish meanwhile: only a file
            // still as it was when found whole is taken, as it is now.
            let Some(seen) = observed(&path) else {
                readiness.forget(&path);
                continue;
            };
            if !readiness.unchanged(&path, seen) {
                readiness.observe(&path, seen, Instant::now());
                waiting = true;
                continue;
            }
            readiness.forget(&path);
            // One file's trouble (it vanished while read, a move failed, the state file could not
            // be written) stops that file for a while, never the agent.
            if let Err(e) = agent.take(&path, seen).await {
                let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                emit("retrying", json!({"file": name, "reason": format!("{e:#}"), "in_seconds": 30}));
                agent.waits.insert(path.clone(), (Instant::now() + Duration::from_secs(30), Duration::from_secs(60)));
            }
            if once && agent.waits.contains_key(&path) {
                left_to_retry.insert(path);
            }
        }
        if once && !waiting {
            return match left_to_retry.len() {
                0 => Ok(()),
                n => Err(anyhow!("{n} file(s) could not be uploaded this time and stay in the folder for the next run")),
            };
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            event = next_change(&mut events) => woke_by = event,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

pub fn run(args: WatchArgs) -> Result<(), Failure> {
    let dir =
        args.dir.canonicalize().map_err(|e| Failure::Usage(format!("{}: {e}; name an existing folder to watch", args.dir.display())))?;
    if !dir.is_dir() {
        return Err(Failure::Usage(format!("{} is not a folder", dir.display())));
    }
    let api = url::Url::parse(&args.api).map_err(|e| Failure::Usage(format!("--api {}: {e}; give the API's base URL", args.api)))?;
    if !matches!(api.scheme(), "https" | "http") {
        return Err(Failure::Usage(format!("--api {}: expected an https:// URL", args.api)));
    }
    if api.scheme() == "http"
        && !api.host_str().is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
    {
        return Err(Failure::Usage(format!("--api {}: tokens travel only over https (http is for a local stack on loopback)", args.api)));
    }
    runtime()?.block_on(watch(args, dir)).map_err(Failure::Other)
}
