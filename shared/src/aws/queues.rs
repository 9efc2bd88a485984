//! The SQS and EventBridge side of ingest: URL imports to fetch, delayed retry messages, postponed redeliveries, the
//! failures dead-letter queue and the `vaultstream.content.failed` notification.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::error::DisplayErrorContext;

use crate::ingest::ports::{ContentFailed, FailureReports, ImportMessage, ImportQueue, QueueMessage, Redelivery, RetryMessage, RetryQueue};

/// The notification's source and detail type, as consumers' EventBridge rules match them.
pub const FAILED_EVENT_SOURCE: &str = "vaultstream";
pub const FAILED_EVENT_DETAIL_TYPE: &str = "vaultstream.content.failed";

pub struct SqsRetryQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsRetryQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsRetryQueue { client, queue_url: queue_url.into() }
    }
}

#[async_trait::async_trait]
impl RetryQueue for SqsRetryQueue {
    async fn schedule(&self, message: &RetryMessage, delay: Duration) -> Result<(), String> {
        let body = serde_json::to_string(message).map_err(|e| e.to_string())?;
        let delay = delay.as_secs().min(900) as i32;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(())
    }
}

/// The import queue: URL imports the API accepted, for `import_fetch`.
pub struct SqsImportQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsImportQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsImportQueue { client, queue_url: queue_url.into() }
    }
}

#[async_trait::async_trait]
impl ImportQueue for SqsImportQueue {
    async fn enqueue(&self, message: &ImportMessage) -> Result<(), String> {
        let body = serde_json::to_string(message).map_err(|e| e.to_string())?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            // One message group per tenant: on a standard queue, SQS fair queues then deliver
            // the other tenants' messages ahead of one tenant's backlog.
            .message_group_id(message.tenant.as_str())
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(())
    }
}

/// Postpones a message by changing its visibility timeout; queue URLs are looked up from the
/// event's queue ARN once and cached.
pub struct SqsRedelivery {
    client: aws_sdk_sqs::Client,
    urls: Mutex<HashMap<String, String>>,
}

impl SqsRedelivery {
    pub fn new(client: aws_sdk_sqs::Client) -> Self {
        SqsRedelivery { client, urls: Mutex::new(HashMap::new()) }
    }

    async fn url(&self, arn: &str) -> Result<String, String> {
        if let Some(url) = self.urls.lock().unwrap_or_else(|p| p.into_inner()).get(arn) {
            return Ok(url.clone());
        }
        // arn:aws:sqs:{region}:{account}:{name}
        let parts: Vec<&str> = arn.split(':').collect();
        let [_, _, "sqs", _, account, name] = parts.as_slice() else {
            return Err(format!("{arn:?} is not an SQS queue ARN"));
        };
        let out = self
            .client
            .get_queue_url()
            .queue_name(*name)
            .queue_owner_aws_account_id(*account)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        let url = out.queue_url.ok_or("SQS returned no queue URL")?;
        self.urls.lock().unwrap_or_else(|p| p.into_inner()).insert(arn.to_string(), url.clone());
        Ok(url)
    }
}

#[async_trait::async_trait]
impl Redelivery for SqsRedelivery {
    async fn postpone(&self, message: &QueueMessage, delay: Duration) -> Result<(), String> {
        let url = self.url(&message.queue_arn).await?;
        let seconds = delay.as_secs().min(12 * 3600) as i32;
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(&message.receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(())
    }
}

pub struct AwsFailureReports {
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    dead_letter_url: String,
    event_bus: String,
}

impl AwsFailureReports {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        events: aws_sdk_eventbridge::Client,
        dead_letter_url: impl Into<String>,
        event_bus: impl Into<String>,
    ) -> Self {
        AwsFailureReports { sqs, events, dead_letter_url: dead_letter_url.into(), event_bus: event_bus.into() }
    }
}

#[async_trait::async_trait]
impl FailureReports for AwsFailureReports {
    async fn dead_letter(&self, failed: &ContentFailed) -> Result<(), String> {
        let body = serde_json::to_string(failed).map_err(|e| e.to_string())?;
        self.sqs
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(())
    }

    async fn notify(&self, failed: &ContentFailed) -> Result<(), String> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.event_bus)
            .source(FAILED_EVENT_SOURCE)
            .detail_type(FAILED_EVENT_DETAIL_TYPE)
            .detail(serde_json::to_string(failed).map_err(|e| e.to_string())?)
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())?;
        if out.failed_entry_count > 0 {
            let why = out.entries().iter().filter_map(|e| e.error_message()).collect::<Vec<_>>().join("; ");
            return Err(format!("EventBridge refused the notification: {why}"));
        }
        Ok(())
    }
}
