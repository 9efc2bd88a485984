//! The guard on every URL the platform fetches on a creator's behalf (URL imports, feeds): such a
//! URL is an attack until shown otherwise. Server-side request forgery aims the fetcher at what
//! only it can reach: loopback services, the VPC's private addresses, the instance metadata
//! endpoint (169.254.169.254, fd00:ec2::254). So:
//!
//! - only `https` (plain `http` where a deployment allows it), no credentials in the URL;
//! - a host written as an address is checked as written ([`check_url`]);
//! - a host name is resolved by the guard itself ([`GuardedResolver`]), and refused if any
//!   address it resolves to is forbidden; the connection then goes to exactly those addresses,
//!   so a second, different DNS answer (rebinding) cannot slip in between check and connect;
//! - every redirect hop passes the same checks, at most [`MAX_REDIRECTS`] of them;
//! - no proxy from the environment is used.
//!
//! Local mode may allow loopback, and only loopback, for tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

pub const MAX_REDIRECTS: usize = 5;

/// What a deployment lets its fetcher reach beyond public `https`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    /// `http://` URLs (never for credentials-bearing requests; for tests and trusted feeds).
    pub allow_http: bool,
    /// 127.0.0.0/8 and ::1: the local stack's test servers. Nothing else private, ever.
    pub allow_loopback: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn v4_forbidden(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "an unspecified address",
        (127, ..) => "a loopback address",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (169, 254, _) => "a link-local address (where the instance metadata service answers)",
        (100, 64..=127, _) => "a carrier-grade NAT address",
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (198, 18..=19, _) => "a reserved address",
        (224..=239, ..) => "a multicast address",
        (240..=255, ..) => "a reserved address",
        _ => return None,
    })
}

fn v6_forbidden(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    // Addresses that carry an IPv4 address: judged by it (mapped, NAT64, 6to4).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_forbidden(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [_, _, _, _, _, _, hi, lo] = segments;
        return v4_forbidden(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8));
    }
    Some(match segments[0] {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        0 => "a reserved address",
        0x2002 => "a 6to4 address",
        0x2001 if segments[1] == 0 => "a Teredo address",
        0x2001 if segments[1] == 0xdb8 => "a documentation address",
        s if s & 0xfe00 == 0xfc00 => "a unique local address (where the instance metadata service answers on IPv6)",
        s if s & 0xffc0 == 0xfe80 => "a link-local address",
        s if s & 0xff00 == 0xff00 => "a multicast address",
        _ => return None,
    })
}

/// Why the fetcher may not connect to `ip` under `policy`, if it may not.
pub fn forbidden_address(ip: IpAddr, policy: FetchPolicy) -> Option<&'static str> {
    if policy.allow_loopback && ip.is_loopback() {
        return None;
    }
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

/// What a URL shows of itself in records, logs, answers and refusals: scheme, host, port and
/// path. The query and fragment may carry a token (presigned links do).
pub fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The checks a URL passes before anything is resolved or fetched, on the first request and on
/// every redirect.
pub fn check_url(url: &Url, policy: FetchPolicy) -> Result<(), Refused> {
    // Refusals are shown and recorded: they name the URL without its query, which may hold a token.
    let named = shown(url);
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        other => return Err(Refused(format!("{named}: only https URLs are fetched, not {other}"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused("the URL carries credentials; give a URL that needs none (a presigned or tokenised link)".into()));
    }
    let ip = match url.host() {
        None => return Err(Refused(format!("{named}: has no host"))),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    match forbidden_address(ip, policy) {
        Some(why) => Err(Refused(format!("{named}: {ip} is {why}, which VaultStream never fetches from"))),
        None => Ok(()),
    }
}

/// Resolves host names for the fetcher and refuses any whose answer holds a forbidden address.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub policy: FetchPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() {
                return Err(Box::new(Refused(format!("{host} does not resolve"))) as _);
            }
            if let Some((ip, why)) = addresses.iter().find_map(|a| forbidden_address(a.ip(), policy).map(|why| (a.ip(), why))) {
                return Err(Box::new(Refused(format!("{host} resolves to {ip}, {why}, which VaultStream never fetches from"))) as _);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client for untrusted URLs: the guarded resolver, every redirect hop checked, no
/// proxies, `timeout` for the whole exchange.
pub fn client(policy: FetchPolicy, connect_timeout: Duration, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
        }
        match check_url(attempt.url(), policy) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(Refused(format!("a redirect was refused: {refused}"))),
        }
    });
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(redirects)
        .no_proxy()
        .https_only(!policy.allow_http)
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .build()
}

/// The guard's own words for why a request failed, if it was the guard: for a clear error to
/// the creator rather than a transport message.
pub fn refusal(error: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused.0.clone());
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const STRICT: FetchPolicy = FetchPolicy { allow_http: false, allow_loopback: false };
    const LOCAL: FetchPolicy = FetchPolicy { allow_http: true, allow_loopback: true };

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for forbidden in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = forbidden.parse().unwrap();
            assert!(forbidden_address(ip, STRICT).is_some(), "{forbidden} must be forbidden");
        }
        for public in ["93.184.216.34", "172.32.0.1", "100.128.0.1", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert_eq!(forbidden_address(public.parse().unwrap(), STRICT), None, "{public} is public");
        }
        // Local mode opens loopback, and nothing else.
        assert_eq!(forbidden_address("127.0.0.1".parse().unwrap(), LOCAL), None);
        assert!(forbidden_address("169.254.169.254".parse().unwrap(), LOCAL).is_some());
        assert!(forbidden_address("10.0.0.1".parse().unwrap(), LOCAL).is_some());
    }

    #[test]
    fn urls_are_checked_before_anything_is_resolved() {
        let check = |u: &str, p| check_url(&Url::parse(u).unwrap(), p);
        assert!(check("https://media.example.com/a.mp4", STRICT).is_ok());
        assert!(check("http://media.example.com/a.mp4", STRICT).unwrap_err().0.contains("only https"));
        assert!(check("ftp://media.example.com/a.mp4", LOCAL).is_err());
        assert!(check("file:///etc/passwd", LOCAL).is_err());
        assert!(check("https://user:secret@media.example.com/a.mp4", STRICT).unwrap_err().0.contains("credentials"));
        let refused = check("http://10.0.0.1/a.mp4?X-Amz-Signature=s3cret", STRICT).unwrap_err().0;
        assert!(refused.starts_with("http://10.0.0.1/a.mp4:") && !refused.contains("s3cret"), "{refused}");
        let metadata = check("https://169.254.169.254/latest/meta-data/", STRICT).unwrap_err().0;
        assert!(metadata.contains("link-local"), "{metadata}");
        // Other spellings of the same addresses, as the URL parser reads them.
        for sneaky in ["https://2130706433/", "https://0x7f.1/", "https://[::ffff:7f00:1]/", "https://0177.0.0.1/"] {
            assert!(check(sneaky, STRICT).is_err(), "{sneaky}");
        }
    }

    /// A one-shot HTTP server on 127.0.0.1 answering every request with `response`.
    async fn server(response: String) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        address
    }

    fn ok_body() -> String {
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nvideo".to_string()
    }

    fn redirect(to: &str) -> String {
        format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_and_redirects_to_metadata_are_refused() {
        let origin = server(ok_body()).await;
        let strict =
            client(FetchPolicy { allow_http: true, allow_loopback: false }, Duration::from_secs(2), Duration::from_secs(5)).unwrap();
        // `localhost` is a name: the resolver answers 127.0.0.1 and the guard refuses it.
        let error = strict.get(format!("http://localhost:{}/a.mp4", origin.port())).send().await.unwrap_err();
        let why = refusal(&error).unwrap_or_else(|| panic!("not the guard: {error:?}"));
        assert!(why.contains("loopback"), "{why}");

        // Local mode reaches the test server, but a redirect to the metadata service is refused,
        // as is one to a private name.
        let local = client(LOCAL, Duration::from_secs(2), Duration::from_secs(5)).unwrap();
        let body = local.get(format!("http://127.0.0.1:{}/a.mp4", origin.port())).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "video");
        let bouncer = server(redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/")).await;
        let error = local.get(format!("http://127.0.0.1:{}/a.mp4", bouncer.port())).send().await.unwrap_err();
        let why = refusal(&error).unwrap_or_else(|| panic!("not the guard: {error:?}"));
        assert!(why.contains("redirect") && why.contains("169.254.169.254"), "{why}");
        let downgrade = server(redirect("ftp://127.0.0.1/a.mp4")).await;
        assert!(local.get(format!("http://127.0.0.1:{}/", downgrade.port())).send().await.is_err());

        // A redirect loop ends.
        let looping = server(redirect("/again")).await;
        let error = local.get(format!("http://127.0.0.1:{}/", looping.port())).send().await.unwrap_err();
        assert!(refusal(&error).is_some_and(|w| w.contains("redirects")), "{error:?}");
    }
}
