//! Traces for AWS X-Ray. `tracing` spans become OpenTelemetry spans (tracing-opentelemetry), and
//! opentelemetry-aws turns them into X-Ray segment documents sent over UDP to the X-Ray daemon at
//! `AWS_XRAY_DAEMON_ADDRESS`: Lambda runs one when a function's tracing is `Active`; elsewhere
//! `127.0.0.1:2000`, where nobody listening loses only the trace, never the work.
//!
//! What becomes a span: our own spans at INFO and above (the invocation, the handler, each stage
//! of a transcode) and the AWS SDK's span around every operation (`DynamoDB.PutItem`, … marked
//! `rpc.system = aws-api`), which X-Ray shows as AWS subsegments. Log events stay in the logs.
//!
//! A trace is only continued, never started here: the sampler follows the caller's decision in
//! the trace header (`Sampled=1`), so unsampled requests cost no export. A Lambda instance
//! handles one invocation at a time, and [`follow_sampling`] tells the layer what the current one
//! is: in an unsampled invocation (most of them, under X-Ray's default rule) no span reaches
//! OpenTelemetry at all, so none is built only to be dropped. Spans are exported as they close (no
//! batch thread to lose spans when Lambda freezes the process).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_aws::trace::xray_propagator::{span_context_from_str, span_context_to_string};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient;
use opentelemetry_aws::xray_exporter::{SegmentTranslator, XrayExporter};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::DynFilterFn;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Span fields X-Ray indexes as annotations, to filter traces by (`annotation.tenant = "acme"`).
const INDEXED: [&str; 5] = ["function", "tenant", "content_id", "request_id", "aws_request_id"];

/// Whether the work under way is in a sampled trace. True until a Lambda runtime says otherwise
/// (the transcoder and tests trace everything the sampler lets through).
static SAMPLED: AtomicBool = AtomicBool::new(true);

/// Sets, for the invocation about to start, whether its spans are traced: only when its trace
/// header (`_X_AMZN_TRACE_ID`) says `Sampled=1`. Call it before the invocation's span is created.
/// Returns whether it is.
pub fn follow_sampling(header: Option<&str>) -> bool {
    let sampled = header.is_some_and(|h| h.split(';').any(|part| part.trim() == "Sampled=1"));
    SAMPLED.store(sampled, Ordering::Relaxed);
    sampled
}

/// Our spans at INFO and above, and the AWS SDK's operation spans.
fn traced(meta: &Metadata<'_>) -> bool {
    meta.is_span() && (*meta.level() <= Level::INFO || meta.fields().field("rpc.system").is_some())
}

/// The daemon's default address (the X-Ray SDKs' too).
const DEFAULT_DAEMON: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 2000));

/// Keeps the exporter alive for the process.
pub struct Traces(SdkTracerProvider);

impl Drop for Traces {
    fn drop(&mut self) {
        let _ = self.0.shutdown();
    }
}

/// Where segments go: `AWS_XRAY_DAEMON_ADDRESS` as Lambda sets it (`host:port`, or the
/// `tcp:… udp:…` form, whose UDP part is the one for segments), else the default.
pub fn daemon_address(env: Option<&str>) -> SocketAddr {
    let parsed = env.and_then(|value| {
        let udp = value.split_whitespace().find_map(|part| part.strip_prefix("udp:")).unwrap_or(value.trim());
        udp.parse().ok()
    });
    parsed.unwrap_or(DEFAULT_DAEMON)
}

/// The layer exporting spans of `service` to the daemon, and what keeps it alive; the reason
/// when no UDP socket can be opened (for the caller to log: traces are then off, nothing else).
pub fn layer<S>(service: &'static str) -> Result<(impl Layer<S>, Traces), String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    layer_to(service, daemon_address(std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok().as_deref()))
}

/// [`layer`] with the daemon at `daemon`.
pub fn layer_to<S>(service: &'static str, daemon: SocketAddr) -> Result<(impl Layer<S>, Traces), String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let client = XrayDaemonClient::new(daemon).map_err(|e| format!("no UDP socket for the X-Ray daemon at {daemon}: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
        .with_simple_exporter(
            XrayExporter::new(client).with_translator(SegmentTranslator::new().with_indexed_attrs(INDEXED.map(String::from))),
        )
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer(service);
    // Whether a callsite is traced is fixed; whether this span is depends on the invocation.
    let filter = DynFilterFn::new(|meta, _| traced(meta) && SAMPLED.load(Ordering::Relaxed)).with_callsite_filter(|meta| {
        if traced(meta) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    });
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(filter);
    Ok((layer, Traces(provider)))
}

/// Makes `span` (not yet entered) a child of the X-Ray trace `header` names
/// (`Root=1-…;Parent=…;Sampled=1`, from `_X_AMZN_TRACE_ID`, `X-Amzn-Trace-Id` or a job's
/// parameters). A header that does not parse leaves the span untraced.
pub fn continue_trace(span: &tracing::Span, header: &str) {
    if let Some(remote) = span_context_from_str(header) {
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}

/// The X-Ray trace header naming `span` as the parent, to hand the trace on (a Batch job's
/// parameters); `None` when the span is in no trace.
pub fn header_for(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    span_context_to_string(context.span().span_context())
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use serde_json::Value;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// A trace id of now: X-Ray (and the translator) drop traces whose id is older than 30 days.
    fn root() -> String {
        format!("1-{:08x}-0123456789abcdef01234567", crate::clock::now_seconds())
    }

    /// The tests share the process-wide sampling flag: one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Runs `work` under a subscriber exporting to a local socket, with the invocation's sampling
    /// flag as `header` says (sampled when none); returns the documents sent.
    fn exported_as(header: Option<&str>, work: impl FnOnce()) -> Vec<Value> {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        match header {
            Some(header) => {
                follow_sampling(Some(header));
            }
            None => SAMPLED.store(true, Ordering::Relaxed),
        }
        let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
        daemon.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let (layer, traces) = layer_to("test", daemon.local_addr().unwrap()).unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), work);
        drop(traces);
        let mut documents = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = daemon.recv(&mut buf) {
            let text = std::str::from_utf8(&buf[..n]).unwrap();
            let (header, body) = text.split_once('\n').unwrap();
            assert_eq!(serde_json::from_str::<Value>(header).unwrap(), serde_json::json!({"format": "json", "version": 1}));
            documents.push(serde_json::from_str(body).unwrap());
        }
        documents
    }

    fn exported(work: impl FnOnce()) -> Vec<Value> {
        exported_as(None, work)
    }

    #[test]
    fn spans_of_an_invocation_the_runtime_calls_unsampled_never_reach_opentelemetry() {
        let sampled = format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", root());
        let traced = |runtime_header: &str| {
            exported_as(Some(runtime_header), || {
                let span = tracing::info_span!("invocation");
                continue_trace(&span, &sampled);
                span.in_scope(|| tracing::info_span!("handler").in_scope(|| {}));
            })
        };
        assert_eq!(traced(&sampled).len(), 2, "the invocation and its handler");
        // The same work, the runtime having said the invocation is unsampled: the layer never sees it.
        assert!(traced(&sampled.replace("Sampled=1", "Sampled=0")).is_empty());
        assert!(traced("Root=1-00000000-000000000000000000000000").is_empty());
    }

    #[test]
    fn a_sampled_invocation_exports_its_spans_and_aws_calls_into_the_callers_trace() {
        let root = root();
        let mut handed_on = None;
        let documents = exported(|| {
            let invocation = tracing::info_span!("invocation", function = "dispatch");
            continue_trace(&invocation, &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"));
            let _entered = invocation.enter();
            let handler = tracing::info_span!("dispatch");
            let _inner = handler.enter();
            handed_on = header_for(&handler);
            tracing::debug_span!("DynamoDB.PutItem", "rpc.system" = "aws-api", "rpc.service" = "DynamoDB", "rpc.method" = "PutItem")
                .in_scope(|| {});
            tracing::debug_span!("serialization").in_scope(|| {}); // an SDK internal: not traced
        });
        let names: Vec<&str> = documents.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(documents.len(), 3, "{documents:?}");
        assert!(documents.iter().all(|d| d["trace_id"] == root.as_str()), "{documents:?}");
        let by_name = |name: &str| {
            documents.iter().find(|d| d["name"].as_str().is_some_and(|n| n.contains(name))).unwrap_or_else(|| panic!("{name} in {names:?}"))
        };
        let (invocation, handler, call) = (by_name("invocation"), by_name("dispatch"), by_name("DynamoDB"));
        assert_eq!((call["namespace"].as_str(), call["aws"]["operation"].as_str()), (Some("aws"), Some("PutItem")), "{call}");
        assert_eq!(invocation["annotations"]["function"], "dispatch", "{invocation}");
        assert_eq!(invocation["parent_id"], "53995c3f42cd8ad8", "a subsegment of Lambda's segment");
        assert_eq!(handler["parent_id"], invocation["id"]);
        assert_eq!(call["parent_id"], handler["id"]);
        assert_eq!(handed_on, Some(format!("Root={root};Parent={};Sampled=1", handler["id"].as_str().unwrap())));
    }

    #[test]
    fn an_unsampled_or_missing_trace_exports_nothing() {
        for header in [format!("Root={};Parent=53995c3f42cd8ad8;Sampled=0", root()), "not a header".to_string()] {
            let documents = exported(|| {
                let span = tracing::info_span!("invocation");
                continue_trace(&span, &header);
                span.in_scope(|| tracing::info_span!("handler").in_scope(|| {}));
            });
            assert!(documents.is_empty(), "{header}: {documents:?}");
        }
    }

    #[test]
    fn the_daemon_address_is_read_as_lambda_writes_it() {
        assert_eq!(daemon_address(Some("169.254.79.129:2000")).to_string(), "169.254.79.129:2000");
        assert_eq!(daemon_address(Some("tcp:10.0.0.1:2000 udp:10.0.0.2:2001")).to_string(), "10.0.0.2:2001");
        assert_eq!(daemon_address(Some("nonsense")).to_string(), "127.0.0.1:2000");
        assert_eq!(daemon_address(None).to_string(), "127.0.0.1:2000");
    }
}
