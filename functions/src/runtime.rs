//! What every HTTP function's `main` does: JSON logs, configuration read once, AWS clients, then
//! the Lambda runtime with the handler shared across invocations, behind the origin check.

use std::sync::Arc;

use async_trait::async_trait;
use lambda_http::{service_fn, Body, Error, Request, Response};

use crate::env::{ConfigError, Env};
use crate::origin_verify::OriginVerify;
use crate::wiring::Aws;

#[async_trait]
pub trait HttpFunction: Sized + Send + Sync + 'static {
    async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError>;
    async fn handle(&self, request: Request) -> Response<Body>;
}

pub async fn serve<F: HttpFunction>() -> Result<(), Error> {
    crate::logging::init();
    let env = Env::from_process();
    let aws = crate::wiring::aws(&env).await;
    // Both may read a secret at cold start: at once, not one after the other.
    let (origin, function) = tokio::try_join!(OriginVerify::from_env(&env, &aws), F::from_env(&env, &aws))?;
    let (origin, function) = (Arc::new(origin), Arc::new(function));
    lambda_http::run(service_fn(move |request: Request| {
        let (function, origin) = (Arc::clone(&function), Arc::clone(&origin));
        async move {
            if let Some(refused) = origin.as_ref().as_ref().and_then(|o| o.refuse(&request)) {
                return Ok::<_, Error>(refused);
            }
            Ok(function.handle(request).await)
        }
    }))
    .await
}
