//! From upload to published: the rules of flows 1–3, one concept per module, over the ports in
//! [`ports`].
//!
//! - [`media_types`]: what may be uploaded, and the demuxer that reads each type.
//! - [`source_key`]: `source/{tenant}/{content_id}/original`, parsed from event keys.
//! - [`upload`]: declaring an upload, presigned PUT, form POST or multipart, completing it (flow 1).
//! - [`post_policy`]: the signed form of a browser upload straight to the source bucket.
//! - [`messages`], [`dispatch`], [`queue_choice`], [`sniff`]: S3 events to Batch jobs (flow 2).
//! - [`transcode_job`]: the content key and record changes of the transcode job (flow 3).
//! - [`job_outcome`]: what a finished Batch job means: retry, invalid or failed.
//! - [`backoff`]: the retry schedule shared by dispatch and job outcomes.
//! - [`status`]: the content status and listing views.
//! - [`import`], [`import_fetch`]: import from a URL, accepted by the API and streamed into the
//!   source key by the import queue's consumer.
//! - [`feeds`], [`feed_poll`]: feed subscriptions, and the scheduled poll that imports each new
//!   media item once through the URL import.
//! - [`monitors`], [`monitor_poll`]: cloud bucket monitors (a customer's S3 or GCS prefix), and
//!   the scheduled poll that imports each new object version once through the import queue.
//! - [`drop_zone`]: FTP drop zones: the token login, the folder a session is confined to, and a
//!   finished upload becoming an import.
//! - [`url_guard`]: what every URL fetched on a creator's behalf must pass (no SSRF);
//!   [`url_fetch`] fetches through it; [`rate_floor`]: the slowest a transfer may be.
//! - [`fair_share`]: a door's capacity shared between tenants, so none can starve the others.

pub mod backoff;
pub mod dispatch;
pub mod drop_zone;
pub mod fair_share;
pub mod feed_poll;
pub mod feeds;
pub mod import;
pub mod import_fetch;
pub mod job_outcome;
pub mod media_types;
pub mod messages;
pub mod monitor_poll;
pub mod monitors;
pub mod ports;
pub mod post_policy;
pub mod queue_choice;
pub mod rate_floor;
pub mod sniff;
pub mod source_key;
pub mod status;
pub mod transcode_job;
pub mod upload;
pub mod url_fetch;
pub mod url_guard;
