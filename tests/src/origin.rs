//! A web server on 127.0.0.1 that a URL import or a feed fetches from: fixed answers by path,
//! and a count of the requests each path received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server on 127.0.0.1 answering each path with its (status line and header lines, body),
/// and 404 elsewhere; it counts the requests per path.
pub struct Server {
    pub port: u16,
    routes: Arc<Mutex<Routes>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

pub type Routes = HashMap<String, (String, Vec<u8>)>;

impl Server {
    pub async fn start(routes: Routes) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (routes, hits) = (Arc::new(Mutex::new(routes)), Arc::new(Mutex::new(HashMap::new())));
        let (answers, counted) = (Arc::clone(&routes), Arc::clone(&hits));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (routes, hits) = (Arc::clone(&answers), Arc::clone(&counted));
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&request).lines().next().unwrap_or("").to_string();
                    let path = line.split(' ').nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
                    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let (head, body) = routes
                        .lock()
                        .unwrap()
                        .get(&path)
                        .cloned()
                        .unwrap_or_else(|| ("404 Not Found\r\ncontent-type: text/plain".into(), b"no".to_vec()));
                    let head = format!("HTTP/1.1 {head}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                });
            }
        });
        Server { port, routes, hits }
    }

    /// Answers `path` from now on with `head` (status line and header lines) and `body`.
    pub fn set(&self, path: &str, head: &str, body: Vec<u8>) {
        self.routes.lock().unwrap().insert(path.to_string(), (head.to_string(), body));
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// A slowloris on 127.0.0.1: every request is answered `200` (a video of 32 MiB, or what
/// [`Slowloris::serving`] says), then `every` bytes a second, until [`Slowloris::stop`]. It counts
/// the connections it holds open.
pub struct Slowloris {
    pub port: u16,
    open: Arc<std::sync::atomic::AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Slowloris {
    pub async fn start(every: usize) -> Slowloris {
        Self::serving(every, "video/mp4", 32 << 20).await
    }

    /// Claims `length` bytes of `content_type` and trickles them.
    pub async fn serving(every: usize, content_type: &'static str, length: usize) -> Slowloris {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let counted = Arc::clone(&open);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (open, mut stopped) = (Arc::clone(&counted), stopped.clone());
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    if socket.read(&mut request).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if *stopped.borrow() {
                        let _ = socket.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        return;
                    }
                    open.fetch_add(1, Ordering::SeqCst);
                    let head =
                        format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n");
                    let mut held = socket.write_all(head.as_bytes()).await.is_ok();
                    while held && !*stopped.borrow() {
                        held = socket.write_all(&vec![0x47u8; every]).await.is_ok();
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                            _ = stopped.changed() => {}
                        }
                    }
                    // Stopped: silent until the client gives up (a rate floor ends it for good).
                    let mut rest = [0u8; 1024];
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(120), socket.read(&mut rest)).await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Slowloris { port, open, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Connections being trickled to now.
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops: open connections fall silent (until the client closes them), new requests get 404.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}
