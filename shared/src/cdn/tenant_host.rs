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

    /// The CloudFront Function's viewer-request rule (`infra/shared/tenant-host.js`, held to this
    /// by `infra/shared/tenant-host-cases.json`): a clean URI whose first segment is the tenant
    /// the host's label belongs to. The store CloudFront looks labels up in maps each label to
    /// its tenant; recomputing the label is the same lookup.
    pub fn admit(&self, label: &str, uri: &str) -> Result<(), HostRefusal> {
        if !clean_uri(uri) {
            return Err(HostRefusal::BadPath);
        }
        let tenant = uri.split('/').nth(1).unwrap_or_default();
        match TenantId::parse(tenant) {
            Ok(t) if self.label(&t) == label => Ok(()),
            _ => Err(HostRefusal::WrongTenantHost),
        }
    }

    /// `https://{label}.cdn.<domain>/{tenant}/{content}/`: where a content item's files live on
    /// the CDN, mirroring the origin bucket's `{tenant}/{content}/` prefix.
    pub fn content_base(&self, tenant: &TenantId, content: &crate::ids::ContentId) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{}{port}/{tenant}/{content}/", self.scheme, self.host(tenant))
    }
}

/// Why the edge refused a URI before looking at signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRefusal {
    /// 400: the URI could name something outside the signed prefix once decoded.
    BadPath,
    /// 403: the path's tenant is not this host's.
    WrongTenantHost,
}

impl HostRefusal {
    pub fn status(self) -> u16 {
        match self {
            HostRefusal::BadPath => 400,
            HostRefusal::WrongTenantHost => 403,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            HostRefusal::BadPath => "bad_path",
            HostRefusal::WrongTenantHost => "wrong_tenant_host",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            HostRefusal::BadPath => "the path has '.', '..' or empty segments, a backslash or an encoded separator",
            HostRefusal::WrongTenantHost => "this host does not serve that path",
        }
    }
}

/// No `.` or `..` segment, no `//`, no backslash, and no percent-encoded dot, slash, backslash or
/// NUL: nothing that names another prefix once decoded, whatever decodes it.
pub fn clean_uri(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    uri.starts_with('/')
        && !uri.contains("//")
        && !uri.contains('\\')
        && !["%2e", "%2f", "%5c", "%00"].iter().any(|encoded| lower.contains(encoded))
        && !uri.split('/').skip(1).any(|segment| segment == "." || segment == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same table the CloudFront Function is tested with (infra/cdk/test).
    #[test]
    fn the_edge_rule_answers_as_the_cloudfront_function() {
        let table: serde_json::Value = serde_json::from_str(include_str!("../../../infra/shared/tenant-host-cases.json")).unwrap();
        let hosts = TenantHosts::new(&ServiceSecret::from_bytes(vec![3; 32]).unwrap(), "example.com");
        let label = hosts.label(&TenantId::parse("acme").unwrap());
        let cases = table["cases"].as_array().unwrap();
        assert!(cases.len() > 10);
        for case in cases {
            let (uri, answer) = (case["uri"].as_str().unwrap(), case["answer"].as_str().unwrap());
            let got = match hosts.admit(&label, uri) {
                Ok(()) => "pass",
                Err(refusal) => refusal.code(),
            };
            assert_eq!(got, answer, "{uri}");
        }
    }

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
