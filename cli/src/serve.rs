//! `vaultstream dev`: runs the local stack until Ctrl-C, and `vaultstream token mint`: a token
//! the local stack at a state folder accepts.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use vaultstream_cli::dev::state::{StateDir, DEFAULT_STATE_DIR};
use vaultstream_cli::dev::tokens::{mint, validate, TokenRequest};
use vaultstream_cli::dev::{LocalStack, Options};

use crate::Failure;

#[derive(Args)]
pub struct DevArgs {
    /// Where the stack keeps its state (keys, secrets, the emulator's data); a restart on the same
    /// folder keeps titles and the ledger.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Written with {"api_url","cdn_url","emulator_url","viewer_url","ftp_url"} once everything is up.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// The API's port; the CDN edge takes the next one and the emulator the one after (0: any free ports).
    #[arg(long, default_value_t = 8700)]
    port: u16,
    /// Batch jobs the local runner transcodes at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    workers: u16,
    /// Let URL imports fetch from http://127.0.0.1 (a local test or media server). Off, the local
    /// stack's importer refuses loopback as a deployment does; no other private address is ever
    /// fetched.
    #[arg(long)]
    import_allow_loopback: bool,
}

pub fn logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).compact().try_init();
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Failure::Other(e.into()))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

pub fn write_ready_file(path: &std::path::Path, stack: &LocalStack) -> anyhow::Result<()> {
    let ready = serde_json::json!({
        "api_url": stack.info.api_url, "cdn_url": stack.info.cdn_url,
        "emulator_url": stack.info.emulator_url, "viewer_url": stack.info.viewer_url, "ftp_url": stack.info.ftp_url,
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{ready:#}\n")).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

pub fn dev(args: DevArgs) -> Result<(), Failure> {
    logging();
    runtime()?.block_on(async {
        let options = Options {
            state_dir: args.state_dir.clone(),
            port: args.port,
            workers: usize::from(args.workers),
            import_allow_loopback: args.import_allow_loopback,
        };
        let stack = LocalStack::start(&options).await?;
        println!("VaultStream local stack is up (state: {})", stack.state.root.display());
        println!("  viewer   {}   (sign in, watch, upload)", stack.info.viewer_url);
        println!("  api      {}", stack.info.api_url);
        println!("  cdn      {}", stack.info.cdn_url);
        println!("  emulator {}", stack.info.emulator_url);
        println!("  drop     {}   (FTPS: user = tenant id, password = a content:write token)", stack.info.ftp_url);
        println!(
            "  tokens   vaultstream token mint --state-dir {} --tenant acme --sub ada --scope \"content:read content:write\"",
            stack.state.root.display()
        );
        println!("Ctrl-C stops everything.");
        if let Some(path) = &args.ready_file {
            if let Err(e) = write_ready_file(path, &stack) {
                stack.stop().await;
                return Err(Failure::Other(e));
            }
        }
        interrupted().await;
        eprintln!("stopping: saving the emulator's state to {}", stack.state.path("emulator.state").display());
        stack.stop().await;
        if let Some(path) = &args.ready_file {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    })
}

#[derive(Args)]
pub struct MintArgs {
    /// The local stack's state folder (`vaultstream dev --state-dir`).
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    #[arg(long)]
    tenant: String,
    /// The user the token names.
    #[arg(long)]
    sub: String,
    /// Space-separated: content:read, content:write, admin.
    #[arg(long)]
    scope: String,
    /// Lifetime in seconds (at most a day).
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// The session id (`sid`); a fresh one by default.
    #[arg(long)]
    sid: Option<String>,
}

pub fn token_mint(args: MintArgs) -> Result<(), Failure> {
    let request =
        TokenRequest { tenant: &args.tenant, sub: &args.sub, scope: &args.scope, ttl_seconds: args.ttl, sid: args.sid.as_deref() };
    validate(&request).map_err(Failure::Usage)?;
    let state = StateDir::new(&args.state_dir).map_err(Failure::Other)?;
    let identity = state.existing_identity().map_err(|e| Failure::Usage(format!("--state-dir: {e:#}")))?;
    println!("{}", mint(&identity, &request)?);
    Ok(())
}
