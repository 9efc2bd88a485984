//! A Lambda function's AWS calls trust Amazon Trust Services' roots alone
//! (`vaultstream::aws::lambda_config`): an endpoint presenting a certificate from any other
//! authority is refused, while the same endpoint, trusted explicitly, answers. The endpoint is a
//! TLS server on 127.0.0.1 with a certificate made by the openssl CLI at test time.

use std::process::Command;
use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{TlsContext, TrustStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vaultstream::aws::lambda_config::{amazon_roots, https_client};

/// A self-signed certificate for `localhost` and its key, as PEM.
fn certificate(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "openssl req: {}", String::from_utf8_lossy(&made.stderr));
    (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap())
}

/// A TLS server answering every request as DynamoDB's ListTables would, with no tables.
async fn endpoint(cert: &[u8], key: &[u8]) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else { return };
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = br#"{"TableNames":[]}"#;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n", body.len());
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn dynamodb(port: u16, tls: TlsContext) -> aws_sdk_dynamodb::Client {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::for_tests()))
        .endpoint_url(format!("https://localhost:{port}"))
        .http_client(https_client(tls))
        .build();
    let retry_once = aws_sdk_dynamodb::config::Builder::from(&config).retry_config(aws_config::retry::RetryConfig::disabled()).build();
    aws_sdk_dynamodb::Client::from_conf(retry_once)
}

/// The error and its causes, in words.
fn words(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn an_endpoint_certified_by_anyone_but_amazon_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let port = endpoint(&cert, &key).await;

    let refused =
        dynamodb(port, amazon_roots()).list_tables().send().await.expect_err("a certificate outside Amazon's roots must be refused");
    let said = words(&refused);
    assert!(said.contains("UnknownIssuer") || said.contains("invalid peer certificate"), "refused for another reason: {said}");

    // The same endpoint answers a client that trusts its certificate: the refusal above was the roots'.
    let trusted =
        TlsContext::builder().with_trust_store(TrustStore::empty().with_native_roots(false).with_pem_certificate(cert)).build().unwrap();
    let tables = dynamodb(port, trusted).list_tables().send().await.unwrap_or_else(|e| panic!("{}", words(&e)));
    assert!(tables.table_names().is_empty());
}
