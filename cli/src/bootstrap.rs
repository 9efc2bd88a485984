//! `vaultstream bootstrap [--prefix P] [--outputs FILE]`: provisions a deployment's resources in
//! the emulator `AWS_ENDPOINT_URL` names (moto or LocalStack) and prints their names as JSON, under
//! the output names CDK and Terraform use. Running it again changes nothing. Exit 0 done, 1 the
//! emulator refused, 2 usage (including no emulator endpoint: real accounts are deployed with CDK or
//! Terraform, not with this command).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::Failure;

#[derive(Args)]
pub struct BootstrapArgs {
    /// Prefix of every resource name (lowercase letters, digits, hyphens).
    #[arg(long, default_value = "vaultstream-local")]
    prefix: String,
    /// Also write the outputs JSON to this file.
    #[arg(long)]
    outputs: Option<PathBuf>,
}

pub fn run(args: BootstrapArgs) -> Result<(), Failure> {
    vaultstream_cli::provision::validate_prefix(&args.prefix).map_err(|e| Failure::Usage(format!("--prefix: {e}")))?;
    if std::env::var_os("AWS_ENDPOINT_URL").is_none_or(|v| v.is_empty()) {
        return Err(Failure::Usage(
            "bootstrap provisions an emulator: set AWS_ENDPOINT_URL (deploy to AWS with infra/cdk or infra/terraform)".into(),
        ));
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outputs = runtime.block_on(async {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        vaultstream_cli::provision::provision(&vaultstream_cli::provision::Clients::from_sdk_config(&config), &args.prefix).await
    });
    let outputs = outputs.map_err(anyhow::Error::from)?;
    let json = serde_json::to_string_pretty(&outputs).context("rendering the outputs")?;
    if let Some(path) = &args.outputs {
        std::fs::write(path, format!("{json}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{json}");
    Ok(())
}
