//! A Lambda runtime API (2018-06-01) on 127.0.0.1 serving one event, then holding further polls
//! open: what the telemetry gate and the cold-start bench run a function binary against. It
//! notes when the process first polled (its init is over) and when the answer came.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The invocation's request id.
pub const REQUEST_ID: &str = "gate-request-1";

#[derive(Debug, Default, Clone)]
pub struct Timeline {
    /// The first `GET …/invocation/next`: the process finished its init.
    pub first_poll: Option<Instant>,
    /// The event was written to the process.
    pub served: Option<Instant>,
    /// The process posted its answer.
    pub answered: Option<Instant>,
    /// The path and body of what it posted (response, error or init error).
    pub answer: Option<(String, String)>,
}

pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    pub timeline: Arc<Mutex<Timeline>>,
}

async fn read_request(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<(String, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((format!("{method} {path}"), String::from_utf8_lossy(&body).into_owned()))
}

impl RuntimeApi {
    /// Serves `event` once, handing over `trace_header` as `Lambda-Runtime-Trace-Id`.
    pub async fn start(event: Vec<u8>, trace_header: String) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let served = Arc::new(Mutex::new(false));
        let (timeline_, event, trace_header) = (Arc::clone(&timeline), Arc::new(event), Arc::new(trace_header));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (timeline, served, event, trace_header) =
                    (Arc::clone(&timeline_), Arc::clone(&served), Arc::clone(&event), Arc::clone(&trace_header));
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    while let Some((request, body)) = read_request(&mut reader).await {
                        if request.starts_with("GET ") && request.ends_with("/invocation/next") {
                            timeline.lock().unwrap().first_poll.get_or_insert_with(Instant::now);
                            if std::mem::replace(&mut *served.lock().unwrap(), true) {
                                // One event only: the next poll waits until the process is stopped.
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                return;
                            }
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                                 Lambda-Runtime-Aws-Request-Id: {REQUEST_ID}\r\nLambda-Runtime-Deadline-Ms: 9999999999999\r\n\
                                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:gate\r\n\
                                 Lambda-Runtime-Trace-Id: {trace_header}\r\n\r\n",
                                event.len()
                            );
                            let _ = write.write_all(head.as_bytes()).await;
                            let _ = write.write_all(&event).await;
                            timeline.lock().unwrap().served = Some(Instant::now());
                        } else {
                            {
                                let mut timeline = timeline.lock().unwrap();
                                timeline.answered = Some(Instant::now());
                                timeline.answer = Some((request, body));
                            }
                            let _ = write.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").await;
                        }
                    }
                });
            }
        });
        RuntimeApi { address, timeline }
    }

    pub fn timeline(&self) -> Timeline {
        self.timeline.lock().unwrap().clone()
    }

    /// Waits up to `limit` for the answer.
    pub async fn wait_for_answer(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.timeline.lock().unwrap().answer.is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits up to `limit` for the process's first poll.
    pub async fn wait_for_first_poll(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.timeline.lock().unwrap().first_poll.is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// The environment a function process needs to talk to this API.
    pub fn lambda_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", "gate".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ]
    }
}
