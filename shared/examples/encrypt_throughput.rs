//! Segment encryption throughput (AES-128-CBC + PKCS7, in place), in the units `openssl speed`
//! prints: thousands of bytes per second per buffer size. Used by bench/encryption.sh.
//!
//! Usage: encrypt_throughput [SECONDS] [SIZE...]

use std::hint::black_box;
use std::time::{Duration, Instant};

use vaultstream::segment_cipher::{encrypt_segment_in_place, Iv};
use vaultstream::ContentKey;

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let sizes: Vec<usize> = args.filter_map(|s| s.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![16384, 1 << 20] } else { sizes };
    let key = ContentKey::from_hex("000102030405060708090a0b0c0d0e0f").expect("static key");
    let iv = Iv([7; 16]);
    for size in sizes {
        // Encrypted in place again and again, as the muxer's buffer is: no copy is timed.
        let mut buffer = vec![0x47u8; size];
        buffer.reserve(16);
        let budget = Duration::from_secs_f64(seconds);
        let started = Instant::now();
        let mut bytes = 0u64;
        while started.elapsed() < budget {
            for _ in 0..16 {
                encrypt_segment_in_place(&key, &iv, &mut buffer);
                black_box(&buffer);
                buffer.truncate(size);
                bytes += size as u64;
            }
        }
        let kbps = bytes as f64 / started.elapsed().as_secs_f64() / 1000.0;
        println!("{size} {kbps:.2}");
    }
}
