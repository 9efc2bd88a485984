//! The viewer's path through the functions, as API Gateway would drive it: helpers shared by the
//! access-path tests.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use lambda_http::{Body, Response};
use serde_json::Value;
use vaultstream::audit::ChainId;
use vaultstream::aws::ledger::read_chain;
use vaultstream::aws::{DynamoCatalog, KmsKeyVault};
use vaultstream::catalog::{ContentCatalog, ContentRecord, ContentStatus, Publication};
use vaultstream::content_keys::KeyVault;
use vaultstream::ids::{ContentId, TenantId, VersionId};
use vaultstream::KeyId;
use vaultstream_functions::handlers::{authorizer::Authorizer, key_delivery::KeyDelivery, manifest::Manifest, playback::Playback};
use vaultstream_functions::runtime::HttpFunction;

use crate::stack::{authorizer_event, http_event, Stack};
use crate::workspace_binary;

pub struct Functions {
    pub authorizer: Authorizer,
    pub playback: Playback,
    pub manifest: Manifest,
    pub keys: KeyDelivery,
}

pub async fn functions(stack: &Stack) -> Functions {
    functions_with(stack, stack.env()).await
}

/// The functions as a deployment configured with `env` (the stack's, plus settings) runs them.
pub async fn functions_with(stack: &Stack, env: vaultstream_functions::env::Env) -> Functions {
    Functions {
        authorizer: Authorizer::from_env(&env, &stack.aws).await.unwrap(),
        playback: Playback::from_env(&env, &stack.aws).await.unwrap(),
        manifest: Manifest::from_env(&env, &stack.aws).await.unwrap(),
        keys: KeyDelivery::from_env(&env, &stack.aws).await.unwrap(),
    }
}

pub fn body_text(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

pub fn body_bytes(response: &Response<Body>) -> Vec<u8> {
    match response.body() {
        Body::Text(t) => t.as_bytes().to_vec(),
        Body::Binary(b) => b.clone(),
        _ => Vec::new(),
    }
}

pub fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("https://api.vaultstream.test").expect("an API URL");
    let (path, query) = rest.split_once('?').expect("a token query");
    (path.to_string(), query.strip_prefix("token=").expect("token=").to_string())
}

/// The version `publish` writes: `{tenant}/{content}/v1/` in the origin bucket.
pub const VERSION: &str = "v1";

/// A transcoded, published content item: its output folder, key and KMS blob in the catalog.
pub struct Published {
    pub out: tempfile::TempDir,
    pub key_hex: String,
    /// The CMAF packaging's key (`c0`) and the KID its `tenc` names.
    pub cmaf_key_hex: String,
    pub kid: String,
}

pub async fn publish(stack: &Stack, tenant: &str, content: &str) -> Published {
    publish_keyed(stack, tenant, content, None).await
}

/// As [`publish`], with the CMAF key from the SPEKE key provider at `speke_url` where given (the
/// record then holds no `c0`: the vendor does; `cmaf_key_hex` is empty).
pub async fn publish_keyed(stack: &Stack, tenant: &str, content: &str, speke_url: Option<&str>) -> Published {
    let (t, c) = (TenantId::parse(tenant).unwrap(), ContentId::parse(content).unwrap());
    let vault = KmsKeyVault::new(stack.aws.kms().clone(), Some(stack.content_cmk.clone()));
    let (key, blob) = vault.generate(&t, &c).await.unwrap();
    let key_hex = hex::encode(key.expose());
    let (cmaf_key, cmaf_blob) = vault.generate(&t, &c).await.unwrap();
    let cmaf_key_hex = hex::encode(cmaf_key.expose());
    let out = tempfile::tempdir().unwrap();
    let clip = out.path().join("clip.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x240:r=25:d=3",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:r=48000:d=3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(status.success());
    let hls = out.path().join("hls");
    let mut transcode = Command::new(workspace_binary("vaultstream-transcode"));
    transcode
        .args(["local"])
        .arg(&clip)
        .arg("--out")
        .arg(&hls)
        .args(["--preset", "ultrafast", "--segment-seconds", "2", "--key-uri", "key://{key_id}"])
        .arg("--key-file")
        .arg(out.path().join("k.key"))
        .env("VAULTSTREAM_KEY_HEX", &key_hex);
    match speke_url {
        Some(url) => transcode.args(["--speke-url", url, "--speke-auth", "none"]),
        None => transcode.env("VAULTSTREAM_CMAF_KEY_HEX", &cmaf_key_hex),
    };
    let run = transcode.output().unwrap();
    assert!(run.status.success(), "transcode failed: {}", String::from_utf8_lossy(&run.stderr));
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(hls.join("manifest.json")).unwrap()).unwrap();
    let kid = manifest["cmaf_key"]["kid"].as_str().expect("the default profile packages CMAF").to_string();
    let systems: Vec<String> =
        manifest["cmaf_key"]["systems"].as_array().into_iter().flatten().map(|s| s.as_str().unwrap().to_string()).collect();
    upload_dir(stack, &hls, &format!("{tenant}/{content}/{VERSION}")).await;
    let catalog = DynamoCatalog::new(stack.aws.dynamodb().clone(), &stack.content_table);
    let mut record = ContentRecord::new(t, c, ContentStatus::Ready, "clip");
    record.keys.insert(KeyId::for_period(0), blob);
    if speke_url.is_none() {
        record.keys.insert(KeyId::try_from(vaultstream::cenc::CMAF_KEY_ID.to_string()).unwrap(), cmaf_blob);
    }
    record.publication = Some(Publication {
        version: VersionId::parse(VERSION).unwrap(),
        renditions: Vec::new(),
        duration_seconds: Some(3.0),
        poster: None,
        thumbnails: Vec::new(),
        storyboard: None,
        cmaf: Some(vaultstream::catalog::CmafPublication { kid: kid.clone(), scheme: "cbcs".into(), systems }),
    });
    catalog.create(&record, None).await.unwrap();
    let cmaf_key_hex = if speke_url.is_some() { String::new() } else { cmaf_key_hex };
    Published { out, key_hex, cmaf_key_hex, kid }
}

pub async fn upload_dir(stack: &Stack, dir: &Path, prefix: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            Box::pin(upload_dir(stack, &path, &format!("{prefix}/{name}"))).await;
        } else {
            let body = std::fs::read(&path).unwrap();
            stack
                .aws
                .s3()
                .put_object()
                .bucket(&stack.bucket)
                .key(format!("{prefix}/{name}"))
                .body(body.into())
                .send()
                .await
                .map_err(aws_sdk_s3::error::DisplayErrorContext)
                .unwrap();
        }
    }
}

pub async fn authorize(f: &Functions, token: &str) -> Option<HashMap<String, Value>> {
    let out =
        f.authorizer.handle(authorizer_event("POST /v1/content/{content_id}/playback", Some(&format!("Bearer {token}")))).await.unwrap();
    out.is_authorized.then_some(out.context)
}

pub async fn start_playback(f: &Functions, context: &HashMap<String, Value>, content: &str, body: Option<&str>) -> Response<Body> {
    let ctx = serde_json::to_value(context).unwrap();
    f.playback.handle(http_event("POST", &format!("/v1/content/{content}/playback"), &[], &[], Some(&ctx), body)).await
}

/// `POST` a ClearKey licence request to a licence URL.
pub async fn post_license(f: &Functions, url: &str, headers: &[(&str, &str)], body: &str) -> Response<Body> {
    let (path, token) = split_url(url);
    let mut headers = headers.to_vec();
    headers.push(("content-type", "application/json"));
    f.keys.handle(http_event("POST", &path, &[("token", &token)], &headers, None, Some(body))).await
}

pub async fn get(f: &Functions, url: &str, headers: &[(&str, &str)]) -> Response<Body> {
    let (path, token) = split_url(url);
    let event = http_event("GET", &path, &[("token", &token)], headers, None, None);
    if path.starts_with("/v1/keys/") {
        f.keys.handle(event).await
    } else {
        f.manifest.handle(event).await
    }
}

pub fn error_code(response: &Response<Body>) -> String {
    let v: Value = serde_json::from_str(&body_text(response)).unwrap_or_else(|_| panic!("not an error body: {}", body_text(response)));
    v["error"]["code"].as_str().unwrap().to_string()
}

pub async fn ledger(stack: &Stack, tenant: &str) -> Vec<vaultstream::audit::AuditRecord> {
    let (_, day) = vaultstream::audit::ledger::now_rfc3339_millis();
    let chain = ChainId { tenant: TenantId::parse(tenant).unwrap(), day, shard: 0 };
    read_chain(stack.aws.dynamodb(), &stack.audit_table, &chain).await.unwrap()
}

/// Walks the viewer's path and returns what it saw along the way.
pub struct Playthrough {
    pub playback: Value,
    pub master: String,
    pub media: String,
    pub key_url: String,
    pub key: Vec<u8>,
    /// `VaultStream-Session=…`, as a `Cookie` header value: the session proof key requests carry.
    pub session_cookie: String,
}

/// The session cookie playback set, checked for the attributes that keep it to its purpose, as a
/// `Cookie` header value.
pub fn session_cookie(playback: &Response<Body>, content: &str) -> String {
    let set = playback
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("VaultStream-Session="))
        .expect("playback sets the session cookie")
        .to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", &format!("Path=/v1/keys/{content}/")] {
        assert!(set.split("; ").any(|a| a == attribute), "the session cookie lacks {attribute}: {set}");
    }
    set.split(';').next().unwrap().to_string()
}

pub async fn play(f: &Functions, jwt: &str, content: &str) -> Playthrough {
    let context = authorize(f, jwt).await.expect("the viewer's JWT is accepted");
    let response = start_playback(f, &context, content, None).await;
    assert_eq!(response.status(), 200, "{}", body_text(&response));
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    assert!(response.headers().get_all("set-cookie").iter().count() >= 4);
    let session_cookie = session_cookie(&response, content);
    let playback: Value = serde_json::from_str(&body_text(&response)).unwrap();
    let master_response = get(f, playback["manifest_url"].as_str().unwrap(), &[]).await;
    assert_eq!(master_response.status(), 200, "{}", body_text(&master_response));
    assert_eq!(master_response.headers()["cache-control"], "private, no-store");
    let master = body_text(&master_response);
    let variant = master.lines().find(|l| l.starts_with("https://")).expect("a variant URL").to_string();
    let media_response = get(f, &variant, &[]).await;
    assert_eq!(media_response.status(), 200, "{}", body_text(&media_response));
    let media = body_text(&media_response);
    let key_url = media.lines().find_map(|l| l.split("URI=\"").nth(1)).and_then(|r| r.split('"').next()).expect("a key URI").to_string();
    let key_response = get(f, &key_url, &[("cookie", &session_cookie)]).await;
    assert_eq!(key_response.status(), 200, "{}", body_text(&key_response));
    assert_eq!(key_response.headers()["cache-control"], "private, no-store");
    assert_eq!(key_response.headers()["content-type"], "application/octet-stream");
    Playthrough { playback, master, media, key_url, key: body_bytes(&key_response), session_cookie }
}
