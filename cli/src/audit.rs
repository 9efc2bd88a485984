//! `vaultstream audit verify --tenant T [--date D]`: checks every shard of a tenant's day and
//! names the first modified, missing or reordered record. Exit 0 intact, 1 tampered or
//! unreadable, 2 usage. The table comes from `--table` or `VAULTSTREAM_AUDIT_TABLE`; AWS
//! settings from the standard chain (`AWS_ENDPOINT_URL` for an emulator); or both from the
//! running local stack with `--state-dir`.

use anyhow::anyhow;
use clap::Subcommand;
use vaultstream::ids::TenantId;

use crate::target::{runtime, Target};
use crate::Failure;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Verify a tenant's hash chains for one day.
    Verify {
        #[arg(long)]
        tenant: String,
        /// The day, YYYY-MM-DD (UTC); today by default.
        #[arg(long)]
        date: Option<String>,
        #[arg(long, env = "VAULTSTREAM_AUDIT_TABLE", required_unless_present = "state_dir")]
        table: Option<String>,
        /// Verify the ledger of the local stack running on DIR (`vaultstream dev --state-dir DIR`).
        #[arg(long, value_name = "DIR", conflicts_with = "table")]
        state_dir: Option<std::path::PathBuf>,
        /// Chains per tenant and day, as the functions are configured.
        #[arg(long, env = "VAULTSTREAM_AUDIT_SHARDS", default_value_t = 4)]
        shards: u16,
    },
}

pub fn run(cmd: AuditCmd) -> Result<(), Failure> {
    let AuditCmd::Verify { tenant, date, table, state_dir, shards } = cmd;
    let target = Target::resolve(state_dir, table, "--table (or VAULTSTREAM_AUDIT_TABLE)", |o| o.audit_table)?;
    let tenant = TenantId::parse(tenant).map_err(|e| Failure::Usage(format!("--tenant: {e}")))?;
    let day = match date {
        Some(d) => {
            let ok = d.len() == 10 && time::Date::parse(&d, time::macros::format_description!("[year]-[month]-[day]")).is_ok();
            if !ok {
                return Err(Failure::Usage(format!("--date: {d:?} is not YYYY-MM-DD")));
            }
            d
        }
        None => vaultstream::audit::ledger::now_rfc3339_millis().1,
    };
    let reports = runtime()?.block_on(async {
        let client = target.dynamodb().await;
        vaultstream::aws::ledger::verify_day(&client, &target.table, &tenant, &day, shards).await
    });
    let reports = reports.map_err(|e| Failure::Other(anyhow!("cannot read the ledger: {e}")))?;
    let mut broken = 0;
    for report in &reports {
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
