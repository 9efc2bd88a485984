//! Independent players beside hls.js: Shaka Player, video.js 8 (VHS, with videojs-contrib-eme
//! for EME) and dash.js play VaultStream's titles (AES-128 HLS; `cbcs` CMAF as HLS and DASH) in
//! Debian's headless Chromium, each asked the same questions through
//! `tests/browser/player_adapters.js`: does it start, play past 5 s, switch rendition when told,
//! list the caption track and show its cue, and follow key periods (a new key every few
//! segments). Whatever a stricter player refused is fixed in the transcoder or the manifest
//! function, never worked around here.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use vaultstream_cli::dev::client::loopback_client;
use vaultstream_tests::local::{browser, browser_script, mint, output_dir, put_german_captions, statuses, Running};
use vaultstream_tests::{transcode_local, two_rung_source};

const PLAYERS: [&str; 3] = ["shaka", "videojs", "hlsjs"];

/// Runs `tests/browser/players.mjs` and checks what every player must have done: no fatal
/// error, past `seconds`, both renditions on screen (the one it started with, then the one it
/// was switched to), every file and key fetched with a 200.
fn played(scenario: Value, seconds: f64) -> Value {
    let result = browser_script("players.mjs", &scenario);
    let player = &scenario["player"];
    assert!(result.get("exception").is_none(), "{player}: the page script failed: {result}");
    let fatal: Vec<&Value> = result["errors"].as_array().unwrap().iter().filter(|e| e["fatal"] == true).collect();
    assert!(fatal.is_empty(), "{player}: fatal errors: {result}");
    assert!(result["current_time"].as_f64().unwrap() >= seconds, "{player}: playback did not pass {seconds} s: {result}");
    let mut seen: Vec<u64> = result["heights_seen"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, vec![360, 480], "{player}: both renditions were on screen: {result}");
    assert_eq!(result["height"], result["switched_to"], "{player}: the rendition it was switched to plays: {result}");
    let manifests = [statuses(&result, ".m3u8"), statuses(&result, ".mpd")].concat();
    assert!(!manifests.is_empty() && manifests.iter().all(|s| *s == 200), "{player}: manifest responses: {result}");
    let media = [statuses(&result, ".ts"), statuses(&result, ".m4s")].concat();
    assert!(!media.is_empty() && media.iter().all(|s| *s == 200), "{player}: media responses: {result}");
    assert!(result["version"].is_string(), "{result}");
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn shaka_video_js_and_hls_js_play_a_local_stack_title() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let shots = output_dir();
    let demo = Running::start("demo", &state, &["--seconds", "16", "--size", "854x480", "--tenant", "demo"]);
    let title = demo.wait_for_event("verified", Duration::from_secs(600))["content_id"].as_str().unwrap().to_string();
    let (api, viewer_url) = (demo.url("api_url"), demo.url("viewer_url"));

    let captioner = mint(&state, "demo", "cleo", "content:read content:write");
    let cue = "Grüße aus München";
    let srt = format!("1\r\n00:00:00,500 --> 00:00:15,000\r\n{cue}\r\n");
    let put = put_german_captions(&loopback_client().unwrap(), &api, &title, &captioner, srt).await;
    assert_eq!(put.status(), 200);

    for player in PLAYERS {
        let shot = shots.join(format!("players-{player}-hls.png"));
        let scenario = json!({"player": player, "viewer_url": viewer_url, "tenant": "demo", "content_id": title,
            "seconds": 5.5, "switch": true, "until_cue": cue, "screenshot": shot});
        let result = played(scenario, 5.5);
        let tracks = result["text"].as_array().unwrap();
        assert!(tracks.iter().any(|t| t["label"] == "Deutsch" && t["language"] == "de"), "{player}: the caption track: {result}");
        assert_eq!(result["saw_cue"], true, "{player}: the cue was on screen: {result}");
        assert!(statuses(&result, "/v1/keys/").iter().all(|s| *s == 200), "{player}: keys: {result}");
        assert!(!statuses(&result, "/v1/keys/").is_empty(), "{player}: keys: {result}");
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "{player}: a screenshot of the playing title");
    }

    // The viewer page itself plays the CMAF packaging through EME when its menu says so.
    let shot = shots.join("viewer-cmaf-clearkey.png");
    let viewer = browser(&json!({"viewer_url": viewer_url, "tenant": "demo", "content_id": title, "packaging": "cmaf",
        "seconds": 3.5, "screenshot": shot}));
    assert_eq!(viewer["packaging"], "cmaf", "{viewer}");
    assert!(viewer["current_time"].as_f64().unwrap() > 3.0, "the viewer's CMAF playback did not pass 3 s: {viewer}");
    assert!(viewer["errors"].as_array().unwrap().iter().all(|e| e["fatal"] != true), "{viewer}");
    assert!(statuses(&viewer, ".ts").is_empty(), "{viewer}");
    let licences = statuses(&viewer, "/v1/licenses/");
    assert!(!licences.is_empty() && licences.iter().all(|s| *s == 200), "{viewer}");
    assert!(statuses(&viewer, ".m4s").iter().all(|s| *s == 200), "{viewer}");

    // The same title's CMAF packaging (cbcs), through EME with the ClearKey CDM: as HLS (hls.js
    // asks the licence server; Shaka takes the identity key URL) and as DASH.
    for (player, format) in [("hlsjs", "cmaf"), ("shaka", "cmaf"), ("shaka", "dash"), ("dashjs", "dash"), ("videojs", "dash")] {
        let shot = shots.join(format!("players-{player}-{format}.png"));
        let scenario = json!({"player": player, "format": format, "viewer_url": viewer_url, "tenant": "demo", "content_id": title,
            "seconds": 5.5, "switch": true, "until_cue": cue, "screenshot": shot});
        let result = played(scenario, 5.5);
        assert!(statuses(&result, ".ts").is_empty(), "{player} {format}: CMAF, not the ts ladder: {result}");
        let fragments = statuses(&result, ".m4s");
        assert!(!fragments.is_empty() && fragments.iter().all(|s| *s == 200), "{player} {format}: fragments: {result}");
        let unlocked = [statuses(&result, "/v1/licenses/"), statuses(&result, "/v1/keys/")].concat();
        assert!(!unlocked.is_empty() && unlocked.iter().all(|s| *s == 200), "{player} {format}: licence or key: {result}");
        if (player, format) != ("shaka", "cmaf") {
            assert!(!statuses(&result, "/v1/licenses/").is_empty(), "{player} {format}: a ClearKey licence: {result}");
        }
        let tracks = result["text"].as_array().unwrap();
        assert!(tracks.iter().any(|t| t["language"] == "de"), "{player} {format}: the caption track: {result}");
        assert_eq!(result["saw_cue"], true, "{player} {format}: the cue was on screen: {result}");
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "{player} {format}: a screenshot");
    }
}

/// A 24 s ladder with a fresh key every two 2 s segments, keys served beside it under the key
/// ids `EXT-X-KEY` names.
fn key_period_ladder(root: &Path) {
    let src = root.join("src.mp4");
    two_rung_source(&src, 24);
    let keys = root.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let summary = transcode_local(
        &src,
        &root.join("out"),
        Some(&keys.join("key")),
        &["--key-uri", "/keys/{key_id}", "--key-period-segments", "2", "--segment-seconds", "2"],
    );
    // `k0` is the key file itself, later periods' keys are `key.k1`, `key.k2`, …
    for file in summary["key_files"].as_array().unwrap() {
        let file = Path::new(file.as_str().unwrap());
        let name = file.file_name().unwrap().to_str().unwrap();
        let id = name.strip_prefix("key.").unwrap_or("k0");
        std::fs::rename(file, keys.join(id)).unwrap();
    }
}

#[test]
fn every_player_follows_key_periods() {
    let dir = tempfile::tempdir().unwrap();
    key_period_ladder(dir.path());
    for player in PLAYERS {
        let scenario = json!({"player": player, "root": dir.path(), "master": "out/master.m3u8", "seconds": 9.0, "switch": true});
        let result = played(scenario, 9.0);
        let mut keys: Vec<String> = result["responses"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["url"].as_str().and_then(|u| u.split("/keys/").nth(1)).map(str::to_string))
            .collect();
        keys.sort();
        keys.dedup();
        assert!(keys.len() >= 5, "{player}: a key for each period played past 9 s (k0 to k4): {keys:?}");
        assert!(statuses(&result, "/keys/").iter().all(|s| *s == 200), "{player}: {result}");
    }
}

/// Parses the media playlist named by the first argument with m3u8-parser (video.js's) and
/// prints its DRM signalling and how many segments carry a key it would fetch itself.
const M3U8_PARSER_SCRIPT: &str = "import { Parser } from 'm3u8-parser'; import fs from 'node:fs';
const p = new Parser(); p.push(fs.readFileSync(process.argv[1], 'utf8')); p.end();
const cp = Object.fromEntries(Object.entries(p.manifest.contentProtection || {})
  .map(([k, v]) => [k, { keyId: v.attributes && v.attributes.keyId, pssh: v.pssh && v.pssh.length, uri: v.uri }]));
console.log(JSON.stringify({ cp, keyed: p.manifest.segments.filter(s => s.key).length, segments: p.manifest.segments.length }));";

/// A title whose key a DRM vendor's SPEKE key provider gave (signalled for Widevine, PlayReady
/// and FairPlay only) plays in Shaka Player from its DASH MPD once the player holds the vendor's
/// key: headless Chromium has no Widevine CDM, so Shaka's ClearKey CDM stands in for the
/// vendor's, with the key its licence would carry.
#[test]
fn shaka_plays_a_vendor_keyed_title_with_the_vendors_key() {
    let dir = tempfile::tempdir().unwrap();
    let vendor = vaultstream_tests::speke::KeyProvider::start(dir.path());
    let src = dir.path().join("src.mp4");
    two_rung_source(&src, 12);
    transcode_local(&src, &dir.path().join("out"), None, &["--segment-seconds", "2", "--speke-url", &vendor.url, "--speke-auth", "none"]);
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/manifest.json")).unwrap()).unwrap();
    let kid = manifest["cmaf_key"]["kid"].as_str().unwrap().to_string();
    let mpd = std::fs::read_to_string(dir.path().join("out/manifest.mpd")).unwrap();
    assert!(mpd.contains("value=\"Widevine\"") && !mpd.contains("e2719d58"), "{mpd}");
    // video.js's own HLS parser (m3u8-parser, as VHS runs it) reads each system's key as DRM
    // signalling for its EME plugin, not as a key to fetch and decrypt with itself.
    let parsed = Command::new("node")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("browser"))
        .args(["--input-type=module", "-e", M3U8_PARSER_SCRIPT])
        .arg(dir.path().join("out/480p/video.m3u8"))
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    let parsed: Value = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(parsed["cp"]["com.widevine.alpha"]["keyId"], kid.replace('-', "").to_uppercase(), "{parsed}");
    assert!(parsed["cp"]["com.widevine.alpha"]["pssh"].as_u64().unwrap() > 32, "{parsed}");
    let playready = parsed["cp"]["com.microsoft.playready"]["uri"].as_str().unwrap();
    assert!(playready.starts_with("data:text/plain;charset=UTF-16;base64,"), "{parsed}");
    assert!(parsed["cp"]["com.apple.fps.1_0"].is_object(), "{parsed}");
    assert_eq!(parsed["keyed"], 0, "no segment key video.js would decrypt itself: {parsed}");
    let shot = output_dir().join("shaka-dash-vendor-keyed.png");
    let scenario = json!({
        "player": "shaka", "root": dir.path(), "master": "out/manifest.mpd", "seconds": 5.0, "switch": true,
        "clear_keys": {kid.replace('-', ""): vendor.key(&kid)}, "screenshot": shot,
    });
    played(scenario, 5.0);
    assert!(shot.exists());
}
