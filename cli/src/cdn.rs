//! `vaultstream cdn sign-url|sign-cookies`, with the option names of `aws cloudfront sign`.
//! A custom policy is used whenever a start time, an IP range, a wildcard or a different policy
//! resource is given; a canned one otherwise.

use clap::{Args, Subcommand};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};
use vaultstream::cdn::{sign_cookies, sign_url, HashAlgorithm, PemPolicySigner, Policy};

use vaultstream_cli::dev::state::StateDir;

use crate::Failure;

#[derive(Subcommand)]
pub enum CdnCmd {
    /// Print a signed URL.
    SignUrl(SignArgs),
    /// Print the signed cookies as a JSON object.
    SignCookies(SignArgs),
}

#[derive(Args)]
pub struct SignArgs {
    /// The URL to sign (for cookies: the resource, unless --policy-resource is given).
    #[arg(long)]
    url: String,
    /// The policy's resource when it differs from the URL, e.g. `https://d1.cloudfront.net/movies/*`.
    #[arg(long)]
    policy_resource: Option<String>,
    /// The CloudFront public key id (or legacy key pair id).
    #[arg(long, required_unless_present = "state_dir")]
    key_pair_id: Option<String>,
    /// The private key: a path or `file://` path to an RSA-2048 or ECDSA P-256 PEM.
    #[arg(long, required_unless_present = "state_dir")]
    private_key: Option<String>,
    /// Sign with the key pair of the local stack at DIR (`vaultstream dev --state-dir DIR`),
    /// instead of --key-pair-id and --private-key.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["key_pair_id", "private_key"])]
    state_dir: Option<std::path::PathBuf>,
    /// Expiry: epoch seconds or ISO 8601 (`2027-01-01`, `2027-01-01T12:00:00Z`).
    #[arg(long)]
    date_less_than: String,
    /// Start: epoch seconds or ISO 8601.
    #[arg(long)]
    date_greater_than: Option<String>,
    /// Allowed source address or CIDR range.
    #[arg(long)]
    ip_address: Option<String>,
    /// SHA1 (CloudFront's default) or SHA256; the local stack's edge expects SHA256.
    #[arg(long)]
    hash_algorithm: Option<String>,
}

/// Epoch seconds, RFC 3339, `YYYY-MM-DDTHH:MM:SS` (UTC) or `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(option: &str, text: &str) -> Result<u64, Failure> {
    let text = text.trim();
    let bad = || {
        Failure::Usage(format!(
            "--{option}: {text:?} is not epoch seconds or an ISO 8601 date/time (e.g. 2027-01-01 or 2027-01-01T12:00:00Z)"
        ))
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .or_else(|| {
            PrimitiveDateTime::parse(text, format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"))
                .ok()
                .map(|t| t.assume_utc())
        })
        .or_else(|| Date::parse(text, format_description!("[year]-[month]-[day]")).ok().map(|d| d.midnight().assume_utc()))
        .ok_or_else(bad)?;
    u64::try_from(parsed.unix_timestamp()).map_err(|_| bad())
}

fn load_signer(args: &SignArgs) -> Result<PemPolicySigner, Failure> {
    let (key_pair_id, path, default_hash) = match (&args.state_dir, &args.key_pair_id, &args.private_key) {
        (Some(dir), _, _) => {
            let state = StateDir::new(dir).map_err(Failure::Other)?;
            let identity = state.existing_identity().map_err(|e| Failure::Usage(format!("--state-dir: {e:#}")))?;
            let pem = state.path("cloudfront.pem").display().to_string();
            (identity.cloudfront_key_pair_id.clone(), pem, vaultstream_cli::dev::HASH_ALGORITHM)
        }
        (None, Some(id), Some(key)) => (id.clone(), key.strip_prefix("file://").unwrap_or(key).to_string(), "SHA1"),
        _ => return Err(Failure::Usage("give --key-pair-id and --private-key, or --state-dir".into())),
    };
    let pem = zeroize::Zeroizing::new(std::fs::read(&path).map_err(|e| Failure::Usage(format!("--private-key: cannot read {path}: {e}")))?);
    let hash = HashAlgorithm::parse(args.hash_algorithm.as_deref().unwrap_or(default_hash))
        .map_err(|e| Failure::Usage(format!("--hash-algorithm: {e}")))?;
    PemPolicySigner::from_pem(&pem, key_pair_id, hash).map_err(|e| Failure::Usage(format!("--private-key {path}: {e}")))
}

fn policy(args: &SignArgs) -> Result<Policy, Failure> {
    let policy = Policy {
        resource: args.policy_resource.clone().unwrap_or_else(|| args.url.clone()),
        date_less_than: parse_time("date-less-than", &args.date_less_than)?,
        date_greater_than: args.date_greater_than.as_deref().map(|t| parse_time("date-greater-than", t)).transpose()?,
        ip_address: args.ip_address.clone(),
    };
    policy.validate().map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(policy)
}

pub fn run(cmd: CdnCmd) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| Failure::Other(e.into()))?;
    match cmd {
        CdnCmd::SignUrl(args) => {
            let (signer, policy) = (load_signer(&args)?, policy(&args)?);
            let url = runtime.block_on(sign_url(&signer, &args.url, &policy)).map_err(|e| Failure::Other(e.into()))?;
            println!("{url}");
        }
        CdnCmd::SignCookies(args) => {
            let (signer, policy) = (load_signer(&args)?, policy(&args)?);
            let cookies = runtime.block_on(sign_cookies(&signer, &policy)).map_err(|e| Failure::Other(e.into()))?;
            println!("{}", serde_json::to_string_pretty(&cookies.to_json()).map_err(|e| Failure::Other(e.into()))?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_accepted_form() {
        assert_eq!(parse_time("x", "1357034400").ok(), Some(1357034400));
        assert_eq!(parse_time("x", "2013-01-01T10:00:00Z").ok(), Some(1357034400));
        assert_eq!(parse_time("x", "2013-01-01T10:00:00").ok(), Some(1357034400));
        assert_eq!(parse_time("x", "2013-01-01").ok(), Some(1356998400));
        assert!(matches!(parse_time("date-less-than", "next tuesday"), Err(Failure::Usage(m)) if m.contains("--date-less-than")));
    }
}
