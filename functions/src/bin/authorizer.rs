//! The `authorizer` Lambda function: API Gateway HTTP API Lambda authorizer, simple responses.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::Error;
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::authorizer::Authorizer;
use vaultstream_functions::{logging, runtime, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("authorizer");
    let env = Env::from_process();
    let handler = Arc::new(Authorizer::from_env(&env, &wiring::aws(&env).await).await?);
    let serve = move |event: ApiGatewayV2CustomAuthorizerV2Request| {
        let handler = Arc::clone(&handler);
        async move { handler.handle(event).await.map_err(Error::from) }
    };
    runtime::serve_events("authorizer", serve, |answer| !answer.is_authorized).await
}
