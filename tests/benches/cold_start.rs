//! Cold start of every function against a hello-world `lambda_runtime` binary built with the
//! same profile, in one run:
//! - init: from spawning the process to its first poll of the runtime API, with configuration
//!   complete as deployed and no AWS reachable (`HTTPS_PROXY` is a closed port), so nothing at
//!   init may wait on the network;
//! - requests: from handing the process its events/ fixture to its answer, against moto, for the
//!   first and the second request of one process: what the first costs beyond the second is
//!   what init left for it to do.
//!
//! `BIN_DIR` (default target/release; bench/cold_start.sh sets its profile's) holds the binaries
//! and `examples/hello_lambda`; `RUNS` (default 15) samples each, the binaries taking turns so
//! that the machine's drift lands on all alike. Medians are printed, init's with the ratio to the
//! hello-world's.

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

/// Starts `binary` as Lambda would, against `api`.
fn spawn(binary: &Path, env: &[(String, String)], api: &RuntimeApi) -> Result<tokio::process::Child, String> {
    tokio::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(api.lambda_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))
}

/// One cold start's init, spawn to first poll, in ms; or why it did not get that far.
async fn init_ms(binary: &Path, env: &[(String, String)], event: &[u8]) -> Result<f64, String> {
    let api = RuntimeApi::start(event.to_vec(), TRACE.into()).await;
    let started = Instant::now();
    let mut child = spawn(binary, env, &api)?;
    api.wait_for_first_poll(Duration::from_secs(10)).await;
    let _ = child.kill().await;
    let timeline = api.timeline();
    match timeline.first_poll {
        Some(poll) => Ok((poll - started).as_secs_f64() * 1e3),
        None => Err(format!("{}: {:?}", binary.display(), timeline.posted)),
    }
}

/// One cold process's first and second requests (the same event twice), each from handing the
/// event over to the answer, in ms. What the first costs beyond the second is what being first
/// costs: clients, connections and caches built on first use, not at init.
async fn requests_ms(binary: &Path, env: &[(String, String)], event: &[u8]) -> Result<(f64, f64), String> {
    let api = RuntimeApi::serving(event.to_vec(), TRACE.into(), 2).await;
    let mut child = spawn(binary, env, &api)?;
    api.wait_for_answers(2, Duration::from_secs(30)).await;
    let _ = child.kill().await;
    let timeline = api.timeline();
    let latency = |n: usize| match (timeline.served.get(n), timeline.answer(n)) {
        (Some(served), Some(answer)) if answer.request.ends_with("/response") => Ok((answer.at - *served).as_secs_f64() * 1e3),
        _ => Err(format!("{}: request {} got {:?}", binary.display(), n + 1, timeline.posted)),
    };
    Ok((latency(0)?, latency(1)?))
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
    for (_, binary, _) in &subjects {
        assert!(binary.exists(), "{} is missing: run bench/cold_start.sh, which builds it", binary.display());
    }
    // A function whose init must call AWS (a KMS public key) cannot finish it offline.
    let mut offline_ok = Vec::new();
    for (_, binary, event) in &subjects {
        offline_ok.push(init_ms(binary, &offline, event).await.is_ok());
    }
    let mut samples: Vec<[Vec<f64>; 5]> = subjects.iter().map(|_| Default::default()).collect();
    for _ in 0..runs {
        for (n, (_, binary, event)) in subjects.iter().enumerate() {
            let [init, init_aws, first, second, extra] = &mut samples[n];
            // A binary's first start after another's runs slower (caches): one start, not timed,
            // so that each binary is timed as the same situation.
            let _ = init_ms(binary, &with_moto, event).await;
            if offline_ok[n] {
                init.push(init_ms(binary, &offline, event).await.unwrap_or_else(|e| panic!("no init: {e}")));
            }
            init_aws.push(init_ms(binary, &with_moto, event).await.unwrap_or_else(|e| panic!("no init: {e}")));
            let (one, two) = requests_ms(binary, &with_moto, event).await.unwrap_or_else(|e| panic!("no answer: {e}"));
            first.push(one);
            second.push(two);
            extra.push(one - two);
        }
    }
    println!(
        "{:<14} {:>15} {:>8} {:>17} {:>15} {:>15} {:>11}",
        "function", "init offline ms", "vs hello", "init with AWS ms", "1st request ms", "2nd request ms", "1st-2nd ms"
    );
    let mut hello_init = f64::NAN;
    for (((name, _, _), [init, init_aws, first, second, extra]), ok) in subjects.iter().zip(samples).zip(offline_ok) {
        let init = ok.then(|| median(init));
        if name == "hello_lambda" {
            hello_init = init.unwrap_or(f64::NAN);
        }
        let (init_text, ratio) = match init {
            Some(ms) => (format!("{ms:.2}"), format!("{:.2}x", ms / hello_init)),
            None => ("-".into(), "-".into()),
        };
        let over = if init.is_some_and(|ms| ms > 2.0 * hello_init) { "  init over 2x" } else { "" };
        let (init_aws, first, second, extra) = (median(init_aws), median(first), median(second), median(extra));
        println!("{name:<14} {init_text:>15} {ratio:>8} {init_aws:>17.2} {first:>15.2} {second:>15.2} {extra:>11.2}{over}");
    }
    println!(
        "(medians of {runs} cold starts each; offline: inline secret, AWS unreachable; with AWS: moto, the secret from Secrets Manager; \
         '-': init calls AWS; requests: the events/ fixture twice in one process, against moto; 1st-2nd: the median of each process's difference)"
    );
}
