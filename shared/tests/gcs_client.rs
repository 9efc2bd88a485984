//! The GCS reader against a stand-in for Google on 127.0.0.1: it signs an RS256 assertion with the
//! service account's key for the read-only scope and the token endpoint it was given (never the
//! key's own `token_uri`), sends the access token it gets, keeps it per key (so a second key for
//! the same account, which might not work, never borrows the first one's token), and says what to
//! do when Google refuses. (The bucket monitor tests run the emulator, which asks for no token.)

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vaultstream::gcs::GcsClient;
use vaultstream::ingest::monitors::ServiceAccountKey;
use vaultstream::ingest::ports::FetchError;

/// An RSA key pair as PEM (PKCS#8 private, SPKI public), made with the openssl CLI.
fn key_pair(dir: &std::path::Path, name: &str) -> (String, String) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    assert!(Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&private)
        .status()
        .unwrap()
        .success());
    assert!(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&private).arg("-out").arg(&public).status().unwrap().success());
    (std::fs::read_to_string(private).unwrap(), std::fs::read_to_string(public).unwrap())
}

fn account(private_pem: &str) -> ServiceAccountKey {
    let json = serde_json::json!({
        "type": "service_account",
        "client_email": "sync@studio.iam.gserviceaccount.com",
        "private_key": private_pem,
        "token_uri": "http://169.254.169.254/token",
    });
    ServiceAccountKey::parse(&json.to_string()).map_err(|e| e.to_string()).unwrap()
}

/// What the stand-in saw and answers.
#[derive(Default)]
struct Google {
    /// The public key whose assertions get a token.
    trusted: String,
    token_requests: usize,
    /// Tokens handed out, and the Authorization headers storage requests carried.
    issued: Vec<String>,
    authorizations: Vec<String>,
}

async fn serve(google: Arc<Mutex<Google>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let google = google.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length || n == 0 {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&request).to_string();
                let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                let line = head.lines().next().unwrap_or("").to_string();
                let headers: HashMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
                    .collect();
                let (status, answer) = answer(&google, &line, &headers, body);
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

fn answer(google: &Mutex<Google>, line: &str, headers: &HashMap<String, String>, body: &str) -> (&'static str, String) {
    let mut google = google.lock().unwrap();
    if line.starts_with("POST /token ") {
        google.token_requests += 1;
        let assertion =
            url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "assertion").map(|(_, v)| v.into_owned()).unwrap_or_default();
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(google.trusted.as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[format!("http://{}/token", headers["host"])]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        return match jsonwebtoken::decode::<serde_json::Value>(&assertion, &key, &validation) {
            Ok(data) => {
                assert_eq!(data.claims["iss"], "sync@studio.iam.gserviceaccount.com");
                assert_eq!(data.claims["scope"], "https://www.googleapis.com/auth/devstorage.read_only");
                let token = format!("token-{}", google.token_requests);
                google.issued.push(token.clone());
                ("200 OK", serde_json::json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}).to_string())
            }
            Err(e) => ("400 Bad Request", serde_json::json!({"error": "invalid_grant", "error_description": e.to_string()}).to_string()),
        };
    }
    let authorization = headers.get("authorization").cloned().unwrap_or_default();
    google.authorizations.push(authorization.clone());
    if !google.issued.iter().any(|t| authorization == format!("Bearer {t}")) {
        return ("401 Unauthorized", "{}".into());
    }
    if !line.starts_with("GET /storage/v1/b/studio/") {
        return ("403 Forbidden", "{}".into());
    }
    if line.starts_with("GET /storage/v1/b/studio/o?") {
        let listing = serde_json::json!({"items": [{"name": "in/a b.mp4", "generation": "1700000000000001", "size": "5"}]});
        return ("200 OK", listing.to_string());
    }
    if line.starts_with("GET /storage/v1/b/studio/o/in%2Fa%20b.mp4?alt=media&generation=1700000000000001 ") {
        return ("200 OK", "bytes".into());
    }
    ("404 Not Found", "{}".into())
}

#[tokio::test]
async fn the_reader_signs_for_a_read_only_token_keeps_it_per_key_and_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = key_pair(dir.path(), "good");
    let (other_private, _) = key_pair(dir.path(), "other");
    let google = Arc::new(Mutex::new(Google { trusted: public, ..Default::default() }));
    let url = serve(google.clone()).await;
    let endpoint = url::Url::parse(&url).unwrap();
    let client =
        GcsClient::new(Some(endpoint), Duration::from_secs(2)).unwrap().with_token_url(url::Url::parse(&format!("{url}/token")).unwrap());

    let key = account(&private);
    let page = client.list(&key, "studio", "in/", None, None).await.unwrap();
    assert_eq!(page.objects.len(), 1);
    assert_eq!(
        (page.objects[0].key.as_str(), page.objects[0].version.as_str(), page.objects[0].size),
        ("in/a b.mp4", "1700000000000001", 5)
    );
    let mut body = client.open(&key, "studio", "in/a b.mp4", "1700000000000001").await.unwrap();
    assert_eq!(body.head().final_url.as_str(), "gs://studio/in/a%20b.mp4");
    assert_eq!(body.chunk().await.unwrap().as_deref(), Some(&b"bytes"[..]));
    assert_eq!(google.lock().unwrap().token_requests, 1, "one token serves both requests");
    assert!(google.lock().unwrap().authorizations.iter().all(|a| a == "Bearer token-1"));

    // Another key naming the same account, which Google refuses, does not borrow the token.
    let impostor = account(&other_private);
    let refused = client.list(&impostor, "studio", "in/", None, None).await.err().unwrap();
    match refused {
        FetchError::Refused(why) => assert!(why.contains("Google refused the service account sync@studio") && why.contains("400"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(google.lock().unwrap().token_requests, 2);

    // A bucket the account may not read: what to grant.
    let denied = client.list(&key, "other-bucket", "", None, None).await.err().unwrap();
    assert!(matches!(&denied, FetchError::Refused(why) if why.contains("403") && why.contains("roles/storage.objectViewer")), "{denied:?}");
}
