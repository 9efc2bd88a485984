//! Submitted AWS Batch jobs as the local job runner sees them: what `DescribeJobs` and
//! `DescribeJobDefinitions` say, the command as Batch resolves it, the process the container would
//! run, and the "Batch Job State Change" event EventBridge delivers when it ends. Shared by the
//! local stack's runner and the ingest tests.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::{json, Value};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BatchJob {
    pub id: String,
    pub name: String,
    pub queue: String,
    pub parameters: HashMap<String, String>,
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    /// The definition's attempt timeout, when it has one.
    pub timeout_seconds: Option<u64>,
}

impl BatchJob {
    pub async fn describe(batch: &aws_sdk_batch::Client, job_id: &str) -> Result<BatchJob> {
        let described = batch.describe_jobs().jobs(job_id).send().await.context("DescribeJobs")?;
        let job = described.jobs().first().ok_or_else(|| anyhow!("Batch knows no job {job_id}"))?.clone();
        let definition_arn = job.job_definition().ok_or_else(|| anyhow!("job {job_id} names no definition"))?.to_string();
        let definitions =
            batch.describe_job_definitions().job_definitions(&definition_arn).send().await.context("DescribeJobDefinitions")?;
        let definition = definitions.job_definitions().first().ok_or_else(|| anyhow!("no job definition {definition_arn}"))?.clone();
        let container = definition.container_properties().ok_or_else(|| anyhow!("{definition_arn} is not a container job definition"))?;
        Ok(BatchJob {
            id: job_id.to_string(),
            name: job.job_name().unwrap_or_default().to_string(),
            queue: job.job_queue().unwrap_or_default().to_string(),
            parameters: job.parameters().cloned().unwrap_or_default(),
            command: container.command().to_vec(),
            environment: container
                .environment()
                .iter()
                .filter_map(|kv| Some((kv.name()?.to_string(), kv.value().unwrap_or_default().to_string())))
                .collect(),
            timeout_seconds: definition.timeout().and_then(|t| t.attempt_duration_seconds()).map(|s| s.max(1) as u64),
        })
    }

    /// The command as Batch runs it: each `Ref::name` replaced by the job's parameter.
    pub fn resolved_command(&self) -> Result<Vec<String>> {
        self.command
            .iter()
            .map(|part| match part.strip_prefix("Ref::") {
                Some(name) => self.parameters.get(name).cloned().ok_or_else(|| anyhow!("job {} has no parameter {name}", self.id)),
                None => Ok(part.clone()),
            })
            .collect()
    }

    /// The container's process: the transcoder binary with the job's command, only the job
    /// definition's environment plus AWS settings pointing at `endpoint`.
    pub fn command(&self, transcoder: &Path, endpoint: &str, scratch: &Path) -> Result<std::process::Command> {
        let mut cmd = std::process::Command::new(transcoder);
        cmd.args(self.resolved_command()?)
            .env_clear()
            .envs(self.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs([
                ("AWS_ENDPOINT_URL", endpoint),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_BATCH_JOB_ID", self.id.as_str()),
                ("RUST_LOG", "info"),
            ])
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("VAULTSTREAM_SCRATCH_DIR", scratch);
        Ok(cmd)
    }

    /// The event EventBridge delivers when the job ends: `exit` for a process that exited, `None`
    /// for one that never finished (`status_reason` then says why, as Batch does).
    pub fn state_change(&self, exit: Option<i32>, status_reason: &str) -> Result<EventBridgeEvent<Value>> {
        let status = if exit == Some(0) { "SUCCEEDED" } else { "FAILED" };
        let container = match exit {
            Some(code) => json!({"exitCode": code, "command": self.resolved_command()?}),
            None => json!({"command": self.resolved_command()?}),
        };
        let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        serde_json::from_value(json!({
            "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Batch Job State Change", "source": "aws.batch",
            "account": "123456789012", "time": now, "region": "us-east-1",
            "resources": [format!("arn:aws:batch:us-east-1:123456789012:job/{}", self.id)],
            "detail": {
                "jobName": self.name, "jobId": self.id, "jobQueue": self.queue, "status": status, "statusReason": status_reason,
                "attempts": [{"container": container.clone(), "statusReason": status_reason}],
                "parameters": self.parameters, "container": container,
            }
        }))
        .context("building the Batch state-change event")
    }
}
