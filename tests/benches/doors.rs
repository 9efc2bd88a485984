//! Each door content enters by, timed from the file landing in it to the title being `QUEUED`
//! (the upload accepted and its transcode job submitted), on the local stack (`vaultstream dev`:
//! moto, the ingest queue poller, dispatch, the local job runner):
//! - `put`: a presigned PUT, the reference every other door is compared with;
//! - `form`: the same file posted as a form (S3 POST policy) with curl, as a browser would;
//! - `multipart`: a file above the multipart threshold, its parts and the completion call;
//! - `watch`: a file renamed into a folder `vaultstream ingest watch` watches: readiness, the
//!   agent's declaration and upload, then the same path;
//! - `import`: `POST /v1/content/import` naming the file on a web server on 127.0.0.1: the
//!   import queue, the fetch into the source bucket, then the same path;
//! - `feed`: a new item published in a feed the tenant follows: the next scheduled poll (every
//!   2 s here, 15 minutes in AWS, so up to one interval of waiting), the import, the same path;
//! - `s3 bucket`, `gcs bucket`: an object written into a monitored bucket (a customer's S3
//!   bucket in the stack's moto; a GCS bucket in gcp-storage-emulator): the next scheduled poll
//!   (every 2 s here, 15 minutes in AWS), the import with the monitor's access, the same path;
//! - `ftps`: a file stored with curl over FTPS in the tenant's drop zone: the finished upload,
//!   the import moving it out of the drop zone, the same path.
//!
//! For the API doors the clock starts when the last byte is accepted (S3's answer, or the
//! completion's); for the watch folder when the file appears in the folder; for an import when
//! the request is sent (the file is already on its server); for a feed when the item is published;
//! for a monitored bucket when the bucket's write returns; for the drop zone when curl's upload
//! returns (after the server's 226). `ROUNDS` (default 5)
//! files per door, each timed on an idle stack (nothing queued or transcoding); medians, and
//! each door's ratio to `put`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vaultstream_tests::gcs::GcsEmulator;
use vaultstream_tests::local::{mint, Running, MULTIPART_THRESHOLD};
use vaultstream_tests::origin::Server;
use vaultstream_tests::workspace_binary;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A one-second clip; `tag` makes its bytes differ from every other tag's (the watch agent
/// delivers the same bytes once only).
fn clip(path: &Path, tag: &str) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-metadata", &format!("comment={tag}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// A GET of the API as the bench's creator.
    async fn get(&self, path: &str) -> Value {
        self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.unwrap().json().await.unwrap()
    }

    async fn declare(&self, title: &str, size: usize, method: Option<&str>) -> Value {
        let mut body = json!({"title": title, "filename": "clip.mp4", "content_type": "video/mp4", "size_bytes": size});
        if let Some(method) = method {
            body["upload_method"] = json!(method);
        }
        let response =
            self.http.post(format!("{}/v1/content/upload", self.base)).bearer_auth(&self.token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Seconds from `since` until the title is past `AWAITING_UPLOAD`, polled every 50 ms (more often, the polling itself loads the emulator being timed).
    async fn until_queued(&self, content_id: &str, since: Instant) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let view = self.get(&format!("/v1/content/{content_id}")).await;
            if view["status"] != "AWAITING_UPLOAD" {
                assert_ne!(view["status"], "FAILED_INVALID", "{view}");
                return since.elapsed().as_secs_f64();
            }
            assert!(Instant::now() < deadline, "not queued within a minute: {view}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn put(&self, bytes: &[u8]) -> f64 {
        let grant = self.declare("put", bytes.len(), None).await;
        let upload = &grant["upload"];
        let response =
            self.http.put(upload["url"].as_str().unwrap()).header("content-type", "video/mp4").body(bytes.to_vec()).send().await.unwrap();
        assert!(response.status().is_success());
        let landed = Instant::now();
        self.until_queued(grant["content_id"].as_str().unwrap(), landed).await
    }

    async fn form(&self, file: &Path, size: usize) -> f64 {
        let grant = self.declare("form", size, Some("POST")).await;
        let upload = &grant["upload"];
        let mut curl = Command::new("curl");
        curl.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"]);
        for (name, value) in upload["fields"].as_object().unwrap() {
            curl.arg("--form-string").arg(format!("{name}={}", value.as_str().unwrap()));
        }
        curl.arg("-F").arg(format!("file=@{}", file.display())).arg(upload["url"].as_str().unwrap());
        let out = curl.output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "204", "{}", String::from_utf8_lossy(&out.stderr));
        let landed = Instant::now();
        self.until_queued(grant["content_id"].as_str().unwrap(), landed).await
    }

    async fn multipart(&self, bytes: &[u8]) -> f64 {
        let grant = self.declare("multipart", bytes.len(), None).await;
        let upload = &grant["upload"];
        assert_eq!(upload["method"], "MULTIPART", "{grant}");
        let part_size = upload["part_size"].as_u64().unwrap() as usize;
        let mut parts = Vec::new();
        for (chunk, part) in bytes.chunks(part_size).zip(upload["parts"].as_array().unwrap()) {
            let response = self.http.put(part["url"].as_str().unwrap()).body(chunk.to_vec()).send().await.unwrap();
            let etag = response.headers()["etag"].to_str().unwrap().to_string();
            parts.push(json!({"part_number": part["part_number"], "etag": etag}));
        }
        let content_id = grant["content_id"].as_str().unwrap();
        let response = self
            .http
            .post(format!("{}/v1/content/{content_id}/upload/complete", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"upload_id": upload["upload_id"], "parts": parts}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let landed = Instant::now();
        self.until_queued(content_id, landed).await
    }

    async fn import(&self, url: &str) -> f64 {
        let sent = Instant::now();
        let response = self
            .http
            .post(format!("{}/v1/content/import", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"url": url, "title": "import"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let accepted: Value = response.json().await.unwrap();
        self.until_queued(accepted["content_id"].as_str().unwrap(), sent).await
    }

    /// Seconds from publishing an item titled `title` in the followed feed until its title is
    /// queued.
    async fn feed(&self, origin: &Server, round: usize, items: &mut String) -> f64 {
        let title = format!("feed-{round}");
        items.insert_str(
            0,
            &format!("<item><guid>{title}</guid><title>{title}</title><enclosure url=\"/clip.mp4?{round}\" type=\"video/mp4\"/></item>"),
        );
        let rss = format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Bench</title>{items}</channel></rss>");
        origin.set("/bench.rss", "200 OK\r\ncontent-type: application/rss+xml", rss.into_bytes());
        let published = Instant::now();
        let deadline = published + Duration::from_secs(60);
        loop {
            let list = self.get("/v1/content?limit=5").await;
            let found = list["items"].as_array().into_iter().flatten().find(|i| i["title"] == title.as_str()).cloned();
            if let Some(item) = found.filter(|i| i["status"] != "AWAITING_UPLOAD") {
                assert_ne!(item["status"], "FAILED_INVALID", "{item}");
                return published.elapsed().as_secs_f64();
            }
            assert!(Instant::now() < deadline, "the feed item was not queued within a minute: {list}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Seconds from `landed` until a title named `title` is queued.
    async fn until_titled_queued(&self, title: &str, landed: Instant) -> f64 {
        let deadline = landed + Duration::from_secs(60);
        loop {
            let list = self.get("/v1/content?limit=5").await;
            let found = list["items"].as_array().into_iter().flatten().find(|i| i["title"] == title).cloned();
            if let Some(item) = found.filter(|i| i["status"] != "AWAITING_UPLOAD") {
                assert_ne!(item["status"], "FAILED_INVALID", "{item}");
                return landed.elapsed().as_secs_f64();
            }
            assert!(Instant::now() < deadline, "{title} was not queued within a minute: {list}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Seconds from curl's FTPS upload of `file` as `name` (the server's 226) until its title is
    /// queued.
    async fn ftps(&self, ftp_url: &str, file: &Path, name: &str) -> f64 {
        let target = format!("{}/{name}", ftp_url.replacen("ftps://", "ftp://", 1));
        let status = Command::new("curl")
            .args(["-sS", "--ssl-reqd", "-k", "-T"])
            .arg(file)
            .arg(&target)
            .args(["--user", &format!("demo:{}", self.token)])
            .status()
            .unwrap();
        let landed = Instant::now();
        assert!(status.success(), "curl could not store {name} in the drop zone");
        self.until_titled_queued(name.trim_end_matches(".mp4"), landed).await
    }

    /// Connects a monitor; panics unless it is created.
    async fn monitor(&self, request: Value) {
        let response = self.http.post(format!("{}/v1/monitors", self.base)).bearer_auth(&self.token).json(&request).send().await.unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }

    /// Waits until no title is queued or transcoding, so each door is timed on an idle stack
    /// (the local job runner transcodes what the doors before it queued).
    async fn idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let list = self.get("/v1/content?limit=100").await;
            let busy =
                list["items"].as_array().into_iter().flatten().any(|i| matches!(i["status"].as_str(), Some("QUEUED" | "PROCESSING")));
            if !busy {
                // After each job the stack snapshots the emulator, which holds moto up for a
                // moment: let it finish before the clock starts.
                tokio::time::sleep(Duration::from_secs(2)).await;
                return;
            }
            assert!(Instant::now() < deadline, "the stack is still transcoding after two minutes");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let root = tempfile::tempdir().unwrap();
    let state_dir = root.path().join("stack");
    let gcs = GcsEmulator::start().await;
    gcs.create_bucket("bench-masters").await;
    let stack = Running::start_with(
        "dev",
        &state_dir,
        &["--import-allow-loopback"],
        &[("VAULTSTREAM_GCS_ENDPOINT", &gcs.url), ("VAULTSTREAM_MONITOR_POLL_SECONDS", "2")],
    );
    let api = Api {
        http: reqwest::Client::new(),
        base: stack.url("api_url"),
        token: mint(&state_dir, "demo", "bench", "admin content:write content:read"),
    };
    let s3 = {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(stack.url("emulator_url"))
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "customer"))
            .load()
            .await;
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build())
    };
    s3.create_bucket().bucket("bench-media").send().await.unwrap();
    api.monitor(json!({"provider": "s3", "bucket": "bench-media", "prefix": "in/", "role_arn": "arn:aws:iam::210987654321:role/Bench"}))
        .await;
    let key = json!({"type": "service_account", "client_email": "bench@example.iam.gserviceaccount.com",
                     "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n"});
    api.monitor(json!({"provider": "gcs", "bucket": "bench-masters", "prefix": "in/", "service_account_key": key})).await;
    let small = root.path().join("clip.mp4");
    clip(&small, "api");
    let bytes = std::fs::read(&small).unwrap();
    // Above the threshold the stack runs with: two parts. Not a video (nothing waits on the
    // transcode here), but dispatch must take it: it only reads the head, and this one is the clip.
    let mut large = bytes.clone();
    large.resize(MULTIPART_THRESHOLD as usize + (1 << 20), 0);
    let origin = Server::start([("/clip.mp4".to_string(), ("200 OK\r\ncontent-type: video/mp4".to_string(), bytes.clone()))].into()).await;

    let token_file = root.path().join("token");
    std::fs::write(&token_file, &api.token).unwrap();
    let folder = root.path().join("dropbox");
    std::fs::create_dir(&folder).unwrap();
    let mut agent = Command::new(workspace_binary("vaultstream"))
        .args(["ingest", "watch"])
        .arg(&folder)
        .args(["--api", &api.base, "--token-file"])
        .arg(&token_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The agent says which content each file became; asking the API instead, while it uploads,
    // would slow the very stack being timed.
    let (uploaded_tx, uploaded) = std::sync::mpsc::channel::<Value>();
    let stdout = agent.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                if event["event"] == "uploaded" && uploaded_tx.send(event).is_err() {
                    break;
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    origin.set(
        "/bench.rss",
        "200 OK\r\ncontent-type: application/rss+xml",
        b"<rss version=\"2.0\"><channel><title>Bench</title></channel></rss>".to_vec(),
    );
    let followed = api
        .http
        .post(format!("{}/v1/feeds", api.base))
        .bearer_auth(&api.token)
        .json(&json!({"url": origin.url("/bench.rss")}))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), 201);
    let mut items = String::new();
    let (mut put, mut form, mut multipart, mut watch, mut import, mut feed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut s3_bucket, mut gcs_bucket, mut ftps) = (Vec::new(), Vec::new(), Vec::new());
    let ftp_url = stack.url("ftp_url");
    for round in 0..rounds {
        api.idle().await;
        put.push(api.put(&bytes).await);
        api.idle().await;
        form.push(api.form(&small, bytes.len()).await);
        api.idle().await;
        multipart.push(api.multipart(&large).await);
        api.idle().await;
        // A rename into the folder: the file appears whole, as copy tools leave it.
        let staged = root.path().join(format!("watch-{round}.mp4"));
        clip(&staged, &format!("watch-{round}"));
        std::fs::rename(&staged, folder.join(format!("watch-{round}.mp4"))).unwrap();
        let landed = Instant::now();
        let event = uploaded.recv_timeout(Duration::from_secs(30)).expect("the agent uploaded the file");
        assert_eq!(event["file"], format!("watch-{round}.mp4"), "{event}");
        let content_id = event["content_id"].as_str().unwrap().to_string();
        watch.push(api.until_queued(&content_id, landed).await);
        api.idle().await;
        import.push(api.import(&origin.url("/clip.mp4")).await);
        api.idle().await;
        feed.push(api.feed(&origin, round, &mut items).await);
        api.idle().await;
        let title = format!("s3-{round}");
        s3.put_object().bucket("bench-media").key(format!("in/{title}.mp4")).body(bytes.clone().into()).send().await.unwrap();
        s3_bucket.push(api.until_titled_queued(&title, Instant::now()).await);
        api.idle().await;
        let title = format!("gcs-{round}");
        gcs.put("bench-masters", &format!("in/{title}.mp4"), "video/mp4", bytes.clone()).await;
        gcs_bucket.push(api.until_titled_queued(&title, Instant::now()).await);
        api.idle().await;
        ftps.push(api.ftps(&ftp_url, &small, &format!("ftps-{round}.mp4")).await);
    }
    let _ = agent.kill();
    let _ = agent.wait();
    let reference = median(put.clone());
    println!("{:<11} {:>16} {:>9}   each round (ms)", "door", "landed→QUEUED ms", "vs put");
    let doors = [
        ("put", put),
        ("form", form),
        ("multipart", multipart),
        ("watch", watch),
        ("import", import),
        ("feed", feed),
        ("s3 bucket", s3_bucket),
        ("gcs bucket", gcs_bucket),
        ("ftps", ftps),
    ];
    for (door, samples) in doors {
        let each: Vec<String> = samples.iter().map(|s| format!("{:.0}", s * 1e3)).collect();
        let ms = median(samples) * 1e3;
        println!("{door:<11} {ms:>16.0} {:>8.2}x   {}", ms / (reference * 1e3), each.join(" "));
    }
    println!("(medians of {rounds} per door, one run, the local stack; QUEUED = upload accepted and its job submitted)");
    drop(stack);
}
