//! The `job_events` Lambda function: EventBridge "Batch Job State Change" events.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::Error;
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::job_events::JobEvents;
use vaultstream_functions::{logging, runtime, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("job_events");
    let env = Env::from_process();
    let handler = Arc::new(JobEvents::from_env(&env, &wiring::aws(&env).await).await?);
    let serve = move |event: EventBridgeEvent<serde_json::Value>| {
        let handler = Arc::clone(&handler);
        async move { handler.handle(event).await.map_err(Error::from) }
    };
    runtime::serve_events("job_events", serve, |_| false).await
}
