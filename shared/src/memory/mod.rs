//! In-memory adapters of every port: the same semantics as the AWS adapters, no network. Unit
//! tests, benches and the local stack use these; nothing here is a test double written twice.

pub mod api_tokens;
pub mod caption_files;
pub mod catalog;
pub mod feeds;
pub mod ingest;
pub mod key_vault;
pub mod ledger;
pub mod monitors;
pub mod playlists;
pub mod sessions;

pub use api_tokens::MemoryApiTokens;
pub use caption_files::MemoryCaptionFiles;
pub use catalog::MemoryCatalog;
pub use feeds::MemoryFeeds;
pub use ingest::{MemoryJobs, MemoryQueues, MemorySourceStore};
pub use key_vault::MemoryKeyVault;
pub use ledger::MemoryLedger;
pub use monitors::{MemoryBuckets, MemoryMonitors, MemorySecrets};
pub use playlists::MemoryPlaylists;
pub use sessions::MemorySessions;
