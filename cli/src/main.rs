//! `vaultstream`: the operator and developer CLI.
//!
//! - `dev`: the whole product on this machine (the local stack), until Ctrl-C.
//! - `demo`: the main job end to end through the local stack: upload, transcode, play.
//! - `token mint`: a token the local stack accepts; `token revoke`: an API token and its session.
//! - `session revoke`: a viewer's session, everywhere at once.
//! - `cdn sign-url` / `cdn sign-cookies`: CloudFront signing with the options of
//!   `aws cloudfront sign`.
//! - `bootstrap`: provisions a deployment's resources in an emulator (moto, LocalStack).
//! - `audit verify`: checks a tenant's day against the signed digests and names the first bad
//!   record; `audit digest`: writes the next signed digest now.
//! - `ingest watch`: an agent that uploads every media file dropped into a folder.

mod audit;
mod bootstrap;
mod cdn;
mod demo;
mod revoke;
mod serve;
mod target;
mod watch;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "vaultstream", version, about = "VaultStream: secure video on demand")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the local stack: emulator, API, CDN edge, pipeline and pages, until Ctrl-C.
    Dev(serve::DevArgs),
    /// Start the local stack, upload a generated clip, wait for it to publish, prove it plays.
    Demo(demo::DemoArgs),
    /// Mint tokens for the local stack; revoke API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// End sessions.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Sign CloudFront URLs and cookies, as `aws cloudfront sign` does.
    #[command(subcommand)]
    Cdn(cdn::CdnCmd),
    /// Inspect the audit ledger.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Provision a deployment's buckets, tables, keys, secret and queues in an AWS emulator.
    Bootstrap(bootstrap::BootstrapArgs),
    /// Bring content in through other doors than a client's own upload.
    #[command(subcommand)]
    Ingest(IngestCmd),
}

#[derive(Subcommand)]
enum IngestCmd {
    /// Upload every media file dropped into a folder, through the API; done/ and failed/ after.
    Watch(watch::WatchArgs),
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Print a token that the local stack at --state-dir accepts.
    Mint(serve::MintArgs),
    /// Revoke an API token and the session it acts as.
    Revoke(revoke::TokenRevokeArgs),
}

#[derive(Subcommand)]
enum SessionCmd {
    /// Revoke a session: its playback grants, playlists and key URLs stop working at once.
    Revoke(revoke::SessionRevokeArgs),
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
        Cmd::Dev(args) => serve::dev(args),
        Cmd::Demo(args) => demo::run(args),
        Cmd::Token(TokenCmd::Mint(args)) => serve::token_mint(args),
        Cmd::Token(TokenCmd::Revoke(args)) => revoke::token(args),
        Cmd::Session(SessionCmd::Revoke(args)) => revoke::session(args),
        Cmd::Cdn(cmd) => cdn::run(cmd),
        Cmd::Audit(cmd) => audit::run(cmd),
        Cmd::Bootstrap(args) => bootstrap::run(args),
        Cmd::Ingest(IngestCmd::Watch(args)) => watch::run(args),
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
