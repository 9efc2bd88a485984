//! A Google Cloud Storage emulator (PyPI's `gcp-storage-emulator`, in memory) on a free loopback
//! port, for the tests of bucket monitors; buckets and objects are made over its JSON API.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct GcsEmulator {
    child: Child,
    pub url: String,
}

impl GcsEmulator {
    pub async fn start() -> GcsEmulator {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port();
        let python = std::env::var("VAULTSTREAM_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .args(["-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", &port.to_string(), "--in-memory", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with gcp-storage-emulator (scripts/install-deps.sh installs it)");
        let emulator = GcsEmulator { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        while http.get(format!("{}/", emulator.url)).send().await.map(|r| r.status().is_success()).ok() != Some(true) {
            assert!(Instant::now() < deadline, "the GCS emulator did not start; pip install -r cli/emulator/requirements.txt");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        emulator
    }

    pub async fn create_bucket(&self, name: &str) {
        let response = reqwest::Client::new()
            .post(format!("{}/storage/v1/b?project=test", self.url))
            .header("content-type", "application/json")
            .body(serde_json::json!({"name": name}).to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "create bucket {name}: {}", response.status());
    }

    pub async fn put(&self, bucket: &str, name: &str, content_type: &str, body: Vec<u8>) {
        let mut url = reqwest::Url::parse(&format!("{}/upload/storage/v1/b/{bucket}/o", self.url)).unwrap();
        url.query_pairs_mut().append_pair("uploadType", "media").append_pair("name", name);
        let response = reqwest::Client::new().post(url).header("content-type", content_type).body(body).send().await.unwrap();
        assert!(response.status().is_success(), "upload {name}: {}", response.status());
    }
}

impl Drop for GcsEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
