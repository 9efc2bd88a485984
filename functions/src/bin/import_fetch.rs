//! The `import_fetch` Lambda function: SQS (the import queue), partial batch responses.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::Error;
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::import_fetch::ImportFetch;
use vaultstream_functions::{logging, runtime, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("import_fetch");
    let env = Env::from_process();
    let handler = Arc::new(ImportFetch::from_env(&env, &wiring::aws(&env).await).await?);
    let serve = move |event: SqsEvent| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Error>(handler.handle(event).await) }
    };
    runtime::serve_events("import_fetch", serve, |_| false).await
}
