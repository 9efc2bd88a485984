//! `vaultstream session revoke` and `vaultstream token revoke`: end a viewer's session, or an API
//! token and its session, at once. The authorizer, playback and key delivery all refuse a revoked
//! session, so its cookies, playlists and key URLs stop working before they expire. The tokens
//! table comes from `--table` or `VAULTSTREAM_TOKENS_TABLE` (AWS settings from the standard chain),
//! or from the running local stack with `--state-dir`.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use vaultstream::aws::{DynamoApiTokens, DynamoSessions};
use vaultstream::identity::{api_token, SessionRevocations};
use vaultstream::ids::{SessionId, TenantId};

use crate::target::{runtime, Target};
use crate::Failure;

#[derive(Args)]
pub struct Where {
    #[arg(long, env = "VAULTSTREAM_TOKENS_TABLE", required_unless_present = "state_dir")]
    table: Option<String>,
    /// The local stack running on DIR (`vaultstream dev --state-dir DIR`).
    #[arg(long, value_name = "DIR", conflicts_with = "table")]
    state_dir: Option<PathBuf>,
}

impl Where {
    fn target(self) -> Result<Target, Failure> {
        Target::resolve(self.state_dir, self.table, "--table (or VAULTSTREAM_TOKENS_TABLE)", |o| o.tokens_table)
    }
}

#[derive(Args)]
pub struct SessionRevokeArgs {
    #[arg(long)]
    tenant: String,
    /// The session id: the `sid` claim of the viewer's tokens.
    #[arg(long)]
    session: String,
    #[command(flatten)]
    place: Where,
}

#[derive(Args)]
pub struct TokenRevokeArgs {
    /// The API token's SHA-256, 64 hex digits (`printf %s "$TOKEN" | sha256sum`); the token itself
    /// never needs to be typed again.
    #[arg(long, value_name = "HEX")]
    sha256: String,
    #[command(flatten)]
    place: Where,
}

pub fn session(args: SessionRevokeArgs) -> Result<(), Failure> {
    let tenant = TenantId::parse(&args.tenant).map_err(|e| Failure::Usage(format!("--tenant: {e}")))?;
    let session = SessionId::parse(&args.session).map_err(|e| Failure::Usage(format!("--session: {e}")))?;
    let target = args.place.target()?;
    runtime()?
        .block_on(async {
            let sessions = DynamoSessions::new(target.dynamodb().await, &target.table);
            sessions.revoke(&tenant, &session, vaultstream::clock::now_seconds()).await
        })
        .map_err(|e| Failure::Other(anyhow!("cannot revoke the session: {e}")))?;
    println!("revoked session {session} of tenant {tenant}");
    Ok(())
}

pub fn token(args: TokenRevokeArgs) -> Result<(), Failure> {
    let hash = args.sha256.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::Usage("--sha256: expected the token's SHA-256 as 64 hex digits".into()));
    }
    let target = args.place.target()?;
    let revoked = runtime()?
        .block_on(async {
            let client = target.dynamodb().await;
            let store = DynamoApiTokens::new(client.clone(), &target.table);
            let sessions = DynamoSessions::new(client, &target.table);
            api_token::revoke(&store, &sessions, &hash, vaultstream::clock::now_seconds()).await
        })
        .map_err(|e| Failure::Other(anyhow!("cannot revoke the API token: {e}")))?;
    match revoked {
        Some(tenant) => {
            let session = api_token::session_of(&hash).map(|s| s.to_string()).unwrap_or_default();
            println!("revoked the API token of tenant {tenant} and its session {session}");
            Ok(())
        }
        None => Err(Failure::Usage("no API token has that SHA-256".into())),
    }
}
