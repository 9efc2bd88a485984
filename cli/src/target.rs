//! Where an operator command reads and writes: a deployment's table, with AWS settings from the
//! standard chain (`AWS_ENDPOINT_URL` for an emulator), or the local stack running on a state
//! folder, which names both its tables and its emulator.

use std::path::PathBuf;

use vaultstream_cli::dev::state::StateDir;
use vaultstream_cli::provision::Outputs;

use crate::Failure;

pub struct Target {
    pub table: String,
    /// The local stack's emulator; `None` for a deployment.
    pub endpoint: Option<String>,
}

impl Target {
    /// `--state-dir` wins; otherwise `table` (from its flag or variable, named `flag` in errors).
    pub fn resolve(
        state_dir: Option<PathBuf>,
        table: Option<String>,
        flag: &str,
        pick: impl FnOnce(Outputs) -> String,
    ) -> Result<Target, Failure> {
        match (state_dir, table) {
            (Some(dir), _) => {
                let info = StateDir::new(dir).and_then(|s| s.stack_info()).map_err(|e| Failure::Usage(format!("--state-dir: {e:#}")))?;
                Ok(Target { table: pick(info.outputs), endpoint: Some(info.emulator_url) })
            }
            (None, Some(table)) => Ok(Target { table, endpoint: None }),
            (None, None) => Err(Failure::Usage(format!("give {flag} or --state-dir"))),
        }
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = &self.endpoint {
            loader = loader
                .endpoint_url(endpoint)
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "vaultstream-dev"));
        }
        aws_sdk_dynamodb::Client::new(&loader.load().await)
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Failure::Other(e.into()))
}
