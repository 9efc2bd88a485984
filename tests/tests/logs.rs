//! A log capture over a whole playback: no key, token, signature or secret in any line. In a
//! test binary of its own, because tracing's per-thread subscriber and its global callsite cache
//! do not mix with other tests running beside it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::Algorithm;
use vaultstream_tests::flow::*;
use vaultstream_tests::stack::{claims, Stack};

/// Collects every log line the functions write.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_key_or_token_reaches_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let published = publish(&stack, "acme", "logged").await;
    let jwt = stack.jwt(Algorithm::RS256, &claims("acme", "v", "content:read", "sess-log"));
    let seen = play(&f, &jwt, "logged").await;
    // Some refusals too, so their log lines are covered.
    let _ = get(&f, &seen.key_url.replace("/logged/", "/other/"), &[]).await;
    let _ = authorize(&f, &format!("{jwt}x")).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("key delivered") && logs.contains("\"request_id\""), "the functions did log ({} bytes)", logs.len());
    assert!(logs.contains("\"tenant\":\"acme\"") && logs.contains("\"content_id\":\"logged\""));
    let key = hex::decode(&published.key_hex).unwrap();
    let playback_token = seen.playback["manifest_url"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
    let key_token = seen.key_url.split("token=").nth(1).unwrap().to_string();
    let forbidden = [
        published.key_hex.clone(),
        published.key_hex.to_uppercase(),
        STANDARD.encode(&key),
        URL_SAFE_NO_PAD.encode(&key),
        jwt.clone(),
        jwt.split('.').nth(2).unwrap().to_string(),
        playback_token.split('.').nth(1).unwrap().to_string(),
        key_token.split('.').nth(1).unwrap().to_string(),
        seen.playback["cookies"]["CloudFront-Signature"].as_str().unwrap()[..40].to_string(),
        seen.session_cookie.split('.').nth(1).unwrap().to_string(),
        stack.service_secret_hex.clone(),
    ];
    for secret in &forbidden {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs: {}…", &secret[..8]);
    }
}
