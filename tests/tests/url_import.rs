//! Import from a URL against the local stack, as a creator's client uses it: `POST
//! /v1/content/import` with a link to a file on an HTTP server (here on 127.0.0.1, which the
//! stack is told to allow with `--import-allow-loopback`); the file is fetched in parts into the
//! source bucket (moto) and the title reaches READY with its metadata; a repeat with the same
//! Idempotency-Key fetches nothing twice; hostile links are refused with a reason, at once when
//! the URL itself says so, or as a FAILED_INVALID title when the server answers with a redirect
//! to the metadata service or a web page. Only processes, files and HTTP.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vaultstream_tests::local::{mint, Running, MULTIPART_THRESHOLD};
use vaultstream_tests::origin::Server;

/// A clip of about 10 MB, two import parts (lossless and noisy, so a small picture makes many
/// bytes), tagged by its maker.
fn large_clip(path: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=2", "-vf", "noise=alls=6:allf=t"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"])
        .args(["-metadata", "artist=Archive Team"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

async fn import(http: &reqwest::Client, api: &str, token: &str, body: &Value, key: Option<&str>) -> (u16, Value, bool) {
    let mut request = http.post(format!("{api}/v1/content/import")).bearer_auth(token).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (response.status().as_u16(), response.json().await.unwrap(), replayed)
}

/// The title's view once its status is none of `passing` (or after three minutes).
async fn settled(http: &reqwest::Client, api: &str, token: &str, content_id: &str, passing: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let view: Value = http.get(format!("{api}/v1/content/{content_id}")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        if !passing.contains(&view["status"].as_str().unwrap_or_default()) || Instant::now() > deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_url_import_reaches_ready_once_and_hostile_links_are_refused_with_a_reason() {
    let root = tempfile::tempdir().unwrap();
    let clip = root.path().join("master.mp4");
    large_clip(&clip);
    let film = std::fs::read(&clip).unwrap();
    assert!(film.len() as u64 > MULTIPART_THRESHOLD, "the clip ({} bytes) must span two import parts", film.len());
    let server = Server::start(HashMap::from([
        ("/masters/Launch%20Day.mp4".to_string(), ("200 OK\r\ncontent-type: application/octet-stream".to_string(), film.clone())),
        ("/bounce".to_string(), ("302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/iam/".to_string(), Vec::new())),
        ("/expired.mp4".to_string(), ("200 OK\r\ncontent-type: text/html".to_string(), b"<html>Link expired</html>".to_vec())),
    ]))
    .await;

    let state_dir = root.path().join("stack");
    let stack = Running::start("dev", &state_dir, &["--import-allow-loopback"]);
    let api = stack.url("api_url");
    let token = mint(&state_dir, "acme", "importer", "content:write content:read");
    let http = reqwest::Client::new();

    // Accepted at once; the link's token is kept out of every answer.
    let link = format!("{}?signature=s3cr3t-token", server.url("/masters/Launch%20Day.mp4"));
    let body = json!({"url": link, "title": "Launch day", "metadata": {"description": "From the archive"}});
    let (status, accepted, replayed) = import(&http, &api, &token, &body, Some("launch-1")).await;
    assert_eq!((status, replayed), (202, false), "{accepted}");
    assert_eq!(accepted["status"], "AWAITING_UPLOAD");
    assert_eq!(accepted["import"]["url"], server.url("/masters/Launch%20Day.mp4"));
    let content_id = accepted["content_id"].as_str().unwrap().to_string();

    // The same request again (a client retrying): the same title.
    let (status, again, replayed) = import(&http, &api, &token, &body, Some("launch-1")).await;
    assert_eq!((status, replayed, again["content_id"].as_str()), (202, true, Some(content_id.as_str())), "{again}");

    let view = settled(&http, &api, &token, &content_id, &["AWAITING_UPLOAD", "QUEUED", "PROCESSING"]).await;
    assert_eq!(view["status"], "READY", "{view}\n{}", vaultstream_tests::local::stderr_of(&state_dir, "dev"));
    assert!(!view["renditions"].as_array().unwrap().is_empty(), "{view}");
    assert_eq!(view["import"]["url"], server.url("/masters/Launch%20Day.mp4"));
    assert!(!view.to_string().contains("s3cr3t-token"), "the link's token is not shown: {view}");
    let (metadata, sources) = (&view["metadata"], &view["metadata_sources"]);
    assert_eq!((&metadata["description"], &sources["description"]), (&json!("From the archive"), &json!("request")), "{view}");
    assert_eq!((&metadata["artist"], &sources["artist"]), (&json!("Archive Team"), &json!("container")), "{view}");
    assert_eq!(server.hits("/masters/Launch%20Day.mp4"), 1, "fetched once, though asked twice");
    let (_, replay, _) = import(&http, &api, &token, &body, Some("launch-1")).await;
    assert_eq!(replay["status"], "READY", "a replay after the import shows where it went: {replay}");
    assert_eq!(server.hits("/masters/Launch%20Day.mp4"), 1);

    // Another tenant cannot see it.
    let stranger = mint(&state_dir, "globex", "someone", "content:read content:write");
    let other = http.get(format!("{api}/v1/content/{content_id}")).bearer_auth(&stranger).send().await.unwrap();
    assert_eq!(other.status(), 404);

    // Refused at once: the URL itself names the metadata service, or is not http(s).
    for (url, expected) in [("http://169.254.169.254/latest/meta-data/", "link-local"), ("file:///etc/passwd", "only https")] {
        let (status, refused, _) = import(&http, &api, &token, &json!({"url": url, "title": "x"}), None).await;
        assert_eq!(status, 400, "{url}: {refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("url: ") && message.contains(expected), "{url}: {message}");
    }
    let viewer = mint(&state_dir, "acme", "viewer", "content:read");
    let (status, _, _) = import(&http, &api, &viewer, &json!({"url": server.url("/masters/Launch%20Day.mp4"), "title": "x"}), None).await;
    assert_eq!(status, 403);

    // Refused once fetched: a redirect to the metadata service, and a page instead of a file.
    for (path, expected) in [("/bounce", "169.254.169.254"), ("/expired.mp4", "text/html")] {
        let (status, accepted, _) = import(&http, &api, &token, &json!({"url": server.url(path), "title": path}), None).await;
        assert_eq!(status, 202, "{accepted}");
        let id = accepted["content_id"].as_str().unwrap();
        let view = settled(&http, &api, &token, id, &["AWAITING_UPLOAD"]).await;
        assert_eq!((&view["status"], &view["failure"]["code"]), (&json!("FAILED_INVALID"), &json!("import_refused")), "{path}: {view}");
        assert!(view["failure"]["message"].as_str().unwrap().contains(expected), "{path}: {view}");
    }
    stack.interrupt();
}

#[tokio::test]
async fn one_tenants_slow_imports_do_not_hold_up_another_tenants() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(HashMap::from([(
        "/victim.mp4".to_string(),
        ("200 OK\r\ncontent-type: video/mp4".to_string(), vaultstream_tests::local::clip(1)),
    )]))
    .await;
    // The attacker's server trickles just fast enough to pass the floor, so each import would
    // hold its slot for the whole time limit.
    let attacker = vaultstream_tests::origin::Slowloris::start(1024).await;

    let state_dir = root.path().join("stack");
    let stack = Running::start_with("dev", &state_dir, &["--import-allow-loopback"], &[("VAULTSTREAM_IMPORT_MIN_RATE", "512/10")]);
    let api = stack.url("api_url");
    let http = reqwest::Client::new();
    let evil = mint(&state_dir, "mallory", "importer", "content:write content:read");
    for n in 0..4 {
        let (status, _, _) = import(&http, &api, &evil, &json!({"url": attacker.url(&format!("/{n}.mp4")), "title": "slow"}), None).await;
        assert_eq!(status, 202);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while attacker.open() < 1 {
        assert!(Instant::now() < deadline, "the attacker's imports never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Another tenant's import is fetched while the attacker's still hold their connections.
    let token = mint(&state_dir, "acme", "importer", "content:write content:read");
    let (status, accepted, _) = import(&http, &api, &token, &json!({"url": server.url("/victim.mp4"), "title": "On time"}), None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["content_id"].as_str().unwrap();
    let view = settled(&http, &api, &token, id, &["AWAITING_UPLOAD"]).await;
    let still_open = attacker.open();
    assert_ne!(view["status"], "AWAITING_UPLOAD", "the import waited behind the attacker's: {view}");
    assert!(still_open >= 1, "the attacker's imports were still being trickled when the victim's was fetched");
    assert!(
        still_open <= 1,
        "one tenant holds at most its share of the import slots: {still_open}\n{}",
        vaultstream_tests::local::stderr_of(&state_dir, "dev")
    );
    attacker.stop();
    stack.interrupt();
}
