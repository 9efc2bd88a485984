//! The telemetry gate: every function in infra/contract.json, run as its built binary under a
//! local Lambda runtime API and given its events/ fixture, must write
//! - JSON log lines, one of which sits in the invocation's span: the function, the request id
//!   and the X-Ray trace id the runtime API handed over;
//! - one valid CloudWatch EMF document with its RED metrics for that request, and only metrics
//!   that infra/contract.json's `observability.metrics` lists, with the same unit and dimension
//!   sets (what the dashboard and the alarms read);
//! - at least one X-Ray segment document, sent to the daemon address it was given, continuing the
//!   invocation's trace: its trace id, and Lambda's segment as the parent;
//! - no credential of the event (authorization or cookie header, token parameter) and not the
//!   service secret in any line.
//!
//! A function that is silent fails the test command; the gate's own check is shown refusing a
//! stand-in that answers the runtime API without a word.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use vaultstream_tests::observability;
use vaultstream_tests::runtime_api::{RuntimeApi, REQUEST_ID};
use vaultstream_tests::stack::Stack;

const LAMBDA_SEGMENT: &str = "53995c3f42cd8ad8";
/// The trace Lambda hands over, started now: X-Ray drops trace ids older than 30 days.
static TRACE_ROOT: LazyLock<String> = LazyLock::new(|| format!("1-{:08x}-0123456789abcdef01234567", vaultstream::clock::now_seconds()));
static TRACE_ID: LazyLock<String> = LazyLock::new(|| format!("Root={};Parent={LAMBDA_SEGMENT};Sampled=1", *TRACE_ROOT));

/// What one invocation left: stdout lines, what it posted back, and the X-Ray documents the
/// daemon address received; and what must never appear in its lines.
struct Observed {
    lines: Vec<String>,
    answered: Option<(String, String)>,
    segments: Vec<Value>,
    secrets: Vec<String>,
}

/// The credentials in an event: authorization and cookie headers, token parameters.
fn credentials_in(event: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(String::new(), event)];
    while let Some((key, value)) = stack.pop() {
        match value {
            Value::Object(map) => stack.extend(map.iter().map(|(k, v)| (k.to_ascii_lowercase(), v))),
            Value::Array(items) => stack.extend(items.iter().map(|v| (key.clone(), v))),
            Value::String(text) if ["authorization", "cookie", "cookies", "token"].contains(&key.as_str()) => {
                let bare = text.strip_prefix("Bearer ").unwrap_or(text);
                found.extend(bare.split(';').map(|part| part.split_once('=').map_or(part, |(_, v)| v).trim().to_string()));
            }
            _ => {}
        }
    }
    found.retain(|c| c.len() >= 12);
    found
}

/// Runs `binary` with `env` against a runtime API serving `event`, with an X-Ray daemon address
/// listening on 127.0.0.1.
async fn invoke(binary: &Path, env: &[(String, String)], event: Vec<u8>) -> Observed {
    let api = RuntimeApi::start(event, TRACE_ID.clone()).await;
    let daemon = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let daemon_address = daemon.local_addr().unwrap().to_string();
    let segments = Arc::new(Mutex::new(Vec::new()));
    let received = Arc::clone(&segments);
    let listening = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = daemon.recv(&mut buf).await {
            // `{"format":"json","version":1}` then the document, as the daemon protocol has it.
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(document) = text.split_once('\n').and_then(|(_, body)| serde_json::from_str::<Value>(body).ok()) {
                received.lock().unwrap().push(document);
            }
        }
    });
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(api.lambda_env())
        .env("AWS_XRAY_DAEMON_ADDRESS", &daemon_address)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let collected = Arc::clone(&lines);
    let reading = tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            collected.lock().unwrap().push(line);
        }
    });
    api.wait_for_answers(1, Duration::from_secs(60)).await;
    // What the invocation writes after answering (its metrics line) gets a moment to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill().await;
    let _ = reading.await;
    listening.abort();
    let lines = lines.lock().unwrap().clone();
    let answered = api.timeline().posted.first().map(|p| (p.request.clone(), p.body.clone()));
    let segments = segments.lock().unwrap().clone();
    Observed { lines, answered, segments, secrets: Vec::new() }
}

/// The gate's rule; the error says what is missing.
fn check(function: &str, Observed { lines, answered, segments, secrets }: &Observed) -> Result<(), String> {
    if let Some(secret) = secrets.iter().find(|s| lines.iter().any(|l| l.contains(s.as_str()))) {
        return Err(format!("{function}: a credential reached the logs: {}…", &secret[..8]));
    }
    match answered {
        Some((request, _)) if request.contains(&format!("/invocation/{REQUEST_ID}/")) => {}
        other => return Err(format!("{function}: the invocation was never answered ({other:?})")),
    }
    let mut parsed = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        parsed.push(serde_json::from_str::<Value>(line).map_err(|_| format!("{function}: a log line is not JSON: {line}"))?);
    }
    let in_span = |line: &Value| {
        line["spans"].as_array().is_some_and(|spans| {
            spans.iter().any(|s| {
                s["name"] == "invocation"
                    && s["function"] == function
                    && s["aws_request_id"] == REQUEST_ID
                    && s["trace_id"] == TRACE_ID.as_str()
            })
        })
    };
    if !parsed.iter().any(|l| l.get("_aws").is_none() && in_span(l)) {
        return Err(format!("{function}: no log line sits in a span with its function, request id and trace id: {lines:?}"));
    }
    let documents: Vec<&Value> = parsed.iter().filter(|l| l.get("_aws").is_some()).collect();
    let catalogue = observability::catalogue(&observability::contract());
    for document in &documents {
        vaultstream::emf::validate(document).map_err(|e| format!("{function}: invalid EMF document ({e}): {document}"))?;
        let problems = observability::problems(document, &catalogue);
        if !problems.is_empty() {
            return Err(format!("{function}: {}", problems.join("; ")));
        }
    }
    let document = documents
        .iter()
        .find(|d| d["RequestId"] == REQUEST_ID && d.get("Requests").is_some())
        .ok_or_else(|| format!("{function}: no EMF document for the invocation: {lines:?}"))?;
    for metric in ["Requests", "Errors", "ClientErrors", "Duration"] {
        let named = document["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().is_some_and(|m| m.iter().any(|x| x["Name"] == metric));
        if !named || document["Function"] != function {
            return Err(format!("{function}: the EMF document lacks {metric} for Function={function}: {document}"));
        }
    }
    if !segments.iter().any(|s| s["trace_id"] == TRACE_ROOT.as_str() && s["parent_id"] == LAMBDA_SEGMENT) {
        return Err(format!("{function}: no span of the invocation reached the X-Ray daemon in its trace: {segments:?}"));
    }
    Ok(())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

#[tokio::test]
async fn every_function_writes_logs_metrics_and_trace_context() {
    let stack = Stack::provision().await;
    let mut env: Vec<(String, String)> = stack.env().vars().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", vaultstream_tests::moto::endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ] {
        env.push((k.into(), v.into()));
    }
    let contract: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("../infra/contract.json")).unwrap()).unwrap();
    let functions: Vec<&String> = contract["functions"].as_object().unwrap().keys().collect();
    assert!(functions.len() >= 10, "{functions:?}");
    let mut failures = Vec::new();
    for function in functions {
        let fixture = fixtures().join(format!("{function}.json"));
        let event = std::fs::read(&fixture).unwrap_or_else(|_| panic!("{function} has no events/{function}.json to run the gate with"));
        let mut secrets = credentials_in(&serde_json::from_slice(&event).unwrap());
        secrets.push(stack.service_secret_hex.clone());
        let mut observed = invoke(&vaultstream_tests::workspace_binary(function), &env, event).await;
        observed.secrets = secrets;
        if let Err(e) = check(function, &observed) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "the telemetry gate refuses:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn the_gate_refuses_a_silent_function() {
    let dir = tempfile::tempdir().unwrap();
    let silent = dir.path().join("silent");
    // Speaks the runtime API, answers the event, and says nothing.
    std::fs::write(
        &silent,
        "#!/bin/sh\nbase=\"http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation\"\n\
         id=$(curl -s -D - -o /dev/null \"$base/next\" | tr -d '\\r' | sed -n 's/^Lambda-Runtime-Aws-Request-Id: //ip')\n\
         curl -s -X POST -d '{}' \"$base/$id/response\" >/dev/null\nsleep 5\n",
    )
    .unwrap();
    std::fs::set_permissions(&silent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut observed = invoke(&silent, &[], b"{}".to_vec()).await;
    assert!(observed.answered.is_some(), "the stand-in answered the runtime API");
    let refusal = check("silent", &observed).unwrap_err();
    assert!(refusal.contains("no log line sits in a span"), "{refusal}");
    // And one that logs but emits no metrics is refused for that.
    let line = format!(
        r#"{{"level":"INFO","spans":[{{"name":"invocation","function":"silent","aws_request_id":"{REQUEST_ID}","trace_id":"{}"}}]}}"#,
        *TRACE_ID
    );
    observed.lines = vec![line.clone()];
    let refusal = check("silent", &observed).unwrap_err();
    assert!(refusal.contains("no EMF document"), "{refusal}");
    // And one that logs the caller's credential is refused for that, whatever else it does.
    let event = serde_json::json!({"headers": {"authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"}});
    observed.secrets = credentials_in(&event);
    observed.lines = vec![line.clone(), format!(r#"{{"level":"INFO","message":"token eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"}}"#)];
    let refusal = check("silent", &observed).unwrap_err();
    assert!(refusal.contains("a credential reached the logs"), "{refusal}");
    observed.secrets.clear();
    // And one whose metric no dashboard or alarm knows is refused for that.
    let stray = format!(
        r#"{{"_aws":{{"Timestamp":1,"CloudWatchMetrics":[{{"Namespace":"VaultStream","Dimensions":[["Function"]],"Metrics":[{{"Name":"Requests","Unit":"Count"}},{{"Name":"Hits","Unit":"Count"}}]}}]}},"Function":"silent","Requests":1,"Hits":1,"RequestId":"{REQUEST_ID}"}}"#
    );
    observed.lines = vec![line.clone(), stray];
    let refusal = check("silent", &observed).unwrap_err();
    assert!(refusal.contains("Hits is not in infra/contract.json's observability.metrics"), "{refusal}");
    // And one with logs and metrics whose spans never reach X-Ray is refused for that.
    let metrics = format!(
        r#"{{"_aws":{{"Timestamp":1,"CloudWatchMetrics":[{{"Namespace":"VaultStream","Dimensions":[["Function"]],"Metrics":[{{"Name":"Requests","Unit":"Count"}},{{"Name":"Errors","Unit":"Count"}},{{"Name":"ClientErrors","Unit":"Count"}},{{"Name":"Duration","Unit":"Milliseconds"}}]}}]}},"Function":"silent","Requests":1,"Errors":0,"ClientErrors":0,"Duration":1,"RequestId":"{REQUEST_ID}"}}"#
    );
    observed.lines = vec![line, metrics];
    let refusal = check("silent", &observed).unwrap_err();
    assert!(refusal.contains("no span of the invocation reached the X-Ray daemon"), "{refusal}");
}
