//! The `monitor_poll` Lambda function: a scheduled EventBridge event, every 15 minutes.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::Error;
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::monitor_poll::MonitorPoll;
use vaultstream_functions::{logging, runtime, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("monitor_poll");
    let env = Env::from_process();
    let handler = Arc::new(MonitorPoll::from_env(&env, &wiring::aws(&env).await).await?);
    let serve = move |event: EventBridgeEvent<serde_json::Value>| {
        let handler = Arc::clone(&handler);
        async move { handler.handle(event).await.map_err(Error::from) }
    };
    runtime::serve_events("monitor_poll", serve, |_| false).await
}
