//! JSON logs through `tracing`. Every invocation runs in a span naming the function, the Lambda
//! request id, the X-Ray trace id and the cold-start flag (listed under `spans` on every line);
//! handlers open one inside it carrying request id, tenant and content id (`span`), and the core
//! fills in the tenant once a credential or token verified. Nothing logs keys, tokens, cookies or
//! signatures.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .try_init();
}
