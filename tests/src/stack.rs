//! A freshly provisioned stack in moto, by the same bootstrap as the local stack and LocalStack
//! (`vaultstream_cli::provision`), plus identity-provider keys, a JWKS file, a CloudFront key file and
//! the environment the functions read. Every stack uses its own random prefix, so tests share one
//! moto server without seeing each other.

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::{json, Value};
use vaultstream_functions::env::Env;
use vaultstream_functions::wiring::Aws;

pub const ISSUER: &str = "https://idp.vaultstream.test/";
pub const AUDIENCE: &str = "vaultstream-api";
pub const HS256_SECRET: &str = "local-stack-shared-secret-of-at-least-32-bytes";

pub struct Stack {
    pub aws: Aws,
    pub dir: tempfile::TempDir,
    pub suffix: String,
    pub content_table: String,
    pub tokens_table: String,
    pub audit_table: String,
    pub bucket: String,
    pub content_cmk: String,
    /// Everything the bootstrap provisioned.
    pub outputs: vaultstream_cli::provision::Outputs,
    /// The service secret's value, read back from Secrets Manager (for leak checks).
    pub service_secret_hex: String,
    pub rsa_jwt_pem: Vec<u8>,
    pub ec_jwt_pem: Vec<u8>,
    /// The RSA JWT key's public half, PEM: what an HS/RS confusion attack uses as HMAC secret.
    pub rsa_jwt_public_pem: Vec<u8>,
    pub cloudfront_private_pem: PathBuf,
    pub cloudfront_public_pem: Vec<u8>,
}

pub const RSA_KID: &str = "rsa-1";
pub const EC_KID: &str = "ec-1";

fn jwk(pem: &[u8], alg: Algorithm, kid: &str) -> Jwk {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem).unwrap(),
        _ => EncodingKey::from_ec_pem(pem).unwrap(),
    };
    let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk
}

impl Stack {
    pub async fn provision() -> Stack {
        let config = crate::moto::sdk_config().await;
        let aws = Aws::from_sdk_config(&config, true);
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let clients = vaultstream_cli::provision::Clients::from_sdk_config(&config);
        let outputs = vaultstream_cli::provision::provision(&clients, &format!("t{suffix}")).await.expect("bootstrap in moto");
        let secret = aws.secrets().get_secret_value().secret_id(&outputs.service_secret_arn).send().await.expect("read the service secret");
        let service_secret_hex = secret.secret_string().expect("a string secret").to_string();
        let (content_table, tokens_table, audit_table) =
            (outputs.content_table.clone(), outputs.tokens_table.clone(), outputs.audit_table.clone());
        let bucket = outputs.origin_bucket.clone();
        let content_cmk = outputs.content_key_id.clone();

        let dir = tempfile::tempdir().unwrap();
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let ec = PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap();
        let rsa_jwt_pem = rsa.private_key_to_pem_pkcs8().unwrap();
        let ec_jwt_pem = ec.private_key_to_pem_pkcs8().unwrap();
        let jwks = JwkSet { keys: vec![jwk(&rsa_jwt_pem, Algorithm::RS256, RSA_KID), jwk(&ec_jwt_pem, Algorithm::ES256, EC_KID)] };
        std::fs::write(dir.path().join("jwks.json"), serde_json::to_vec(&jwks).unwrap()).unwrap();

        let cloudfront = Rsa::generate(2048).unwrap();
        let cloudfront_private_pem = dir.path().join("cloudfront.pem");
        std::fs::write(&cloudfront_private_pem, cloudfront.private_key_to_pem().unwrap()).unwrap();
        let cloudfront_public_pem = PKey::from_rsa(cloudfront).unwrap().public_key_to_pem().unwrap();
        Stack {
            aws,
            suffix,
            content_table,
            tokens_table,
            audit_table,
            bucket,
            content_cmk,
            outputs,
            service_secret_hex,
            rsa_jwt_public_pem: rsa.public_key_to_pem().unwrap(),
            rsa_jwt_pem,
            ec_jwt_pem,
            cloudfront_private_pem,
            cloudfront_public_pem,
            dir,
        }
    }

    /// What every function reads, as a deployment would set it.
    pub fn env(&self) -> Env {
        let o = &self.outputs;
        Env::from_pairs([
            ("VAULTSTREAM_SOURCE_BUCKET", o.source_bucket.clone()),
            ("VAULTSTREAM_RETRY_QUEUE_URL", o.retry_queue_url.clone()),
            ("VAULTSTREAM_FAILURES_DLQ_URL", o.failures_dlq_url.clone()),
            ("VAULTSTREAM_IMPORT_QUEUE_URL", o.import_queue_url.clone()),
            ("VAULTSTREAM_FEEDS_TABLE", o.feeds_table.clone()),
            ("VAULTSTREAM_MONITOR_SECRET_PREFIX", "vaultstream-test/monitors/".to_string()),
            ("VAULTSTREAM_PLATFORM_BUCKETS", [&o.source_bucket, &o.origin_bucket, &o.audit_archive_bucket].map(String::as_str).join(",")),
            // moto's account.
            ("VAULTSTREAM_PLATFORM_ACCOUNT", "123456789012".to_string()),
            // The drop zone's session role, as Transfer would assume it (not used locally).
            ("VAULTSTREAM_DROP_ROLE_ARN", "arn:aws:iam::123456789012:role/vaultstream-test-drop-zone".to_string()),
            ("VAULTSTREAM_CONTENT_FAILED_BUS", o.content_failed_bus.clone()),
            ("VAULTSTREAM_JOB_QUEUE_VIDEO_GPU", o.video_gpu_job_queue.clone()),
            ("VAULTSTREAM_JOB_QUEUE_VIDEO_CPU", o.video_cpu_job_queue.clone()),
            ("VAULTSTREAM_JOB_QUEUE_AUDIO", o.audio_job_queue.clone()),
            ("VAULTSTREAM_JOB_DEFINITION_VIDEO_GPU", o.video_gpu_job_definition.clone()),
            ("VAULTSTREAM_JOB_DEFINITION_VIDEO_CPU", o.video_cpu_job_definition.clone()),
            ("VAULTSTREAM_JOB_DEFINITION_AUDIO", o.audio_job_definition.clone()),
            // Small, so tests exercise multipart uploads with a few MiB.
            ("VAULTSTREAM_MULTIPART_THRESHOLD_BYTES", (5 * 1024 * 1024).to_string()),
            ("VAULTSTREAM_MAX_UPLOAD_BYTES", (64 * 1024 * 1024).to_string()),
            ("VAULTSTREAM_CONTENT_TABLE", self.content_table.clone()),
            ("VAULTSTREAM_TOKENS_TABLE", self.tokens_table.clone()),
            ("VAULTSTREAM_AUDIT_TABLE", self.audit_table.clone()),
            ("VAULTSTREAM_AUDIT_SHARDS", "1".into()),
            ("VAULTSTREAM_AUDIT_ARCHIVE_BUCKET", o.audit_archive_bucket.clone()),
            ("VAULTSTREAM_AUDIT_DIGEST_KEY_ID", o.audit_digest_key_id.clone()),
            ("VAULTSTREAM_ORIGIN_BUCKET", self.bucket.clone()),
            ("VAULTSTREAM_SERVICE_SECRET_ARN", self.outputs.service_secret_arn.clone()),
            ("VAULTSTREAM_API_BASE_URL", "https://api.vaultstream.test".into()),
            ("VAULTSTREAM_CDN_DOMAIN", "vaultstream.test".into()),
            ("VAULTSTREAM_JWT_ISSUER", ISSUER.into()),
            ("VAULTSTREAM_JWT_AUDIENCE", AUDIENCE.into()),
            ("VAULTSTREAM_JWT_ALGORITHMS", "RS256,ES256".into()),
            ("VAULTSTREAM_JWKS_FILE", self.dir.path().join("jwks.json").display().to_string()),
            ("VAULTSTREAM_CLOUDFRONT_KEY_PAIR_ID", "K2JCJMDEHXQW5F".into()),
            ("VAULTSTREAM_CLOUDFRONT_PRIVATE_KEY_FILE", self.cloudfront_private_pem.display().to_string()),
        ])
    }

    pub fn jwt(&self, alg: Algorithm, claims: &Value) -> String {
        let (key, kid) = match alg {
            Algorithm::RS256 => (EncodingKey::from_rsa_pem(&self.rsa_jwt_pem).unwrap(), Some(RSA_KID)),
            Algorithm::ES256 => (EncodingKey::from_ec_pem(&self.ec_jwt_pem).unwrap(), Some(EC_KID)),
            _ => (EncodingKey::from_secret(HS256_SECRET.as_bytes()), None),
        };
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Standard claims for a principal of `tenant`, valid for ten minutes.
pub fn claims(tenant: &str, sub: &str, scope: &str, sid: &str) -> Value {
    let now = now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "tenant": tenant, "scope": scope, "sid": sid, "iat": now, "exp": now + 600})
}

/// An API Gateway HTTP API (payload 2.0) event, as Lambda receives it.
pub fn http_event(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    authorizer: Option<&Value>,
    body: Option<&str>,
) -> lambda_http::Request {
    let raw_query = query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut context = json!({
        "accountId": "123456789012", "apiId": "api", "domainName": "api.vaultstream.test", "domainPrefix": "api",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test"},
        "requestId": format!("req-{}", uuid::Uuid::new_v4().simple()), "routeKey": "$default", "stage": "$default", "time": "21/Nov/2026:00:00:00 +0000", "timeEpoch": 0
    });
    if let Some(ctx) = authorizer {
        context["authorizer"] = json!({"lambda": ctx});
    }
    let event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": raw_query,
        "headers": headers.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<serde_json::Map<_, _>>(),
        "queryStringParameters": query.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<serde_json::Map<_, _>>(),
        "requestContext": context, "body": body, "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

/// The authorizer's event for `route` with an optional `Authorization` header.
pub fn authorizer_event(route: &str, authorization: Option<&str>) -> aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request {
    let headers: serde_json::Map<String, Value> =
        authorization.map(|a| ("authorization".to_string(), Value::from(a))).into_iter().collect();
    serde_json::from_value(json!({
        "version": "2.0", "type": "REQUEST", "routeArn": "arn:aws:execute-api:us-east-1:123456789012:api/$default/POST/v1/content",
        "identitySource": [authorization.unwrap_or("")], "routeKey": route, "rawPath": "/v1/content/x/playback", "rawQueryString": "",
        "headers": headers,
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.vaultstream.test", "domainPrefix": "api",
            "http": {"method": "POST", "path": "/v1/content/x/playback", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test"},
            "requestId": format!("auth-{}", uuid::Uuid::new_v4().simple()), "routeKey": route, "stage": "$default", "time": "21/Nov/2026:00:00:00 +0000", "timeEpoch": 0}
    }))
    .expect("a valid authorizer event")
}
