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
    /// The local stack's resources; `None` for a deployment.
    pub outputs: Option<Outputs>,
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
                Ok(Target { table: pick(info.outputs.clone()), endpoint: Some(info.emulator_url), outputs: Some(info.outputs) })
            }
            (None, Some(table)) => Ok(Target { table, endpoint: None, outputs: None }),
            (None, None) => Err(Failure::Usage(format!("give {flag} or --state-dir"))),
        }
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }

    /// Every client, S3 path-style when the target is an emulator.
    pub async fn clients(&self) -> vaultstream::aws::Clients {
        vaultstream::aws::Clients::from_sdk_config(
            &self.sdk_config().await,
            self.endpoint.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        )
    }

    async fn sdk_config(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = &self.endpoint {
            loader = loader
                .endpoint_url(endpoint)
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "vaultstream-dev"));
        }
        loader.load().await
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Failure::Other(e.into()))
}
