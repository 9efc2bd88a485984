//! The `ftp_auth` Lambda function: AWS Transfer Family's custom identity provider.

use std::sync::Arc;

use lambda_runtime::Error;
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::ftp_auth::{FtpAuth, TransferLogin};
use vaultstream_functions::{logging, runtime, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("ftp_auth");
    let env = Env::from_process();
    let handler = Arc::new(FtpAuth::from_env(&env, &wiring::aws(&env).await).await?);
    let serve = move |login: TransferLogin| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Error>(handler.handle(login, &uuid::Uuid::now_v7().to_string()).await) }
    };
    runtime::serve_events("ftp_auth", serve, |answer: &serde_json::Value| answer.as_object().is_some_and(|o| o.is_empty())).await
}
