//! The `captions` Lambda function (API Gateway HTTP API, payload 2.0).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    vaultstream_functions::runtime::serve::<vaultstream_functions::handlers::captions::Captions>().await
}
