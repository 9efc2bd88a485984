//! The `dispatch` Lambda function: SQS (ingest and retry queues), partial batch responses.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::Error;
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::dispatch::Dispatch;
use vaultstream_functions::{logging, runtime, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("dispatch");
    let env = Env::from_process();
    let handler = Arc::new(Dispatch::from_env(&env, &wiring::aws(&env).await).await?);
    let serve = move |event: SqsEvent| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Error>(handler.handle(event).await) }
    };
    runtime::serve_events("dispatch", serve, |_| false).await
}
