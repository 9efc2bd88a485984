//! One moto server (AWS wire-protocol emulator) per test binary, on a free loopback port.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use aws_sdk_dynamodb::config::{Credentials, Region};

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// The endpoint URL of this test binary's moto server, starting it on first use.
pub fn endpoint() -> &'static str {
    ENDPOINT.get_or_init(|| {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/emulator/serve.py");
        let python = std::env::var("VAULTSTREAM_PYTHON").unwrap_or_else(|_| "python3".into());
        // Never waited on: the server polls its parent and exits with the test binary.
        #[allow(clippy::zombie_processes)]
        let mut child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with moto[server] (scripts/install-deps.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("moto's ready line");
        assert_eq!(line.trim(), "ready", "moto did not start; is moto[server] installed? (pip install -r cli/emulator/requirements.txt)");
        let endpoint = format!("http://127.0.0.1:{port}");
        configure(&endpoint);
        endpoint
    })
}

/// `vaultstream ARGS` as an operator runs it against a deployment: AWS settings from the
/// environment, here pointed at this binary's moto.
pub fn operator_cli(args: &[&str]) -> std::process::Output {
    Command::new(crate::workspace_binary("vaultstream"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run vaultstream")
}

/// SDK configuration pointed at moto, with throwaway static credentials.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// moto's Batch runs jobs in Docker unless told not to; without it, submitted jobs are marked
/// SUCCEEDED at once and the tests (or the local stack) run each job's command themselves.
fn configure(endpoint: &str) {
    let body = r#"{"batch":{"use_docker":false}}"#;
    let request = format!("POST /moto-api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("moto accepts connections");
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("configure moto");
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).expect("moto answers");
    assert!(response.starts_with("HTTP/1.1 20"), "moto refused its Batch configuration: {response}");
}
