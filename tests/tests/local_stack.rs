//! The local stack end to end, as a newcomer meets it: `vaultstream demo` uploads, publishes and
//! proves a title through the HTTP API; hls.js in Chromium plays it from the viewer page; the page
//! fails as the contract says for another tenant, missing or expired cookies and a foreign key
//! URL; the creator page uploads (multipart) and shows a hostile file's failure; a restart keeps
//! titles playable and the ledger verifying; nothing outlives Ctrl-C. Only processes and HTTP.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vaultstream::segment_cipher::{decrypt_segment, Iv};
use vaultstream::ContentKey;
use vaultstream_cli::dev::client::loopback_client;
use vaultstream_tests::local::{
    browser, cli, mint, output_dir, processes_mentioning, put_german_captions, statuses, Running, MULTIPART_THRESHOLD,
};

fn ffmpeg(args: &[&str], out: &std::path::Path) {
    let status = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).arg(out).status().unwrap();
    assert!(status.success());
}

/// A `Cookie` header from a JSON object of cookie names and values (playback's or `cdn sign-cookies`').
fn cookie_header(cookies: &Value) -> String {
    cookies
        .as_object()
        .unwrap_or_else(|| panic!("no cookies: {cookies}"))
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `VaultStream-Session=…` from a playback response's `Set-Cookie` headers.
fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|pair| pair.starts_with("VaultStream-Session=")))
        .expect("playback sets the session cookie")
        .to_string()
}

/// Cookies from `vaultstream cdn sign-cookies --state-dir` for a title, valid until `date_less_than`.
fn signed_cookies(state: &str, tenant_host: &str, title: &str, date_less_than: u64) -> Value {
    let url = format!("http://{tenant_host}/demo/{title}/*");
    let signed = cli(&["cdn", "sign-cookies", "--state-dir", state, "--url", &url, "--date-less-than", &date_less_than.to_string()]);
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    serde_json::from_slice(&signed.stdout).unwrap()
}

async fn json(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("HTTP {status}, not JSON: {text}"))
}

/// Uploads `bytes` through the API as a creator; returns the content id.
async fn upload(http: &reqwest::Client, api: &str, token: &str, title: &str, bytes: &[u8], declared: usize) -> String {
    let declaration = json!({"title": title, "filename": "clip.mp4", "content_type": "video/mp4", "size_bytes": declared});
    let grant = json(http.post(format!("{api}/v1/content/upload")).bearer_auth(token).json(&declaration).send().await.unwrap()).await;
    let url = grant["upload"]["url"].as_str().unwrap_or_else(|| panic!("a single PUT: {grant}"));
    let response = http.put(url).header("content-type", "video/mp4").body(bytes.to_vec()).send().await.unwrap();
    assert!(response.status().is_success(), "PUT: {}", response.status());
    grant["content_id"].as_str().unwrap().to_string()
}

async fn wait_final(http: &reqwest::Client, api: &str, token: &str, content_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let record = json(http.get(format!("{api}/v1/content/{content_id}")).bearer_auth(token).send().await.unwrap()).await;
        if ["READY", "PARTIAL", "FAILED", "FAILED_INVALID"].contains(&record["status"].as_str().unwrap_or_default()) {
            return record;
        }
        assert!(Instant::now() < deadline, "{content_id} did not finish: {record}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Playback as `token`, then the first rendition's playlist, key URL, key and first segment
/// (fetched from the edge with the cookies), decrypted: the proof that a title plays.
async fn play_over_http(http: &reqwest::Client, api: &str, token: &str, content_id: &str) -> (String, Vec<u8>) {
    let response = http.post(format!("{api}/v1/content/{content_id}/playback")).bearer_auth(token).send().await.unwrap();
    let session = session_cookie(&response);
    let grant = json(response).await;
    let cookies = cookie_header(&grant["cookies"]);
    let master = http.get(grant["manifest_url"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    let variant =
        master.lines().find(|l| l.starts_with("http")).unwrap_or_else(|| panic!("no variant in the master playlist: {master}")).to_string();
    let media = http.get(&variant).send().await.unwrap().text().await.unwrap();
    let key_line = media.lines().find(|l| l.starts_with("#EXT-X-KEY")).unwrap();
    let key_url = key_line.split("URI=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let iv = key_line.split("IV=0x").nth(1).unwrap().split(',').next().unwrap();
    let segment = media.lines().find(|l| l.starts_with("http")).unwrap();
    // The key URL alone opens nothing; with the session cookie playback set on this host, or the
    // viewer's bearer token, it gives the key.
    let bare = http.get(&key_url).send().await.unwrap();
    assert_eq!(bare.status(), 401, "a key URL alone opened the key");
    let with_bearer = http.get(&key_url).bearer_auth(token).send().await.unwrap().bytes().await.unwrap();
    let response = http.get(&key_url).header("cookie", &session).send().await.unwrap();
    assert_eq!(response.status(), 200, "the session cookie did not open the key");
    let key = response.bytes().await.unwrap();
    assert_eq!(key, with_bearer);
    let response = http.get(segment).header("cookie", cookies).send().await.unwrap();
    assert_eq!(response.status(), 200, "the edge refused a segment with fresh cookies");
    let ciphertext = response.bytes().await.unwrap();
    let key = ContentKey::from_bytes(key.as_ref().try_into().unwrap());
    let plaintext = decrypt_segment(&key, &Iv(hex::decode(iv).unwrap().try_into().unwrap()), &ciphertext).unwrap();
    assert_eq!((plaintext[0], plaintext[188]), (0x47, 0x47), "not MPEG-TS after decryption");
    (key_url, plaintext)
}

#[tokio::test(flavor = "multi_thread")]
async fn local_stack_from_demo_to_browser_to_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.display().to_string();
    let shots = output_dir();

    // The demo: stack up, clip, presigned upload, READY, playback proven; then it keeps serving.
    let demo = Running::start("demo", &state, &["--seconds", "6", "--size", "854x480", "--tenant", "demo"]);
    let verified = demo.wait_for_event("verified", Duration::from_secs(600));
    let done = demo.wait_for_event("done", Duration::from_secs(60));
    let title = verified["content_id"].as_str().unwrap().to_string();
    assert_eq!(verified["renditions"].as_array().unwrap().len(), 2, "{verified}");
    for phase in ["emulator_seconds", "provision_seconds", "upload_seconds", "transcode_seconds", "first_playback_seconds"] {
        assert!(done["figures"][phase].as_f64().is_some(), "the demo reports {phase}: {done}");
    }
    let (api, viewer_url) = (demo.url("api_url"), demo.url("viewer_url"));
    let http = loopback_client().unwrap();

    // hls.js in Chromium, from the viewer page reached through the sign-in form.
    let shot = shots.join("local-stack-viewer.png");
    let played = browser(
        &json!({"viewer_url": viewer_url, "tenant": "demo", "content_id": title, "seconds": 3.5, "all_levels": true, "screenshot": shot}),
    );
    assert!(played["current_time"].as_f64().unwrap() > 3.0, "playback did not pass 3 s: {played}");
    assert!(played["errors"].as_array().unwrap().iter().all(|e| e["fatal"] != true), "{played}");
    assert_eq!(played["listed"], json!([title]), "{played}");
    assert_eq!(played["quality_options"].as_array().unwrap().len(), 3, "Auto and two rungs: {played}");
    let mut keyed: Vec<u64> = played["keys_fetched"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    keyed.sort();
    assert_eq!(keyed, vec![0, 1], "every rendition's key was fetched: {played}");
    assert!(statuses(&played, ".ts").iter().all(|s| *s == 200), "{played}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot of the playing viewer");
    let tenant_host = played["signed_in_at"].as_str().unwrap().to_string();

    // Captions attached to the published title become a subtitle rendition: hls.js lists the
    // track, selects it as the default and shows its (non-ASCII) cue on the video.
    let captioner = mint(&state, "demo", "cleo", "content:read content:write");
    let cue = "Grüße aus München — 東京";
    let srt = format!("1\r\n00:00:00,500 --> 00:00:05,000\r\n{cue}\r\n\r\n2\r\n00:00:05,000 --> 00:00:06,000\r\n<i>Ça va ?</i>\r\n");
    let put = put_german_captions(&http, &api, &title, &captioner, srt).await;
    assert_eq!(put.status(), 200);
    let put = json(put).await;
    assert_eq!((put["captions"][0]["cues"].as_u64(), put["captions"][0]["format"].as_str()), (Some(2), Some("srt")), "{put}");
    let broken = http
        .put(format!("{api}/v1/content/{title}/captions/en"))
        .bearer_auth(&captioner)
        .body("1\n00:00:03,000 --> 00:00:01,000\nbackwards\n")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    let broken = json(broken).await;
    assert!(broken["error"]["message"].as_str().unwrap().contains("line 2: the cue ends"), "{broken}");
    let status = json(http.get(format!("{api}/v1/content/{title}")).bearer_auth(&captioner).send().await.unwrap()).await;
    assert_eq!(status["captions"].as_array().unwrap().len(), 1, "only the good track: {status}");
    let captioned = browser(&json!({"viewer_url": viewer_url, "tenant": "demo", "content_id": title, "seconds": 1.0, "until_cue": cue,
        "screenshot": shots.join("local-stack-captions.png")}));
    assert_eq!(captioned["subtitle_tracks"], json!([{"name": "Deutsch", "lang": "de", "default": true, "forced": false}]), "{captioned}");
    assert_eq!(captioned["subtitle_track"], 0, "the default track is selected: {captioned}");
    assert_eq!(captioned["caption_options"], json!(["Off", "Deutsch (de)"]), "{captioned}");
    let shown = captioned["text_tracks"].as_array().unwrap().iter().any(|t| t["active"].as_array().unwrap().iter().any(|a| a == cue));
    assert!(shown, "the cue is on screen: {captioned}");
    assert!(statuses(&captioned, ".vtt").iter().all(|s| *s == 200) && !statuses(&captioned, ".vtt").is_empty(), "{captioned}");

    // Another tenant's viewer: the title is not listed, and playback by id is a 404.
    let rival = browser(&json!({"viewer_url": viewer_url, "tenant": "rival", "content_id": title}));
    assert_eq!(rival["listed"], json!([]), "{rival}");
    assert_eq!(statuses(&rival, "/playback"), vec![404], "{rival}");
    assert!(rival["player_error"].as_str().unwrap().contains("404"), "{rival}");
    assert!(rival["current_time"].as_f64().unwrap() == 0.0);

    // No cookies: the edge refuses the title's files (the captions or the segments, whichever
    // hls.js asks for first); hls.js gives up.
    let cdn_refused = |result: &Value| [".ts", ".vtt"].iter().any(|part| statuses(result, part).contains(&403));
    let bare = browser(&json!({"viewer_url": viewer_url, "tenant": "demo", "content_id": title, "mode": "strip-cookies"}));
    assert!(cdn_refused(&bare), "{bare}");
    assert!(bare["errors"].as_array().unwrap().iter().any(|e| e["fatal"] == true), "{bare}");

    // Expired cookies (signed by the stack's own key, so only the expiry is wrong).
    let host = tenant_host.split(':').next().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let signed = signed_cookies(&state_arg, &tenant_host, &title, now - 60);
    let cookies: Vec<Value> =
        signed.as_object().unwrap().iter().map(|(k, v)| json!({"name": k, "value": v, "domain": host, "path": "/"})).collect();
    let expired = browser(&json!({"viewer_url": viewer_url, "tenant": "demo", "content_id": title, "cookies": cookies}));
    assert!(cdn_refused(&expired), "{expired}");
    assert!(expired["errors"].as_array().unwrap().iter().any(|e| e["fatal"] == true), "{expired}");
    let edge_says =
        http.get(format!("http://{tenant_host}/demo/{title}/x.ts")).header("cookie", cookie_header(&signed)).send().await.unwrap();
    assert_eq!(edge_says.status(), 403);
    assert_eq!(json(edge_says).await["error"]["code"], "expired_signature");

    // Valid cookies for this title do not reach outside its prefix through encoded dot segments.
    let cookie = cookie_header(&signed_cookies(&state_arg, &tenant_host, &title, now + 600));
    let escape = http
        .get(format!("http://{tenant_host}/demo/{title}/..%2F..%2Fother%2Fmaster.m3u8"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(escape.status(), 400);
    assert_eq!(json(escape).await["error"]["code"], "bad_path");

    // The CloudFront Function's rule: a tenant host serves only its own tenant's paths; and the
    // API, as API Gateway, answers a missing credential itself.
    let wrong = http.get(format!("http://{tenant_host}/rival/{title}/master.m3u8")).send().await.unwrap();
    assert_eq!(wrong.status(), 403);
    assert_eq!(json(wrong).await["error"]["code"], "wrong_tenant_host");
    let anonymous = http.get(format!("{api}/v1/content")).send().await.unwrap();
    assert_eq!((anonymous.status().as_u16(), json(anonymous).await), (401, json!({"message": "Unauthorized"})));

    // A creator uploads a second title through the API; its key URL does not open the first.
    let creator = mint(&state, "demo", "cleo", "content:read content:write");
    let small = dir.path().join("small.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast"], &small);
    let bytes = std::fs::read(&small).unwrap();
    let second = upload(&http, &api, &creator, "second", &bytes, bytes.len()).await;
    assert_eq!(wait_final(&http, &api, &creator, &second).await["status"], "READY");
    play_over_http(&http, &api, &creator, &second).await;
    let swapped =
        browser(&json!({"viewer_url": viewer_url, "tenant": "demo", "content_id": title, "mode": "swap-key", "other_content_id": second}));
    let key_statuses = statuses(&swapped, "/v1/keys/");
    assert!(!key_statuses.is_empty() && key_statuses.iter().all(|s| *s == 403), "the API refuses the foreign key URL: {swapped}");
    assert!(swapped["errors"].as_array().unwrap().iter().any(|e| e["fatal"] == true && e["details"] == "keyLoadError"), "{swapped}");
    assert!(swapped["current_time"].as_f64().unwrap() < 1.0, "{swapped}");

    // A body larger than declared: nothing is published, the creator reads why.
    let declared = bytes.len() - 1000;
    let oversized = upload(&http, &api, &creator, "oversized", &bytes, declared).await;
    let record = wait_final(&http, &api, &creator, &oversized).await;
    assert_eq!(
        (record["status"].as_str(), record["failure"]["code"].as_str()),
        (Some("FAILED_INVALID"), Some("upload_mismatch")),
        "{record}"
    );

    // The creator page: a hostile file ends FAILED_INVALID with its reason on the page.
    let hostile = dir.path().join("holiday.mp4");
    std::fs::write(&hostile, b"\x00\x00\x00\x18ftypmp42 this is not a video at all".repeat(4096)).unwrap();
    let page = browser(
        &json!({"viewer_url": viewer_url, "tenant": "demo", "role": "creator", "upload": hostile, "title": "hostile", "screenshot": shots.join("local-stack-creator-hostile.png")}),
    );
    let row = &page["upload"];
    assert_eq!(row["status"], "FAILED_INVALID", "{page}");
    assert!(
        row["failure"].as_str().unwrap().contains("invalid") && row["failure"].as_str().unwrap().len() > 30,
        "the reason is shown: {page}"
    );

    // The creator page uploads above the multipart threshold, with progress, to READY.
    let large = dir.path().join("large.mp4");
    ffmpeg(
        &["-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=2,noise=alls=12:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"],
        &large,
    );
    assert!(std::fs::metadata(&large).unwrap().len() > MULTIPART_THRESHOLD, "the clip must be above the multipart threshold");
    let page = browser(
        &json!({"viewer_url": viewer_url, "tenant": "demo", "role": "creator", "upload": large, "title": "multipart", "timeout_ms": 240_000}),
    );
    assert_eq!(page["upload"]["status"], "READY", "{page}");
    let progress: Vec<u64> = page["upload_progress"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    assert!(progress.iter().any(|p| (1..100).contains(p)) && progress.last() == Some(&100), "the bar moved part by part: {progress:?}");
    assert!(statuses(&page, "/upload/complete").contains(&200), "the browser completed a multipart upload: {page}");

    // Ctrl-C stops everything the stack started.
    let status = demo.interrupt();
    assert!(status.success(), "demo exits 0 on Ctrl-C: {status}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(processes_mentioning(&state_arg), Vec::<String>::new(), "nothing outlives the stack");

    // A restart on the same state keeps the titles playable and the ledger verifying.
    let dev = Running::start("dev", &state, &[]);
    let api = dev.url("api_url");
    let viewer = mint(&state, "demo", "vic", "content:read");
    let listed = json(http.get(format!("{api}/v1/content")).bearer_auth(&viewer).send().await.unwrap()).await;
    let ids: Vec<&str> = listed["items"].as_array().unwrap().iter().filter_map(|i| i["content_id"].as_str()).collect();
    assert!(ids.contains(&title.as_str()) && ids.contains(&second.as_str()), "{listed}");
    play_over_http(&http, &api, &viewer, &title).await;
    // The ffmpeg CLI plays it too, with the edge as its HTTP proxy (it cannot resolve *.localhost).
    // It sends one Cookie header everywhere: the CloudFront cookies for segments, the session
    // cookie for keys (a player that cannot add an Authorization header).
    let response = http.post(format!("{api}/v1/content/{title}/playback")).bearer_auth(&viewer).send().await.unwrap();
    let session = session_cookie(&response);
    let grant = json(response).await;
    let cookie = format!("{}; {session}", cookie_header(&grant["cookies"]));
    let edge = dev.url("viewer_url").trim_end_matches('/').replace("localhost", "127.0.0.1");
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-http_proxy", &edge, "-headers", &format!("Cookie: {cookie}\r\n")])
        .args(["-i", grant["manifest_url"].as_str().unwrap(), "-map", "0", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(decoded.status.success(), "ffmpeg through the edge: {}", String::from_utf8_lossy(&decoded.stderr));
    // The trick-play playlist, personalised like the others (signed key URLs, CDN segments), decodes.
    let master = http.get(grant["manifest_url"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    let iframes = master.lines().find(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF")).and_then(|l| l.split("URI=\"").nth(1)).unwrap();
    let iframes = iframes.split('"').next().unwrap();
    assert!(iframes.contains("/iframes.m3u8?token="), "{master}");
    let trick = Command::new("ffprobe")
        .args(["-v", "error", "-http_proxy", &edge, "-headers", &format!("Cookie: {cookie}\r\n")])
        .args(["-select_streams", "v:0", "-show_entries", "frame=pict_type", "-of", "csv=p=0", iframes])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&trick.stdout);
    let types: Vec<&str> = text.lines().map(|t| t.trim_end_matches(',')).filter(|t| !t.is_empty()).collect();
    assert!(trick.status.success() && types.len() == 3, "a 6 s title has 3 GOPs: {text}{}", String::from_utf8_lossy(&trick.stderr));
    assert!(types.iter().all(|t| *t == "I"), "only I frames: {text}");
    // FFmpeg 5.1's HLS demuxer skips subtitle renditions of a master; it reads the caption
    // track's own playlist, the URI the master names for it.
    let subtitles = master.lines().find(|l| l.contains("TYPE=SUBTITLES")).and_then(|l| l.split("URI=\"").nth(1)).unwrap();
    let subtitles = subtitles.split('"').next().unwrap();
    let webvtt = Command::new("ffmpeg")
        .args(["-v", "error", "-http_proxy", &edge, "-headers", &format!("Cookie: {cookie}\r\n")])
        .args(["-i", subtitles, "-f", "webvtt", "-"])
        .output()
        .unwrap();
    let webvtt_text = String::from_utf8_lossy(&webvtt.stdout);
    assert!(
        webvtt.status.success() && webvtt_text.contains("Grüße aus München — 東京"),
        "{webvtt_text}{}",
        String::from_utf8_lossy(&webvtt.stderr)
    );
    let verify = cli(&["audit", "verify", "--state-dir", &state_arg, "--tenant", "demo"]);
    assert!(
        verify.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("chain intact"));

    // An operator ends a viewer's session: the API refuses it from then on, keys included.
    let minted = cli(&[
        "token",
        "mint",
        "--state-dir",
        &state_arg,
        "--tenant",
        "demo",
        "--sub",
        "eve",
        "--scope",
        "content:read",
        "--sid",
        "sess-ended",
    ]);
    let ended = String::from_utf8_lossy(&minted.stdout).trim().to_string();
    let (key_url, _) = play_over_http(&http, &api, &ended, &title).await;
    let revoked = cli(&["session", "revoke", "--state-dir", &state_arg, "--tenant", "demo", "--session", "sess-ended"]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let refused = http.post(format!("{api}/v1/content/{title}/playback")).bearer_auth(&ended).send().await.unwrap();
    assert_eq!(refused.status(), 403, "the authorizer let a revoked session through");
    assert_eq!(http.get(&key_url).bearer_auth(&ended).send().await.unwrap().status(), 401);

    // A second stack on the same state refuses; a taken port is named.
    let twice = cli(&["dev", "--state-dir", &state_arg, "--port", "0"]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already using"), "{}", String::from_utf8_lossy(&twice.stderr));
    let port = api.rsplit(':').next().unwrap();
    let other_state = dir.path().join("other").display().to_string();
    let taken = cli(&["dev", "--state-dir", &other_state, "--port", port]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&taken.stderr).contains(&format!("127.0.0.1:{port}")), "{}", String::from_utf8_lossy(&taken.stderr));

    assert!(dev.interrupt().success());
    assert_eq!(processes_mentioning(&state_arg), Vec::<String>::new());
}

#[test]
fn token_mint_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = cli(&[
        "token",
        "mint",
        "--state-dir",
        &dir.path().display().to_string(),
        "--tenant",
        "acme",
        "--sub",
        "ada",
        "--scope",
        "content:read",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("vaultstream dev --state-dir"));
    let typo = cli(&["token", "mint", "--tenant", "acme", "--sub", "ada", "--scope", "content:reed"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("content:reed"));
}

/// `vaultstream demo` as a person runs it, in a terminal (tmux gives it a pseudo-terminal): a
/// progress bar while the title transcodes, then where to watch it.
#[test]
fn demo_in_a_terminal_shows_progress_and_where_to_watch() {
    let dir = tempfile::tempdir().unwrap();
    let session = format!("vaultstream-demo-{}", std::process::id());
    let binary = vaultstream_tests::workspace_binary("vaultstream");
    let command = format!(
        "{} demo --state-dir {} --port 0 --seconds 6 --size 854x480 --exit; echo DEMO-EXIT-$?; sleep 120",
        binary.display(),
        dir.path().join("state").display()
    );
    let mut tmux = Command::new("tmux");
    tmux.args(["new-session", "-d", "-s", &session, "-x", "150", "-y", "40"]);
    if let Ok(python) = std::env::var("VAULTSTREAM_PYTHON") {
        tmux.args(["-e", &format!("VAULTSTREAM_PYTHON={python}")]);
    }
    assert!(tmux.arg(&command).status().expect("tmux runs (scripts/install-deps.sh installs it)").success());
    let capture = || {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &session]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut bars, mut screen) = (Vec::new(), String::new());
    while Instant::now() < deadline {
        screen = capture();
        if let Some(line) = screen.lines().find(|l| l.contains("PROCESSING") && l.contains('[') && l.contains('%')) {
            bars.push(line.trim().to_string());
        }
        if screen.contains("DEMO-EXIT-") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("tmux").args(["kill-session", "-t", &session]).status();
    assert!(screen.contains("DEMO-EXIT-0"), "the demo succeeded in the terminal:\n{screen}");
    assert!(!bars.is_empty(), "a progress bar was drawn while transcoding:\n{screen}");
    assert!(screen.contains("Watch it:  http://localhost:"), "the viewer URL is printed:\n{screen}");
    assert!(screen.contains("transcoding content"), "{screen}");
}
