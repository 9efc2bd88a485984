//! The glue AWS provides and moto does not, so the ingest path runs unchanged on one machine:
//!
//! - **SQS → Lambda**: each queue is long-polled by its own task and its messages handed to the
//!   real handler as Lambda's SQS event: the ingest and retry queues' to `dispatch` (batches of
//!   10), the import queue's to `import_fetch` (one message an invocation, [`IMPORT_SLOTS`] at
//!   once, at most [`IMPORT_SLOTS_PER_TENANT`] of one tenant's: a tenant's slow downloads hold
//!   its own share and never another tenant's turn); the messages a handler reports as failed
//!   stay on the queue for redelivery and, after the queue's receive limit, its DLQ.
//! - **Batch**: moto records `SubmitJob` but runs nothing; each new job is run with the real
//!   `vaultstream-transcode` binary, the command and environment of its job definition and the
//!   definition's timeout, `--workers` at a time. As Batch does: an array job's children run
//!   (`AWS_BATCH_JOB_ARRAY_INDEX`) and the parent ends when they all have; a job waits for the
//!   jobs it `dependsOn` and fails (`Dependent Job failed`) without running if one failed; each
//!   job (each child alone) is retried by its definition's retry strategy. A process killed by
//!   a signal is reported as a lost host, the way Batch reports a Spot reclaim.
//! - **EventBridge → Lambda**: each finished job becomes a "Batch Job State Change" event for the
//!   real `job_events` handler (delivered again if it asks to be), which schedules retries through
//!   the retry queue exactly as in AWS. A job cut short by the stack stopping is reported as Batch
//!   reports a lost host, so it is retried on the next start.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::sqs::SqsBatchResponse;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex, Semaphore};
use vaultstream::ingest::fair_share::FairShare;
use vaultstream_functions::handlers::{dispatch::Dispatch, import_fetch::ImportFetch, job_events::JobEvents};
use vaultstream_functions::wiring::Aws;

use crate::dev::jobs::BatchJob;
use crate::dev::state::write_private;
use crate::provision::Outputs;

/// How long a receive waits for a message (SQS long polling, as Lambda's pollers use it).
const LONG_POLL_SECONDS: i32 = 2;

/// Imports run at once, and at most this many of one tenant's: one, as the deployment's FIFO
/// import queue (a message group per tenant) gives each tenant.
pub const IMPORT_SLOTS: usize = 4;
pub const IMPORT_SLOTS_PER_TENANT: usize = 1;
/// A message whose tenant has no free slot goes back on the queue for this long.
const DEFERRED_SECONDS: i32 = 5;

/// How Batch reports a job whose host went away; job_events retries it.
pub const LOST_HOST_REASON: &str = "Host EC2 (instance i-vaultstream-local) terminated.";

pub struct Pipeline {
    pub aws: Aws,
    pub outputs: Outputs,
    pub dispatch: Dispatch,
    pub import_fetch: ImportFetch,
    pub job_events: JobEvents,
    pub transcoder: PathBuf,
    pub emulator_endpoint: String,
    pub scratch: PathBuf,
    pub logs: PathBuf,
    pub jobs_file: PathBuf,
    pub workers: usize,
    /// Called after each job's outcome is recorded (the stack snapshots the emulator).
    pub after_job: Arc<dyn Fn() -> tokio::task::JoinHandle<()> + Send + Sync>,
}

/// The function a queue's event source mapping invokes.
#[derive(Clone, Copy)]
enum Consumer {
    Dispatch,
    ImportFetch,
}

/// What the runner remembers of a job: a running one in full, so that a restart can report it
/// lost even though the emulator's Batch (not persisted) no longer knows it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
enum JobState {
    Running {
        job: Box<BatchJob>,
    },
    Done {
        #[serde(default)]
        failed: bool,
    },
}

/// How Batch says a job never ran because a job it depends on failed.
pub const DEPENDENCY_FAILED: &str = "Dependent Job failed";

impl Pipeline {
    /// Starts the queue poller and the job runner; both stop when `shutdown` turns true.
    pub async fn start(self: Arc<Self>, shutdown: watch::Receiver<bool>) -> Result<Vec<tokio::task::JoinHandle<()>>> {
        let jobs: BTreeMap<String, JobState> = match std::fs::read(&self.jobs_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("reading {}", self.jobs_file.display()))?,
            Err(_) => BTreeMap::new(),
        };
        // Jobs the last run did not finish: their host is gone.
        for state in jobs.values() {
            if let JobState::Running { job } = state {
                tracing::info!(job_id = %job.id, "a job the last run did not finish is reported lost, so it is retried");
                self.deliver(job, None, LOST_HOST_REASON).await;
            }
        }
        let jobs: BTreeMap<String, JobState> = jobs.into_keys().map(|id| (id, JobState::Done { failed: true })).collect();
        let runner = Arc::new(Runner { seen: Mutex::new(jobs), slots: Semaphore::new(self.workers.max(1)) });
        runner.save(&self.jobs_file).await;
        // One long-polling consumer per queue, as Lambda's event source mappings are: a message
        // is handed over as soon as it arrives, and a slow import holds up no dispatch.
        let consumers = [
            (self.outputs.ingest_queue_url.clone(), Consumer::Dispatch, 10),
            (self.outputs.retry_queue_url.clone(), Consumer::Dispatch, 10),
        ];
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = consumers
            .into_iter()
            .map(|(queue, consumer, batch)| tokio::spawn(Arc::clone(&self).poll_queue(queue, consumer, batch, shutdown.clone())))
            .collect();
        tasks.push(tokio::spawn(Arc::clone(&self).poll_imports(self.outputs.import_queue_url.clone(), shutdown.clone())));
        tasks.push(tokio::spawn(self.run_jobs(runner, shutdown)));
        Ok(tasks)
    }

    async fn poll_queue(self: Arc<Self>, queue: String, consumer: Consumer, batch: i32, mut shutdown: watch::Receiver<bool>) {
        let mut arn = None;
        while !*shutdown.borrow() {
            let outcome = match &arn {
                None => self.queue_arn(&queue).await.map(|found| arn = Some(found)),
                Some(queue_arn) => {
                    // Only the wait is cut short by a stop, never the handling of what arrived.
                    let received = tokio::select! {
                        received = self.receive(&queue, batch) => received,
                        _ = shutdown.changed() => break,
                    };
                    match received {
                        Ok(messages) if messages.is_empty() => Ok(()),
                        Ok(messages) => self.hand_over(&queue, queue_arn, consumer, &messages).await,
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = outcome {
                tracing::warn!(queue = %queue, error = %e, "polling failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// The import queue's consumer: each message handed over alone, as soon as its tenant's
    /// share and the whole have a slot; a message whose tenant has none waits on the queue.
    async fn poll_imports(self: Arc<Self>, queue: String, mut shutdown: watch::Receiver<bool>) {
        let share = Arc::new(FairShare::new(IMPORT_SLOTS, IMPORT_SLOTS_PER_TENANT));
        let in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
        let mut running = tokio::task::JoinSet::new();
        let mut arn = None;
        while !*shutdown.borrow() {
            while running.try_join_next().is_some() {}
            if !share.has_room() {
                tokio::select! {
                    _ = running.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let queue_arn = match &arn {
                Some(found) => String::clone(found),
                None => match self.queue_arn(&queue).await {
                    Ok(found) => arn.insert(found).clone(),
                    Err(e) => {
                        tracing::warn!(queue = %queue, error = %e, "polling failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            let received = tokio::select! {
                received = self.receive(&queue, 10) => received,
                _ = shutdown.changed() => break,
            };
            let messages = match received {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(queue = %queue, error = %e, "polling failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut deferred = Vec::new();
            for message in messages {
                let import = message.body().and_then(|b| serde_json::from_str::<vaultstream::ingest::ports::ImportMessage>(b).ok());
                let tenant = import.as_ref().map(|m| m.tenant.clone()).unwrap_or_else(vaultstream::ids::TenantId::unauthenticated);
                // The same import delivered twice (a replayed request) waits for the first to end,
                // which then makes the second a no-op, rather than fetching the file twice at once.
                let content = import.map(|m| format!("{}/{}", m.tenant, m.content_id)).unwrap_or_default();
                let busy = !content.is_empty() && !in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(content.clone());
                match share.try_slot(&tenant).filter(|_| !busy) {
                    Some(slot) => {
                        let (pipeline, queue, queue_arn, in_flight) =
                            (Arc::clone(&self), queue.clone(), queue_arn.clone(), Arc::clone(&in_flight));
                        running.spawn(async move {
                            if let Err(e) = pipeline.hand_over(&queue, &queue_arn, Consumer::ImportFetch, &[message]).await {
                                tracing::warn!(queue = %queue, error = %e, "handing over an import failed");
                            }
                            in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&content);
                            drop(slot);
                        });
                    }
                    None => {
                        if !busy {
                            in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&content);
                        }
                        deferred.extend(message.receipt_handle().map(str::to_string));
                    }
                }
            }
            // The messages that must wait go back in one call, after the others have started.
            if !deferred.is_empty() {
                let entries: Vec<_> = deferred
                    .iter()
                    .enumerate()
                    .filter_map(|(n, handle)| {
                        aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry::builder()
                            .id(n.to_string())
                            .receipt_handle(handle)
                            .visibility_timeout(DEFERRED_SECONDS)
                            .build()
                            .ok()
                    })
                    .collect();
                let batch = self.aws.sqs().change_message_visibility_batch().queue_url(&queue).set_entries(Some(entries));
                if let Err(e) = batch.send().await {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not defer imports; they return after the queue's visibility timeout");
                }
            }
        }
        // Only the wait is cut short by a stop, never the handling of what arrived.
        while running.join_next().await.is_some() {}
    }

    async fn queue_arn(&self, queue: &str) -> Result<String> {
        let out = self.aws.sqs().get_queue_attributes().queue_url(queue).attribute_names(QueueAttributeName::QueueArn).send().await?;
        out.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().context("the queue has no ARN")
    }

    /// Up to `batch` messages, waiting up to [`LONG_POLL_SECONDS`] for the first.
    async fn receive(&self, queue: &str, batch: i32) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        let out = self
            .aws
            .sqs()
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(batch)
            .wait_time_seconds(LONG_POLL_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Hands messages to the consumer as Lambda's SQS event; the ones it handled are deleted, as
    /// the event source mapping does with a partial batch response.
    async fn hand_over(&self, queue: &str, arn: &str, consumer: Consumer, messages: &[aws_sdk_sqs::types::Message]) -> Result<()> {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: HashMap<String, String> =
                    m.attributes().map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect()).unwrap_or_default();
                json!({
                    "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(), "attributes": attributes,
                    "messageAttributes": {}, "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records })).context("building the SQS event")?;
        let response: SqsBatchResponse = match consumer {
            Consumer::Dispatch => self.dispatch.handle(event).await,
            Consumer::ImportFetch => self.import_fetch.handle(event).await,
        };
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        for m in messages {
            if failed.contains(&m.message_id().unwrap_or_default()) {
                continue;
            }
            if let Some(handle) = m.receipt_handle() {
                self.aws.sqs().delete_message().queue_url(queue).receipt_handle(handle).send().await?;
            }
        }
        Ok(())
    }

    async fn run_jobs(self: Arc<Self>, runner: Arc<Runner>, mut shutdown: watch::Receiver<bool>) {
        let queues = [&self.outputs.video_gpu_job_queue, &self.outputs.video_cpu_job_queue, &self.outputs.audio_job_queue];
        let mut running = tokio::task::JoinSet::new();
        while !*shutdown.borrow() {
            for queue in queues {
                let listed = match self.aws.batch().list_jobs().job_queue(queue.as_str()).send().await {
                    Ok(listed) => listed,
                    Err(e) => {
                        tracing::warn!(queue = %queue, error = %aws_sdk_batch::error::DisplayErrorContext(&e), "cannot list jobs");
                        continue;
                    }
                };
                for summary in listed.job_summary_list() {
                    let Some(id) = summary.job_id() else { continue };
                    if runner.seen(id).await {
                        continue;
                    }
                    let job = match BatchJob::describe(self.aws.batch(), id).await {
                        Ok(job) => job,
                        Err(e) => {
                            tracing::error!(job_id = %id, error = %e, "cannot describe a submitted job");
                            continue;
                        }
                    };
                    runner.claim(&job).await;
                    runner.save(&self.jobs_file).await;
                    if job.array_size.is_some() {
                        // The parent runs nothing: it ends when its children have.
                        continue;
                    }
                    let (pipeline, runner) = (Arc::clone(&self), Arc::clone(&runner));
                    running.spawn(async move {
                        let failed = match runner.dependencies_failed(&job.depends_on).await {
                            Some(true) => {
                                pipeline.deliver(&job, None, DEPENDENCY_FAILED).await;
                                true
                            }
                            _ => !pipeline.run_job(&runner, &job).await,
                        };
                        runner.finish(&job.id, failed).await;
                        for (parent, failed) in runner.finished_arrays().await {
                            let (exit, reason) =
                                if failed { (None, "An array child failed") } else { (Some(0), "All array children succeeded") };
                            pipeline.deliver(&parent, exit, reason).await;
                        }
                        runner.save(&pipeline.jobs_file).await;
                        (pipeline.after_job)();
                    });
                }
            }
            while running.try_join_next().is_some() {}
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => {}
            }
        }
        // Dropping the set aborts the jobs in flight; kill_on_drop ends their processes and the
        // next start reports them as lost hosts.
        running.shutdown().await;
    }

    /// Runs the job, attempt after attempt as its retry strategy allows; whether it succeeded.
    async fn run_job(&self, runner: &Runner, job: &BatchJob) -> bool {
        let mut attempt = 1;
        loop {
            let outcome = {
                let Ok(_slot) = runner.slots.acquire().await else { return false };
                self.execute(job, attempt).await
            };
            let (exit, reason) = match outcome {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::error!(job_id = %job.id, error = %e, "the job could not start");
                    (Some(1), format!("CannotStartContainerError: {e}"))
                }
            };
            if exit != Some(0) && job.retry.again(attempt, exit, &reason) {
                tracing::info!(job_id = %job.id, attempt, exit = ?exit, reason = %reason, "retrying the job, as its retry strategy says");
                attempt += 1;
                continue;
            }
            self.deliver(job, exit, &reason).await;
            return exit == Some(0);
        }
    }

    /// Runs the job's container process to its end (or its timeout).
    async fn execute(&self, job: &BatchJob, attempt: u32) -> Result<(Option<i32>, String)> {
        let scratch = self.scratch.join(&job.id);
        std::fs::create_dir_all(&scratch)?;
        std::fs::create_dir_all(&self.logs)?;
        let log_path = self.logs.join(match attempt {
            1 => format!("{}.log", job.id),
            n => format!("{}.attempt{n}.log", job.id),
        });
        let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = tokio::process::Command::from(job.command(&self.transcoder, &self.emulator_endpoint, &scratch, attempt)?);
        command.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log).kill_on_drop(true);
        crate::dev::emulator::terminate_with_parent(&mut command);
        tracing::info!(job_id = %job.id, job_name = %job.name, log = %log_path.display(), "running a Batch job");
        let mut child = command.spawn().with_context(|| format!("starting {}", self.transcoder.display()))?;
        let limit = Duration::from_secs(job.timeout_seconds.unwrap_or(u64::MAX / 4));
        let outcome = match tokio::time::timeout(limit, child.wait()).await {
            Ok(status) => {
                let code = status?.code();
                match code {
                    Some(0) => (code, "Essential container in task exited".to_string()),
                    Some(c) => (code, format!("Essential container in task exited with code {c}")),
                    // Killed by a signal: what a Spot reclaim looks like from inside.
                    None => (None, LOST_HOST_REASON.to_string()),
                }
            }
            Err(_) => {
                let _ = child.kill().await;
                (None, "Job attempt duration exceeded timeout".to_string())
            }
        };
        let _ = std::fs::remove_dir_all(&scratch);
        tracing::info!(job_id = %job.id, exit = ?outcome.0, reason = %outcome.1, "job ended");
        Ok(outcome)
    }

    /// EventBridge to job_events, with EventBridge's retries for an event the target refuses.
    async fn deliver(&self, job: &BatchJob, exit: Option<i32>, reason: &str) {
        let event = match job.state_change(exit, reason) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "no state-change event");
                return;
            }
        };
        for attempt in 1..=5u32 {
            match self.job_events.handle(event.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(job_id = %job.id, attempt, error = %e, "job_events asked for the event again");
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                }
            }
        }
        tracing::error!(job_id = %job.id, "job_events refused the state change five times; dropped as EventBridge would after its retries");
    }
}

struct Runner {
    seen: Mutex<BTreeMap<String, JobState>>,
    slots: Semaphore,
}

impl Runner {
    async fn seen(&self, id: &str) -> bool {
        self.seen.lock().await.contains_key(id)
    }

    async fn claim(&self, job: &BatchJob) {
        self.seen.lock().await.insert(job.id.clone(), JobState::Running { job: Box::new(job.clone()) });
    }

    async fn finish(&self, id: &str, failed: bool) {
        self.seen.lock().await.insert(id.to_string(), JobState::Done { failed });
    }

    /// Waits until every job in `ids` has ended; whether any failed (`None` for no dependencies).
    async fn dependencies_failed(&self, ids: &[String]) -> Option<bool> {
        if ids.is_empty() {
            return None;
        }
        loop {
            {
                let seen = self.seen.lock().await;
                let states: Vec<Option<&JobState>> = ids.iter().map(|id| seen.get(id)).collect();
                if states.iter().all(|s| matches!(s, Some(JobState::Done { .. }))) {
                    return Some(states.iter().any(|s| matches!(s, Some(JobState::Done { failed: true }))));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Array parents whose children have all ended, marked ended now: each with whether a child failed.
    async fn finished_arrays(&self) -> Vec<(BatchJob, bool)> {
        let mut seen = self.seen.lock().await;
        let parents: Vec<BatchJob> = seen
            .values()
            .filter_map(|s| match s {
                JobState::Running { job } if job.array_size.is_some() => Some((**job).clone()),
                _ => None,
            })
            .collect();
        let mut ended = Vec::new();
        for parent in parents {
            let size = parent.array_size.unwrap_or(0);
            let children: Vec<Option<&JobState>> = (0..size).map(|i| seen.get(&format!("{}:{i}", parent.id))).collect();
            if children.iter().all(|c| matches!(c, Some(JobState::Done { .. }))) {
                let failed = children.iter().any(|c| matches!(c, Some(JobState::Done { failed: true })));
                seen.insert(parent.id.clone(), JobState::Done { failed });
                ended.push((parent, failed));
            }
        }
        ended
    }

    async fn save(&self, path: &std::path::Path) {
        let bytes = serde_json::to_vec_pretty(&*self.seen.lock().await).unwrap_or_default();
        if let Err(e) = write_private(path, &bytes) {
            tracing::warn!(error = %e, "cannot record the runner's jobs");
        }
    }
}
