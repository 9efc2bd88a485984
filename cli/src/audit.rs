//! `vaultstream audit verify --tenant T [--date D]`: checks every chain of a tenant's day against
//! the signed digests that cover it and the archived change stream, and names the first record
//! that is modified, missing, reordered, inserted, no longer what a digest signed, or changed in
//! place at any time (even if put back). Exit 0 intact, 1 tampered, unreadable or not yet
//! covered by a digest, 2 usage.
//!
//! `vaultstream audit digest`: writes the next signed digest now (the deployed `audit_digest`
//! function does it hourly; the local stack every minute).
//!
//! The table, archive bucket and digest key come from flags or `VAULTSTREAM_AUDIT_TABLE`,
//! `VAULTSTREAM_AUDIT_ARCHIVE_BUCKET`, `VAULTSTREAM_AUDIT_DIGEST_KEY_ID` (AWS settings from the
//! standard chain, `AWS_ENDPOINT_URL` for an emulator), or all from the running local stack with
//! `--state-dir`.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use vaultstream::audit::digest::publish;
use vaultstream::aws::audit_digests::{kms_public_key, verify_day_signed};
use vaultstream::aws::{DynamoHeads, KmsDigestSigner, S3DigestStore};
use vaultstream::ids::TenantId;

use crate::target::{runtime, Target};
use crate::Failure;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Verify a tenant's day against the signed digests.
    Verify {
        #[arg(long)]
        tenant: String,
        /// The day, YYYY-MM-DD (UTC); today by default.
        #[arg(long)]
        date: Option<String>,
        #[command(flatten)]
        ledger: LedgerArgs,
        /// Read at least this many shards (more when the digests record more).
        #[arg(long, env = "VAULTSTREAM_AUDIT_SHARDS", default_value_t = 4)]
        shards: u16,
        /// Check the hash chains alone, without digests: finds careless edits, not a rewrite by
        /// someone who can write the ledger.
        #[arg(long)]
        chain_only: bool,
    },
    /// Write the next signed digest of every chain head now.
    Digest {
        #[command(flatten)]
        ledger: LedgerArgs,
        /// Chains per tenant and day, as the functions are configured.
        #[arg(long, env = "VAULTSTREAM_AUDIT_SHARDS", default_value_t = 4)]
        shards: u16,
    },
}

#[derive(Args)]
pub struct LedgerArgs {
    #[arg(long, env = "VAULTSTREAM_AUDIT_TABLE", required_unless_present = "state_dir")]
    table: Option<String>,
    /// The Object Lock bucket the digests are kept in.
    #[arg(long, env = "VAULTSTREAM_AUDIT_ARCHIVE_BUCKET")]
    archive_bucket: Option<String>,
    /// The KMS key (ECC_NIST_P256) digests are signed with.
    #[arg(long, env = "VAULTSTREAM_AUDIT_DIGEST_KEY_ID")]
    digest_key: Option<String>,
    /// The ledger of the local stack running on DIR (`vaultstream dev --state-dir DIR`).
    #[arg(long, value_name = "DIR", conflicts_with = "table")]
    state_dir: Option<PathBuf>,
}

struct Ledger {
    target: Target,
    archive_bucket: Option<String>,
    digest_key: Option<String>,
}

impl LedgerArgs {
    fn resolve(self) -> Result<Ledger, Failure> {
        let target = Target::resolve(self.state_dir, self.table, "--table (or VAULTSTREAM_AUDIT_TABLE)", |o| o.audit_table)?;
        let archive_bucket = self.archive_bucket.or(target.outputs.as_ref().map(|o| o.audit_archive_bucket.clone()));
        let digest_key = self.digest_key.or(target.outputs.as_ref().map(|o| o.audit_digest_key_id.clone()));
        Ok(Ledger { target, archive_bucket, digest_key })
    }
}

impl Ledger {
    /// The archive bucket and digest key, which every command but `verify --chain-only` needs.
    fn digests(&self) -> Result<(String, String), Failure> {
        match (&self.archive_bucket, &self.digest_key) {
            (Some(bucket), Some(key)) => Ok((bucket.clone(), key.clone())),
            _ => Err(Failure::Usage(
                "give --archive-bucket and --digest-key (or VAULTSTREAM_AUDIT_ARCHIVE_BUCKET and VAULTSTREAM_AUDIT_DIGEST_KEY_ID, or --state-dir); \
                 --chain-only checks the hash chains alone"
                    .into(),
            )),
        }
    }
}

fn parse_day(date: Option<String>) -> Result<String, Failure> {
    match date {
        Some(d) => {
            let ok = d.len() == 10 && time::Date::parse(&d, time::macros::format_description!("[year]-[month]-[day]")).is_ok();
            if !ok {
                return Err(Failure::Usage(format!("--date: {d:?} is not YYYY-MM-DD")));
            }
            Ok(d)
        }
        None => Ok(vaultstream::audit::ledger::now_rfc3339_millis().1),
    }
}

pub fn run(cmd: AuditCmd) -> Result<(), Failure> {
    match cmd {
        AuditCmd::Verify { tenant, date, ledger, shards, chain_only } => {
            let tenant = TenantId::parse(tenant).map_err(|e| Failure::Usage(format!("--tenant: {e}")))?;
            let day = parse_day(date)?;
            let ledger = ledger.resolve()?;
            if chain_only {
                verify_chains(&ledger.target, &tenant, &day, shards)
            } else {
                verify(&ledger, &tenant, &day, shards)
            }
        }
        AuditCmd::Digest { ledger, shards } => {
            let ledger = ledger.resolve()?;
            let (bucket, key) = ledger.digests()?;
            let digest = runtime()?.block_on(async {
                let clients = ledger.target.clients().await;
                let signer = KmsDigestSigner::connect(clients.kms().clone(), key).await?;
                let store = S3DigestStore::new(clients.s3().clone(), bucket);
                let heads = DynamoHeads::new(clients.dynamodb().clone(), &ledger.target.table);
                publish(&store, &heads, &signer, time::OffsetDateTime::now_utc(), shards).await
            });
            let digest = digest.map_err(|e| Failure::Other(anyhow!("cannot write the digest: {e}")))?;
            let chains: usize = digest.days.iter().map(|d| d.chains.len()).sum();
            let closed = digest.closed_through.as_deref().unwrap_or("none yet");
            println!(
                "digest #{} written: {} ({chains} chains over {} days; closed through {closed})",
                digest.seq,
                digest.key(),
                digest.days.len()
            );
            Ok(())
        }
    }
}

fn verify(ledger: &Ledger, tenant: &TenantId, day: &str, min_shards: u16) -> Result<(), Failure> {
    let (bucket, key) = ledger.digests()?;
    let result = runtime()?.block_on(async {
        let clients = ledger.target.clients().await;
        let public_key = kms_public_key(clients.kms(), &key).await?;
        let store = S3DigestStore::new(clients.s3().clone(), bucket);
        verify_day_signed(clients.dynamodb(), &ledger.target.table, &store, &public_key, tenant, day, min_shards).await
    });
    let signed = result.map_err(|e| Failure::Other(anyhow!("cannot read the ledger or its digests: {e}")))?;
    if let Some(problem) = &signed.digest_problem {
        println!("FAIL  digests: {problem}");
        return Err(Failure::Other(anyhow!("the signed digests covering {day} do not verify: nothing in the ledger can be trusted")));
    }
    let Some((seq, closed)) = signed.report.digest else {
        println!("FAIL  {tenant}#{day}: no signed digest covers this day yet");
        return Err(Failure::Other(anyhow!(
            "no signed digest covers {day}: wait for the next digest (hourly; `vaultstream audit digest` writes one now), \
             or pass --chain-only to check the hash chains alone"
        )));
    };
    let standing = if closed { format!("closed by signed digest #{seq}") } else { format!("open, last signed in digest #{seq}") };
    println!("      {tenant} on {day}: {} digests read; the day is {standing}", signed.digests_read);
    println!("      change archive: {} changes to this day in {} objects read", signed.changes_read, signed.archive_objects_read);
    report(&signed.report.chains, tenant, day)
}

fn verify_chains(target: &Target, tenant: &TenantId, day: &str, shards: u16) -> Result<(), Failure> {
    let reports = runtime()?.block_on(async {
        let client = target.dynamodb().await;
        vaultstream::aws::ledger::verify_day(&client, &target.table, tenant, day, shards).await
    });
    let reports = reports.map_err(|e| Failure::Other(anyhow!("cannot read the ledger: {e}")))?;
    report(&reports, tenant, day)
}

fn report(reports: &[vaultstream::audit::ChainReport], tenant: &TenantId, day: &str) -> Result<(), Failure> {
    let mut broken = 0;
    for report in reports {
        match &report.problem {
            None => println!("ok    {}: {} records, chain intact", report.chain, report.records),
            Some(problem) => {
                broken += 1;
                println!("FAIL  {}: {problem} (first {} records verified)", report.chain, report.records);
            }
        }
    }
    if broken > 0 {
        return Err(Failure::Other(anyhow!("{broken} of {} chains of tenant {tenant} on {day} failed verification", reports.len())));
    }
    Ok(())
}
