//! The AWS settings a Lambda function starts with: what the standard chain would find there,
//! without building what it would not use, and TLS that trusts only Amazon's roots.
//!
//! - Lambda hands every function its role's credentials and its region as environment
//!   variables, which the standard chain reads first anyway. Building the chain still builds its
//!   other providers: an STS client for web identity (which, like every client, checks its HTTPS
//!   client by loading and parsing every system root certificate) and an IMDS client. Naming the
//!   environment providers directly skips all of that at every cold start.
//! - Every AWS endpoint's certificate chains to Amazon Trust Services' roots. A function's AWS
//!   calls trust those five and nothing else: parsing five roots instead of the system's ~150 is
//!   most of what building a TLS connector costs, and a certificate for an AWS host name issued by
//!   any other authority is refused. Where `AWS_ENDPOINT_URL` points the clients elsewhere (an
//!   emulator, a proxy with its own certificate), the system's roots apply, as in the standard chain.

use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Amazon Root CA 1–4 and Starfield Services Root CA G2 (which cross-signs Amazon Root CA 1).
pub const AMAZON_ROOTS_PEM: &[u8] = include_bytes!("amazon_roots.pem");

/// Where a function's settings come from, read from its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LambdaSources {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are set (as Lambda sets them).
    pub credentials_in_env: bool,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`) is set.
    pub region_in_env: bool,
    /// `AWS_ENDPOINT_URL` points the clients somewhere other than AWS.
    pub custom_endpoint: bool,
}

impl LambdaSources {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
        LambdaSources {
            credentials_in_env: set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"),
            region_in_env: set("AWS_REGION") || set("AWS_DEFAULT_REGION"),
            custom_endpoint: set("AWS_ENDPOINT_URL"),
        }
    }

    /// Whether TLS trusts Amazon's roots alone (the endpoints are AWS's own).
    pub fn amazon_roots_only(&self) -> bool {
        !self.custom_endpoint
    }

    /// The standard loader with what these sources make unnecessary left out.
    pub fn loader(&self) -> ConfigLoader {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if self.credentials_in_env {
            loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
        }
        if self.region_in_env {
            loader = loader.region(EnvironmentVariableRegionProvider::new());
        }
        if self.amazon_roots_only() {
            loader = loader.http_client(https_client(amazon_roots()));
        }
        loader
    }
}

/// TLS trusting Amazon Trust Services' roots only.
pub fn amazon_roots() -> TlsContext {
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_ROOTS_PEM);
    // The bundle is compiled in and checked by this module's tests, so it always builds.
    TlsContext::builder().with_trust_store(trust).build().unwrap_or_default()
}

/// The SDK's default HTTPS client (rustls with aws-lc, the connector settings and proxy
/// configuration of the standard one), trusting `tls`'s roots.
pub fn https_client(tls: TlsContext) -> SharedHttpClient {
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(tls.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    fn env(vars: &[(&str, &str)]) -> LambdaSources {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LambdaSources::from_env(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_bundle_holds_amazons_five_roots_and_nothing_else() {
        let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(AMAZON_ROOTS_PEM).collect::<Result<_, _>>().unwrap();
        assert_eq!(certs.len(), 5);
        let text = String::from_utf8_lossy(AMAZON_ROOTS_PEM);
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            let der = certs.iter().find(|c| c.windows(name.len()).any(|w| w == name.as_bytes()));
            assert!(der.is_some(), "{name} is not in the bundle");
            assert!(text.contains(name), "{name} is not named in the bundle's comments");
        }
        let mut roots = rustls::RootCertStore::empty();
        let (valid, invalid) = roots.add_parsable_certificates(certs);
        assert_eq!((valid, invalid), (5, 0));
    }

    #[test]
    fn lambdas_environment_skips_the_chain_and_pins_amazons_roots() {
        let lambda =
            env(&[("AWS_ACCESS_KEY_ID", "AKIA"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_SESSION_TOKEN", "t"), ("AWS_REGION", "us-east-1")]);
        assert_eq!(lambda, LambdaSources { credentials_in_env: true, region_in_env: true, custom_endpoint: false });
        assert!(lambda.amazon_roots_only());

        let emulator =
            env(&[("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]);
        assert_eq!(emulator, LambdaSources { credentials_in_env: true, region_in_env: false, custom_endpoint: true });
        assert!(!emulator.amazon_roots_only(), "an emulator or proxy has its own certificate");

        let half = env(&[("AWS_ACCESS_KEY_ID", "AKIA"), ("AWS_SECRET_ACCESS_KEY", " "), ("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert!(!half.credentials_in_env, "without a secret key the standard chain decides");
        assert!(half.region_in_env);
    }
}
