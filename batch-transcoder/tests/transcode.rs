//! End-to-end tests of `vaultstream-transcode local` with real FFmpeg, ffprobe and openssl.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn ladder_plays_in_ffmpeg_with_every_source_frame_and_aligned_idrs() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 1280, 720, 30, 13, true);
    let t = transcode_ok(dir.path(), &src, &[]);

    let master = t.read("master.m3u8");
    assert!(master.contains("#EXT-X-INDEPENDENT-SEGMENTS"), "{master}");
    for (name, w, h) in [("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)] {
        let line = master
            .lines()
            .find(|l| l.starts_with("#EXT-X-STREAM-INF") && l.contains(&format!("RESOLUTION={w}x{h}")))
            .unwrap_or_else(|| panic!("{name} missing: {master}"));
        assert!(
            line.contains("AVERAGE-BANDWIDTH=") && line.contains("FRAME-RATE=30") && line.contains("mp4a.40.2") && line.contains("avc1.64"),
            "{line}"
        );
    }
    assert!(!master.contains("1080p"), "a 720p source must not be upscaled: {master}");
    assert!(!master.contains("CLOSED-CAPTIONS"), "no captions are declared for a source without them: {master}");

    let mut boundaries = None;
    for name in ["720p", "480p", "360p"] {
        let playlist_path = t.out.join(name).join("index.m3u8");
        assert_eq!(frame_count(&playlist_path, "v:0"), 13 * 30, "{name} lost or duplicated frames");
        let playlist = t.read(&format!("{name}/index.m3u8"));
        assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.contains("#EXT-X-ENDLIST"));
        assert!(playlist.contains("#EXT-X-TARGETDURATION:6"), "{playlist}");
        let durations: Vec<String> = playlist.lines().filter(|l| l.starts_with("#EXTINF")).map(str::to_string).collect();
        assert_eq!(durations.len(), 3, "13 s in 6 s segments: {playlist}");
        match &boundaries {
            None => boundaries = Some(durations.clone()),
            Some(b) => assert_eq!(&durations[..2], &b[..2], "segment boundaries differ between rungs"),
        }
        // Every segment decrypts with openssl and starts with an IDR frame.
        for (i, (uri, key_uri, iv)) in segments(&playlist).iter().enumerate() {
            assert_eq!(key_uri, "../../out.key");
            let plain = dir.path().join(format!("{name}-{i}.ts"));
            openssl_decrypt(&t.out.join(name).join(uri), &t.key_hex(), iv, &plain);
            let (key, kind) = first_video_frame(&plain);
            assert!(key && kind == "I", "{name} segment {i} starts with {kind}");
        }
    }
    // Trick play: every rung has an I-frame playlist whose segments decode, each to one IDR
    // frame, one a GOP (13 s in 2 s GOPs), lasting the whole title between them.
    for name in ["720p", "480p", "360p"] {
        let line = master.lines().find(|l| l.contains(&format!("URI=\"{name}/iframes.m3u8\""))).unwrap_or_else(|| panic!("{master}"));
        assert!(line.starts_with("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=") && line.contains("CODECS=\"avc1.64"), "{line}");
        assert!(!line.contains("mp4a"), "I-frame segments carry no audio: {line}");
        let playlist = t.read(&format!("{name}/iframes.m3u8"));
        assert!(playlist.contains("#EXT-X-I-FRAMES-ONLY"), "{playlist}");
        assert_eq!(playlist.matches("#EXT-X-KEY:METHOD=AES-128,URI=\"../../out.key\"").count(), 7, "{playlist}");
        let total: f64 =
            playlist.lines().filter_map(|l| l.strip_prefix("#EXTINF:")).map(|d| d.trim_end_matches(',').parse::<f64>().unwrap()).sum();
        assert!((total - 13.0).abs() < 0.1, "the I-frames span the title: {total}");
        let types = probe_playlist(&t.out.join(name).join("iframes.m3u8"), "frame=pict_type", "v:0");
        let types: std::collections::BTreeSet<&str> = types.iter().map(|t| t.trim_end_matches(',')).collect();
        assert_eq!(types, std::collections::BTreeSet::from(["I"]), "{name}: only I frames");
        assert_eq!(frame_count(&t.out.join(name).join("iframes.m3u8"), "v:0"), 7, "{name}: one frame a GOP");
    }
    // Caption files map cue time 0 to this timestamp (WebVTT's X-TIMESTAMP-MAP).
    let start = probe_playlist(&t.out.join("720p/index.m3u8"), "stream=start_pts", "v:0");
    assert_eq!(
        start[0],
        vaultstream::ladder::Container::Ts.presentation_start_90khz().to_string(),
        "the presentation starts where captions expect"
    );
    let manifest = t.manifest();
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["renditions"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["dropped_renditions"][0]["name"], "1080p");
    assert_eq!(manifest["keys"][0]["id"], "k0");
    assert!(manifest["keys"][0].get("key").is_none());

    // Where the CPU went: every stage of the default pipeline reported, adding up (with what no
    // stage accounts for) to the process's CPU time; the encoders' own threads counted to their
    // rungs, so encoding video is the largest stage, as it is.
    let figures = &manifest["figures"];
    let stages = figures["cpu_by_stage"].as_object().unwrap();
    for stage in
        ["read", "decode", "scale", "encode_video", "encode_audio", "quality", "i_frames", "mux", "cmaf", "encrypt", "write", "pictures"]
    {
        assert!(stages.get(stage).and_then(|s| s.as_f64()).is_some_and(|s| s >= 0.0), "{stage} missing: {stages:?}");
    }
    let sum: f64 = stages.values().map(|s| s.as_f64().unwrap()).sum();
    let cpu = figures["cpu_seconds"].as_f64().unwrap();
    assert!((sum - cpu).abs() <= 0.02 + cpu * 0.01, "stages {sum} s against the process's {cpu} s: {stages:?}");
    let largest = stages.iter().filter(|(k, _)| *k != "other").max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).unwrap()).unwrap();
    assert_eq!(largest.0, "encode_video", "{stages:?}");
    // Each rung's own; the top one takes the source's picture as it is, unscaled.
    for rung in manifest["renditions"].as_array().unwrap() {
        let own = &rung["cpu_by_stage"];
        assert!(own["encode_video"].as_f64().is_some_and(|s| s > 0.0), "{own}");
        assert_eq!(own.get("scale").is_some(), rung["name"] != "720p", "{own}");
    }
}

#[test]
fn a_raw_segment_is_not_decodable_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 640, 360, 25, 3, true);
    let t = transcode_ok(dir.path(), &src, &[]);
    let segment = t.out.join("360p/seg_00000.ts");
    let raw = std::fs::read(&segment).unwrap();
    // MPEG-TS has a sync byte every 188 bytes; ciphertext matches that by chance once in 2^64.
    let looks_like_ts = |bytes: &[u8]| bytes.len() >= 8 * 188 && (0..8).all(|i| bytes[i * 188] == 0x47);
    assert!(!looks_like_ts(&raw), "an encrypted segment must not look like MPEG-TS");
    let probe = run(Command::new("ffprobe").args(["-v", "error", "-show_streams"]).arg(&segment));
    assert!(!probe.status.success() || String::from_utf8_lossy(&probe.stdout).trim().is_empty(), "ffprobe read streams from ciphertext");

    let playlist = t.read("360p/index.m3u8");
    let (_, _, iv) = &segments(&playlist)[0];
    let wrong = dir.path().join("wrong.ts");
    let attempt = run(Command::new("openssl")
        .args(["enc", "-d", "-aes-128-cbc", "-K", "000102030405060708090a0b0c0d0e0f", "-iv", iv, "-in"])
        .arg(&segment)
        .arg("-out")
        .arg(&wrong));
    if attempt.status.success() {
        assert!(!looks_like_ts(&std::fs::read(&wrong).unwrap()), "the wrong key must not yield MPEG-TS");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&t.key_file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&t.key_file).unwrap().len(), 16);
}

#[test]
fn key_periods_rotate_keys_and_still_play() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 640, 360, 30, 6, true);
    let t = transcode_ok(
        dir.path(),
        &src,
        &["--segment-seconds", "2", "--key-period-segments", "1", "--key-hex", "00112233445566778899aabbccddeeff"],
    );
    assert_eq!(t.key_hex(), "00112233445566778899aabbccddeeff");
    let playlist = t.read("360p/index.m3u8");
    let segs = segments(&playlist);
    assert_eq!(segs.len(), 3, "{playlist}");
    let uris: Vec<&str> = segs.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(uris, vec!["../../out.key", "../../out.key.k1", "../../out.key.k2"]);
    let ivs: std::collections::HashSet<&str> = segs.iter().map(|s| s.2.as_str()).collect();
    assert_eq!(ivs.len(), 3, "every segment gets its own IV");
    let k1 = std::fs::read(dir.path().join("out.key.k1")).unwrap();
    assert_ne!(hex(&k1), t.key_hex());
    assert_eq!(frame_count(&t.out.join("360p/index.m3u8"), "v:0"), 180);
    let keys = t.manifest()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.iter().map(|k| k["id"].as_str().unwrap().to_string()).collect::<Vec<_>>(), vec!["k0", "k1", "k2"]);
    assert_eq!(keys[2]["first_segment"], 2);
}

#[test]
fn key_uri_template_names_each_key() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 320, 180, 25, 2, false);
    let t = transcode_ok(dir.path(), &src, &["--key-uri", "https://keys.example/v1/keys/c1/{key_id}"]);
    let playlist = t.read("360p/index.m3u8");
    assert!(playlist.contains("URI=\"https://keys.example/v1/keys/c1/k0\""), "{playlist}");
}

#[test]
fn audio_only_input_gives_an_audio_rendition() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tone.m4a");
    generate(&src, &["sine=f=330:r=44100:d=8"], &["-c:a", "aac"]);
    let t = transcode_ok(dir.path(), &src, &[]);
    let master = t.read("master.m3u8");
    assert!(master.contains("CODECS=\"mp4a.40.2\"") && !master.contains("RESOLUTION"), "{master}");
    assert!(master.contains("audio/index.m3u8"));
    let lines = probe_playlist(&t.out.join("audio/index.m3u8"), "stream=codec_name,sample_rate,channels", "a:0");
    assert_eq!(lines[0], "aac,48000,2");
    assert!(!t.out.join("poster.jpg").exists());
}

#[test]
fn video_without_audio_gives_video_only_renditions() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "silent.mp4", 640, 360, 30, 3, false);
    let t = transcode_ok(dir.path(), &src, &[]);
    let master = t.read("master.m3u8");
    assert!(!master.contains("mp4a"), "{master}");
    assert!(probe_playlist(&t.out.join("360p/index.m3u8"), "stream=codec_type", "a").is_empty());
    assert_eq!(frame_count(&t.out.join("360p/index.m3u8"), "v:0"), 90);
}

#[test]
fn rotation_metadata_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let landscape = dir.path().join("landscape.mp4");
    generate(&landscape, &["testsrc2=s=640x360:r=30:d=2"], &["-c:v", "libx264", "-preset", "ultrafast"]);
    // A stream copy with `rotate` writes a display matrix, as phones do.
    let src = dir.path().join("phone.mp4");
    ok(Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&landscape).args(["-c", "copy", "-metadata:s:v:0", "rotate=90"]).arg(&src));
    let t = transcode_ok(dir.path(), &src, &[]);
    let master = t.read("master.m3u8");
    assert!(master.contains("RESOLUTION=360x640"), "portrait output expected: {master}");
    let dims = probe_playlist(&t.out.join("360p/index.m3u8"), "stream=width,height", "v:0");
    assert_eq!(dims[0], "360,640");
    assert_eq!(t.manifest()["source"]["video"]["rotation"], 270, "FFmpeg's convention: 90° counter-clockwise");
}

#[test]
fn ten_bit_422_becomes_8bit_420_high_profile() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("pro.mov");
    generate(&src, &["testsrc2=s=640x360:r=25:d=2"], &["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv422p10le"]);
    let t = transcode_ok(dir.path(), &src, &[]);
    let info = probe_playlist(&t.out.join("360p/index.m3u8"), "stream=pix_fmt,profile", "v:0");
    assert_eq!(info[0], "High,yuv420p");
    assert_eq!(t.manifest()["source"]["video"]["pixel_format"], "yuv422p10le");
}

#[test]
fn variable_frame_rate_becomes_constant() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("vfr.mkv");
    // Timestamps jitter: every third frame arrives 12 ms late.
    generate(
        &src,
        &["testsrc2=s=320x240:r=30:d=4"],
        &["-vf", "setpts='(N/30+if(eq(mod(N,3),0),0.012,0))/TB'", "-vsync", "vfr", "-c:v", "libx264", "-preset", "ultrafast"],
    );
    let t = transcode_ok(dir.path(), &src, &[]);
    assert_eq!(t.manifest()["frame_rate"], "30/1");
    let times = probe_playlist(&t.out.join("360p/index.m3u8"), "frame=pts_time", "v:0");
    let times: Vec<f64> = times.iter().filter_map(|l| l.trim_end_matches(',').parse().ok()).collect();
    assert!(times.len() >= 110, "{}", times.len());
    for w in times.windows(2) {
        assert!(((w[1] - w[0]) - 1.0 / 30.0).abs() < 0.002, "non-constant frame interval {:?}", w);
    }
}

#[test]
fn thumbnails_and_poster_come_from_the_same_pass() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 640, 360, 30, 12, false);
    let t = transcode_ok(dir.path(), &src, &[]);
    for (file, dims) in [("poster.jpg", "640,360"), ("thumbnails/thumb_00000.jpg", "320,180"), ("thumbnails/thumb_00001.jpg", "320,180")] {
        let out = ok(Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"])
            .arg(t.out.join(file)));
        assert_eq!(out.trim(), format!("mjpeg,{dims}"), "{file}");
    }
    assert!(!t.out.join("thumbnails/thumb_00002.jpg").exists());
    assert_eq!(t.manifest()["pictures"]["thumbnails"][1]["time"], 10.0);
}

#[test]
fn progress_is_json_lines_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 320, 180, 25, 2, true);
    let t = transcode_ok(dir.path(), &src, &[]);
    let progress: Vec<serde_json::Value> =
        t.stderr().lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).filter(|v| v["event"] == "progress").collect();
    assert!(!progress.is_empty(), "{}", t.stderr());
    assert!(progress.iter().all(|p| p["duration_seconds"].is_number()));
    let summary: serde_json::Value = serde_json::from_slice(&t.output.stdout).unwrap();
    assert_eq!(summary["status"], "complete");
}

fn assert_nothing_published(t: &Transcode) {
    assert!(!t.out.exists(), "output folder left behind: {:?}", std::fs::read_dir(&t.out).map(|d| d.count()));
    assert!(!t.key_file.exists(), "key file left behind");
}

fn assert_invalid(t: &Transcode, needle: &str) {
    assert_eq!(t.code(), 65, "expected exit 65: {}", t.stderr());
    assert!(t.stderr().contains(needle), "error should mention {needle:?}: {}", t.stderr());
    assert_nothing_published(t);
}

#[test]
fn hostile_and_broken_inputs_exit_65_and_publish_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let case = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        d
    };

    let d = case("empty");
    std::fs::write(d.join("empty.mp4"), b"").unwrap();
    assert_invalid(&transcode(&d, &d.join("empty.mp4"), &[]), "empty");

    let d = case("text");
    std::fs::write(d.join("notes.mp4"), "this is not a video\n".repeat(100)).unwrap();
    assert_invalid(&transcode(&d, &d.join("notes.mp4"), &[]), "not a media file");

    let d = case("subtitles");
    let srt = d.join("subs.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nhello\n").unwrap();
    ok(Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&srt).arg(d.join("subs.mkv")));
    assert_invalid(&transcode(&d, &d.join("subs.mkv"), &[]), "no video or audio stream");

    let d = case("truncated-faststart");
    let full = d.join("full.mp4");
    generate(&full, &["testsrc2=s=640x360:r=30:d=8"], &["-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart"]);
    let bytes = std::fs::read(&full).unwrap();
    std::fs::write(d.join("cut.mp4"), &bytes[..bytes.len() * 2 / 5]).unwrap();
    assert_invalid(&transcode(&d, &d.join("cut.mp4"), &[]), "truncated");

    let d = case("truncated-moov");
    let full = d.join("full.mp4");
    generate(&full, &["testsrc2=s=320x240:r=30:d=4"], &["-c:v", "libx264", "-preset", "ultrafast"]);
    let bytes = std::fs::read(&full).unwrap();
    std::fs::write(d.join("cut.mp4"), &bytes[..bytes.len() / 2]).unwrap();
    assert_invalid(&transcode(&d, &d.join("cut.mp4"), &[]), "truncated");

    let d = case("too-wide");
    let wide = d.join("wide.avi");
    generate(&wide, &["color=c=blue:s=8200x16:r=1:d=1"], &["-c:v", "rawvideo", "-pix_fmt", "gray"]);
    assert_invalid(&transcode(&d, &wide, &[]), "8200x16, larger than the accepted 8192x8192");

    let d = case("limits");
    let small = clip(&d, "small.mp4", 320, 180, 25, 4, false);
    assert_invalid(&transcode(&d, &small, &["--max-width", "256"]), "--max-width");
    assert_invalid(&transcode(&d, &small, &["--max-duration", "2"]), "--max-duration");

    let d = case("garbage-in-container");
    let good = clip(&d, "good.ts", 640, 360, 25, 4, false);
    let mut bytes = std::fs::read(&good).unwrap();
    let mut state = 12345u32;
    for b in bytes.iter_mut().skip(4096) {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (state >> 16) as u8;
    }
    std::fs::write(d.join("noise.ts"), &bytes).unwrap();
    assert_invalid(&transcode(&d, &d.join("noise.ts"), &[]), "damaged");
}

/// Uploads that are really playlists or lists naming other inputs: FFmpeg's probe would follow
/// them to a file beside the upload or to a URL. Each is refused as invalid input before it opens
/// anything, and a listener on 127.0.0.1 never hears from the worker.
#[test]
fn uploads_naming_other_files_or_urls_are_refused_and_reach_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let here = dir.path().join("neighbour");
    std::fs::create_dir(&here).unwrap();
    let secret = clip(&here, "secret.ts", 320, 240, 25, 2, false);
    let hls = |uri: &str| format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{uri}\n#EXT-X-ENDLIST\n");
    let dash = format!(
        "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" mediaPresentationDuration=\"PT2S\" \
         minBufferTime=\"PT1S\" profiles=\"urn:mpeg:dash:profile:isoff-on-demand:2011\"><Period><AdaptationSet mimeType=\"video/mp4\">\
         <Representation id=\"1\" bandwidth=\"1000\" codecs=\"avc1.64001e\" width=\"320\" height=\"240\">\
         <BaseURL>http://127.0.0.1:{port}/v.mp4</BaseURL><SegmentBase indexRange=\"0-100\"/></Representation></AdaptationSet></Period></MPD>\n"
    );
    let cases = [
        ("hls-local-absolute.mp4", hls(&secret.display().to_string()), "hls"),
        ("hls-local-relative.mp4", hls("secret.ts"), "hls"),
        ("hls-remote.mp4", hls(&format!("http://127.0.0.1:{port}/segment.ts")), "hls"),
        ("concat-local.mp4", "ffconcat version 1.0\nfile 'secret.ts'\n".to_string(), "concat"),
        ("concat-remote.mov", format!("ffconcat version 1.0\nfile 'http://127.0.0.1:{port}/a.ts'\n"), "concat"),
        ("dash-remote.mp4", dash, "dash"),
        (
            "sdp-rtp.ts",
            format!("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video {port} RTP/AVP 96\na=rtpmap:96 H264/90000\n"),
            "sdp",
        ),
    ];
    for (name, text, format) in cases {
        let upload = here.join(name);
        std::fs::write(&upload, text).unwrap();
        let outputs = dir.path().join(name);
        std::fs::create_dir(&outputs).unwrap();
        let t = transcode(&outputs, &upload, &[]);
        assert_eq!(t.code(), 65, "{name}: {}", t.stderr());
        assert!(t.stderr().contains(&format!("FFmpeg's `{format}` format")), "{name}: {}", t.stderr());
        assert!(t.stderr().contains("not an accepted media container"), "{name}: {}", t.stderr());
        assert_nothing_published(&t);
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{name}: the worker reached the listener: {other:?}"),
        }
    }
    // The same bytes as a real media file still transcode: the container check is not the name.
    let t = transcode(&here, &secret, &[]);
    assert_eq!(t.code(), 0, "{}", t.stderr());
}

#[test]
fn a_stalled_input_ends_with_a_retryable_error() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stuck.ts");
    ok(Command::new("mkfifo").arg(&fifo));
    // Hold the writing end open without writing: reads block forever.
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            std::thread::sleep(std::time::Duration::from_secs(20));
            drop(f);
        }
    });
    let started = std::time::Instant::now();
    let t = transcode(dir.path(), &fifo, &["--stall-timeout", "2"]);
    assert_eq!(t.code(), 75, "{}", t.stderr());
    assert!(t.stderr().contains("no data for 2 s"), "{}", t.stderr());
    assert!(started.elapsed().as_secs() < 19, "the watchdog did not end the run");
    assert_nothing_published(&t);
    drop(writer);
}

/// Writing a segment fails for a reason every rendition shares (here a file-size limit standing in
/// for a full disk, which a test cannot arrange without privileges): the job is retryable, and
/// nothing is published partial.
#[test]
fn a_failed_segment_write_is_retryable_and_publishes_nothing() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 640, 360, 25, 3, true);
    let (out, key_file) = (dir.path().join("out"), dir.path().join("out.key"));
    let mut cmd = Command::new(BIN);
    cmd.arg("local").arg(&src).arg("--out").arg(&out).arg("--key-file").arg(&key_file).args(["--segment-seconds", "2"]);
    // SAFETY: between fork and exec only async-signal-safe calls: setrlimit and signal.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 64 * 1024, rlim_max: 64 * 1024 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Without this the kernel ends the process with SIGXFSZ instead of failing the write.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let t = Transcode { out, key_file, output: run(&mut cmd) };
    assert_eq!(t.code(), 75, "{}", t.stderr());
    assert!(t.stderr().contains("writing seg_") || t.stderr().contains("writing init"), "{}", t.stderr());
    assert_nothing_published(&t);
}

fn chosen_encoder(t: &Transcode) -> serde_json::Value {
    t.manifest()["encoders"][0].clone()
}

#[test]
fn auto_encoder_falls_back_to_software_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 320, 180, 25, 2, false);
    let t = transcode_ok(dir.path(), &src, &["--encoder", "auto"]);
    let enc = chosen_encoder(&t);
    let order = ["h264_nvenc", "h264_qsv", "h264_vaapi", "libx264"];
    let chosen = enc["name"].as_str().unwrap();
    let position = order.iter().position(|n| *n == chosen).expect("a known encoder");
    let passed: Vec<&str> = enc["passed_over"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(passed, order[..position].to_vec(), "every better encoder is tried first, in order");
    for p in enc["passed_over"].as_array().unwrap() {
        assert!(!p["reason"].as_str().unwrap().is_empty());
    }
    if chosen == "libx264" {
        assert_eq!(enc["backend"], "software");
        assert!(t.stderr().contains("passed over encoder"), "the log says why: {}", t.stderr());
    }
    assert_eq!(t.manifest()["renditions"][0]["encoder"], chosen);
}

#[test]
fn forcing_an_unavailable_hardware_encoder_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 320, 180, 25, 2, false);
    for name in ["h264_nvenc", "h264_qsv", "h264_vaapi"] {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        let t = transcode(&d, &src, &["--encoder", name]);
        if t.code() == 0 {
            eprintln!("{name} works on this machine; nothing to check");
            continue;
        }
        assert_eq!(t.code(), 1, "{}", t.stderr());
        assert!(t.stderr().contains(&format!("the requested encoder {name} cannot be used here")), "{}", t.stderr());
        assert_nothing_published(&t);
    }
}

#[test]
fn usage_errors_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 320, 180, 25, 1, false);
    let bad_profile = dir.path().join("bad.json");
    std::fs::write(&bad_profile, r#"{"name":"p","rungs":[{"name":"a","width":640,"height":361,"video_kbps":800,"audio_kbps":64}]}"#)
        .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--profile".into(), bad_profile.display().to_string()], "rungs[0].height"),
        (vec!["--profile".into(), "no-such-profile".into()], "not a built-in profile"),
        (vec!["--preset".into(), "warp".into()], "--preset warp is unknown"),
        (vec!["--encoder".into(), "mpeg4".into()], "not a video encoder"),
        (vec!["--encoder".into(), "libx265".into()], "has no hevc rung"),
        (vec!["--key-hex".into(), "abc".into()], "32 hex digits"),
        (vec!["--segment-seconds".into(), "0.2".into()], "--segment-seconds"),
        (vec!["--key-period-segments".into(), "2".into(), "--key-uri".into(), "https://k/fixed".into()], "{key_id}"),
    ];
    for (i, (args, needle)) in cases.iter().enumerate() {
        let d = dir.path().join(format!("case{i}"));
        std::fs::create_dir(&d).unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = transcode(&d, &src, &args);
        assert_eq!(t.code(), 2, "{args:?}: {}", t.stderr());
        assert!(t.stderr().contains(needle), "{args:?} should mention {needle:?}: {}", t.stderr());
        assert!(!t.out.join("master.m3u8").exists());
    }
    let missing = transcode(dir.path(), Path::new("/nonexistent/video.mp4"), &[]);
    assert_eq!(missing.code(), 2);

    // A non-empty output folder is never overwritten.
    let d = dir.path().join("occupied");
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::write(d.join("out/master.m3u8"), "keep me").unwrap();
    let t = transcode(&d, &src, &[]);
    assert_eq!(t.code(), 2);
    assert_eq!(std::fs::read_to_string(d.join("out/master.m3u8")).unwrap(), "keep me");
}

#[test]
fn a_failing_rung_is_left_out_and_the_rest_published_partial() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 640, 360, 25, 3, true);
    let profile = dir.path().join("p.json");
    std::fs::write(
        &profile,
        r#"{"name":"two","rungs":[
            {"name":"360p","width":640,"height":360,"video_kbps":800,"audio_kbps":64},
            {"name":"240p","width":426,"height":240,"video_kbps":400,"audio_kbps":48,"encoder_options":{"profile":"no-such-profile"}}]}"#,
    )
    .unwrap();
    let t = transcode_ok(dir.path(), &src, &["--profile", profile.to_str().unwrap()]);
    let manifest = t.manifest();
    assert_eq!(manifest["status"], "partial");
    assert_eq!(manifest["failed_renditions"][0]["name"], "240p");
    assert!(manifest["reason"].as_str().unwrap().contains("240p"));
    let master = t.read("master.m3u8");
    assert!(master.contains("360p/index.m3u8") && !master.contains("240p"), "{master}");
    assert!(!t.out.join("240p").exists());
    assert_eq!(frame_count(&t.out.join("360p/index.m3u8"), "v:0"), 75);
}

#[test]
fn av1_archive_profile_writes_fmp4_that_plays() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 640, 360, 24, 2, true);
    let t = transcode_ok(dir.path(), &src, &["--profile", "av1-archive", "--preset", "ultrafast"]);
    let master = t.read("master.m3u8");
    assert!(master.contains("CODECS=\"av01.0.") && master.contains("#EXT-X-VERSION:6"), "{master}");
    let playlist = t.read("360p/index.m3u8");
    assert!(playlist.contains("#EXT-X-MAP:URI=\"init.mp4\"") && playlist.contains("seg_00000.m4s"), "{playlist}");
    assert_eq!(frame_count(&t.out.join("360p/index.m3u8"), "v:0"), 48);
    let codec = probe_playlist(&t.out.join("360p/index.m3u8"), "stream=codec_name", "v:0");
    assert_eq!(codec[0], "av1");
    let iframes = t.read("360p/iframes.m3u8");
    assert!(iframes.contains("#EXT-X-MAP:URI=\"iframes_init.mp4\"") && iframes.contains("iframe_00000.m4s"), "{iframes}");
    assert_eq!(frame_count(&t.out.join("360p/iframes.m3u8"), "v:0"), 1, "one IDR in a 2 s clip of 2 s GOPs");
    let start = probe_playlist(&t.out.join("360p/index.m3u8"), "stream=start_pts", "v:0");
    assert_eq!(start[0], vaultstream::ladder::Container::Fmp4.presentation_start_90khz().to_string(), "captions map cue 0 to fMP4's start");
}

#[test]
fn hevc_rungs_write_fmp4_with_hvc1_codecs() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 640, 360, 25, 2, true);
    let profile = dir.path().join("hevc.json");
    std::fs::write(&profile, r#"{"name":"hevc-small","container":"fmp4","rungs":[{"name":"360p","width":640,"height":360,"codec":"hevc","video_kbps":600,"audio_kbps":64}]}"#).unwrap();
    let t = transcode_ok(dir.path(), &src, &["--profile", profile.to_str().unwrap(), "--preset", "ultrafast"]);
    assert!(t.read("master.m3u8").contains("CODECS=\"hvc1.1."), "{}", t.read("master.m3u8"));
    assert_eq!(frame_count(&t.out.join("360p/index.m3u8"), "v:0"), 50);
}

#[test]
fn a_job_that_cannot_act_as_its_tenant_stops_before_touching_anything() {
    let content = "0123456789abcdef0123456789abcdef";
    let source_key = format!("source/acme/{content}/original");
    let out = run(Command::new(BIN)
        .args(["run", "--tenant", "acme", "--content-id", content, "--source-key", &source_key])
        .args(["--source-bucket", "s", "--origin-bucket", "o", "--content-table", "c", "--audit-table", "a", "--content-key-id", "k"])
        .env("VAULTSTREAM_TENANT_ROLE_ARN", "arn:aws:iam::123456789012:role/vs-transcoder-tenant")
        // STS unreachable (nothing listens there); every other endpoint would be too.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_MAX_ATTEMPTS", "1"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "a temporary failure, retried by job_events: {stderr}");
    assert!(stderr.contains("cannot act as tenant acme: assuming arn:aws:iam::123456789012:role/vs-transcoder-tenant"), "{stderr}");
}

/// An `ffmpeg` command at log level `level` reading `input`, a media file or one of our HLS
/// playlists (whose key files the HLS demuxer opens only with `-allowed_extensions ALL`).
fn ffmpeg_reading(input: &Path, level: &str) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", level, "-nostats"]);
    if input.extension().is_some_and(|e| e == "m3u8") {
        cmd.args(["-allowed_extensions", "ALL"]);
    }
    cmd.arg("-i").arg(input);
    cmd
}

/// `idet` over a file or playlist: (interlaced, progressive) frames by its multi-frame detection.
fn idet(playlist: &Path) -> (u64, u64) {
    let out = run(ffmpeg_reading(playlist, "info").args(["-vf", "idet", "-f", "null", "-"]));
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log.lines().find(|l| l.contains("Multi frame detection")).unwrap_or_else(|| panic!("no idet result: {log}"));
    let count =
        |label: &str| -> u64 { line.split(label).nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap() };
    (count("TFF:") + count("BFF:"), count("Progressive:"))
}

#[test]
fn interlaced_sources_are_deinterlaced_in_their_field_order_before_scaling() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("sd.json");
    std::fs::write(&profile, r#"{"name":"sd","container":"ts","rungs":[{"name":"576p","width":720,"height":576,"codec":"h264","video_kbps":1500,"audio_kbps":64}]}"#).unwrap();
    for (order, interleave) in [("tff", "interleave_top"), ("bff", "interleave_bottom")] {
        // 576i25: 50 pictures a second woven into 25 frames, two moments in each.
        let src = dir.path().join(format!("{order}.mp4"));
        let weave = format!("tinterlace={interleave},setfield={order}");
        let x264 = format!("{order}=1");
        generate(
            &src,
            &["testsrc2=s=720x576:r=50:d=2"],
            &[
                "-vf",
                &weave,
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-flags",
                "+ilme+ildct",
                "-x264-params",
                &x264,
            ],
        );
        let (interlaced, progressive) = idet(&src);
        assert!(interlaced >= 45 && progressive == 0, "the source is interlaced ({order}): {interlaced}/{progressive}");

        let run_dir = dir.path().join(order);
        std::fs::create_dir_all(&run_dir).unwrap();
        let t = transcode_ok(&run_dir, &src, &["--profile", profile.to_str().unwrap(), "--preset", "ultrafast"]);
        let scan = &t.manifest()["source"]["video"]["scan"];
        assert_eq!(scan, if order == "tff" { "top_field_first" } else { "bottom_field_first" });
        let playlist = t.out.join("576p/index.m3u8");
        assert_eq!(frame_count(&playlist, "v:0"), 50, "one frame per frame: the frame rate is kept");
        let (interlaced, progressive) = idet(&playlist);
        assert!(
            progressive >= 45 && interlaced <= 5,
            "full-size output must be progressive ({order}): {interlaced} interlaced, {progressive} progressive"
        );
    }
    // A stream that does not say (MPEG-4 Part 2 in AVI has no field order) and whose frames are
    // not flagged either: FFmpeg's idet finds the fields in the pictures.
    let src = dir.path().join("undeclared.avi");
    generate(
        &src,
        &["testsrc2=s=720x576:r=50:d=2"],
        &["-vf", "tinterlace=interleave_top", "-c:v", "mpeg4", "-q:v", "2", "-pix_fmt", "yuv420p"],
    );
    let (interlaced, _) = idet(&src);
    assert!(interlaced >= 45, "the source is interlaced: {interlaced}");
    let run_dir = dir.path().join("undeclared");
    std::fs::create_dir_all(&run_dir).unwrap();
    let t = transcode_ok(&run_dir, &src, &["--profile", profile.to_str().unwrap(), "--preset", "ultrafast"]);
    assert_eq!(t.manifest()["source"]["video"]["scan"], "undeclared");
    let (interlaced, progressive) = idet(&t.out.join("576p/index.m3u8"));
    assert!(progressive >= 45 && interlaced <= 5, "found and deinterlaced: {interlaced} interlaced, {progressive} progressive");

    // A progressive source is left as it is.
    let src = clip(dir.path(), "progressive.mp4", 720, 576, 25, 2, false);
    let run_dir = dir.path().join("progressive");
    std::fs::create_dir_all(&run_dir).unwrap();
    let t = transcode_ok(&run_dir, &src, &["--profile", profile.to_str().unwrap(), "--preset", "ultrafast"]);
    assert_eq!(t.manifest()["source"]["video"]["scan"], "progressive");
}

/// Frame-averaged `signalstats` (YAVG, SATAVG) of what `filter` makes of `input`.
fn picture_stats(input: &Path, filter: &str) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("stats.txt");
    let chain = format!("{filter}signalstats,metadata=mode=print:file={}", report.display());
    ok(ffmpeg_reading(input, "error").args(["-an", "-vf", &chain, "-f", "null", "-"]));
    let text = std::fs::read_to_string(&report).unwrap();
    let mean = |key: &str| {
        let values: Vec<f64> =
            text.lines().filter_map(|l| l.strip_prefix(&format!("lavfi.signalstats.{key}="))).map(|v| v.parse().unwrap()).collect();
        assert!(!values.is_empty(), "no {key} in {text}");
        values.iter().sum::<f64>() / values.len() as f64
    };
    (mean("YAVG"), mean("SATAVG"))
}

/// Stream tags as ffprobe reads them from a rendition, in its order: profile, pix_fmt, matrix,
/// transfer, primaries.
fn colour_of(playlist: &Path) -> Vec<String> {
    probe_playlist(playlist, "stream=profile,pix_fmt,color_primaries,color_transfer,color_space", "v:0")[0]
        .split(',')
        .map(str::to_string)
        .collect()
}

#[test]
fn hdr_sources_get_tone_mapped_sdr_rungs_and_hevc_rungs_that_keep_hdr() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("hdr.json");
    std::fs::write(
        &profile,
        r#"{"name":"hdr","container":"fmp4","hdr":"keep","rungs":[
            {"name":"hdr720","width":1280,"height":720,"codec":"hevc","video_kbps":3000,"audio_kbps":64},
            {"name":"sdr720","width":1280,"height":720,"codec":"h264","video_kbps":3000,"audio_kbps":64},
            {"name":"sdr360","width":640,"height":360,"codec":"h264","video_kbps":800,"audio_kbps":64}]}"#,
    )
    .unwrap();
    for (name, transfer, range) in [("pq", "smpte2084", "PQ"), ("hlg", "arib-std-b67", "HLG")] {
        // A phone's HDR clip: 10-bit HEVC, BT.2020, white graded to 1000 nits, tagged as such.
        let src = dir.path().join(format!("{name}.mp4"));
        let grade = format!("format=gbrp,zscale=tin=709:pin=709:rin=pc:t={transfer}:p=2020:m=2020_ncl:r=tv:npl=1000");
        // The PQ grade states its mastering display (P3 D65, 1000 nits) and light levels in SEI.
        let hdr10 = if name == "pq" {
            ":hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400"
        } else {
            ""
        };
        let x265 = format!("log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc{hdr10}");
        generate(
            &src,
            &["testsrc2=s=1280x720:r=25:d=2"],
            &[
                "-vf",
                &grade,
                "-pix_fmt",
                "yuv420p10le",
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                &x265,
                "-color_primaries",
                "bt2020",
                "-color_trc",
                transfer,
                "-colorspace",
                "bt2020nc",
            ],
        );
        let run_dir = dir.path().join(name);
        std::fs::create_dir_all(&run_dir).unwrap();
        let t = transcode_ok(&run_dir, &src, &["--profile", profile.to_str().unwrap(), "--preset", "ultrafast"]);
        let manifest = t.manifest();
        assert_eq!(manifest["source"]["video"]["dynamic_range"], range);
        assert_eq!(manifest["source"]["video"]["colour"]["transfer"], transfer);
        assert!(manifest["figures"]["tone_map_cpu_seconds"].as_f64().is_some_and(|s| s > 0.0), "the step's own cost is reported");

        // SDR rungs say BT.709; the HEVC rung is Main 10 with the source's HDR signalling.
        for sdr in ["sdr720", "sdr360"] {
            let tags = colour_of(&t.out.join(format!("{sdr}/index.m3u8")));
            assert_eq!(tags[1..], ["yuv420p", "bt709", "bt709", "bt709"], "{name} {sdr}: {tags:?}");
        }
        let tags = colour_of(&t.out.join("hdr720/index.m3u8"));
        assert_eq!(tags, ["Main 10", "yuv420p10le", "bt2020nc", transfer, "bt2020"], "{name} hdr720");
        // HDR10 static metadata goes from the source's SEI to the rung that keeps HDR.
        let first_frame = ok(Command::new("ffprobe")
            .args(["-v", "error", "-allowed_extensions", "ALL", "-read_intervals", "%+#1", "-select_streams", "v:0", "-show_frames"])
            .arg(t.out.join("hdr720/index.m3u8")));
        if name == "pq" {
            for expected in [
                "red_x=34000/50000",
                "white_point_y=16450/50000",
                "max_luminance=10000000/10000",
                "min_luminance=50/10000",
                "max_content=1000",
                "max_average=400",
            ] {
                assert!(first_frame.contains(expected), "{name} hdr720 lacks {expected}: {first_frame}");
            }
            assert_eq!(manifest["source"]["video"]["hdr10"]["max_cll"], 1000, "{}", manifest["source"]);
        } else {
            assert!(!first_frame.contains("Mastering display"), "HLG states none and gets none: {first_frame}");
        }
        let rungs = manifest["renditions"].as_array().unwrap();
        let range_of = |rung: &str| rungs.iter().find(|r| r["name"] == rung).map(|r| r["video_range"].clone()).unwrap();
        assert_eq!((range_of("hdr720"), range_of("sdr720")), (range.into(), "SDR".into()));
        let master = t.read("master.m3u8");
        for (rung, expected) in [("hdr720", range), ("sdr720", "SDR"), ("sdr360", "SDR")] {
            let line = master.lines().take_while(|l| !l.starts_with(rung)).filter(|l| l.starts_with("#EXT-X-STREAM-INF")).last().unwrap();
            assert!(line.contains(&format!("VIDEO-RANGE={expected}")), "{name} {rung}: {line}");
            if expected != "SDR" {
                assert!(line.contains("hvc1.2.4"), "a Main 10 CODECS string: {line}");
            }
        }

        // The tone-mapped rung looks like FFmpeg's own zscale + tonemap conversion of the source.
        let reference = format!(
            "zscale=tin={transfer}:min=2020_ncl:pin=2020:rin=tv:p=2020:t=linear:npl=100,format=gbrpf32le,zscale=p=709,\
             tonemap=tonemap=hable:desat=0,zscale=t=709:m=709:r=tv,format=yuv420p,"
        );
        let (luma, saturation) = picture_stats(&t.out.join("sdr720/index.m3u8"), "");
        let (reference_luma, reference_saturation) = picture_stats(&src, &reference);
        let (naive_luma, _) = picture_stats(&src, "format=yuv420p,");
        assert!(
            (luma - reference_luma).abs() <= 2.0 && (saturation - reference_saturation).abs() <= reference_saturation * 0.1,
            "{name}: mean luma {luma:.1} and saturation {saturation:.1} against the reference's {reference_luma:.1} and {reference_saturation:.1}"
        );
        // What the ladder used to be: HDR code values shown as if they were BT.709.
        assert!((naive_luma - reference_luma).abs() > 6.0, "the check can tell: untouched {name} has mean luma {naive_luma:.1}");
        eprintln!("{name}: luma {luma:.2} vs {reference_luma:.2} (untouched {naive_luma:.2}); saturation {saturation:.2} vs {reference_saturation:.2}");
    }
}

/// RMS level (dBFS) of one channel of a file's or playlist's audio, band-passed around `hz`.
fn band_level(input: &Path, channel: usize, hz: u32) -> f64 {
    let chain = format!("pan=mono|c0=c{channel},bandpass=f={hz}:width_type=q:w=8,bandpass=f={hz}:width_type=q:w=8,astats=measure_perchannel=RMS_level:measure_overall=none");
    let out = run(ffmpeg_reading(input, "info").args(["-vn", "-af", &chain, "-f", "null", "-"]));
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log.lines().find(|l| l.contains("RMS level dB")).unwrap_or_else(|| panic!("no astats result: {log}"));
    let value = line.rsplit(':').next().unwrap().trim();
    if value == "-inf" {
        -200.0
    } else {
        value.parse().unwrap()
    }
}

#[test]
fn surround_sources_keep_a_correct_stereo_downmix() {
    let dir = tempfile::tempdir().unwrap();
    // 5.1: a tone of its own in front left (440 Hz), centre (1 kHz), LFE (60 Hz) and the left
    // surround (2.5 kHz); front right and right surround silent.
    let src = dir.path().join("surround.mp4");
    generate(
        &src,
        &[
            "testsrc2=s=320x180:r=25:d=3",
            "aevalsrc=exprs=0.25*sin(440*2*PI*t)|0|0.25*sin(1000*2*PI*t)|0.25*sin(60*2*PI*t)|0.25*sin(2500*2*PI*t)|0:c=5.1(side):s=48000:d=3",
        ],
        &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "384k", "-shortest"],
    );
    let t = transcode_ok(dir.path(), &src, &["--preset", "ultrafast"]);
    assert_eq!(t.manifest()["source"]["audio"]["channels"], 6);
    let rung = t.out.join("180p/index.m3u8");
    let rung =
        if rung.exists() { rung } else { t.out.join(format!("{}/index.m3u8", t.manifest()["renditions"][0]["name"].as_str().unwrap())) };
    let (left, right) = (|hz| band_level(&rung, 0, hz), |hz| band_level(&rung, 1, hz));
    // Front left stays left; the centre reaches both sides equally, 3 dB below the front
    // channels (ITU-R BS.775); the left surround stays left at -3 dB; the LFE is left out.
    assert!(left(440) - right(440) > 30.0, "front left leaks right: {} vs {}", left(440), right(440));
    assert!((left(1000) - right(1000)).abs() < 0.5, "centre unbalanced: {} vs {}", left(1000), right(1000));
    assert!((left(440) - left(1000) - 3.0).abs() < 1.0, "centre is 3 dB under the fronts: {} vs {}", left(440), left(1000));
    assert!(left(2500) - right(2500) > 30.0, "left surround leaks right: {} vs {}", left(2500), right(2500));
    assert!((left(440) - left(2500) - 3.0).abs() < 1.0, "surround is 3 dB under the fronts: {} vs {}", left(440), left(2500));
    assert!(left(60) < left(440) - 30.0 && right(60) < left(440) - 30.0, "the LFE is not mixed in: {} / {}", left(60), right(60));
    // And nothing clips: the mix is scaled so its loudest sum fits.
    let (source_front, output_front) = (band_level(&src, 0, 440), left(440));
    assert!(output_front < source_front, "the downmix is scaled down ({output_front} against {source_front} in the source)");
}

/// Integrated loudness (LUFS) and true peak (dBTP) by FFmpeg's ebur128.
fn loudness(input: &Path) -> (f64, f64) {
    let out = run(ffmpeg_reading(input, "info").args(["-vn", "-af", "ebur128=peak=true", "-f", "null", "-"]));
    let log = String::from_utf8_lossy(&out.stderr);
    let summary = log.rsplit("Summary:").next().unwrap_or_else(|| panic!("no ebur128 summary: {log}"));
    let value = |label: &str| -> f64 {
        summary
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {label} in {summary}"))
    };
    (value("I:"), value("Peak:"))
}

#[test]
fn profiles_may_normalize_loudness_to_a_target() {
    let dir = tempfile::tempdir().unwrap();
    // A quiet programme: speech-like pulses of pink noise around -35 LUFS. The noise is seeded
    // so every run measures the same programme.
    let src = dir.path().join("quiet.mp4");
    generate(
        &src,
        &["testsrc2=s=320x180:r=25:d=12", "anoisesrc=c=pink:r=48000:a=0.05:d=12:seed=7"],
        &["-af", "volume='0.3+0.7*gt(mod(t,2),1)':eval=frame", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"],
    );
    let (source_lufs, _) = loudness(&src);
    let profile = dir.path().join("loud.json");
    std::fs::write(
        &profile,
        r#"{"name":"loud","loudness":{"target_lufs":-16,"true_peak_dbtp":-6},"rungs":[{"name":"180p","width":320,"height":180,"video_kbps":300,"audio_kbps":128}]}"#,
    )
    .unwrap();
    let normalized = dir.path().join("normalized");
    std::fs::create_dir_all(&normalized).unwrap();
    let t = transcode_ok(&normalized, &src, &["--profile", profile.to_str().unwrap(), "--preset", "ultrafast"]);
    let (lufs, peak) = loudness(&t.out.join("180p/index.m3u8"));
    assert!((lufs - -16.0).abs() <= 1.0, "integrated loudness {lufs} LUFS against the -16 target (source {source_lufs})");
    // Raised to -16 LUFS unlimited, this noise peaks near -1.5 dBTP, so a -6 ceiling must act.
    // The limiter holds -6 exactly on the audio it hands the encoder; AAC coding of the limited,
    // dense signal overshoots that by up to 1.5 dB, which the README tells profile authors.
    assert!(peak <= -6.0 + 1.5, "true peak {peak} dBTP against the -6 ceiling");
    // Audio stays as long as the video, in sync.
    let audio_frames = frame_count(&t.out.join("180p/index.m3u8"), "a:0");
    assert!((audio_frames as f64 * 1024.0 / 48000.0 - 12.0).abs() < 0.2, "{audio_frames} AAC frames for 12 s");

    // Without a target, levels are left as they are.
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let profile = dir.path().join("plain.json");
    std::fs::write(&profile, r#"{"name":"plain","rungs":[{"name":"180p","width":320,"height":180,"video_kbps":300,"audio_kbps":128}]}"#)
        .unwrap();
    let t = transcode_ok(&plain, &src, &["--profile", profile.to_str().unwrap(), "--preset", "ultrafast"]);
    let (untouched, _) = loudness(&t.out.join("180p/index.m3u8"));
    assert!((untouched - source_lufs).abs() <= 0.5, "{untouched} LUFS against the source's {source_lufs}");
    assert!(source_lufs < -25.0, "the source is quiet enough for the check to mean something: {source_lufs}");
}

#[test]
fn every_rung_reports_its_psnr_and_ssim_and_starved_rungs_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "clip.mp4", 640, 360, 25, 4, false);
    let profile = dir.path().join("floor.json");
    std::fs::write(
        &profile,
        r#"{"name":"floor","quality_floor":{"psnr_db":40,"ssim":0.95},"rungs":[
            {"name":"fed","width":640,"height":360,"video_kbps":2500,"audio_kbps":64},
            {"name":"starved","width":320,"height":180,"video_kbps":50,"audio_kbps":64}]}"#,
    )
    .unwrap();
    let t = transcode_ok(dir.path(), &src, &["--profile", profile.to_str().unwrap(), "--preset", "ultrafast"]);
    let manifest = t.manifest();
    let quality = |rung: &str| manifest["renditions"].as_array().unwrap().iter().find(|r| r["name"] == rung).unwrap()["quality"].clone();
    let (fed, starved) = (quality("fed"), quality("starved"));
    eprintln!("fed {fed}\nstarved {starved}");
    // One frame a GOP (2 s), a quarter second after its IDR: two in four seconds.
    assert_eq!((fed["frames_sampled"].as_u64(), starved["frames_sampled"].as_u64()), (Some(2), Some(2)));
    let (fed_psnr, starved_psnr) = (fed["psnr_db"].as_f64().unwrap(), starved["psnr_db"].as_f64().unwrap());
    assert!(fed_psnr > 40.0 && fed_psnr < 100.0 && fed["ssim"].as_f64().unwrap() > 0.95, "{fed}");
    assert!(fed.get("below_floor").is_none(), "{fed}");
    assert!(starved_psnr < fed_psnr - 3.0, "50 kb/s is visibly worse: {starved_psnr} against {fed_psnr}");
    assert!(starved["below_floor"].as_str().is_some_and(|why| why.contains("under the profile's")), "{starved}");

    // The figure is FFmpeg's own: the CLI's psnr over the whole rung against the source agrees.
    let out = run(ffmpeg_reading(&t.out.join("fed/index.m3u8"), "info").arg("-i").arg(&src).args([
        "-lavfi",
        "[0:v][1:v]psnr",
        "-f",
        "null",
        "-",
    ]));
    let log = String::from_utf8_lossy(&out.stderr);
    let cli: f64 = log
        .split("average:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    assert!((cli - fed_psnr).abs() < 2.0, "sampled {fed_psnr} dB against the CLI's {cli} dB over every frame");
    assert!(manifest["figures"]["quality_cpu_seconds"].as_f64().is_some_and(|s| s > 0.0), "the step's own cost is reported");
}

#[test]
fn a_storyboard_track_points_into_sprite_sheets_of_the_thumbnails() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "long.mp4", 320, 180, 10, 25, false);
    let t = transcode_ok(dir.path(), &src, &["--preset", "ultrafast"]);
    assert_eq!(t.manifest()["pictures"]["storyboard"], "thumbnails/storyboard.vtt");
    let track = t.read("thumbnails/storyboard.vtt");
    // Thumbnails at 0, 10 and 20 s, 320×180, side by side on one sheet.
    assert_eq!(
        track,
        "WEBVTT\n\n\
         00:00:00.000 --> 00:00:10.000\nstoryboard_00000.jpg#xywh=0,0,320,180\n\n\
         00:00:10.000 --> 00:00:20.000\nstoryboard_00000.jpg#xywh=320,0,320,180\n\n\
         00:00:20.000 --> 00:00:30.000\nstoryboard_00000.jpg#xywh=640,0,320,180\n"
    );
    let sheet = t.out.join("thumbnails/storyboard_00000.jpg");
    let size = ok(Command::new("ffprobe").args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0"]).arg(&sheet));
    assert_eq!(size.trim(), "960,180");
    // Each tile is its thumbnail: the third tile against thumb_00002.jpg.
    let out = run(Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-i"])
        .arg(&sheet)
        .arg("-i")
        .arg(t.out.join("thumbnails/thumb_00002.jpg"))
        .args(["-lavfi", "[0:v]crop=320:180:640:0[tile];[tile][1:v]psnr", "-f", "null", "-"]));
    let log = String::from_utf8_lossy(&out.stderr);
    let psnr: f64 = log.split("average:").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or(100.0);
    assert!(psnr > 35.0, "the tile matches its thumbnail: {psnr} dB\n{log}");
}

#[test]
fn embedded_cea608_captions_are_kept_in_every_rung_and_declared() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("cc.mp4");
    clip_with_cea608(&src, 90, "HELLO");
    assert!(cea608_text(&src).contains("HELLO"), "the source carries the caption");
    let profile = dir.path().join("two.json");
    std::fs::write(&profile, r#"{"name":"two","rungs":[{"name":"360p","width":640,"height":360,"codec":"h264","video_kbps":800,"audio_kbps":64},{"name":"180p","width":320,"height":180,"codec":"h264","video_kbps":300,"audio_kbps":64}]}"#).unwrap();
    let t = transcode_ok(dir.path(), &src, &["--profile", profile.to_str().unwrap(), "--preset", "ultrafast"]);
    let master = t.read("master.m3u8");
    assert!(
        master.contains("#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID=\"CC1\""),
        "{master}"
    );
    assert_eq!(master.matches("CLOSED-CAPTIONS=\"cc\"").count(), 2, "{master}");
    for name in ["360p", "180p"] {
        // The same rung size as the source keeps its frames' captions; a scaled rung gets them too.
        let (uri, _, iv) = segments(&t.read(&format!("{name}/index.m3u8")))[0].clone();
        let plain = dir.path().join(format!("{name}.ts"));
        openssl_decrypt(&t.out.join(name).join(uri), &t.key_hex(), &iv, &plain);
        let text = cea608_text(&plain);
        assert!(text.contains("HELLO") && text.contains("00:00:00,167 --> 00:00:01,500"), "{name}: {text:?}");
    }
    let manifest = t.manifest();
    assert!(manifest["renditions"].as_array().unwrap().iter().all(|r| r["closed_captions"] == true), "{manifest}");
}
