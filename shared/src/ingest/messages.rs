//! What arrives on the ingest and retry queues: S3 event notifications (parsed with
//! `aws_lambda_events`), S3's test event, and dispatch's own retry messages. Anything else is
//! unreadable and said to be.

use aws_lambda_events::s3::S3Event;

use crate::ingest::ports::RetryMessage;

/// An `ObjectCreated` notification for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    /// `ObjectCreated:Put`, `…:Post`, `…:Copy` or `…:CompleteMultipartUpload`.
    pub event_name: String,
    pub bucket: String,
    /// As S3 sends it: URL-encoded.
    pub encoded_key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IngestMessage {
    /// Records of an S3 notification (one message may carry several).
    Objects(Vec<Result<ObjectCreated, String>>),
    /// Sent once when the bucket's notification configuration is saved; nothing to do.
    TestEvent,
    Retry(RetryMessage),
    Unreadable(String),
}

/// The event names dispatch acts on: every way an object is created whole.
pub const ACCEPTED_EVENTS: [&str; 4] =
    ["ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:Copy", "ObjectCreated:CompleteMultipartUpload"];

/// Fills in record fields dispatch does not read but the event type requires, as emulators leave
/// them out: moto sends no `userIdentity` or `requestParameters`, and `eventTime` without a zone.
fn complete_records(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(records) = value.get_mut("Records").and_then(|r| r.as_array_mut()) {
        for record in records.iter_mut().filter_map(|r| r.as_object_mut()) {
            record.entry("userIdentity").or_insert_with(|| serde_json::json!({}));
            record.entry("requestParameters").or_insert_with(|| serde_json::json!({}));
            if let Some(time) = record.get_mut("eventTime") {
                if let Some(text) =
                    time.as_str().filter(|t| !(t.ends_with('Z') || t.contains('+') || t.get(10..).is_some_and(|rest| rest.contains('-'))))
                {
                    *time = serde_json::Value::from(format!("{text}Z"));
                }
            }
        }
    }
    value
}

pub fn parse(body: &str) -> IngestMessage {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return IngestMessage::Unreadable("the message body is not JSON".into());
    };
    if value.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return IngestMessage::TestEvent;
    }
    if value.get("kind").is_some() {
        return match serde_json::from_value::<RetryMessage>(value) {
            Ok(retry) => IngestMessage::Retry(retry),
            Err(e) => IngestMessage::Unreadable(format!("a retry message that does not parse: {e}")),
        };
    }
    if value.get("Records").is_none() {
        return IngestMessage::Unreadable("neither an S3 notification nor a retry message".into());
    }
    let event: S3Event = match serde_json::from_value(complete_records(value)) {
        Ok(e) => e,
        Err(e) => return IngestMessage::Unreadable(format!("an S3 notification that does not parse: {e}")),
    };
    IngestMessage::Objects(
        event
            .records
            .into_iter()
            .map(|r| {
                let event_name = r.event_name.unwrap_or_default();
                let event_name = event_name.strip_prefix("s3:").unwrap_or(&event_name).to_string();
                if !ACCEPTED_EVENTS.contains(&event_name.as_str()) {
                    return Err(format!("event {event_name:?} is not an object creation dispatch acts on"));
                }
                let encoded_key = r.s3.object.key.ok_or("the record names no object key")?;
                Ok(ObjectCreated { event_name, bucket: r.s3.bucket.name.unwrap_or_default(), encoded_key })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(event_name: &str, key: &str) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-22T00:00:00.000Z",
            "eventName": event_name, "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "ingest",
            "bucket": {"name": "b", "arn": "arn:aws:s3:::b"}, "object": {"key": key, "size": 10, "eTag": "abc", "sequencer": "1"}}
        }]})
        .to_string()
    }

    #[test]
    fn reads_every_kind_of_message() {
        let IngestMessage::Objects(records) = parse(&notification("ObjectCreated:CompleteMultipartUpload", "source/acme/c1/original"))
        else {
            panic!()
        };
        assert_eq!(records[0].as_ref().unwrap().encoded_key, "source/acme/c1/original");
        let IngestMessage::Objects(records) = parse(&notification("ObjectRemoved:Delete", "source/acme/c1/original")) else { panic!() };
        assert!(records[0].is_err());
        assert_eq!(parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"t","Bucket":"b"}"#), IngestMessage::TestEvent);
        let retry = r#"{"kind":"transcode_retry","tenant":"acme","content_id":"c1","attempt":2,"queue":"video-cpu"}"#;
        assert!(matches!(parse(retry), IngestMessage::Retry(r) if r.attempt == 2));
        // As moto sends them: no userIdentity or requestParameters, a zoneless eventTime.
        let sparse = r#"{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": "2026-11-22T02:05:31.248049", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "source%2Facme%2Fc1%2Foriginal", "size": 4, "eTag": "e"}}}]}"#;
        let IngestMessage::Objects(records) = parse(sparse) else { panic!("{:?}", parse(sparse)) };
        assert_eq!(records[0].as_ref().unwrap().encoded_key, "source%2Facme%2Fc1%2Foriginal");
        for junk in ["", "nope", "{}", r#"{"kind":"transcode_retry","tenant":"../x"}"#, r#"{"Records":"x"}"#] {
            assert!(matches!(parse(junk), IngestMessage::Unreadable(_)), "{junk}");
        }
    }
}
