//! A Lambda runtime API (2018-06-01) on 127.0.0.1 serving one event a given number of times, then
//! holding further polls open: what the telemetry gate and the cold-start bench run a function
//! binary against. It notes when the process first polled (its init is over), when each event
//! went out and when each answer came.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The first invocation's request id.
pub const REQUEST_ID: &str = "gate-request-1";

/// The request id of invocation `n` (counted from 0).
pub fn request_id(n: usize) -> String {
    format!("gate-request-{}", n + 1)
}

#[derive(Debug, Clone)]
pub struct Posted {
    pub at: Instant,
    /// `POST /2018-06-01/runtime/…`: a response, an error or an init error.
    pub request: String,
    pub body: String,
}

#[derive(Debug, Default, Clone)]
pub struct Timeline {
    /// The first `GET …/invocation/next`: the process finished its init.
    pub first_poll: Option<Instant>,
    /// When each invocation's event was written to the process, in order.
    pub served: Vec<Instant>,
    /// What the process posted, in order.
    pub posted: Vec<Posted>,
}

impl Timeline {
    /// What the process answered to invocation `n`.
    pub fn answer(&self, n: usize) -> Option<&Posted> {
        let path = format!("/invocation/{}/", request_id(n));
        self.posted.iter().find(|p| p.request.contains(&path))
    }

    fn init_failed(&self) -> bool {
        self.posted.iter().any(|p| p.request.contains("/init/error"))
    }
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
        Self::serving(event, trace_header, 1).await
    }

    /// Serves `event` `invocations` times, each with its own request id ([`request_id`]).
    pub async fn serving(event: Vec<u8>, trace_header: String, invocations: usize) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let (timeline_, event, trace_header) = (Arc::clone(&timeline), Arc::new(event), Arc::new(trace_header));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (timeline, event, trace_header) = (Arc::clone(&timeline_), Arc::clone(&event), Arc::clone(&trace_header));
                tokio::spawn(async move {
                    // An event leaves in one segment, not held back by Nagle's algorithm until
                    // the client's delayed ACK (40 ms) for an earlier one.
                    let _ = stream.set_nodelay(true);
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    while let Some((request, body)) = read_request(&mut reader).await {
                        if request.starts_with("GET ") && request.ends_with("/invocation/next") {
                            let n = {
                                let mut timeline = timeline.lock().unwrap();
                                timeline.first_poll.get_or_insert_with(Instant::now);
                                timeline.served.len()
                            };
                            if n == invocations {
                                // Every event is out: the next poll waits until the process is stopped.
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                return;
                            }
                            let mut message = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                                 Lambda-Runtime-Aws-Request-Id: {}\r\nLambda-Runtime-Deadline-Ms: 9999999999999\r\n\
                                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:gate\r\n\
                                 Lambda-Runtime-Trace-Id: {trace_header}\r\n\r\n",
                                event.len(),
                                request_id(n)
                            )
                            .into_bytes();
                            message.extend_from_slice(&event);
                            // Noted before the write, which a fast handler's answer may overtake.
                            timeline.lock().unwrap().served.push(Instant::now());
                            let _ = write.write_all(&message).await;
                        } else {
                            timeline.lock().unwrap().posted.push(Posted { at: Instant::now(), request, body });
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

    /// Waits up to `limit` for the answers to the first `invocations`, or for an init error.
    pub async fn wait_for_answers(&self, invocations: usize, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let done = |t: &Timeline| t.init_failed() || (0..invocations).all(|n| t.answer(n).is_some());
        while !done(&self.timeline.lock().unwrap()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
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
