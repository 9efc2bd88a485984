//! The operator and developer tools behind the `vaultstream` binary, as a library so the
//! integration tests and the local stack provision through the very same code.
//!
//! - [`provision`]: creates a deployment's resources in an emulator (moto, LocalStack).
//! - [`dev`]: the local stack behind `vaultstream dev` and `vaultstream demo`.

pub mod dev;
pub mod provision;
