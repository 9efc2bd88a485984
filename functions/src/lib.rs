//! VaultStream's Lambda functions: one thin binary per function under `src/bin/` (added with
//! the access-path work), sharing the API contract's response shapes defined here.

pub mod api_error;
