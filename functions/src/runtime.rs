//! What every HTTP function's `main` does: JSON logs, configuration read once, AWS clients, then
//! the Lambda runtime with the handler shared across invocations, behind the origin check, and a
//! RED metrics line (EMF) for every invocation, followed by the domain events it counted.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use lambda_http::{service_fn, Body, Error, Request, RequestExt, Response};
use tracing::Instrument;
use vaultstream::metrics::tally;

use crate::env::{ConfigError, Env};
use crate::metrics::{Invocation, Outcome};
use crate::origin_verify::OriginVerify;
use crate::wiring::Aws;

#[async_trait]
pub trait HttpFunction: Sized + Send + Sync + 'static {
    /// The function's name in infra/contract.json: the `Function` dimension of its metrics.
    const NAME: &'static str;
    async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError>;
    async fn handle(&self, request: Request) -> Response<Body>;
}

pub async fn serve<F: HttpFunction>() -> Result<(), Error> {
    crate::logging::init(F::NAME);
    let env = Env::from_process();
    let aws = crate::wiring::aws(&env).await;
    // Both may read a secret at cold start: at once, not one after the other.
    let (origin, function) = tokio::try_join!(OriginVerify::from_env(&env, &aws), F::from_env(&env, &aws))?;
    let (origin, function) = (Arc::new(origin), Arc::new(function));
    let cold = Arc::new(AtomicBool::new(true));
    lambda_http::run(service_fn(move |request: Request| {
        let (function, origin, cold) = (Arc::clone(&function), Arc::clone(&origin), Arc::clone(&cold));
        let context = request.lambda_context_ref().cloned().unwrap_or_default();
        let cold_start = cold.swap(false, Ordering::Relaxed);
        async move {
            let handled = async {
                match origin.as_ref().as_ref().and_then(|o| o.refuse(&request)) {
                    Some(refused) => refused,
                    None => function.handle(request).await,
                }
            };
            let status = |response: &Response<Body>| Outcome::Http(response.status().as_u16());
            Ok::<_, Error>(observe(F::NAME, &context, cold_start, handled, status, &mut std::io::stdout()).await)
        }
    }))
    .await
}

/// Runs an event-driven function (SQS, EventBridge, the authorizer) with the same RED line per
/// invocation; `refused` says whether a handled event was a refusal (an authorizer's denial).
pub async fn serve_events<E, R, H, Fut>(name: &'static str, handle: H, refused: fn(&R) -> bool) -> Result<(), Error>
where
    E: serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + Send + 'static,
    H: Fn(E) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<R, Error>> + Send,
{
    let handle = Arc::new(handle);
    let cold = Arc::new(AtomicBool::new(true));
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<E>| {
        let (handle, cold) = (Arc::clone(&handle), Arc::clone(&cold));
        let cold_start = cold.swap(false, Ordering::Relaxed);
        async move {
            let outcome = |result: &Result<R, Error>| match result {
                Ok(answer) if refused(answer) => Outcome::Refused,
                Ok(_) => Outcome::Done,
                Err(_) => Outcome::Failed,
            };
            observe(name, &event.context, cold_start, handle(event.payload), outcome, &mut std::io::stdout()).await
        }
    }))
    .await
}

/// One invocation as every function runs it: `work` in the invocation's span, its domain events
/// tallied, then its RED line and one line per kind of event written to `out` in one write
/// (stdout in Lambda; the benches time the same path into a sink).
pub async fn observe<T>(
    function: &'static str,
    context: &lambda_runtime::Context,
    cold_start: bool,
    work: impl Future<Output = T>,
    outcome: impl FnOnce(&T) -> Outcome,
    out: &mut impl std::io::Write,
) -> T {
    let span = invocation_span(function, context, cold_start);
    let started = Instant::now();
    let (output, tally) = tally::collect(work.instrument(span)).await;
    let invocation =
        Invocation { function, outcome: outcome(&output), elapsed: started.elapsed(), request_id: &context.request_id, cold_start };
    let mut lines = Vec::with_capacity(1024);
    invocation.write_lines(&tally, vaultstream::clock::now_millis(), &mut lines);
    // A failed write loses these lines only, never the answer.
    let _ = out.write_all(&lines);
    output
}

/// The span every log line of an invocation sits in (the JSON logs list it under `spans`): the
/// function, the Lambda request id, the X-Ray trace id and whether the instance was cold. In the
/// trace it is a subsegment of the segment Lambda opened for the invocation.
pub fn invocation_span(function: &'static str, context: &lambda_runtime::Context, cold_start: bool) -> tracing::Span {
    let sampled = vaultstream::traces::follow_sampling(context.xray_trace_id.as_deref());
    let span = tracing::info_span!(
        "invocation",
        function,
        aws_request_id = %context.request_id,
        trace_id = context.xray_trace_id.as_deref().unwrap_or("-"),
        cold_start
    );
    // An unsampled invocation records no span, so it has no trace to continue.
    if let (true, Some(header)) = (sampled, &context.xray_trace_id) {
        vaultstream::traces::continue_trace(&span, header);
    }
    span
}
