//! Upload to READY for a generated clip (20 s of 1080p30 unless `CLIP_SECONDS` says otherwise), over the
//! wire to moto, split into its phases: the presigned PUT, the S3 notification reaching the ingest
//! queue, dispatch, the job (download, transcode, upload of the new version, the record's flip) and
//! job_events. Beside it, in the same run, the reference: `vaultstream-transcode local` on the same
//! clip, the transcode alone. Orchestration overhead is everything but the transcode, as a ratio
//! of the transcode (goal ≤ 0.10).
//!
//! What this cannot show: AWS Batch's own scheduling (placing the job on an instance, pulling the
//! image), which depends on warm capacity, not on this code.

use std::time::Instant;

use serde_json::json;
use vaultstream_tests::ingest::*;
use vaultstream_tests::stack::Stack;
use vaultstream_tests::workspace_binary;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let seconds: u32 = std::env::var("CLIP_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bytes = clip(dir.path(), seconds, "1920x1080");
    let source = dir.path().join("reference.mp4");
    std::fs::write(&source, &bytes).unwrap();

    let mut rows: Vec<[f64; 9]> = Vec::new();
    for round in 0..rounds {
        // The reference: the transcode alone, on the same clip, same preset.
        let out = dir.path().join(format!("local-{round}"));
        let started = Instant::now();
        let local = std::process::Command::new(workspace_binary("vaultstream-transcode"))
            .arg("local")
            .arg(&source)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(local.status.success(), "{}", String::from_utf8_lossy(&local.stderr));
        let reference = started.elapsed().as_secs_f64();

        let row = rt.block_on(async {
            let stack = Stack::provision().await;
            let f = ingest_functions(&stack).await;
            let creator = principal("acme", "content:write");
            let declaration =
                json!({"title": "Bench", "filename": "bench.mp4", "content_type": "video/mp4", "size_bytes": bytes.len()}).to_string();
            let started = Instant::now();
            let grant = json_body(&start_upload(&f, &creator, &declaration, None).await);
            put_upload(&f, &creator, &grant, &bytes).await;
            let uploaded = started.elapsed().as_secs_f64();
            let content_id = grant["content_id"].as_str().unwrap().to_string();

            // Until the notification can be received from the ingest queue.
            let mut event;
            loop {
                event = receive(&stack, &stack.outputs.ingest_queue_url).await;
                if event.records.iter().any(|r| r.body.as_deref().is_some_and(|b| b.contains("ObjectCreated"))) {
                    break;
                }
            }
            let queued = started.elapsed().as_secs_f64();
            let response = f.dispatch.handle(event.clone()).await;
            settle(&stack, &stack.outputs.ingest_queue_url, &event, &response).await;
            let dispatched = started.elapsed().as_secs_f64();

            let job = recorded_job(&stack, "acme", &content_id).await.expect("a job");
            let run = job.run(dir.path());
            assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
            let ran = started.elapsed().as_secs_f64();
            let summary: serde_json::Value =
                String::from_utf8_lossy(&run.stdout).lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap();
            f.job_events.handle(job.state_change(Some(0), "Essential container in task exited").unwrap()).await.unwrap();
            let ready = started.elapsed().as_secs_f64();
            assert_eq!(content_record(&stack, "acme", &content_id).await.status, vaultstream::catalog::ContentStatus::Ready);

            let t = &summary["timings"];
            let (download, transcode, upload, flip) = (
                t["download_seconds"].as_f64().unwrap(),
                t["transcode_seconds"].as_f64().unwrap(),
                t["upload_seconds"].as_f64().unwrap(),
                t["publish_seconds"].as_f64().unwrap(),
            );
            let job_total = ran - dispatched;
            let job_rest = job_total - download - transcode - upload - flip;
            [
                uploaded,
                queued - uploaded,
                dispatched - queued,
                download,
                transcode,
                upload + flip,
                job_rest + (ready - ran),
                ready,
                reference,
            ]
        });
        rows.push(row);
    }
    let col = |i: usize| median(rows.iter().map(|r| r[i]).collect());
    let names = [
        "upload (PUT)",
        "queue (S3 → SQS)",
        "dispatch",
        "download source",
        "transcode",
        "publish (upload version + flip)",
        "job start/exit + job_events",
    ];
    println!("upload to READY, {seconds} s of 1080p30, median of {rounds} round(s), seconds:");
    for (i, name) in names.iter().enumerate() {
        println!("  {name:<34} {:>8.3}", col(i));
    }
    let (total, reference, transcode) = (col(7), col(8), col(4));
    let overhead = total - col(0) - transcode;
    println!("  {:<34} {:>8.3}", "total (upload to READY)", total);
    println!("  {:<34} {:>8.3}", "reference: transcode local", reference);
    println!(
        "RESULT upload_to_ready_s={total:.3} transcode_s={transcode:.3} orchestration_s={overhead:.3} overhead_ratio={:.3} goal=0.10 end_to_end_vs_local={:.3}",
        overhead / transcode,
        (total - col(0)) / reference
    );
}
