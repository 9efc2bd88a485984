//! RED metrics (rate, errors, duration) of every HTTP invocation, written as one CloudWatch
//! Embedded Metric Format line to stdout, which Lambda sends to the function's log group and
//! CloudWatch turns into metrics under `VaultStream` with the dimension `Function`:
//!
//! | metric | unit | meaning |
//! |---|---|---|
//! | `Requests` | Count | 1 per invocation |
//! | `Errors` | Count | 1 when the answer is a 5xx (ours to fix) |
//! | `ClientErrors` | Count | 1 when the answer is a 4xx (a refused or malformed request) |
//! | `Duration` | Milliseconds | handler time, origin check included |
//!
//! The line also carries the status code, the request id and whether this was the instance's
//! first invocation (`ColdStart`), searchable with Logs Insights.

use std::time::Duration;

use serde_json::Value;
use vaultstream::emf::{Document, Unit};

pub struct Invocation<'a> {
    /// The function's contract name.
    pub function: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub request_id: &'a str,
    pub cold_start: bool,
}

impl Invocation<'_> {
    pub fn document(&self, timestamp_ms: u64) -> Value {
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        Document::new(&[("Function", self.function)])
            .metric("Requests", Unit::Count, 1.0)
            .metric("Errors", Unit::Count, flag(self.status >= 500))
            .metric("ClientErrors", Unit::Count, flag((400..500).contains(&self.status)))
            .metric("Duration", Unit::Milliseconds, (self.elapsed.as_secs_f64() * 1e6).round() / 1e3)
            .property("StatusCode", self.status)
            .property("RequestId", self.request_id)
            .property("ColdStart", self.cold_start)
            .render(timestamp_ms)
    }
}

/// Writes the document as one line (stdout is locked for the line, so it never interleaves).
pub fn emit(document: &Value) {
    println!("{document}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(status: u16) -> Value {
        Invocation { function: "manifest", status, elapsed: Duration::from_micros(12_345), request_id: "r-1", cold_start: true }
            .document(1_795_400_000_000)
    }

    #[test]
    fn every_answer_is_counted_by_class() {
        for (status, errors, client) in [(200, 0.0, 0.0), (404, 0.0, 1.0), (503, 1.0, 0.0)] {
            let doc = invocation(status);
            assert_eq!(vaultstream::emf::validate(&doc), Ok(()), "{doc}");
            assert_eq!(
                (doc["Requests"].as_f64(), doc["Errors"].as_f64(), doc["ClientErrors"].as_f64()),
                (Some(1.0), Some(errors), Some(client))
            );
            assert_eq!(doc["StatusCode"], status);
        }
        let doc = invocation(200);
        assert_eq!(
            (doc["Function"].as_str(), doc["Duration"].as_f64(), doc["ColdStart"].as_bool()),
            (Some("manifest"), Some(12.345), Some(true))
        );
        assert!(!doc.to_string().contains('\n'), "one line");
    }
}
