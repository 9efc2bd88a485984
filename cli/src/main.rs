//! `vaultstream`: the operator and developer CLI.
//!
//! - `demo`: the main job end to end on this machine (generate, transcode, verify playback).
//! - `cdn sign-url` / `cdn sign-cookies`: CloudFront signing with the options of
//!   `aws cloudfront sign`.
//! - `bootstrap`: provisions a deployment's resources in an emulator (moto, LocalStack).
//! - `audit verify`: checks a tenant's audit ledger and names the first bad record.

mod audit;
mod bootstrap;
mod cdn;
mod demo;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "vaultstream", version, about = "VaultStream: secure video on demand")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Transcode a generated sample clip into an encrypted HLS ladder and verify it plays.
    Demo {
        /// Parent folder for this run's output (each run gets a new sub-folder).
        #[arg(long, default_value = "vaultstream-demo")]
        out: PathBuf,
        /// Length of the sample clip in seconds.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..=600))]
        seconds: u32,
    },
    /// Sign CloudFront URLs and cookies, as `aws cloudfront sign` does.
    #[command(subcommand)]
    Cdn(cdn::CdnCmd),
    /// Inspect the audit ledger.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Provision a deployment's buckets, tables, keys, secret and queues in an AWS emulator.
    Bootstrap(bootstrap::BootstrapArgs),
}

/// How a command failed: the caller's input (exit 2) or anything else (exit 1).
pub enum Failure {
    Usage(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Demo { out, seconds } => demo::demo(&out, seconds).map_err(Failure::from),
        Cmd::Cdn(cmd) => cdn::run(cmd),
        Cmd::Audit(cmd) => audit::run(cmd),
        Cmd::Bootstrap(args) => bootstrap::run(args),
    };
    match result {
        Ok(()) => {}
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
