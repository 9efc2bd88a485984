//! JSON logs and X-Ray traces through `tracing`. Every invocation runs in a span naming the
//! function, the Lambda request id, the X-Ray trace id and the cold-start flag (listed under
//! `spans` on every line, and the trace's subsegment under Lambda's segment); handlers open one
//! inside it carrying request id, tenant and content id (`span`), and the core fills in the
//! tenant once a credential or token verified. Nothing logs keys, tokens, cookies or signatures.

use std::net::SocketAddr;
use std::sync::OnceLock;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};
use vaultstream::traces::{self, Traces};

/// The trace exporter, kept for the life of the process.
static TRACES: OnceLock<Traces> = OnceLock::new();

/// Logs at `RUST_LOG` (default `info`) as JSON on stdout, and spans to the X-Ray daemon
/// (`AWS_XRAY_DAEMON_ADDRESS`, which Lambda sets) as `function`'s.
pub fn init(function: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let daemon = traces::daemon_address(std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok().as_deref());
    install(function, filter, std::io::stdout, daemon);
}

/// Installs for the process the subscriber every function runs under: JSON log lines at `filter`
/// into `writer`, spans to the X-Ray daemon at `daemon` as `function`'s. The benches install the
/// same one with a sink for a writer.
pub fn install<W>(function: &'static str, filter: EnvFilter, writer: W, daemon: SocketAddr)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .with_writer(writer)
        .with_filter(filter);
    let (spans, problem) = match traces::layer_to(function, daemon) {
        Ok((layer, traces)) => {
            let _ = TRACES.set(traces);
            (Some(layer), None)
        }
        Err(problem) => (None, Some(problem)),
    };
    let _ = tracing_subscriber::registry().with(logs).with(spans).try_init();
    if let Some(problem) = problem {
        tracing::warn!(%problem, "traces are off");
    }
}
