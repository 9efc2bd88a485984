//! One module per Lambda function: parse the event, call the core, shape the response.

pub mod audit_digest;
pub mod authorizer;
pub mod captions;
pub mod content;
pub mod dispatch;
pub mod drop_zone;
pub mod feed_poll;
pub mod ftp_auth;
pub mod import_fetch;
pub mod job_events;
pub mod key_delivery;
pub mod manifest;
pub mod monitor_poll;
pub mod playback;
pub mod upload_url;
