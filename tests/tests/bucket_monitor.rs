//! Cloud bucket monitors against the local stack, as a tenant's administrator uses them: a
//! customer's S3 bucket (in the stack's moto, read through an assumed role) and a GCS bucket (in
//! PyPI's gcp-storage-emulator) are connected with `POST /v1/monitors`; the stack's schedule
//! lists them and each media object becomes a READY title once, described by its sidecar; later
//! polls import nothing twice; a bucket that does not exist is recorded on its monitor; another
//! tenant sees and removes nothing. Only processes, files and HTTP (and S3 and the GCS emulator's
//! API to fill the customer's buckets).

use serde_json::{json, Value};
use vaultstream_tests::gcs::GcsEmulator;
use vaultstream_tests::local::{clip, get_json, mint, until, Running};

const SERVICE_ACCOUNT: &str = r#"{"type":"service_account","project_id":"studio","private_key_id":"k1",
 "private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
 "client_email":"sync@studio.iam.gserviceaccount.com","token_uri":"http://169.254.169.254/token"}"#;

/// An S3 client for the customer's account: the stack's moto.
async fn customer_s3(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "customer"))
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build())
}

#[tokio::test]
async fn objects_in_monitored_s3_and_gcs_buckets_become_ready_titles_once() {
    let gcs = GcsEmulator::start().await;
    gcs.create_bucket("studio-masters").await;
    gcs.put("studio-masters", "incoming/episode 2.mp4", "video/mp4", clip(2)).await;
    gcs.put("studio-masters", "incoming/episode 2.json", "text/plain", br#"{"title":"Episode 2","language":"en"}"#.to_vec()).await;

    let root = tempfile::tempdir().unwrap();
    let state_dir = root.path().join("stack");
    let stack =
        Running::start_with("dev", &state_dir, &[], &[("VAULTSTREAM_GCS_ENDPOINT", &gcs.url), ("VAULTSTREAM_MONITOR_POLL_SECONDS", "2")]);
    let api = stack.url("api_url");
    let s3 = customer_s3(&stack.url("emulator_url")).await;
    s3.create_bucket().bucket("customer-media").send().await.unwrap();
    for (key, body) in [
        ("incoming/launch.mp4", clip(2)),
        ("incoming/launch.json", br#"{"title":"Launch day","artist":"Ada"}"#.to_vec()),
        ("incoming/readme.txt", b"not media".to_vec()),
        ("elsewhere/other.mp4", clip(1)),
    ] {
        s3.put_object().bucket("customer-media").key(key).body(body.into()).send().await.unwrap();
    }
    let admin = mint(&state_dir, "acme", "ops", "admin content:write content:read");
    let http = reqwest::Client::new();

    // Connecting a bucket takes the admin scope and a well-formed request.
    let creator = mint(&state_dir, "acme", "creator", "content:write content:read");
    let s3_monitor = json!({"provider": "s3", "bucket": "customer-media", "prefix": "incoming/",
                            "role_arn": "arn:aws:iam::210987654321:role/VaultStreamRead"});
    let denied = http.post(format!("{api}/v1/monitors")).bearer_auth(&creator).json(&s3_monitor).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let malformed = json!({"provider": "s3", "bucket": "Customer_Media", "role_arn": "arn:aws:iam::210987654321:role/x"});
    let malformed = http.post(format!("{api}/v1/monitors")).bearer_auth(&admin).json(&malformed).send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let reason: Value = malformed.json().await.unwrap();
    assert!(reason["error"]["message"].as_str().unwrap().contains("not an S3 bucket name"), "{reason}");

    // The deployment's own buckets (their names are in every presigned URL) are no tenant's to
    // monitor, whatever the prefix, and neither is a role of the deployment's account.
    let stack_json: Value = serde_json::from_slice(&std::fs::read(state_dir.join("stack.json")).unwrap()).unwrap();
    for (bucket, prefix, role, expected) in [
        (
            &stack_json["outputs"]["SourceBucket"],
            "drop/globex/",
            "arn:aws:iam::210987654321:role/VaultStreamRead",
            "belongs to this VaultStream deployment",
        ),
        (
            &stack_json["outputs"]["OriginBucket"],
            "globex/",
            "arn:aws:iam::210987654321:role/VaultStreamRead",
            "belongs to this VaultStream deployment",
        ),
        (&json!("customer-media"), "incoming/", "arn:aws:iam::123456789012:role/vaultstream-import", "VaultStream's own account"),
    ] {
        let attack = json!({"provider": "s3", "bucket": bucket, "prefix": prefix, "role_arn": role});
        let refused = http.post(format!("{api}/v1/monitors")).bearer_auth(&admin).json(&attack).send().await.unwrap();
        assert_eq!(refused.status(), 403, "{attack}");
        let reason: Value = refused.json().await.unwrap();
        assert!(reason["error"]["message"].as_str().unwrap().contains(expected), "{reason}");
    }
    assert_eq!(get_json(&http, format!("{api}/v1/monitors"), &admin).await["items"], json!([]), "nothing was created");

    let created = http.post(format!("{api}/v1/monitors")).bearer_auth(&admin).json(&s3_monitor).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let s3_view: Value = created.json().await.unwrap();
    assert_eq!(s3_view["external_id"].as_str().map(str::len), Some(32), "{s3_view}");
    assert_eq!(s3_view["region"], "us-east-1", "the deployment's region by default");
    let gcs_monitor = json!({"provider": "gcs", "bucket": "studio-masters", "prefix": "incoming/",
                             "service_account_key": serde_json::from_str::<Value>(SERVICE_ACCOUNT).unwrap()});
    let created = http.post(format!("{api}/v1/monitors")).bearer_auth(&admin).json(&gcs_monitor).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let gcs_view = created.text().await.unwrap();
    assert!(gcs_view.contains("sync@studio.iam.gserviceaccount.com") && !gcs_view.contains("PRIVATE KEY"), "{gcs_view}");

    // The schedule lists both buckets; each media object becomes a title, described by its sidecar.
    let titles = until(180, async || {
        let list = get_json(&http, format!("{api}/v1/content"), &admin).await;
        let items = list["items"].as_array().unwrap();
        let ready = items.iter().filter(|i| i["status"] == "READY").count();
        (ready == 2).then(|| list.clone())
    })
    .await
    .unwrap_or_else(|| {
        panic!("the monitored objects did not both become READY titles: {}", vaultstream_tests::local::stderr_of(&state_dir, "dev"))
    });
    let items = titles["items"].as_array().unwrap();
    let launch = items.iter().find(|i| i["title"] == "Launch day").unwrap_or_else(|| panic!("{titles}"));
    let episode = items.iter().find(|i| i["title"] == "Episode 2").unwrap_or_else(|| panic!("{titles}"));
    let launch = get_json(&http, format!("{api}/v1/content/{}", launch["content_id"].as_str().unwrap()), &admin).await;
    assert_eq!(launch["import"]["url"], "s3://customer-media/incoming/launch.mp4", "{launch}");
    assert_eq!((&launch["metadata"]["artist"], &launch["metadata_sources"]["title"]), (&json!("Ada"), &json!("sidecar")), "{launch}");
    let episode = get_json(&http, format!("{api}/v1/content/{}", episode["content_id"].as_str().unwrap()), &admin).await;
    assert_eq!(episode["import"]["url"], "gs://studio-masters/incoming/episode%202.mp4", "{episode}");
    assert_eq!(episode["metadata"]["language"], "en", "{episode}");

    // Later polls import nothing twice.
    let polled_at = |view: &Value| view["last_polled_at"].as_str().map(str::to_string);
    let before = get_json(&http, format!("{api}/v1/monitors"), &admin).await;
    let first_polls: Vec<Option<String>> = before["items"].as_array().unwrap().iter().map(polled_at).collect();
    until(30, async || {
        let now = get_json(&http, format!("{api}/v1/monitors"), &admin).await;
        let polls: Vec<Option<String>> = now["items"].as_array().unwrap().iter().map(polled_at).collect();
        polls.iter().zip(&first_polls).all(|(a, b)| a != b).then_some(now)
    })
    .await
    .unwrap_or_else(|| panic!("both monitors are polled again: {}", vaultstream_tests::local::stderr_of(&state_dir, "dev")));
    let list = get_json(&http, format!("{api}/v1/content"), &admin).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    let monitors = get_json(&http, format!("{api}/v1/monitors"), &admin).await;
    for view in monitors["items"].as_array().unwrap() {
        assert_eq!((&view["imported"], &view["refused"]), (&json!(1), &json!(0)), "{view}");
        assert!(view.get("last_error").is_none(), "{view}");
    }

    // A bucket that does not exist: the reason is on its monitor.
    let missing = json!({"provider": "s3", "bucket": "no-such-bucket", "role_arn": "arn:aws:iam::210987654321:role/VaultStreamRead"});
    let missing: Value =
        http.post(format!("{api}/v1/monitors")).bearer_auth(&admin).json(&missing).send().await.unwrap().json().await.unwrap();
    let failing = until(30, async || {
        let monitors = get_json(&http, format!("{api}/v1/monitors"), &admin).await;
        monitors["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["monitor_id"] == missing["monitor_id"] && m["last_error"].is_string())
            .cloned()
    })
    .await
    .expect("the missing bucket's monitor has an error");
    assert!(failing["last_error"].as_str().unwrap().contains("no such bucket"), "{failing}");

    // Another tenant sees nothing and removes nothing; the administrator removes a monitor.
    let stranger = mint(&state_dir, "globex", "ops", "admin");
    assert_eq!(get_json(&http, format!("{api}/v1/monitors"), &stranger).await["items"], json!([]));
    let id = s3_view["monitor_id"].as_str().unwrap();
    assert_eq!(http.delete(format!("{api}/v1/monitors/{id}")).bearer_auth(&stranger).send().await.unwrap().status(), 404);
    assert_eq!(http.delete(format!("{api}/v1/monitors/{id}")).bearer_auth(&admin).send().await.unwrap().status(), 204);
    let left = get_json(&http, format!("{api}/v1/monitors"), &admin).await;
    assert_eq!(left["items"].as_array().unwrap().len(), 2, "{left}");
    stack.interrupt();
}
