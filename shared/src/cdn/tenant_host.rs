//! Each tenant's CDN host: `{label}.cdn.<domain>`, where the label is an HMAC of the tenant id,
//! so host names cannot be enumerated or guessed from tenant ids.

use aws_lc_rs::hmac;

use crate::ids::TenantId;
use crate::service_secret::{Purpose, ServiceSecret};

pub struct TenantHosts {
    key: hmac::Key,
    /// The parent domain, e.g. `example.com`; hosts are `{label}.cdn.example.com`.
    domain: String,
    /// `https` in production; the local stack serves plain `http`.
    scheme: String,
    port: Option<u16>,
}

impl TenantHosts {
    pub fn new(secret: &ServiceSecret, domain: impl Into<String>) -> Self {
        TenantHosts { key: secret.hmac_key(Purpose::TenantLabels), domain: domain.into(), scheme: "https".into(), port: None }
    }

    /// For the local stack: `http://{label}.cdn.localhost:PORT`.
    pub fn with_origin(mut self, scheme: &str, port: Option<u16>) -> Self {
        self.scheme = scheme.into();
        self.port = port;
        self
    }

    /// 128 bits of the HMAC, as 32 lowercase hex digits (a valid DNS label).
    pub fn label(&self, tenant: &TenantId) -> String {
        let tag = hmac::sign(&self.key, tenant.as_str().as_bytes());
        hex::encode(&tag.as_ref()[..16])
    }

    pub fn host(&self, tenant: &TenantId) -> String {
        format!("{}.cdn.{}", self.label(tenant), self.domain)
    }

    /// `https://{label}.cdn.<domain>/{tenant}/{content}/`: where a content item's files live on
    /// the CDN, mirroring the origin bucket's `{tenant}/{content}/` prefix.
    pub fn content_base(&self, tenant: &TenantId, content: &crate::ids::ContentId) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{}{port}/{tenant}/{content}/", self.scheme, self.host(tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stable_distinct_and_opaque() {
        let hosts = TenantHosts::new(&ServiceSecret::from_bytes(vec![3; 32]).unwrap(), "example.com");
        let (a, b) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
        assert_eq!(hosts.label(&a), hosts.label(&a));
        assert_ne!(hosts.label(&a), hosts.label(&b));
        assert_eq!(hosts.label(&a).len(), 32);
        assert!(!hosts.host(&a).contains("acme"));
        assert!(hosts.host(&a).ends_with(".cdn.example.com"));
        let other = TenantHosts::new(&ServiceSecret::from_bytes(vec![4; 32]).unwrap(), "example.com");
        assert_ne!(hosts.label(&a), other.label(&a), "labels depend on the secret");
    }
}
