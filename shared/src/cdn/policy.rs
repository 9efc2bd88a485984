//! Policy statements. CloudFront signs the exact bytes, so the JSON is compact and its keys
//! come in the documented order: `Resource`, then `Condition` with `DateLessThan`,
//! `IpAddress`, `DateGreaterThan` (the order `aws cloudfront sign` uses).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A URL, or a URL pattern with `*` wildcards.
    pub resource: String,
    /// Expiry, epoch seconds.
    pub date_less_than: u64,
    /// Start, epoch seconds.
    pub date_greater_than: Option<u64>,
    /// Source address, `a.b.c.d` or CIDR; a bare address becomes `/32`.
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CloudFront policy: {0}")]
pub struct InvalidPolicy(pub String);

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "Statement")]
    statement: [Entry<'a>; 1],
}

#[derive(Serialize)]
struct Entry<'a> {
    #[serde(rename = "Resource")]
    resource: &'a str,
    #[serde(rename = "Condition")]
    condition: Condition<'a>,
}

#[derive(Serialize)]
struct Condition<'a> {
    #[serde(rename = "DateLessThan")]
    date_less_than: Epoch,
    #[serde(rename = "IpAddress", skip_serializing_if = "Option::is_none")]
    ip_address: Option<SourceIp<'a>>,
    #[serde(rename = "DateGreaterThan", skip_serializing_if = "Option::is_none")]
    date_greater_than: Option<Epoch>,
}

#[derive(Serialize)]
struct Epoch {
    #[serde(rename = "AWS:EpochTime")]
    time: u64,
}

#[derive(Serialize)]
struct SourceIp<'a> {
    #[serde(rename = "AWS:SourceIp")]
    ip: &'a str,
}

impl Policy {
    pub fn expiring(resource: impl Into<String>, date_less_than: u64) -> Self {
        Policy { resource: resource.into(), date_less_than, date_greater_than: None, ip_address: None }
    }

    /// A canned policy carries only the URL and an expiry; anything more needs a custom one.
    pub fn is_canned_for(&self, url: &str) -> bool {
        self.resource == url && self.date_greater_than.is_none() && self.ip_address.is_none() && !self.resource.contains('*')
    }

    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        if self.resource.is_empty() {
            return Err(InvalidPolicy("the resource is empty".into()));
        }
        if !self.resource.is_ascii() || self.resource.chars().any(|c| c.is_ascii_control()) {
            return Err(InvalidPolicy("the resource must be ASCII without control characters (percent-encode the URL)".into()));
        }
        if let Some(start) = self.date_greater_than {
            if start >= self.date_less_than {
                return Err(InvalidPolicy(format!("the start time {start} is not before the expiry {}", self.date_less_than)));
            }
        }
        if let Some(ip) = &self.ip_address {
            let (addr, bits) = ip.split_once('/').unwrap_or((ip, "32"));
            let addr_ok = addr.parse::<std::net::Ipv4Addr>().is_ok() || addr.parse::<std::net::Ipv6Addr>().is_ok();
            let max = if addr.contains(':') { 128 } else { 32 };
            if !addr_ok || !bits.parse::<u8>().is_ok_and(|b| b <= max) {
                return Err(InvalidPolicy(format!("{ip:?} is not an IP address or CIDR range")));
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Result<String, InvalidPolicy> {
        self.validate()?;
        let ip = self.ip_address.as_deref().map(|ip| if ip.contains('/') { ip.to_string() } else { format!("{ip}/32") });
        let statement = Statement {
            statement: [Entry {
                resource: &self.resource,
                condition: Condition {
                    date_less_than: Epoch { time: self.date_less_than },
                    ip_address: ip.as_deref().map(|ip| SourceIp { ip }),
                    date_greater_than: self.date_greater_than.map(|time| Epoch { time }),
                },
            }],
        };
        serde_json::to_string(&statement).map_err(|e| InvalidPolicy(format!("the policy could not be encoded: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_policy_matches_the_developer_guide() {
        // "Create a signature for a signed URL that uses a canned policy", example statement.
        let p = Policy::expiring("https://d111111abcdef8.cloudfront.net/horizon.jpg?large=yes&license=yes", 1357034400);
        assert_eq!(
            p.to_json().unwrap(),
            r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/horizon.jpg?large=yes&license=yes","Condition":{"DateLessThan":{"AWS:EpochTime":1357034400}}}]}"#
        );
        assert!(p.is_canned_for("https://d111111abcdef8.cloudfront.net/horizon.jpg?large=yes&license=yes"));
    }

    #[test]
    fn custom_policy_key_order() {
        let p = Policy {
            resource: "https://d111111abcdef8.cloudfront.net/game_download.zip*".into(),
            date_less_than: 1767290400,
            date_greater_than: Some(1357034400),
            ip_address: Some("192.0.2.10".into()),
        };
        assert_eq!(
            p.to_json().unwrap(),
            r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/game_download.zip*","Condition":{"DateLessThan":{"AWS:EpochTime":1767290400},"IpAddress":{"AWS:SourceIp":"192.0.2.10/32"},"DateGreaterThan":{"AWS:EpochTime":1357034400}}}]}"#
        );
        assert!(!p.is_canned_for(&p.resource));
    }

    #[test]
    fn bad_policies_say_why() {
        let mut p = Policy::expiring("https://x/y", 10);
        p.date_greater_than = Some(10);
        assert!(p.to_json().unwrap_err().to_string().contains("not before the expiry"));
        let p = Policy { ip_address: Some("300.1.1.1".into()), ..Policy::expiring("https://x/y", 10) };
        assert!(p.to_json().unwrap_err().to_string().contains("not an IP address"));
        assert!(Policy::expiring("https://x/ü", 10).to_json().is_err());
    }
}
