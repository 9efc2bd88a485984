//! One transcode job's figures as an EMF document, written by `vaultstream-transcode run` when it
//! ends. AWS Batch sends the container's stdout to CloudWatch Logs, which extracts the metrics
//! from the line as it does from Lambda's.
//!
//! Published once by `Encoder` (libx264, hevc_nvenc, …) and once over every job, so an alarm or
//! the dashboard's realtime-factor graph reads the total while a slow encoder still shows apart.

use serde_json::Value;

use crate::catalog::JobFigures;
use crate::emf::{Document, Unit};

/// How a job ended, the `Outcome` dimension of `JobsEnded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// Every rung published.
    Published,
    /// Published without the rungs that failed.
    Partial,
    /// The source was refused (`FAILED_INVALID`).
    Invalid,
    /// Failed; Batch or job_events retries when the failure may clear up.
    Failed,
}

impl JobEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            JobEnd::Published => "published",
            JobEnd::Partial => "partial",
            JobEnd::Invalid => "invalid",
            JobEnd::Failed => "failed",
        }
    }
}

/// A job that published: how it ended, then its duration, realtime factor, output bytes, cost
/// estimate and the rungs that failed.
pub fn published(figures: &JobFigures, rung_failures: usize, job_id: &str, timestamp_ms: u64) -> [Value; 2] {
    let end = if rung_failures == 0 { JobEnd::Published } else { JobEnd::Partial };
    let mut document = Document::new(&[("Encoder", &figures.encoder)])
        .rollup(&[])
        .metric("JobDuration", Unit::Seconds, figures.wall_seconds)
        .metric("OutputBytes", Unit::Bytes, figures.output_bytes as f64)
        .metric("EstimatedCostUsd", Unit::None, figures.estimated_cost_usd)
        .metric("RungFailures", Unit::Count, rung_failures as f64)
        .property("JobId", job_id);
    if let Some(factor) = figures.realtime_factor {
        document = document.metric("RealtimeFactor", Unit::None, factor);
    }
    [ended(end, job_id, timestamp_ms), document.render(timestamp_ms)]
}

/// One job counted by how it ended.
pub fn ended(end: JobEnd, job_id: &str, timestamp_ms: u64) -> Value {
    Document::new(&[("Outcome", end.as_str())])
        .rollup(&[])
        .metric("JobsEnded", Unit::Count, 1.0)
        .property("JobId", job_id)
        .render(timestamp_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emf::validate;

    fn figures(realtime_factor: Option<f64>) -> JobFigures {
        JobFigures {
            wall_seconds: 42.5,
            cpu_seconds: 80.0,
            realtime_factor,
            encoder: "libx264".into(),
            output_bytes: 12_345_678,
            estimated_cost_usd: 0.0012,
            chunked: None,
        }
    }

    #[test]
    fn a_published_job_is_counted_and_measured_by_encoder_and_in_total() {
        let [ended, measured] = published(&figures(Some(3.25)), 1, "job-1", 7);
        for doc in [&ended, &measured] {
            assert_eq!(validate(doc), Ok(()), "{doc}");
            assert_eq!(doc["JobId"], "job-1");
        }
        assert_eq!((ended["Outcome"].as_str(), ended["JobsEnded"].as_f64()), (Some("partial"), Some(1.0)));
        assert_eq!(measured["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Encoder"], []]));
        assert_eq!(
            (measured["Encoder"].as_str(), measured["RealtimeFactor"].as_f64(), measured["OutputBytes"].as_f64()),
            (Some("libx264"), Some(3.25), Some(12_345_678.0))
        );
        assert_eq!((measured["RungFailures"].as_f64(), measured["EstimatedCostUsd"].as_f64()), (Some(1.0), Some(0.0012)));
        let [ended, measured] = published(&figures(None), 0, "job-2", 7);
        assert_eq!(ended["Outcome"], "published");
        assert!(measured.get("RealtimeFactor").is_none(), "no factor without a known duration");
        assert_eq!(validate(&measured), Ok(()));
    }
}
