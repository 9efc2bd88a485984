//! The per-invocation cost of telemetry as deployed: key delivery with its AWS calls going over
//! the wire (moto on 127.0.0.1 standing in for DynamoDB and KMS), timed bare (its JSON logs only)
//! and wrapped as the runtime wraps every invocation (`runtime::observe`: the invocation span,
//! the domain-event tally, the RED and event EMF lines), sampled (every span exported to an X-Ray
//! daemon address) and unsampled. Interleaved, each going first in turn, so moto's drift (the
//! ledger grows with every request) lands on each alike; medians and their ratios to the bare
//! handler. `functions/benches/key_delivery.rs` times the same wrapper in process, against
//! in-memory adapters.
//!
//! Run through `bench/access.sh`; `RUNS=N` requests each (default 150).

use std::time::Instant;

use lambda_http::{Body, Response};
use vaultstream_functions::metrics::Outcome;
use vaultstream_functions::runtime::{observe, HttpFunction};
use vaultstream_tests::flow;
use vaultstream_tests::stack::{claims, http_event, Stack};

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(150);
    let stack = Stack::provision().await;
    let _published = flow::publish(&stack, "acme", "movie1").await;
    let functions = flow::functions(&stack).await;
    let jwt = stack.jwt(jsonwebtoken::Algorithm::RS256, &claims("acme", "viewer-1", "content:read", "s1"));
    let played = flow::play(&functions, &jwt, "movie1").await;
    let (path, token) = flow::split_url(&played.key_url);
    let request = || http_event("GET", &path, &[("token", &token)], &[("cookie", &played.session_cookie)], None, None);

    // As deployed: JSON log lines with the span list (into a sink here), spans to a daemon address.
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = daemon.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while daemon.recv(&mut buf).is_ok() {}
    });
    // The subscriber every function installs, its log lines going to a sink instead of stdout.
    vaultstream_functions::logging::install("key_delivery", tracing_subscriber::EnvFilter::new("info"), std::io::sink, address);

    let root = format!("1-{:08x}-0123456789abcdef01234567", vaultstream::clock::now_seconds());
    let context = |sampled: u8| {
        let mut context = lambda_http::Context::default();
        context.request_id = "bench".into();
        context.xray_trace_id = Some(format!("Root={root};Parent=53995c3f42cd8ad8;Sampled={sampled}"));
        context
    };
    let (sampled, unsampled) = (context(1), context(0));
    let status = |response: &Response<Body>| Outcome::Http(response.status().as_u16());

    // bare, sampled, unsampled: each request appends to the ledger, which moto slows as it grows,
    // so the three take turns going first.
    let mut samples: [Vec<f64>; 3] = Default::default();
    for i in 0..runs + 10 {
        for turn in 0..3 {
            let variant = (i + turn) % 3;
            let started = Instant::now();
            let response = match variant {
                0 => functions.keys.handle(request()).await,
                1 => observe("key_delivery", &sampled, false, functions.keys.handle(request()), status, &mut std::io::sink()).await,
                _ => observe("key_delivery", &unsampled, false, functions.keys.handle(request()), status, &mut std::io::sink()).await,
            };
            let ms = started.elapsed().as_secs_f64() * 1e3;
            assert_eq!(response.status(), 200);
            // The first ten rounds warm the connections and caches.
            if i >= 10 {
                samples[variant].push(ms);
            }
        }
    }
    let [bare, traced, untraced] = samples;
    let (bare, traced, untraced) = (median(bare), median(traced), median(untraced));
    println!("key delivery over the wire (moto), median of {runs}: bare {bare:.3} ms, sampled {traced:.3} ms, unsampled {untraced:.3} ms");
    println!("RESULT wire_sampled_ratio={:.3} wire_unsampled_ratio={:.3} goal_ratio=1.05", traced / bare, untraced / bare);
}
