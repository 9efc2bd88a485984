//! `vaultstream demo`: the main job end to end, through the product's own doors. It starts the
//! local stack, mints a creator and a viewer token, generates a clip with FFmpeg's test sources,
//! uploads it through the presigned URL the API hands out, waits for the pipeline to publish it,
//! starts playback as the viewer, fetches every rendition's playlist, key and first segment (the
//! segment from the CDN edge with the signed cookies) and decrypts it, then keeps serving so the
//! title can be watched in a browser. Progress is a bar on a terminal and JSON lines otherwise.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use vaultstream::segment_cipher::{decrypt_segment, Iv};
use vaultstream::ContentKey;
use vaultstream_cli::dev::client::loopback_client;
use vaultstream_cli::dev::state::DEFAULT_STATE_DIR;
use vaultstream_cli::dev::tokens::{mint, TokenRequest};
use vaultstream_cli::dev::{LocalStack, Options};

use crate::serve::{interrupted, logging, runtime, write_ready_file};
use crate::Failure;

#[derive(Args)]
pub struct DemoArgs {
    /// The local stack's state folder (shared with `vaultstream dev`).
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// The API's port; the edge takes the next one and the emulator the one after (0: any free).
    #[arg(long, default_value_t = 8700)]
    port: u16,
    /// Length of the generated clip in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..=600))]
    seconds: u32,
    /// Size of the generated clip, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080")]
    size: String,
    /// The tenant the demo's creator and viewer belong to.
    #[arg(long, default_value = "demo")]
    tenant: String,
    /// End after the proof instead of serving until Ctrl-C (for scripts).
    #[arg(long)]
    exit: bool,
    /// Also write {"api_url","cdn_url","emulator_url","viewer_url"} here once the stack is up.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

/// Progress for people (a bar on stderr) or for programs (JSON lines on stdout).
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl Reporter {
    fn new() -> Self {
        Reporter { bar: None, started: Instant::now() }
    }

    fn terminal() -> bool {
        std::io::stdout().is_terminal()
    }

    fn step(&self, event: &str, message: &str, fields: Value) {
        if Self::terminal() {
            eprintln!("[{:>5.1}s] {message}", self.started.elapsed().as_secs_f64());
        } else {
            let mut line = json!({"event": event, "message": message, "elapsed_seconds": round(self.started.elapsed().as_secs_f64())});
            if let (Some(line), Value::Object(extra)) = (line.as_object_mut(), fields) {
                line.extend(extra);
            }
            println!("{line}");
        }
    }

    fn progress(&mut self, status: &str, fraction: f64) {
        if Self::terminal() {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(1000);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg:<12} [{bar:40}] {percent:>3}% {elapsed}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            bar.set_message(status.to_string());
            bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
        } else {
            println!("{}", json!({"event": "progress", "status": status, "progress": round(fraction)}));
        }
    }

    fn finish_progress(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn run(args: DemoArgs) -> Result<(), Failure> {
    if !Reporter::terminal() {
        // Programs read JSON lines on stdout; the stack's own log goes to stderr only when asked.
        if std::env::var_os("RUST_LOG").is_some() {
            logging();
        }
    } else {
        logging_quiet();
    }
    tool("ffmpeg")?;
    runtime()?.block_on(async {
        let mut reporter = Reporter::new();
        reporter.step("starting", "starting the local stack (moto, API, CDN edge, job runner)", json!({}));
        let options = Options { state_dir: args.state_dir.clone(), port: args.port, workers: 1, import_allow_loopback: false };
        let stack = LocalStack::start(&options).await?;
        let stack_seconds = reporter.started.elapsed().as_secs_f64();
        reporter.step(
            "stack_up",
            &format!("stack up: API {}, viewer {}", stack.info.api_url, stack.info.viewer_url),
            json!({"api_url": stack.info.api_url, "viewer_url": stack.info.viewer_url, "emulator_seconds": round(stack.times.emulator_seconds), "provision_seconds": round(stack.times.provision_seconds)}),
        );
        if let Some(path) = &args.ready_file {
            write_ready_file(path, &stack)?;
        }
        let outcome = prove(&stack, &args, &mut reporter).await;
        reporter.finish_progress();
        let figures = match outcome {
            Ok(figures) => figures,
            Err(e) => {
                stack.stop().await;
                return Err(Failure::Other(e));
            }
        };
        let figures = json!({
            "emulator_seconds": round(stack.times.emulator_seconds), "provision_seconds": round(stack.times.provision_seconds),
            "stack_seconds": round(stack_seconds), "clip_seconds": round(figures.clip), "upload_seconds": round(figures.upload),
            "transcode_seconds": round(figures.transcode), "first_playback_seconds": round(figures.playback),
            "total_seconds": round(reporter.started.elapsed().as_secs_f64()),
        });
        let viewer = stack.info.viewer_url.clone();
        if Reporter::terminal() {
            println!("Published and verified: every rendition's first segment was fetched through the CDN edge and decrypted.");
            let f = |k: &str| figures[k].as_f64().unwrap_or_default();
            println!(
                "Times: emulator {:.1} s, provisioning {:.1} s, clip {:.1} s, upload {:.1} s, transcode {:.1} s, first playback {:.1} s; total {:.1} s",
                f("emulator_seconds"), f("provision_seconds"), f("clip_seconds"), f("upload_seconds"), f("transcode_seconds"), f("first_playback_seconds"), f("total_seconds")
            );
            println!("Watch it:  {viewer}  (sign in as tenant \"{}\", role viewer)", args.tenant);
        } else {
            println!("{}", json!({"event": "done", "viewer_url": viewer, "figures": figures}));
        }
        if !args.exit {
            if Reporter::terminal() {
                println!("Serving until Ctrl-C.");
            }
            interrupted().await;
        }
        stack.stop().await;
        Ok(())
    })
}

fn logging_quiet() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).compact().try_init();
}

fn tool(name: &str) -> Result<(), Failure> {
    match std::process::Command::new(name).arg("-version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(Failure::Usage(format!(
            "`{name}` was not found on PATH; install FFmpeg (Debian: apt-get install ffmpeg) or run scripts/demo.sh, which does"
        ))),
    }
}

struct Figures {
    clip: f64,
    upload: f64,
    transcode: f64,
    playback: f64,
}

/// A clip from FFmpeg's test sources, kept in the state folder for the next run.
fn clip(dir: &Path, seconds: u32, size: &str) -> Result<PathBuf> {
    let (w, h) = size.split_once('x').ok_or_else(|| anyhow!("--size {size:?} is not WIDTHxHEIGHT"))?;
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    let path = dir.join(format!("clip-{w}x{h}-{seconds}s.mp4"));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    let partial = path.with_extension("partial.mp4");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc2=s={w}x{h}:r=30:d={seconds}")])
        .args(["-f", "lavfi", "-i", &format!("sine=f=440:r=48000:d={seconds}")])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-c:a", "aac", "-shortest", "-movflags", "+faststart"])
        .arg(&partial)
        .output()
        .context("running ffmpeg")?;
    if !out.status.success() {
        bail!("ffmpeg could not generate the clip: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

async fn check(response: reqwest::Response, what: &str) -> Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    bail!("{what}: HTTP {status}: {body}")
}

async fn prove(stack: &LocalStack, args: &DemoArgs, reporter: &mut Reporter) -> Result<Figures> {
    let http = loopback_client()?;
    let api = &stack.info.api_url;
    let token =
        |sub: &str, scope: &str| mint(&stack.identity, &TokenRequest { tenant: &args.tenant, sub, scope, ttl_seconds: 3600, sid: None });
    let (creator, viewer) = (token("demo-creator", "content:read content:write")?, token("demo-viewer", "content:read")?);

    let started = Instant::now();
    reporter.step("clip", &format!("generating a {} s {} clip with FFmpeg's test sources", args.seconds, args.size), json!({}));
    let clip = clip(&stack.state.path("demo"), args.seconds, &args.size)?;
    let bytes = std::fs::read(&clip)?;
    let clip_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    reporter.step("upload", &format!("uploading {} MB through a presigned URL", bytes.len() / 1_000_000), json!({"bytes": bytes.len()}));
    let declaration = json!({"title": format!("Demo clip ({} s, {})", args.seconds, args.size), "filename": "demo.mp4", "content_type": "video/mp4", "size_bytes": bytes.len()});
    let grant: Value =
        check(http.post(format!("{api}/v1/content/upload")).bearer_auth(&creator).json(&declaration).send().await?, "upload")
            .await?
            .json()
            .await?;
    let content_id = grant["content_id"].as_str().ok_or_else(|| anyhow!("the upload answer has no content_id: {grant}"))?.to_string();
    put_upload(&http, api, &creator, &grant, &bytes).await?;
    let upload_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    reporter.step("waiting", &format!("transcoding content {content_id}"), json!({"content_id": content_id}));
    let deadline = Instant::now() + Duration::from_secs(30 * 60);
    let record = loop {
        let record: Value = check(http.get(format!("{api}/v1/content/{content_id}")).bearer_auth(&creator).send().await?, "content status")
            .await?
            .json()
            .await?;
        let status = record["status"].as_str().unwrap_or_default().to_string();
        let fraction = match status.as_str() {
            "READY" | "PARTIAL" => 1.0,
            // The record keeps a percent.
            _ => record["progress"].as_f64().unwrap_or(0.0) / 100.0,
        };
        reporter.progress(&status, fraction);
        match status.as_str() {
            "READY" | "PARTIAL" => break record,
            "FAILED" | "FAILED_INVALID" => bail!("the title failed: {}", record["failure"]),
            _ if Instant::now() > deadline => {
                bail!("the title was not published within 30 minutes (last status {status}); see {}", stack.state.path("logs").display())
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    reporter.finish_progress();
    let transcode_seconds = started.elapsed().as_secs_f64();
    reporter.step(
        "ready",
        &format!(
            "{} with {} renditions",
            record["status"].as_str().unwrap_or_default(),
            record["renditions"].as_array().map_or(0, Vec::len)
        ),
        json!({"renditions": record["renditions"]}),
    );

    let started = Instant::now();
    let playback: Value =
        check(http.post(format!("{api}/v1/content/{content_id}/playback")).bearer_auth(&viewer).send().await?, "playback")
            .await?
            .json()
            .await?;
    let cookies = playback["cookies"]
        .as_object()
        .ok_or_else(|| anyhow!("playback returned no cookies"))?
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");
    let manifest_url = playback["manifest_url"].as_str().ok_or_else(|| anyhow!("playback returned no manifest_url"))?;
    let master = check(http.get(manifest_url).send().await?, "master playlist").await?.text().await?;
    let variants: Vec<&str> = master.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
    if variants.is_empty() {
        bail!("the master playlist lists no renditions:\n{master}");
    }
    let mut verified = Vec::new();
    for variant in variants {
        let media = check(http.get(variant).send().await?, "media playlist").await?.text().await?;
        let key_line = media.lines().find(|l| l.starts_with("#EXT-X-KEY")).ok_or_else(|| anyhow!("{variant} is not encrypted"))?;
        let key_url = attribute(key_line, "URI").ok_or_else(|| anyhow!("no key URI in {key_line}"))?;
        let iv = attribute(key_line, "IV").ok_or_else(|| anyhow!("no IV in {key_line}"))?;
        let segment =
            media.lines().find(|l| !l.starts_with('#') && !l.trim().is_empty()).ok_or_else(|| anyhow!("{variant} has no segments"))?;
        // A key URL opens nothing alone: the viewer's session comes with it.
        let key = check(http.get(&key_url).bearer_auth(&viewer).send().await?, "key").await?.bytes().await?;
        let key: [u8; 16] = key.as_ref().try_into().map_err(|_| anyhow!("the key is {} bytes, not 16", key.len()))?;
        let ciphertext =
            check(http.get(segment).header("cookie", &cookies).send().await?, "first segment from the CDN edge").await?.bytes().await?;
        let iv: [u8; 16] = hex_iv(&iv)?;
        let plaintext =
            decrypt_segment(&ContentKey::from_bytes(key), &Iv(iv), &ciphertext).map_err(|e| anyhow!("decrypting {segment}: {e}"))?;
        if plaintext.len() < 376 || plaintext[0] != 0x47 || plaintext[188] != 0x47 {
            bail!("{segment} did not decrypt to MPEG-TS");
        }
        verified.push(json!({"playlist": variant.split('?').next(), "segment_bytes": ciphertext.len()}));
    }
    let playback_seconds = started.elapsed().as_secs_f64();
    reporter.step(
        "verified",
        &format!("{} renditions: key fetched, first segment fetched with the signed cookies and decrypted", verified.len()),
        json!({"renditions": verified, "content_id": content_id}),
    );
    Ok(Figures { clip: clip_seconds, upload: upload_seconds, transcode: transcode_seconds, playback: playback_seconds })
}

/// Sends the file where the upload answer says: one PUT, or the parts and the completion.
async fn put_upload(http: &reqwest::Client, api: &str, token: &str, grant: &Value, bytes: &[u8]) -> Result<()> {
    let upload = &grant["upload"];
    match upload["method"].as_str() {
        Some("PUT") => {
            let mut request = http.put(upload["url"].as_str().unwrap_or_default()).body(bytes.to_vec());
            for (name, value) in upload["headers"].as_object().into_iter().flatten() {
                if name != "content-length" {
                    request = request.header(name, value.as_str().unwrap_or_default());
                }
            }
            check(request.send().await?, "PUT to the presigned URL").await?;
        }
        Some("MULTIPART") => {
            let part_size = upload["part_size"].as_u64().ok_or_else(|| anyhow!("no part_size"))? as usize;
            let mut parts = Vec::new();
            for (chunk, part) in bytes.chunks(part_size).zip(upload["parts"].as_array().into_iter().flatten()) {
                let response =
                    check(http.put(part["url"].as_str().unwrap_or_default()).body(chunk.to_vec()).send().await?, "PUT of a part").await?;
                let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                parts.push(json!({"part_number": part["part_number"], "etag": etag}));
            }
            let content_id = grant["content_id"].as_str().unwrap_or_default();
            let body = json!({"upload_id": upload["upload_id"], "parts": parts});
            check(
                http.post(format!("{api}/v1/content/{content_id}/upload/complete")).bearer_auth(token).json(&body).send().await?,
                "completing the upload",
            )
            .await?;
        }
        other => bail!("unknown upload method {other:?}"),
    }
    Ok(())
}

/// An attribute of an HLS tag, unquoted.
fn attribute(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next().map(str::to_string)
    } else {
        rest.split(',').next().map(str::to_string)
    }
}

fn hex_iv(text: &str) -> Result<[u8; 16]> {
    let digits = text.trim_start_matches("0x").trim_start_matches("0X");
    let bytes = hex::decode(digits).map_err(|_| anyhow!("IV {text} is not hex"))?;
    bytes.try_into().map_err(|_| anyhow!("IV {text} is not 16 bytes"))
}
