//! CloudWatch Embedded Metric Format: one JSON log line that is both a log event and a set of
//! metrics CloudWatch extracts from it (no PutMetricData call, no agent in Lambda).
//!
//! The line carries an `_aws` member naming the namespace, the dimension sets and each metric's
//! name and unit; the dimension values and metric values are top-level members beside it, and
//! any other member is a searchable property of the log event.
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

/// The namespace every VaultStream metric is published under.
pub const NAMESPACE: &str = "VaultStream";

/// The units the specification allows (CloudWatch's `StandardUnit`), of which these are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    Bytes,
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// One EMF document under construction.
#[derive(Debug, Clone)]
pub struct Document {
    dimensions: Vec<(String, String)>,
    /// Further aggregations beside the one by every dimension: each a subset of the names.
    rollups: Vec<Vec<String>>,
    metrics: Vec<(String, Unit, f64)>,
    properties: Map<String, Value>,
}

impl Document {
    /// A document whose metrics are published for each of `dimensions` (name, value).
    pub fn new(dimensions: &[(&str, &str)]) -> Self {
        Document {
            dimensions: dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            rollups: Vec::new(),
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Publishes the metrics a second time aggregated by only these dimensions (none: one
    /// series over everything, what an alarm on a total reads).
    pub fn rollup(mut self, names: &[&str]) -> Self {
        self.rollups.push(names.iter().map(|n| n.to_string()).collect());
        self
    }

    pub fn metric(mut self, name: &str, unit: Unit, value: f64) -> Self {
        self.metrics.push((name.to_string(), unit, value));
        self
    }

    /// A member searchable in the log event, not a metric and not a dimension.
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_string(), value.into());
        self
    }

    /// The document at `timestamp_ms` (milliseconds since the epoch), as one JSON value.
    pub fn render(&self, timestamp_ms: u64) -> Value {
        serde_json::to_value(Rendered { document: self, timestamp_ms }).unwrap_or(Value::Null)
    }

    /// The same document as one line of JSON appended to `out`, written straight from the
    /// document (no JSON value built first: this runs on every invocation).
    pub fn write_line(&self, timestamp_ms: u64, out: &mut Vec<u8>) {
        if serde_json::to_writer(&mut *out, &Rendered { document: self, timestamp_ms }).is_ok() {
            out.push(b'\n');
        }
    }
}

/// A document at a timestamp, serialized as the specification lays it out: the properties, the
/// dimension values and the metric values as top-level members, and `_aws` describing them. A
/// property named like a dimension or a metric is left out (the dimension or metric wins).
struct Rendered<'a> {
    document: &'a Document,
    timestamp_ms: u64,
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let document = self.document;
        let taken = |name: &str| document.dimensions.iter().any(|(k, _)| k == name) || document.metrics.iter().any(|(k, ..)| k == name);
        let mut root = serializer.serialize_map(None)?;
        for (name, value) in document.properties.iter().filter(|(name, _)| !taken(name)) {
            root.serialize_entry(name, value)?;
        }
        for (name, value) in &document.dimensions {
            root.serialize_entry(name, value)?;
        }
        for (name, _, value) in &document.metrics {
            root.serialize_entry(name, value)?;
        }
        root.serialize_entry("_aws", &Aws(self))?;
        root.end()
    }
}

struct Aws<'a, 'b>(&'b Rendered<'a>);

impl Serialize for Aws<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut aws = serializer.serialize_map(Some(2))?;
        aws.serialize_entry("Timestamp", &self.0.timestamp_ms)?;
        aws.serialize_entry("CloudWatchMetrics", &[Directive(self.0.document)])?;
        aws.end()
    }
}

/// The one metric directive: namespace, dimension sets (every dimension, then the rollups),
/// and each metric's name and unit.
struct Directive<'a>(&'a Document);

impl Serialize for Directive<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let document = self.0;
        let every: Vec<&str> = document.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let rollups = document.rollups.iter().map(|names| names.iter().map(String::as_str).collect::<Vec<_>>());
        let sets: Vec<Vec<&str>> = std::iter::once(every).chain(rollups).collect();
        let metrics: Vec<MetricName> = document.metrics.iter().map(|(name, unit, _)| MetricName { name, unit: unit.as_str() }).collect();
        let mut directive = serializer.serialize_map(Some(3))?;
        directive.serialize_entry("Namespace", NAMESPACE)?;
        directive.serialize_entry("Dimensions", &sets)?;
        directive.serialize_entry("Metrics", &metrics)?;
        directive.end()
    }
}

#[derive(Serialize)]
struct MetricName<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Unit")]
    unit: &'a str,
}

/// Checks a document against the specification's rules; the error names the first one broken.
pub fn validate(document: &Value) -> Result<(), String> {
    const UNITS: [&str; 27] = [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let root = document.as_object().ok_or("the document is not a JSON object")?;
    let aws = root.get("_aws").and_then(Value::as_object).ok_or("no _aws object")?;
    aws.get("Timestamp").and_then(Value::as_u64).ok_or("_aws.Timestamp is not a non-negative integer (epoch milliseconds)")?;
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("_aws.CloudWatchMetrics is not an array")?;
    for directive in directives {
        let namespace = directive.get("Namespace").and_then(Value::as_str).ok_or("a directive has no Namespace string")?;
        if namespace.is_empty() || namespace.len() > 255 {
            return Err(format!("Namespace {namespace:?} is not 1 to 255 characters"));
        }
        let sets = directive.get("Dimensions").and_then(Value::as_array).ok_or("a directive has no Dimensions array")?;
        for set in sets {
            let names = set.as_array().ok_or("a dimension set is not an array")?;
            if names.len() > 30 {
                return Err("a dimension set has more than 30 dimensions".into());
            }
            for name in names {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                match root.get(name) {
                    Some(Value::String(v)) if !v.is_empty() && v.len() <= 1024 => {}
                    _ => return Err(format!("dimension {name:?} has no string value of 1 to 1024 characters at the root")),
                }
            }
        }
        let metrics = directive.get("Metrics").and_then(Value::as_array).ok_or("a directive has no Metrics array")?;
        if metrics.len() > 100 {
            return Err("a directive has more than 100 metrics".into());
        }
        for metric in metrics {
            let name = metric.get("Name").and_then(Value::as_str).ok_or("a metric has no Name string")?;
            if name.is_empty() || name.len() > 1024 {
                return Err(format!("metric name {name:?} is not 1 to 1024 characters"));
            }
            if let Some(unit) = metric.get("Unit") {
                let unit = unit.as_str().ok_or("a Unit is not a string")?;
                if !UNITS.contains(&unit) {
                    return Err(format!("metric {name}: {unit:?} is not a CloudWatch unit"));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values)) if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                _ => return Err(format!("metric {name} has no numeric value at the root")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_is_the_document_on_one_line_and_a_property_never_shadows_a_metric() {
        let document = Document::new(&[("Function", "manifest"), ("Action", "key.fetch")])
            .rollup(&[])
            .metric("Grants", Unit::Count, 2.0)
            .property("RequestId", "r-\"1\"\n")
            .property("Grants", "not a number")
            .property("Function", 7);
        let mut line = b"before\n".to_vec();
        document.write_line(1_795_400_000_000, &mut line);
        let text = String::from_utf8(line).unwrap();
        let written = text.strip_prefix("before\n").and_then(|t| t.strip_suffix('\n')).unwrap();
        assert!(!written.contains('\n'), "one line: {written}");
        let parsed: Value = serde_json::from_str(written).unwrap();
        assert_eq!(parsed, document.render(1_795_400_000_000));
        assert_eq!(validate(&parsed), Ok(()));
        assert_eq!((parsed["Grants"].as_f64(), parsed["Function"].as_str()), (Some(2.0), Some("manifest")));
        assert_eq!(parsed["RequestId"], "r-\"1\"\n");
        assert_eq!(parsed["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function", "Action"], []]));
    }

    #[test]
    fn a_document_is_valid_emf() {
        let doc = Document::new(&[("Function", "manifest")])
            .metric("Requests", Unit::Count, 1.0)
            .metric("Duration", Unit::Milliseconds, 12.5)
            .property("RequestId", "r-1")
            .render(1_795_400_000_000);
        assert_eq!(validate(&doc), Ok(()));
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "VaultStream");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function"]]));
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][1], json!({"Name": "Duration", "Unit": "Milliseconds"}));
        assert_eq!(
            (doc["Function"].as_str(), doc["Duration"].as_f64(), doc["RequestId"].as_str()),
            (Some("manifest"), Some(12.5), Some("r-1"))
        );
    }

    #[test]
    fn the_validator_refuses_what_cloudwatch_would_drop() {
        let good = Document::new(&[("Function", "f")]).metric("Requests", Unit::Count, 1.0).render(1);
        let broken = |edit: &dyn Fn(&mut Value)| {
            let mut doc = good.clone();
            edit(&mut doc);
            validate(&doc).unwrap_err()
        };
        assert!(broken(&|d| d["_aws"]["Timestamp"] = json!("now")).contains("Timestamp"));
        assert!(broken(&|d| d["Function"] = json!(3)).contains("dimension \"Function\""));
        assert!(broken(&|d| d["Requests"] = json!("one")).contains("metric Requests"));
        assert!(broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Requests")).contains("not a CloudWatch unit"));
        assert!(broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("")).contains("Namespace"));
        assert!(broken(&|d| {
            d.as_object_mut().unwrap().remove("_aws");
        })
        .contains("_aws"));
        assert!(broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([["Function", "Tenant"]])).contains("\"Tenant\""));
    }

    #[test]
    fn rollups_publish_the_same_values_under_fewer_dimensions() {
        let doc = Document::new(&[("Function", "dispatch"), ("Action", "content.dispatch")])
            .rollup(&["Action"])
            .rollup(&[])
            .metric("Decisions", Unit::Count, 2.0)
            .render(1);
        assert_eq!(validate(&doc), Ok(()));
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function", "Action"], ["Action"], []]));
        assert_eq!(doc["Decisions"], 2.0);
    }
}
