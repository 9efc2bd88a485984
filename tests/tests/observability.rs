//! What the code emits and what operators watch are one list: every metric the functions and the
//! transcoder write is in infra/contract.json's `observability.metrics` with the same unit and
//! dimension sets, every catalogued metric is written by someone, and every metric the dashboard
//! and the alarms read is catalogued under a dimension set it is published by, with dimension
//! values the code can produce. (parity.py holds CDK and Terraform to the same section.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use vaultstream::audit::{AuditEvent, Decision};
use vaultstream::catalog::JobFigures;
use vaultstream::ids::TenantId;
use vaultstream::metrics::job::{self, JobEnd};
use vaultstream::metrics::tally::{self, Counted};
use vaultstream_functions::metrics::{Invocation, Outcome};
use vaultstream_tests::observability::{catalogue, contract, declared, problems};

/// Every kind of domain event, once. The match makes a new variant fail to compile here until
/// it is listed (and so catalogued).
fn every_counted() -> Vec<Counted> {
    let listed = vec![
        Counted::decision(&AuditEvent {
            tenant: TenantId::parse("t1").unwrap(),
            actor: "u".into(),
            action: "key.fetch".into(),
            resource: "content/c".into(),
            decision: Decision::Allow,
            reason: "granted".into(),
            request_id: "r".into(),
            source_ip: None,
        }),
        Counted::Decision { action: "key.fetch".into(), decision: Decision::Deny, reason: "not_entitled".into() },
        Counted::LedgerAppendFailure,
        Counted::JobSubmitted { queue: "video-cpu" },
        Counted::JobFinished { status: "FAILED".into() },
        Counted::Retry,
        Counted::DeadLetter,
    ];
    for counted in &listed {
        match counted {
            Counted::Decision { .. }
            | Counted::LedgerAppendFailure
            | Counted::JobSubmitted { .. }
            | Counted::JobFinished { .. }
            | Counted::Retry
            | Counted::DeadLetter => {}
        }
    }
    listed
}

async fn function_documents() -> Vec<Value> {
    let red =
        Invocation { function: "dispatch", outcome: Outcome::Done, elapsed: Duration::from_millis(3), request_id: "r", cold_start: false };
    let ((), counted) = tally::collect(async {
        for event in every_counted() {
            tally::count(event);
        }
    })
    .await;
    let mut documents = vec![red.document(1)];
    documents.extend(counted.documents("dispatch", "r", 1));
    documents
}

fn transcoder_documents() -> Vec<Value> {
    let figures = JobFigures {
        wall_seconds: 10.0,
        cpu_seconds: 18.0,
        realtime_factor: Some(2.0),
        encoder: "libx264".into(),
        output_bytes: 1000,
        estimated_cost_usd: 0.001,
        chunked: None,
    };
    let mut documents = job::published(&figures, 0, "j", 1).to_vec();
    documents.push(job::ended(JobEnd::Failed, "j", 1));
    documents
}

#[tokio::test]
async fn the_emitters_and_the_catalogue_list_the_same_metrics() {
    let contract = contract();
    let catalogue = catalogue(&contract);
    for (from, documents) in [("functions", function_documents().await), ("transcoder", transcoder_documents())] {
        let mut emitted = BTreeSet::new();
        for document in &documents {
            assert_eq!(vaultstream::emf::validate(document), Ok(()), "{document}");
            assert_eq!(problems(document, &catalogue), Vec::<String>::new(), "{document}");
            emitted.extend(declared(document).into_iter().map(|(name, _, _)| name));
        }
        let listed: BTreeSet<String> = catalogue.iter().filter(|(_, c)| c.from == from).map(|(name, _)| name.clone()).collect();
        assert_eq!(emitted, listed, "what the {from} emit and what the contract lists as theirs");
    }
}

/// Every [namespace, name, dimensions, statistic] line of the dashboard and the alarms.
fn watched(contract: &Value) -> Vec<(String, Value)> {
    let observability = &contract["observability"];
    let mut lines = Vec::new();
    for widget in observability["dashboard"]["widgets"].as_array().unwrap() {
        for line in widget["metrics"].as_array().unwrap() {
            lines.push((format!("dashboard widget {:?}", widget["title"]), line.clone()));
        }
    }
    for alarm in observability["alarms"].as_array().unwrap() {
        for line in alarm["metrics"].as_object().unwrap().values() {
            lines.push((format!("alarm {:?}", alarm["name"]), line.clone()));
        }
    }
    lines
}

#[test]
fn the_dashboard_and_the_alarms_read_only_what_the_code_publishes() {
    let contract = contract();
    let catalogue = catalogue(&contract);
    let functions: BTreeSet<String> =
        contract["functions"].as_object().unwrap().keys().cloned().chain(["{function}".to_string()]).collect();
    // The values the code gives each dimension, where the set is closed.
    let values: BTreeMap<&str, BTreeSet<String>> = BTreeMap::from([
        ("Function", functions),
        ("Queue", ["video-gpu", "video-cpu", "audio"].map(String::from).into()),
        (
            "Status",
            contract["event_sources"]["job_events"]["eventbridge"]["status"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().into())
                .collect(),
        ),
        ("Outcome", [JobEnd::Published, JobEnd::Partial, JobEnd::Invalid, JobEnd::Failed].map(|e| e.as_str().to_string()).into()),
    ]);
    let queues: BTreeSet<&str> =
        ["{prefix}-ingest", "{prefix}-retry", "{prefix}-import", "{prefix}-ingest-dlq", "{prefix}-failures-dlq", "{prefix}-import-dlq"]
            .into();
    let lines = watched(&contract);
    assert!(lines.len() > 20, "{}", lines.len());
    for (place, line) in lines {
        let [namespace, name, dimensions, statistic] = line.as_array().unwrap().as_slice() else { panic!("{place}: {line}") };
        let (name, dimensions) = (name.as_str().unwrap(), dimensions.as_object().unwrap());
        let statistic = statistic.as_str().unwrap();
        assert!(
            ["Sum", "Average", "Minimum", "Maximum", "SampleCount"].contains(&statistic)
                || statistic.strip_prefix('p').is_some_and(|p| p.parse::<f64>().is_ok()),
            "{place}: {statistic}"
        );
        match namespace.as_str().unwrap() {
            "VaultStream" => {
                let catalogued = catalogue.get(name).unwrap_or_else(|| panic!("{place} reads {name}, which nothing emits"));
                let keys: Vec<String> = dimensions.keys().cloned().collect();
                assert!(
                    catalogued.dimensions.iter().any(|set| set.iter().cloned().collect::<BTreeSet<_>>() == keys.iter().cloned().collect()),
                    "{place} reads {name} by {keys:?}; it is published by {:?}",
                    catalogued.dimensions
                );
                for (key, value) in dimensions {
                    if let Some(known) = values.get(key.as_str()) {
                        assert!(known.contains(value.as_str().unwrap()), "{place}: {key}={value} is never emitted (one of {known:?})");
                    }
                }
            }
            "AWS/SQS" => {
                let queue = dimensions["QueueName"].as_str().unwrap();
                assert!(queues.contains(queue), "{place}: no queue {queue}");
            }
            other => panic!("{place}: namespace {other}"),
        }
    }
}
