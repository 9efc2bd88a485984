//! JSON logs through `tracing`. Handlers open a span carrying request id, tenant and content id;
//! the core fills in the tenant once a credential or token verified. Nothing logs keys, tokens,
//! cookies or signatures.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}
