//! VaultStream's Lambda functions. Each binary under `src/bin/` is a few lines that read the
//! configuration once, build its handler from [`handlers`] and hand it to the Lambda runtime;
//! the rules live in the `vaultstream` core.

pub mod api_error;
pub mod env;
pub mod handlers;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod origin_verify;
pub mod runtime;
pub mod wiring;
