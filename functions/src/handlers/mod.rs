//! One module per Lambda function: parse the event, call the core, shape the response.

pub mod authorizer;
pub mod key_delivery;
pub mod manifest;
pub mod playback;
