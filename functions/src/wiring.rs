//! Builds the core's services from configuration and AWS clients. Every function uses the
//! pieces it needs and reads only their variables.

use std::sync::Arc;

use vaultstream::audit::counted::CountedLedger;
use vaultstream::audit::AuditSink;
use vaultstream::aws::{DynamoApiTokens, DynamoCatalog, DynamoLedger, DynamoSessions, KmsPolicySigner};
#[cfg(feature = "local-keys")]
use vaultstream::cdn::HashAlgorithm;
use vaultstream::cdn::{PolicySigner, TenantHosts};
use vaultstream::identity::{Authenticator, FileJwks, HttpJwks, JwksCache, JwtSettings, JwtVerifier};
use vaultstream::service_secret::ServiceSecret;
use vaultstream::session_token::TokenSigner;
use zeroize::Zeroizing;

use crate::env::{ConfigError, Env};

/// The AWS clients every function builds once (`vaultstream::aws::Clients`).
pub type Aws = vaultstream::aws::Clients;

/// Clients with what the standard chain would find in a Lambda environment
/// (`vaultstream::aws::lambda_config`); `AWS_ENDPOINT_URL` points them at an emulator, where S3
/// uses path-style addressing.
pub async fn aws(env: &Env) -> Aws {
    let (shared, _) = Aws::load_lambda_config().await;
    Aws::from_sdk_config(&shared, env.optional("AWS_ENDPOINT_URL").is_some())
}

/// The root token secret: from Secrets Manager (`VAULTSTREAM_SERVICE_SECRET_ARN`, how deployments
/// set it, so the value is in no function configuration) or inline hex (`VAULTSTREAM_SERVICE_SECRET`,
/// the local stack and tests). Read once per cold start.
pub async fn service_secret(env: &Env, aws: &Aws) -> Result<Arc<ServiceSecret>, ConfigError> {
    const INLINE: &str = "VAULTSTREAM_SERVICE_SECRET";
    const ARN: &str = "VAULTSTREAM_SERVICE_SECRET_ARN";
    let (name, hex) = match (env.optional(ARN), env.optional(INLINE)) {
        (Some(arn), _) => {
            let found = aws.secrets().get_secret_value().secret_id(arn).send().await.map_err(|e| {
                ConfigError::new(ARN, format!("could not be read: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e)))
            })?;
            let value = found.secret_string().ok_or_else(|| ConfigError::new(ARN, "names a secret without a string value"))?;
            (ARN, Zeroizing::new(value.trim().to_string()))
        }
        (None, Some(inline)) => (INLINE, Zeroizing::new(inline.to_string())),
        (None, None) => return Err(ConfigError::new(ARN, "is not set (nor VAULTSTREAM_SERVICE_SECRET)")),
    };
    ServiceSecret::from_hex(&hex).map(Arc::new).map_err(|e| ConfigError::new(name, e.to_string()))
}

pub fn token_signer(secret: &ServiceSecret) -> Arc<TokenSigner> {
    Arc::new(TokenSigner::new(secret))
}

pub fn audit(env: &Env, aws: &Aws) -> Result<Arc<dyn AuditSink>, ConfigError> {
    let table = env.required("VAULTSTREAM_AUDIT_TABLE")?;
    let shards = env.number("VAULTSTREAM_AUDIT_SHARDS", 4u16)?;
    Ok(Arc::new(CountedLedger(Arc::new(DynamoLedger::new(aws.dynamodb().clone(), table, shards)))))
}

pub fn catalog(env: &Env, aws: &Aws) -> Result<Arc<DynamoCatalog>, ConfigError> {
    Ok(Arc::new(DynamoCatalog::new(aws.dynamodb().clone(), env.required("VAULTSTREAM_CONTENT_TABLE")?)))
}

pub fn sessions(env: &Env, aws: &Aws) -> Result<Arc<DynamoSessions>, ConfigError> {
    Ok(Arc::new(DynamoSessions::new(aws.dynamodb().clone(), env.required("VAULTSTREAM_TOKENS_TABLE")?)))
}

pub fn api_base_url(env: &Env) -> Result<String, ConfigError> {
    const NAME: &str = "VAULTSTREAM_API_BASE_URL";
    let url = env.required(NAME)?.trim_end_matches('/').to_string();
    url::Url::parse(&url).map_err(|e| ConfigError::new(NAME, format!("{url:?} is not a URL: {e}")))?;
    Ok(url)
}

/// The DRM vendors' licence servers the deployment names (infra/contract.json `drm.systems`):
/// each optional, each an https URL (http only on loopback, for the local stack).
pub fn license_servers(env: &Env) -> Result<vaultstream::drm::LicenseServers, ConfigError> {
    let servers = vaultstream::drm::LicenseServers::from_lookup(|name| env.optional(name).map(str::to_string));
    let urls = servers.urls.iter().map(|(s, u)| (s.license_url_env(), u.as_str()));
    let certificate = servers.fairplay_certificate_url.as_deref().map(|u| (vaultstream::drm::FAIRPLAY_CERTIFICATE_URL_ENV, u));
    for (name, value) in urls.chain(certificate) {
        let url = url::Url::parse(value).map_err(|e| ConfigError::new(name, format!("{value:?} is not a URL: {e}")))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(ConfigError::new(name, format!("{value:?} must be an https URL: players fetch licences from it")));
        }
    }
    Ok(servers)
}

pub fn tenant_hosts(env: &Env, secret: &ServiceSecret) -> Result<Arc<TenantHosts>, ConfigError> {
    let domain = env.required("VAULTSTREAM_CDN_DOMAIN")?;
    let scheme = env.optional("VAULTSTREAM_CDN_SCHEME").unwrap_or("https");
    if scheme != "https" && scheme != "http" {
        return Err(ConfigError::new("VAULTSTREAM_CDN_SCHEME", "must be https or http"));
    }
    let port = env
        .optional("VAULTSTREAM_CDN_PORT")
        .map(|p| p.parse::<u16>().map_err(|_| ConfigError::new("VAULTSTREAM_CDN_PORT", "is not a port number")))
        .transpose()?;
    Ok(Arc::new(TenantHosts::new(secret, domain).with_origin(scheme, port)))
}

/// A KMS key (`VAULTSTREAM_CLOUDFRONT_KMS_KEY_ID`, production) or a PEM
/// (`VAULTSTREAM_CLOUDFRONT_PRIVATE_KEY_FILE`, local stack and tests).
pub async fn policy_signer(env: &Env, aws: &Aws) -> Result<Arc<dyn PolicySigner>, ConfigError> {
    let key_pair_id = env.required("VAULTSTREAM_CLOUDFRONT_KEY_PAIR_ID")?;
    if let Some(kms_key) = env.optional("VAULTSTREAM_CLOUDFRONT_KMS_KEY_ID") {
        let signer = KmsPolicySigner::connect(aws.kms().clone(), kms_key, key_pair_id)
            .await
            .map_err(|e| ConfigError::new("VAULTSTREAM_CLOUDFRONT_KMS_KEY_ID", e.to_string()))?;
        return Ok(Arc::new(signer));
    }
    pem_policy_signer(env, key_pair_id)
}

/// The local stack's and the tests' signer: a PEM key file (the `local-keys` feature).
#[cfg(feature = "local-keys")]
fn pem_policy_signer(env: &Env, key_pair_id: &str) -> Result<Arc<dyn PolicySigner>, ConfigError> {
    const FILE: &str = "VAULTSTREAM_CLOUDFRONT_PRIVATE_KEY_FILE";
    let path = env.optional(FILE).ok_or_else(|| ConfigError::new(FILE, "is not set (nor VAULTSTREAM_CLOUDFRONT_KMS_KEY_ID)"))?;
    let pem = Zeroizing::new(std::fs::read(path).map_err(|e| ConfigError::new(FILE, format!("{path}: {e}")))?);
    let hash = HashAlgorithm::parse(env.optional("VAULTSTREAM_CLOUDFRONT_HASH_ALGORITHM").unwrap_or("SHA1"))
        .map_err(|e| ConfigError::new("VAULTSTREAM_CLOUDFRONT_HASH_ALGORITHM", e.to_string()))?;
    let signer = vaultstream::cdn::PemPolicySigner::from_pem(&pem, key_pair_id, hash).map_err(|e| ConfigError::new(FILE, e.to_string()))?;
    Ok(Arc::new(signer))
}

/// A Lambda package signs with KMS only: it carries no OpenSSL to read a PEM key with.
#[cfg(not(feature = "local-keys"))]
fn pem_policy_signer(_: &Env, _: &str) -> Result<Arc<dyn PolicySigner>, ConfigError> {
    Err(ConfigError::new(
        "VAULTSTREAM_CLOUDFRONT_KMS_KEY_ID",
        "is not set; this build signs with KMS only (PEM keys need the `local-keys` feature, as the local stack builds it)",
    ))
}

pub fn jwt_verifier(env: &Env) -> Result<JwtVerifier, ConfigError> {
    const ALGS: &str = "VAULTSTREAM_JWT_ALGORITHMS";
    let algorithms = JwtSettings::parse_algorithms(env.optional(ALGS).unwrap_or("RS256,ES256")).map_err(|e| ConfigError::new(ALGS, e))?;
    let hs256_secret = env.optional("VAULTSTREAM_JWT_HS256_SECRET").map(|s| Zeroizing::new(s.as_bytes().to_vec()));
    let settings = JwtSettings {
        issuer: env.required("VAULTSTREAM_JWT_ISSUER")?.to_string(),
        audience: env.required("VAULTSTREAM_JWT_AUDIENCE")?.to_string(),
        algorithms,
        hs256_secret,
        leeway_seconds: env.number("VAULTSTREAM_JWT_LEEWAY_SECONDS", 60u64)?,
    };
    let jwks = match (env.optional("VAULTSTREAM_JWKS_URL"), env.optional("VAULTSTREAM_JWKS_FILE")) {
        (Some(url), _) => Some(JwksCache::new(Box::new(HttpJwks::new(url).map_err(|e| ConfigError::new("VAULTSTREAM_JWKS_URL", e))?))),
        (None, Some(path)) => Some(JwksCache::new(Box::new(FileJwks(path.into())))),
        (None, None) => None,
    };
    JwtVerifier::new(settings, jwks).map_err(|e| ConfigError::new(ALGS, e))
}

pub fn authenticator(env: &Env, aws: &Aws) -> Result<Authenticator, ConfigError> {
    let tokens = Arc::new(DynamoApiTokens::new(aws.dynamodb().clone(), env.required("VAULTSTREAM_TOKENS_TABLE")?));
    Ok(Authenticator { jwt: jwt_verifier(env)?, api_tokens: tokens, revocations: sessions(env, aws)? })
}

/// A bucket, table, queue or bus name from its variable.
pub fn name(env: &Env, variable: &str) -> Result<String, ConfigError> {
    Ok(env.required(variable)?.to_string())
}

/// Customers' buckets as monitors read them. `VAULTSTREAM_GCS_ENDPOINT` (the local stack only)
/// points the GCS reads at an emulator, without authentication.
pub fn cloud_buckets(env: &Env, aws: &Aws) -> Result<Arc<vaultstream::aws::CloudBucketsClient>, ConfigError> {
    const NAME: &str = "VAULTSTREAM_GCS_ENDPOINT";
    let emulator = match env.optional(NAME).filter(|v| !v.is_empty()) {
        Some(url) => Some(url::Url::parse(url).map_err(|e| ConfigError::new(NAME, format!("{url:?} is not a URL: {e}")))?),
        None => None,
    };
    let gcs = vaultstream::gcs::GcsClient::new(emulator, std::time::Duration::from_secs(10)).map_err(|e| ConfigError::new(NAME, e))?;
    Ok(Arc::new(vaultstream::aws::CloudBucketsClient::new(aws, gcs, platform_buckets(env)?)))
}

/// The deployment's own buckets and account, which no monitor may read
/// (`VAULTSTREAM_PLATFORM_BUCKETS`, comma-separated, and `VAULTSTREAM_PLATFORM_ACCOUNT`).
pub fn platform_buckets(env: &Env) -> Result<vaultstream::ingest::monitors::PlatformBuckets, ConfigError> {
    let names = env.required("VAULTSTREAM_PLATFORM_BUCKETS")?;
    let account = env.required("VAULTSTREAM_PLATFORM_ACCOUNT")?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::new("VAULTSTREAM_PLATFORM_ACCOUNT", "must be the deployment's 12-digit AWS account id"));
    }
    Ok(vaultstream::ingest::monitors::PlatformBuckets::parse(names, Some(account)))
}

pub fn monitors(env: &Env, aws: &Aws) -> Result<Arc<vaultstream::aws::DynamoMonitors>, ConfigError> {
    Ok(Arc::new(vaultstream::aws::DynamoMonitors::new(aws.dynamodb().clone(), name(env, "VAULTSTREAM_FEEDS_TABLE")?)))
}
