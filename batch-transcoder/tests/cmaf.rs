//! The CMAF packaging checked by implementations none of us wrote: FFmpeg's mov demuxer
//! decrypts every `cbcs` fragment (`-decryption_key`) to exactly the frames the AES-128 ladder
//! decodes to (the same encoded packets), and mp4-atom parses each fragment's `senc`, `saiz`,
//! `saio` and `trun` as ISO BMFF says they are laid out.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mp4_atom::{Decode, Moof};

/// Decoded frame hashes (`framemd5`) of what ffmpeg reads from `input` (stream `select`).
fn frame_hashes(input_args: &[&str], select: &str) -> Vec<String> {
    let out = Command::new("ffmpeg").args(["-v", "error"]).args(input_args).args(["-map", select, "-f", "framemd5", "-"]).output().unwrap();
    assert!(out.status.success(), "ffmpeg {input_args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

/// Init segment and one fragment in one file: what a player appends to its source buffer.
fn joined(dir: &Path, init: &Path, fragment: &Path, name: &str) -> String {
    let path = dir.join(name);
    let mut bytes = std::fs::read(init).unwrap();
    bytes.extend(std::fs::read(fragment).unwrap());
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[test]
fn cbcs_fragments_decrypt_with_ffmpeg_to_the_ladders_frames() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 854, 480, 30, 6, true);
    let t = transcode_ok(dir.path(), &src, &["--segment-seconds", "2", "--preset", "ultrafast"]);
    check_cbcs_against_the_ladder(dir.path(), &t, &c0_file(&t));
    // The manifests name the same tracks.
    let manifest = t.manifest();
    let mpd = t.read("manifest.mpd");
    assert!(mpd.contains("value=\"cbcs\"") && mpd.contains(manifest["cmaf_key"]["kid"].as_str().unwrap()), "{mpd}");
    let master = t.read("cmaf.m3u8");
    assert!(master.contains("AUDIO=\"audio-480p\"") && master.contains("480p/video.m3u8"), "{master}");
    let media = t.read("480p/video.m3u8");
    assert!(media.contains("#EXT-X-MAP:URI=\"cmaf/v_init.mp4\"") && media.contains("METHOD=SAMPLE-AES"), "{media}");
}

/// HEVC in MPEG-TS for the ladder (Annex B, no decoder configuration of its own) and in CMAF
/// (`hvcC` from the first key frame's VPS/SPS/PPS; two-byte NAL headers left clear).
#[test]
fn hevc_rungs_are_packaged_and_decrypt_too() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 640, 360, 25, 4, true);
    let profile = dir.path().join("hevc.json");
    std::fs::write(&profile, r#"{"name": "hevc-ts", "rungs": [{"name": "360p", "width": 640, "height": 360, "codec": "hevc", "video_kbps": 600, "audio_kbps": 64}]}"#).unwrap();
    let t = transcode_ok(dir.path(), &src, &["--profile", profile.to_str().unwrap(), "--segment-seconds", "2", "--preset", "ultrafast"]);
    assert!(t.manifest()["renditions"][0]["cmaf"]["video"]["codec"].as_str().unwrap().starts_with("hvc1"), "{}", t.manifest());
    check_cbcs_against_the_ladder(dir.path(), &t, &c0_file(&t));
}

/// The CMAF key `local` wrote beside k0.
fn c0_file(t: &Transcode) -> String {
    hex(&std::fs::read(format!("{}.c0", t.key_file.display())).expect("the CMAF key beside k0"))
}

/// Every rung's CMAF fragments, decrypted by FFmpeg one by one with their init segment and `c0`,
/// decode to the AES-128 ladder's frames; mp4-atom reads their encryption boxes.
fn check_cbcs_against_the_ladder(dir: &Path, t: &Transcode, c0: &str) {
    let manifest = t.manifest();
    assert_eq!(manifest["cmaf"]["scheme"], "cbcs", "{manifest}");
    let kid = manifest["cmaf_key"]["kid"].as_str().unwrap().replace('-', "");
    let c0 = c0.to_string();
    assert_ne!(c0, t.key_hex(), "the CMAF key is not the AES-128 ladder's");
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();

    for rendition in manifest["renditions"].as_array().unwrap() {
        let name = rendition["name"].as_str().unwrap();
        let rung = t.out.join(name);
        let ladder = rung.join("index.m3u8").display().to_string();
        let expected = frame_hashes(&["-allowed_extensions", "ALL", "-i", &ladder], "0:v");
        let cmaf = &rendition["cmaf"];
        assert_eq!(cmaf["kid"].as_str().unwrap().replace('-', ""), kid);
        let video = &cmaf["video"];
        let init = rung.join(video["init"].as_str().unwrap());
        let fragments: Vec<&str> = video["fragments"].as_array().unwrap().iter().map(|f| f["uri"].as_str().unwrap()).collect();
        assert_eq!(fragments.len(), rendition["segments"].as_array().unwrap().len(), "one fragment per ladder segment");
        let mut decrypted = Vec::new();
        for (i, uri) in fragments.iter().enumerate() {
            let file = joined(&work, &init, &rung.join(uri), &format!("{name}-v{i}.mp4"));
            decrypted.extend(frame_hashes(&["-decryption_key", &c0, "-i", &file], "0:v"));
            if i == 0 {
                // Without the key the same fragment decodes to other pictures (or not at all).
                let out = Command::new("ffmpeg").args(["-v", "quiet", "-i", &file, "-map", "0:v", "-f", "framemd5", "-"]).output().unwrap();
                let clear: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
                    .collect();
                assert_ne!(clear.first(), expected.first(), "{name}: a cbcs fragment decodes without its key");
            }
            // The layout, read by a box parser none of us wrote.
            let bytes = std::fs::read(rung.join(uri)).unwrap();
            let moof = Moof::decode(&mut &bytes[..]).unwrap_or_else(|e| panic!("{name} {uri}: mp4-atom cannot read the moof: {e:?}"));
            let traf = &moof.traf[0];
            let samples: u32 = traf.trun.iter().map(|r| r.samples.len() as u32).sum();
            assert!(traf.senc.is_some(), "{name} {uri}: no senc");
            assert_eq!(traf.saiz.len(), 1, "{name} {uri}: saiz");
            assert_eq!(traf.saiz[0].sample_count, samples, "{name} {uri}: one aux info entry per sample");
            assert_eq!(traf.saio.len(), 1, "{name} {uri}: saio");
        }
        assert_eq!(decrypted, expected, "{name}: the decrypted CMAF video is the ladder's, frame for frame");

        let audio = &cmaf["audio"];
        let init = rung.join(audio["init"].as_str().unwrap());
        let mut samples = 0;
        for (i, f) in audio["fragments"].as_array().unwrap().iter().enumerate() {
            let file = joined(&work, &init, &rung.join(f["uri"].as_str().unwrap()), &format!("{name}-a{i}.mp4"));
            samples += frame_hashes(&["-decryption_key", &c0, "-i", &file], "0:a").len();
        }
        let ladder_audio = frame_hashes(&["-allowed_extensions", "ALL", "-i", &ladder], "0:a").len();
        assert!(samples.abs_diff(ladder_audio) <= 2, "{name}: {samples} decrypted audio frames against the ladder's {ladder_audio}");
    }
}

#[test]
fn packaging_is_chosen_by_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 320, 240, 25, 2, true);
    let profile = dir.path().join("ts-only.json");
    std::fs::write(&profile, r#"{"name": "ts-only", "packaging": ["hls-ts"], "rungs": [{"name": "240p", "width": 320, "height": 240, "video_kbps": 400, "audio_kbps": 64}]}"#).unwrap();
    let t = transcode_ok(dir.path(), &src, &["--profile", profile.to_str().unwrap()]);
    assert!(t.manifest()["cmaf"].is_null());
    assert!(!t.out.join("manifest.mpd").exists() && !t.out.join("240p/cmaf").exists());
    assert!(!Path::new(&format!("{}.c0", t.key_file.display())).exists(), "no CMAF key without CMAF");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"name": "bad", "packaging": ["cmaf"], "rungs": [{"name": "240p", "width": 320, "height": 240, "video_kbps": 400, "audio_kbps": 64}]}"#).unwrap();
    let other = tempfile::tempdir().unwrap();
    let refused = transcode(other.path(), &src, &["--profile", bad.to_str().unwrap()]);
    assert_eq!(refused.code(), 2, "{}", refused.stderr());
    assert!(refused.stderr().contains("packaging") && refused.stderr().contains("hls-ts"), "{}", refused.stderr());
}

#[path = "../../tests/src/speke.rs"]
#[allow(dead_code)]
mod speke;
use speke::KeyProvider;

/// The `pssh` boxes of an init segment's `moov`, as (system id, whole box).
fn pssh_boxes(init: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut boxes = Vec::new();
    let size = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let mut at = 0;
    while at + 8 <= init.len() {
        let (len, kind) = (size(init, at), &init[at + 4..at + 8]);
        if kind == b"moov" {
            let mut inner = at + 8;
            while inner + 8 <= at + len {
                let n = size(init, inner);
                if &init[inner + 4..inner + 8] == b"pssh" {
                    boxes.push((hex(&init[inner + 12..inner + 28]), init[inner..inner + n].to_vec()));
                }
                inner += n;
            }
        }
        at += len.max(8);
    }
    boxes
}

#[test]
fn a_speke_key_providers_key_and_signalling_package_the_title() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 640, 360, 25, 4, true);
    let vendor = KeyProvider::start(dir.path());
    let t = transcode_ok(
        dir.path(),
        &src,
        &["--segment-seconds", "2", "--preset", "ultrafast", "--speke-url", &vendor.url, "--speke-auth", "none"],
    );
    // One SPEKE v2 request, which the vendor's schema accepted (it answers 400 otherwise).
    assert_eq!(vendor.request_headers(1)["x-speke-version"], "2.0");
    assert!(!vendor.state.join("requests/2.xml").exists(), "one request per title");
    let manifest = t.manifest();
    let record = &manifest["cmaf_key"];
    assert_eq!(record["held_by"], "key-provider", "{manifest}");
    assert_eq!(record["systems"], serde_json::json!(["widevine", "playready", "fairplay"]), "{manifest}");
    let key = vendor.key(record["kid"].as_str().unwrap());
    assert!(!std::path::Path::new(&format!("{}.c0", t.key_file.display())).exists(), "the vendor's key is never written to disk");

    // The segments decrypt with the vendor's key to the ladder's frames.
    check_cbcs_against_the_ladder(dir.path(), &t, &key);

    // Init segments carry the vendor's boxes (PlayReady's names the vendor's licence server) and no ClearKey one.
    let init = std::fs::read(t.out.join("360p/cmaf/v_init.mp4")).unwrap();
    let boxes = pssh_boxes(&init);
    let systems: Vec<&str> = boxes.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(systems, ["edef8ba979d64acea3c827dcd51d21ed", "9a04f07998404286ab92e65be0885f95"], "{systems:?}");
    let utf16: Vec<u8> = "playready.example".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    assert!(boxes[1].1.windows(utf16.len()).any(|w| w == utf16), "PlayReady's header is the vendor's");
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

    // HLS names each system's key, DASH each system's pssh; neither names ClearKey or a raw key.
    let media = t.read("360p/video.m3u8");
    let kid_hex = record["kid"].as_str().unwrap().replace('-', "").to_uppercase();
    let widevine = format!(
        "URI=\"data:text/plain;base64,{}\",KEYID=0x{kid_hex},KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"",
        b64(&boxes[0].1)
    );
    assert!(media.contains(&widevine), "{media}");
    assert!(media.contains("KEYFORMAT=\"com.microsoft.playready\""), "{media}");
    assert!(
        media.contains(&format!("URI=\"skd://{}\",KEYFORMAT=\"com.apple.streamingkeydelivery\"", record["kid"].as_str().unwrap())),
        "{media}"
    );
    assert!(!media.contains("identity") && !media.contains("org.w3.clearkey"), "{media}");
    assert!(t.read("cmaf.m3u8").contains("#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://"), "the vendor's master signalling");
    let mpd = t.read("manifest.mpd");
    assert!(mpd.contains(&format!("value=\"Widevine\"><!--laurl:widevine--><cenc:pssh>{}</cenc:pssh>", b64(&boxes[0].1))), "{mpd}");
    assert!(!mpd.contains("e2719d58"), "no ClearKey: {mpd}");
}

#[test]
fn an_unusable_key_provider_fails_the_title_before_it_encodes_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 320, 240, 25, 2, true);
    let cases = [
        ("unavailable", 75, "HTTP 503 Service Unavailable: key service under maintenance"),
        ("refuse", 1, "HTTP 403 Forbidden: this encryptor is not entitled"),
        ("garbled", 1, "not a CPIX document"),
        ("encrypted", 1, "configure the key provider to answer without document encryption"),
        ("hostile", 1, "fairplay HLS signalling is not a #EXT-X-KEY tag"),
        ("wrong-kid", 1, "the answer has no ContentKey for KID"),
    ];
    for (mode, code, why) in cases {
        let vendor = KeyProvider::start_in_mode(dir.path(), mode);
        let t = transcode(dir.path(), &src, &["--speke-url", &vendor.url, "--speke-auth", "none"]);
        assert_eq!(t.code(), code, "{mode}: {}", t.stderr());
        assert!(t.stderr().contains(why), "{mode}: {}", t.stderr());
        assert!(!t.out.exists() && !t.key_file.exists(), "{mode}: nothing published, no key file");
    }
    // The URL must be https off loopback; the systems must be known ones.
    let t = transcode(dir.path(), &src, &["--speke-url", "http://keys.example/speke"]);
    assert_eq!(t.code(), 2, "{}", t.stderr());
    assert!(t.stderr().contains("must use https"), "{}", t.stderr());
    let t = transcode(
        dir.path(),
        &src,
        &["--speke-url", "https://keys.example/speke", "--speke-auth", "none", "--drm-systems", "widevine,primetime"],
    );
    assert_eq!(t.code(), 2, "{}", t.stderr());
    assert!(t.stderr().contains("unknown DRM system \"primetime\""), "{}", t.stderr());
}
