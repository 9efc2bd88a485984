//! The `drop_zone` Lambda function: Transfer Family's finished uploads, from EventBridge.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::Error;
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::drop_zone::DropZone;
use vaultstream_functions::{logging, runtime, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("drop_zone");
    let env = Env::from_process();
    let handler = Arc::new(DropZone::from_env(&env, &wiring::aws(&env).await).await?);
    let serve = move |event: EventBridgeEvent<serde_json::Value>| {
        let handler = Arc::clone(&handler);
        async move { handler.handle(event).await.map_err(Error::from) }
    };
    runtime::serve_events("drop_zone", serve, |_| false).await
}
