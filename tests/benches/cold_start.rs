//! Cold start of every function against a hello-world `lambda_runtime` binary built with the
//! same profile, in one run:
//! - init: from spawning the process to its first poll of the runtime API, with configuration
//!   complete as deployed and no AWS reachable (`HTTPS_PROXY` is a closed port), so nothing at
//!   init may wait on the network;
//! - first request: from handing the process its events/ fixture to its answer, against moto.
//!
//! `BIN_DIR` (default target/release) holds the binaries and `examples/hello_lambda`; `RUNS`
//! (default 15) samples each. Medians are printed with the ratio to the hello-world's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use vaultstream_tests::runtime_api::RuntimeApi;
use vaultstream_tests::stack::Stack;

const TRACE: &str = "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0";

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// What to time of one cold start.
#[derive(Clone, Copy, PartialEq)]
enum Measure {
    /// Spawn to the first poll, in ms.
    Init,
    /// The event handed over to the answer, in ms.
    FirstRequest,
}

/// One cold start, or why it did not get that far.
async fn cold_start(binary: &Path, env: &[(String, String)], event: &[u8], measure: Measure) -> Result<f64, String> {
    let api = RuntimeApi::start(event.to_vec(), TRACE.into()).await;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(api.lambda_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    match measure {
        Measure::Init => api.wait_for_first_poll(Duration::from_secs(10)).await,
        Measure::FirstRequest => api.wait_for_answer(Duration::from_secs(30)).await,
    }
    let _ = child.kill().await;
    let timeline = api.timeline();
    match (measure, timeline.first_poll, timeline.served, timeline.answered, &timeline.answer) {
        (Measure::Init, Some(poll), ..) => Ok((poll - started).as_secs_f64() * 1e3),
        (Measure::FirstRequest, _, Some(served), Some(answered), Some((path, _))) if path.ends_with("/response") => {
            Ok((answered - served).as_secs_f64() * 1e3)
        }
        _ => Err(format!("{}: {:?}", binary.display(), timeline.answer)),
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin_dir = std::env::var("BIN_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target/release"));
    let stack = Stack::provision().await;
    // Configured as deployed: CloudFront policies signed with the KMS key (the Lambda build has
    // no PEM signer), the service secret read from Secrets Manager.
    let mut with_moto: Vec<(String, String)> = stack
        .env()
        .vars()
        .filter(|(k, _)| *k != "VAULTSTREAM_CLOUDFRONT_PRIVATE_KEY_FILE")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    with_moto.push(("VAULTSTREAM_CLOUDFRONT_KMS_KEY_ID".into(), stack.outputs.cloudfront_signing_key_id.clone()));
    with_moto.extend(
        [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "us-east-1")]
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    // Lambda's image keeps its root certificates in one bundle file; Debian's folder of 150 files
    // (read one by one when nothing names the bundle) would make this machine's init look slower.
    const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(BUNDLE).exists() {
        with_moto.push(("SSL_CERT_FILE".into(), BUNDLE.into()));
    }
    // Offline, the service secret is given inline (as the local stack gives it) rather than read
    // from Secrets Manager. The clients are configured as deployed (AWS's own endpoints, so TLS
    // trusts Amazon's roots alone), and AWS is out of reach through a proxy on a closed port.
    let mut offline: Vec<(String, String)> = with_moto.iter().filter(|(k, _)| k != "VAULTSTREAM_SERVICE_SECRET_ARN").cloned().collect();
    offline.push(("VAULTSTREAM_SERVICE_SECRET".into(), "11".repeat(32)));
    offline.push(("HTTPS_PROXY".into(), "http://127.0.0.1:9".into()));
    with_moto.push(("AWS_ENDPOINT_URL".into(), vaultstream_tests::moto::endpoint().to_string()));

    let contract = vaultstream_tests::observability::contract();
    let mut subjects = vec![("hello_lambda".to_string(), bin_dir.join("examples/hello_lambda"), b"{}".to_vec())];
    for function in contract["functions"].as_object().unwrap().keys() {
        let event = std::fs::read(root.join(format!("events/{function}.json"))).unwrap();
        subjects.push((function.clone(), bin_dir.join(function), event));
    }
    let mut figures = Vec::new();
    for (name, binary, event) in &subjects {
        assert!(binary.exists(), "{} is missing: run bench/cold_start.sh, which builds it", binary.display());
        // A function whose init must call AWS (a KMS public key) cannot finish it offline.
        let offline_ok = cold_start(binary, &offline, event, Measure::Init).await.is_ok();
        let (mut init, mut init_aws, mut first) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            if offline_ok {
                init.push(cold_start(binary, &offline, event, Measure::Init).await.unwrap_or_else(|e| panic!("no init: {e}")));
            }
            init_aws.push(cold_start(binary, &with_moto, event, Measure::Init).await.unwrap_or_else(|e| panic!("no init: {e}")));
            first.push(cold_start(binary, &with_moto, event, Measure::FirstRequest).await.unwrap_or_else(|e| panic!("no answer: {e}")));
        }
        figures.push((name.clone(), offline_ok.then(|| median(init)), median(init_aws), median(first)));
    }
    let (hello_init, hello_first) = (figures[0].1.unwrap_or(f64::NAN), figures[0].3);
    println!(
        "{:<14} {:>15} {:>8} {:>17} {:>15} {:>8}",
        "function", "init offline ms", "vs hello", "init with AWS ms", "1st request ms", "vs hello"
    );
    for (name, init, init_aws, first) in &figures {
        let (init_text, ratio) = match init {
            Some(ms) => (format!("{ms:.2}"), format!("{:.2}x", ms / hello_init)),
            None => ("-".into(), "-".into()),
        };
        let over = if init.is_some_and(|ms| ms > 2.0 * hello_init) { "  init over 2x" } else { "" };
        println!("{name:<14} {init_text:>15} {ratio:>8} {init_aws:>17.2} {first:>15.2} {:>7.2}x{over}", first / hello_first);
    }
    println!("(medians of {runs} cold starts each; offline: inline secret, AWS unreachable; with AWS: moto, the secret from Secrets Manager; '-': init calls AWS)");
}
