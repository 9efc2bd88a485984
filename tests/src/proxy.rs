//! A loopback TCP proxy that kills a process once it has sent a given request a number of times:
//! how a test stops a transcode job in the middle of its upload, at an exact point, without any
//! hook in the transcoder.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

pub struct KillSwitch {
    /// Point the client here instead of at `upstream`.
    pub endpoint: String,
    /// The process to kill; set it once spawned.
    pub pid: Arc<AtomicU32>,
    pub seen: Arc<AtomicUsize>,
}

/// Forwards to `upstream` (`http://host:port`) and sends SIGKILL to `pid` when the bytes the
/// client sent contained `needle` for the `after`-th time (before that request is forwarded).
pub fn kill_after(upstream: &str, needle: &[u8], after: usize) -> KillSwitch {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    let pid = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let (p, s, needle) = (Arc::clone(&pid), Arc::clone(&seen), needle.to_vec());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else { continue };
            let (p, s, needle) = (Arc::clone(&p), Arc::clone(&s), needle.clone());
            let (mut client_read, mut server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_read, &mut client_write);
            });
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; 64 * 1024];
                let mut tail: Vec<u8> = Vec::new();
                loop {
                    let n = match client_read.read(&mut buffer) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    // Count needles across read boundaries: keep the last needle-1 bytes.
                    let mut window = std::mem::take(&mut tail);
                    window.extend_from_slice(&buffer[..n]);
                    let found = window.windows(needle.len()).filter(|w| *w == needle.as_slice()).count();
                    tail = window[window.len().saturating_sub(needle.len() - 1)..].to_vec();
                    if found > 0 && s.fetch_add(found, Ordering::SeqCst) + found >= after {
                        let pid = p.load(Ordering::SeqCst);
                        if pid != 0 {
                            // SAFETY: kill(2) on a pid this test spawned.
                            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                        }
                        return;
                    }
                    if server_write.write_all(&buffer[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    KillSwitch { endpoint, pid, seen }
}
