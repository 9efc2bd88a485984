//! The AWS SDK clients every binary builds once, from the standard configuration chain.

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
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
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
        }
    }
}
