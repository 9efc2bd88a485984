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
    /// An array job's size: the parent runs nothing, its children do.
    #[serde(default)]
    pub array_size: Option<u32>,
    /// An array child's index (its id is `{parent}:{index}`).
    #[serde(default)]
    pub array_index: Option<u32>,
    /// Jobs that must end first (a stitch waits for its chunks' array).
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub retry: Retry,
}

/// A job definition's retry strategy, as Batch applies it to each job (each array child alone).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Retry {
    pub attempts: u32,
    pub rules: Vec<RetryRule>,
}

/// One `evaluateOnExit` condition: patterns match the whole value or, ending in `*`, a prefix.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RetryRule {
    pub on_exit_code: Option<String>,
    pub on_status_reason: Option<String>,
    pub on_reason: Option<String>,
    pub retry: bool,
}

fn matches(pattern: &Option<String>, value: &str) -> bool {
    match pattern {
        None => true,
        Some(p) => match p.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => p == value,
        },
    }
}

impl Retry {
    /// Whether attempt `attempt` ending so is tried again: while attempts remain, by the first
    /// rule that matches, and (as Batch does) when no rule matches.
    pub fn again(&self, attempt: u32, exit: Option<i32>, status_reason: &str) -> bool {
        if attempt >= self.attempts.max(1) {
            return false;
        }
        let code = exit.map(|c| c.to_string()).unwrap_or_default();
        self.rules
            .iter()
            .find(|r| {
                matches(&r.on_exit_code, &code) && matches(&r.on_status_reason, status_reason) && matches(&r.on_reason, status_reason)
            })
            .is_none_or(|r| r.retry)
    }
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
            array_size: job.array_properties().and_then(|a| a.size()).filter(|&n| n > 0).map(|n| n as u32),
            array_index: job_id.rsplit_once(':').and_then(|(_, i)| i.parse().ok()),
            depends_on: job.depends_on().iter().filter_map(|d| d.job_id().map(str::to_string)).collect(),
            retry: definition
                .retry_strategy()
                .map(|r| Retry {
                    attempts: r.attempts().unwrap_or(1).max(1) as u32,
                    rules: r
                        .evaluate_on_exit()
                        .iter()
                        .map(|e| RetryRule {
                            on_exit_code: e.on_exit_code().map(str::to_string),
                            on_status_reason: e.on_status_reason().map(str::to_string),
                            on_reason: e.on_reason().map(str::to_string),
                            // moto stores the action lower-cased, which the SDK reads as an
                            // unknown variant: compare its text.
                            retry: e.action().is_some_and(|a| a.as_str().eq_ignore_ascii_case("retry")),
                        })
                        .collect(),
                })
                .unwrap_or_default(),
        })
    }

    /// The queue's name (Batch's `AWS_BATCH_JQ_NAME`), from its ARN.
    pub fn queue_name(&self) -> &str {
        self.queue.rsplit('/').next().unwrap_or(&self.queue)
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
    pub fn command(&self, transcoder: &Path, endpoint: &str, scratch: &Path, attempt: u32) -> Result<std::process::Command> {
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
            .env("VAULTSTREAM_SCRATCH_DIR", scratch)
            .env("AWS_BATCH_JQ_NAME", self.queue_name())
            .env("AWS_BATCH_JOB_ATTEMPT", attempt.to_string());
        if let Some(index) = self.array_index {
            cmd.env("AWS_BATCH_JOB_ARRAY_INDEX", index.to_string());
        }
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
        let mut detail = json!({
            "jobName": self.name, "jobId": self.id, "jobQueue": self.queue, "status": status, "statusReason": status_reason,
            "attempts": [{"container": container.clone(), "statusReason": status_reason}],
            "parameters": self.parameters, "container": container,
        });
        // As Batch's events do: an array parent says its size, a child its index.
        match (self.array_size, self.array_index) {
            (Some(size), _) => detail["arrayProperties"] = json!({"size": size}),
            (_, Some(index)) => detail["arrayProperties"] = json!({"index": index}),
            _ => {}
        }
        if !self.depends_on.is_empty() {
            detail["dependsOn"] = self.depends_on.iter().map(|id| json!({"jobId": id})).collect();
        }
        serde_json::from_value(json!({
            "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Batch Job State Change", "source": "aws.batch",
            "account": "123456789012", "time": now, "region": "us-east-1",
            "resources": [format!("arn:aws:batch:us-east-1:123456789012:job/{}", self.id)],
            "detail": detail,
        }))
        .context("building the Batch state-change event")
    }
}
