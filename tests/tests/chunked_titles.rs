//! A long title through the local stack as AWS Batch runs it: `run` splits it into an array job
//! of chunks and a stitch that depends on it; one chunk's process is killed mid-way (a Spot
//! reclaim, as the job runner reports it) and Batch's retry strategy runs that chunk alone
//! again; the stitch publishes one version, which hls.js and Shaka play across a seam. Only
//! processes, HTTP and the stack's own files.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vaultstream_tests::local::{browser_script, output_dir, statuses, Running};

/// The chunk worker of array index `index`, once one runs: its pid.
fn chunk_worker(index: u32) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let wanted = format!("AWS_BATCH_JOB_ARRAY_INDEX={index}");
        if String::from_utf8_lossy(&cmdline)
            .starts_with(&format!("{}\0chunk\0", vaultstream_tests::workspace_binary("vaultstream-transcode").display()))
            && environ.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes())
        {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_long_title_is_split_on_batch_a_killed_chunk_is_retried_alone_and_it_plays_across_seams() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // 130 s in the contract's 60 s chunks: three chunks (the last 10 s).
    let demo = Running::start("demo", &state, &["--seconds", "130", "--size", "426x240", "--tenant", "demo"]);
    let deadline = Instant::now() + Duration::from_secs(600);
    let killed = loop {
        if let Some(pid) = chunk_worker(1) {
            std::thread::sleep(Duration::from_millis(300));
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            break pid;
        }
        assert!(Instant::now() < deadline, "chunk 1 never ran");
        std::thread::sleep(Duration::from_millis(20));
    };
    let verified = demo.wait_for_event("verified", Duration::from_secs(600));
    let title = verified["content_id"].as_str().unwrap().to_string();

    // The jobs as the runner ran them: the planner, three children (chunk 1 twice), the stitch.
    let logs: Vec<String> = std::fs::read_dir(state.join("logs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "emulator.log")
        .collect();
    let read = |name: &str| std::fs::read_to_string(state.join("logs").join(name)).unwrap();
    let last_line = |name: &str| -> Value { serde_json::from_str(read(name).lines().last().unwrap_or("{}")).unwrap_or(json!({})) };
    let planner = logs.iter().find(|n| last_line(n)["status"] == "chunked").unwrap_or_else(|| panic!("no planner: {logs:?}"));
    let plan = last_line(planner);
    assert_eq!(plan["chunks"], 3, "{plan}");
    let array = plan["array_job"].as_str().unwrap();
    for index in 0..3 {
        let done = last_line(&format!("{array}:{index}.log"));
        let retried = logs.contains(&format!("{array}:{index}.attempt2.log"));
        assert_eq!(retried, index == 1, "chunk {index} (killed {killed}): {logs:?}");
        if index == 1 {
            let second = last_line(&format!("{array}:1.attempt2.log"));
            assert_eq!(second["status"], "chunk_done", "{second}");
        } else {
            assert_eq!(done["status"], "chunk_done", "chunk {index}: {done}");
        }
    }
    let stitched = last_line(&format!("{}.log", plan["stitch_job"].as_str().unwrap()));
    assert_eq!((stitched["status"].as_str(), stitched["content_id"].as_str()), (Some("READY"), Some(title.as_str())), "{stitched}");
    assert!(stitched["figures"]["cpu_seconds"].as_f64().unwrap() > 0.0, "the chunks' CPU is the title's: {stitched}");

    // hls.js and Shaka play from before the first seam (60 s) to past it.
    let viewer_url = demo.url("viewer_url");
    for player in ["hlsjs", "shaka"] {
        let scenario = json!({"player": player, "viewer_url": viewer_url, "tenant": "demo", "content_id": title,
            "start_at": 58.5, "seconds": 61.5, "timeout_ms": 60_000, "screenshot": output_dir().join(format!("chunked-{player}-seam.png"))});
        let result = browser_script("players.mjs", &scenario);
        assert!(result.get("exception").is_none(), "{player}: {result}");
        assert!(result["errors"].as_array().unwrap().iter().all(|e| e["fatal"] != true), "{player}: {result}");
        assert_eq!(result["sought_to"], 58.5, "{player}: {result}");
        assert!(result["current_time"].as_f64().unwrap() >= 61.5, "{player} did not play across the seam: {result}");
        assert!(result["decoded_frames"].as_u64().unwrap() > result["decoded_at_seek"].as_u64().unwrap() + 60, "{player}: {result}");
        assert!(statuses(&result, ".ts").iter().all(|s| *s == 200), "{player}: {result}");
    }
    demo.interrupt();
}
