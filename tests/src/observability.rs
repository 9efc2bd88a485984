//! infra/contract.json's `observability` section read back: the catalogue of metrics the code
//! may emit, and the check that an EMF document keeps to it.

use std::collections::BTreeMap;

use serde_json::Value;

/// A catalogued metric: its unit and dimension sets, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogued {
    pub unit: String,
    pub dimensions: Vec<Vec<String>>,
    /// `functions` or `transcoder`.
    pub from: String,
}

pub fn contract() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/contract.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("infra/contract.json")).expect("contract.json is JSON")
}

pub fn catalogue(contract: &Value) -> BTreeMap<String, Catalogued> {
    let metrics = contract["observability"]["metrics"].as_object().expect("observability.metrics");
    metrics
        .iter()
        .map(|(name, spec)| {
            let dimensions = spec["dimensions"]
                .as_array()
                .expect("dimensions")
                .iter()
                .map(|set| set.as_array().expect("a set").iter().map(|d| d.as_str().expect("a name").to_string()).collect())
                .collect();
            let text = |field: &str| spec[field].as_str().unwrap_or_else(|| panic!("{name}.{field}")).to_string();
            (name.clone(), Catalogued { unit: text("unit"), dimensions, from: text("from") })
        })
        .collect()
}

/// Each metric a document declares: (name, unit, dimension sets).
pub fn declared(document: &Value) -> Vec<(String, String, Vec<Vec<String>>)> {
    let mut out = Vec::new();
    for directive in document["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
        let sets: Vec<Vec<String>> = directive["Dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|set| set.as_array().into_iter().flatten().filter_map(|d| d.as_str().map(String::from)).collect())
            .collect();
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let name = metric["Name"].as_str().unwrap_or_default().to_string();
            let unit = metric["Unit"].as_str().unwrap_or("None").to_string();
            out.push((name, unit, sets.clone()));
        }
    }
    out
}

/// What in `document` the catalogue does not list: an unknown metric, another unit or other
/// dimension sets (a dashboard or an alarm reading the catalogue's would see nothing).
pub fn problems(document: &Value, catalogue: &BTreeMap<String, Catalogued>) -> Vec<String> {
    let mut problems = Vec::new();
    if document["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten().any(|d| d["Namespace"] != "VaultStream") {
        problems.push(format!("a directive is not in the VaultStream namespace: {document}"));
    }
    for (name, unit, sets) in declared(document) {
        match catalogue.get(&name) {
            None => problems.push(format!("{name} is not in infra/contract.json's observability.metrics")),
            Some(c) if c.unit != unit => problems.push(format!("{name} is emitted in {unit}, catalogued in {}", c.unit)),
            Some(c) if c.dimensions != sets => problems.push(format!("{name} is emitted by {sets:?}, catalogued by {:?}", c.dimensions)),
            Some(_) => {}
        }
    }
    problems
}
