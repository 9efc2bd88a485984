//! The `feed_poll` Lambda function: a scheduled EventBridge event, every 15 minutes.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::Error;
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::feed_poll::FeedPoll;
use vaultstream_functions::{logging, runtime, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("feed_poll");
    let env = Env::from_process();
    let handler = Arc::new(FeedPoll::from_env(&env, &wiring::aws(&env).await).await?);
    let serve = move |event: EventBridgeEvent<serde_json::Value>| {
        let handler = Arc::clone(&handler);
        async move { handler.handle(event).await.map_err(Error::from) }
    };
    runtime::serve_events("feed_poll", serve, |_| false).await
}
