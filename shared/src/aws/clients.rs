//! The AWS SDK clients every binary builds once, from the standard configuration chain.

use std::sync::{Arc, OnceLock};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_types::config_bag::ConfigBag;

/// The SDK's HTTPS client, whose start-up work is done once for all clients. Building a service
/// client validates the HTTP client, and the SDK's does that by building a TLS connector: every
/// system root certificate parsed into a fresh trust store, again for each of the seven clients.
/// Once is enough to load and check the roots at start (not on the first request); requests
/// still get their connectors, cached by timeout settings, from the SDK's client.
#[derive(Debug)]
struct ValidatedOnce {
    inner: SharedHttpClient,
    validated: OnceLock<()>,
}

impl HttpClient for ValidatedOnce {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(&self, components: &RuntimeComponentsBuilder, cfg: &ConfigBag) -> Result<(), BoxError> {
        if self.validated.get().is_none() {
            self.inner.validate_base_client_config(components, cfg)?;
            let _ = self.validated.set(());
        }
        Ok(())
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// `config` with its HTTP client wrapped so its start-up work runs once.
fn validated_once(config: aws_config::SdkConfig) -> aws_config::SdkConfig {
    with_validation(config, OnceLock::new())
}

/// `config` with its HTTP client's start-up check skipped. The check builds a TLS connector and
/// throws it away, only so that the system's roots (cached process-wide) load at start; a client
/// trusting a few compiled-in roots has no such cache to fill, and each request path builds its
/// own connector anyway, so the check would be work done twice, not work moved.
fn unvalidated(config: aws_config::SdkConfig) -> aws_config::SdkConfig {
    with_validation(config, OnceLock::from(()))
}

fn with_validation(config: aws_config::SdkConfig, validated: OnceLock<()>) -> aws_config::SdkConfig {
    match config.http_client() {
        Some(inner) => config.into_builder().http_client(SharedHttpClient::new(ValidatedOnce { inner, validated })).build(),
        None => config,
    }
}

/// Whether `AWS_ENDPOINT_URL` points the clients at an emulator.
fn emulator() -> bool {
    std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.trim().is_empty())
}

/// One client per service the platform talks to, each built the first time it is asked for: a
/// function builds at start the clients its adapters hold and no others (a client costs about a
/// tenth of a millisecond to build, and most functions use one to three of the eight). Clones
/// share the clients. `AWS_ENDPOINT_URL` points them all at an emulator (moto, LocalStack), where
/// S3 needs path-style addressing.
#[derive(Clone)]
pub struct Clients {
    built: Arc<Built>,
    /// What the clients sign with, for what the SDK does not sign itself (S3 POST policies).
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    /// The settings they were built from, for clients made later with other credentials (a
    /// customer's role), and whether S3 wants path-style addressing (an emulator).
    pub config: aws_config::SdkConfig,
    pub path_style: bool,
}

#[derive(Default)]
struct Built {
    s3: OnceLock<aws_sdk_s3::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    kms: OnceLock<aws_sdk_kms::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    secrets: OnceLock<aws_sdk_secretsmanager::Client>,
    batch: OnceLock<aws_sdk_batch::Client>,
    events: OnceLock<aws_sdk_eventbridge::Client>,
    sts: OnceLock<aws_sdk_sts::Client>,
}

impl Clients {
    /// Clients from the process environment (credentials, region, `AWS_ENDPOINT_URL`).
    pub async fn from_env() -> Self {
        let (config, emulator) = Self::load_config().await;
        Self::from_sdk_config(&config, emulator)
    }

    /// The standard chain's settings, and whether they point at an emulator (`AWS_ENDPOINT_URL`,
    /// which wants path-style S3 addressing).
    pub async fn load_config() -> (aws_config::SdkConfig, bool) {
        let config = validated_once(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await);
        (config, emulator())
    }

    /// A Lambda function's settings ([`super::lambda_config`]): the same values, with less built
    /// at start and Amazon's roots alone trusted for AWS's endpoints.
    pub async fn load_lambda_config() -> (aws_config::SdkConfig, bool) {
        let sources = super::lambda_config::LambdaSources::from_env(|name| std::env::var(name).ok());
        let config = sources.loader().load().await;
        let config = if sources.amazon_roots_only() { unvalidated(config) } else { validated_once(config) };
        (config, sources.custom_endpoint)
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig, path_style: bool) -> Self {
        Clients { built: Arc::default(), credentials: config.credentials_provider(), config: config.clone(), path_style }
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.built.s3.get_or_init(|| {
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.config).force_path_style(self.path_style).build())
        })
    }

    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        self.built.dynamodb.get_or_init(|| aws_sdk_dynamodb::Client::new(&self.config))
    }

    pub fn kms(&self) -> &aws_sdk_kms::Client {
        self.built.kms.get_or_init(|| aws_sdk_kms::Client::new(&self.config))
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.built.sqs.get_or_init(|| aws_sdk_sqs::Client::new(&self.config))
    }

    pub fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        self.built.secrets.get_or_init(|| aws_sdk_secretsmanager::Client::new(&self.config))
    }

    pub fn batch(&self) -> &aws_sdk_batch::Client {
        self.built.batch.get_or_init(|| aws_sdk_batch::Client::new(&self.config))
    }

    pub fn events(&self) -> &aws_sdk_eventbridge::Client {
        self.built.events.get_or_init(|| aws_sdk_eventbridge::Client::new(&self.config))
    }

    pub fn sts(&self) -> &aws_sdk_sts::Client {
        self.built.sts.get_or_init(|| aws_sdk_sts::Client::new(&self.config))
    }
}
