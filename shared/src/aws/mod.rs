//! The AWS adapters: each implements one port of the core over one AWS service. Nothing here
//! decides anything; the rules live in the modules the ports belong to.

pub mod api_tokens;
pub mod audit_changes;
pub mod audit_digests;
pub mod batch_jobs;
pub mod caption_files;
pub mod catalog;
pub mod clients;
pub mod cloud_buckets;
pub mod feed_store;
pub mod key_vault;
pub mod lambda_config;
pub mod ledger;
pub mod monitor_secrets;
pub mod monitor_store;
pub mod object_keys;
pub mod playlists;
pub mod policy_signer;
pub mod queues;
pub mod sessions;
pub mod source_store;
pub mod speke;
pub mod subscriptions;
pub mod tenant_role;

pub use api_tokens::DynamoApiTokens;
pub use audit_changes::S3ChangeArchive;
pub use audit_digests::{DynamoHeads, KmsDigestSigner, S3DigestStore};
pub use batch_jobs::{BatchJobs, BatchTarget};
pub use caption_files::S3CaptionFiles;
pub use catalog::DynamoCatalog;
pub use clients::Clients;
pub use cloud_buckets::CloudBucketsClient;
pub use feed_store::DynamoFeeds;
pub use key_vault::KmsKeyVault;
pub use ledger::DynamoLedger;
pub use monitor_secrets::SecretsManagerKeys;
pub use monitor_store::DynamoMonitors;
pub use playlists::S3Playlists;
pub use policy_signer::KmsPolicySigner;
pub use queues::{AwsFailureReports, SqsImportQueue, SqsRedelivery, SqsRetryQueue};
pub use sessions::DynamoSessions;
pub use source_store::S3SourceStore;
