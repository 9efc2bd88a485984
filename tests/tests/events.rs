//! Every events/ fixture parses as the event its function reads, and its function answers it
//! (with a refusal: the fixtures carry placeholder tokens).

use std::path::Path;

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use jsonwebtoken::Algorithm;
use vaultstream_functions::handlers::audit_digest::AuditDigest;
use vaultstream_functions::handlers::{authorizer::Authorizer, captions::Captions, key_delivery::KeyDelivery, manifest::Manifest};
use vaultstream_functions::runtime::HttpFunction;
use vaultstream_tests::ingest::ingest_functions;
use vaultstream_tests::stack::Stack;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(name)).unwrap()
}

#[tokio::test]
async fn fixtures_are_valid_events() {
    let stack = Stack::provision().await;
    let env = stack.env();

    let event: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_str(&fixture("authorizer.json")).unwrap();
    let authorizer = Authorizer::from_env(&env, &stack.aws).await.unwrap();
    assert!(!authorizer.handle(event.clone()).await.unwrap().is_authorized, "the placeholder JWT is refused");
    let mut real = event;
    let jwt = stack.jwt(Algorithm::RS256, &vaultstream_tests::stack::claims("acme", "viewer-1", "content:read", "sess-1"));
    real.headers.insert("authorization", format!("Bearer {jwt}").parse().unwrap());
    assert!(authorizer.handle(real).await.unwrap().is_authorized, "with a real JWT the same event is authorized");

    let playback = lambda_http::request::from_str(&fixture("playback.json")).unwrap();
    assert_eq!(playback.uri().path(), "/v1/content/movie1/playback");
    let manifest = Manifest::from_env(&env, &stack.aws).await.unwrap();
    assert_eq!(manifest.handle(lambda_http::request::from_str(&fixture("manifest.json")).unwrap()).await.status(), 401);
    let keys = KeyDelivery::from_env(&env, &stack.aws).await.unwrap();
    assert_eq!(keys.handle(lambda_http::request::from_str(&fixture("key_delivery.json")).unwrap()).await.status(), 401);

    let ingest = ingest_functions(&stack).await;
    let upload = ingest.upload.handle(lambda_http::request::from_str(&fixture("upload_url.json")).unwrap()).await;
    assert_eq!(upload.status(), 201, "the sample declaration is a valid one");
    assert_eq!(ingest.content.handle(lambda_http::request::from_str(&fixture("content.json")).unwrap()).await.status(), 404);
    let captions = Captions::from_env(&env, &stack.aws).await.unwrap();
    let put = captions.handle(lambda_http::request::from_str(&fixture("captions.json")).unwrap()).await;
    assert_eq!(put.status(), 404, "the sample's track is valid, its content id is no title of this stack");
    let body = String::from_utf8(put.body().to_vec()).unwrap();
    assert!(body.contains("content 0192f0c4a1b27c3d8e9f001122334455 does not exist"), "{body}");
    let sqs: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&fixture("dispatch.json")).unwrap();
    assert!(ingest.dispatch.handle(sqs).await.batch_item_failures.is_empty(), "a notification about unknown content is done, not retried");
    let imports: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&fixture("import_fetch.json")).unwrap();
    let import_fetch = vaultstream_functions::handlers::import_fetch::ImportFetch::from_env(&env, &stack.aws).await.unwrap();
    assert!(import_fetch.handle(imports).await.batch_item_failures.is_empty(), "an import of unknown content is done, not retried");
    let batch: aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&fixture("job_events.json")).unwrap();
    ingest.job_events.handle(batch).await.expect("an event about unknown content is ignored");

    let polls: aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&fixture("feed_poll.json")).unwrap();
    let feed_poll = vaultstream_functions::handlers::feed_poll::FeedPoll::from_env(&env, &stack.aws).await.unwrap();
    assert_eq!(feed_poll.handle(polls).await.unwrap(), 0, "no feed is subscribed in this stack");
    let listings: aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&fixture("monitor_poll.json")).unwrap();
    let monitor_poll = vaultstream_functions::handlers::monitor_poll::MonitorPoll::from_env(&env, &stack.aws).await.unwrap();
    assert_eq!(monitor_poll.handle(listings).await.unwrap(), 0, "no bucket is monitored in this stack");
    let login: vaultstream_functions::handlers::ftp_auth::TransferLogin = serde_json::from_str(&fixture("ftp_auth.json")).unwrap();
    let ftp_auth = vaultstream_functions::handlers::ftp_auth::FtpAuth::from_env(&env, &stack.aws).await.unwrap();
    assert_eq!(ftp_auth.handle(login, "r1").await, serde_json::json!({}), "the placeholder token opens nothing");
    let upload: aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&fixture("drop_zone.json")).unwrap();
    let drop_zone = vaultstream_functions::handlers::drop_zone::DropZone::from_env(&env, &stack.aws).await.unwrap();
    assert_eq!(drop_zone.handle(upload).await.unwrap(), None, "a file of another bucket is left alone");

    let schedule: aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&fixture("audit_digest.json")).unwrap();
    let digests = AuditDigest::from_env(&env, &stack.aws).await.unwrap();
    let first = digests.handle(schedule.clone()).await.expect("the scheduled event signs a digest");
    let second = digests.handle(schedule).await.unwrap();
    assert_eq!((first.seq, second.seq), (1, 2), "each run extends the digest chain");
}
