//! The `audit_digest` Lambda function: a scheduled EventBridge event, hourly.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::Error;
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::audit_digest::AuditDigest;
use vaultstream_functions::{logging, runtime, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("audit_digest");
    let env = Env::from_process();
    let handler = Arc::new(AuditDigest::from_env(&env, &wiring::aws(&env).await).await?);
    let serve = move |event: EventBridgeEvent<serde_json::Value>| {
        let handler = Arc::clone(&handler);
        async move { handler.handle(event).await.map(|d| d.seq).map_err(Error::from) }
    };
    runtime::serve_events("audit_digest", serve, |_| false).await
}
