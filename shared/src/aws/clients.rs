//! The AWS SDK clients every binary builds once, from the standard configuration chain.

use std::sync::OnceLock;

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
    match config.http_client() {
        Some(inner) => {
            config.into_builder().http_client(SharedHttpClient::new(ValidatedOnce { inner, validated: OnceLock::new() })).build()
        }
        None => config,
    }
}

/// One client per service the platform talks to. `AWS_ENDPOINT_URL` points them all at an
/// emulator (moto, LocalStack), where S3 needs path-style addressing.
#[derive(Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub batch: aws_sdk_batch::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// What the clients sign with, for what the SDK does not sign itself (S3 POST policies).
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    /// The settings they were built from, for clients made later with other credentials (a
    /// customer's role), and whether S3 wants path-style addressing (an emulator).
    pub config: aws_config::SdkConfig,
    pub path_style: bool,
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
        let emulator = std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.trim().is_empty());
        (config, emulator)
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig, path_style: bool) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            batch: aws_sdk_batch::Client::new(config),
            events: aws_sdk_eventbridge::Client::new(config),
            credentials: config.credentials_provider(),
            config: config.clone(),
            path_style,
        }
    }
}
