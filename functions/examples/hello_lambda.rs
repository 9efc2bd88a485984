//! The cold-start reference: a `lambda_runtime` function that echoes its event, nothing else,
//! built with the same profile as the functions (bench/cold_start.sh).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<_, Error>(event.payload) })).await
}
