//! The `manifest` Lambda function (API Gateway HTTP API, payload 2.0).

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::manifest::Manifest;
use vaultstream_functions::{logging, wiring::Aws};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let env = Env::from_process();
    let handler = Arc::new(Manifest::from_env(&env, &Aws::from_env(&env).await).await?);
    lambda_http::run(service_fn(move |request: Request| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Error>(handler.handle(request).await) }
    }))
    .await
}
