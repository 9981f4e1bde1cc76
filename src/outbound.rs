//! Fetching URLs that clients name (metadata documents, their JWKS) without
//! letting a client point the broker at the inside of its own network: the
//! host is resolved first, every address must be public, and the connection
//! is pinned to the address that was checked (no second DNS answer).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use openidconnect::reqwest;
use url::{Host, Url};

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 64 * 1024;
/// How long a document without Cache-Control is kept, and the most any is.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
const LONGEST_MAX_AGE: Duration = Duration::from_secs(86_400);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0} is not an https URL")]
    Scheme(String),
    #[error("{0} has no host name")]
    NoHost(String),
    #[error("{host} resolves to {addr}, a private, loopback or link-local address")]
    NotPublic { host: String, addr: IpAddr },
    #[error("{0} could not be resolved")]
    Resolve(String),
    #[error("fetching {0} took longer than 5 s")]
    Timeout(String),
    #[error("{url} answered with a redirect; redirects are not followed")]
    Redirect { url: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{0} is larger than 64 KiB")]
    TooLarge(String),
    #[error("fetching {url} failed: {reason}")]
    Transport { url: String, reason: String },
}

/// A fetched body and how long it may be reused.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub max_age: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Outbound {
    /// Development only: http URLs and non-public addresses are allowed.
    allow_insecure: bool,
}

impl Outbound {
    pub fn new(allow_insecure: bool) -> Self {
        Self { allow_insecure }
    }

    /// Whether `url`'s scheme may be fetched at all.
    pub fn scheme_allowed(&self, url: &Url) -> bool {
        url.scheme() == "https" || (self.allow_insecure && url.scheme() == "http")
    }

    pub async fn get(&self, url: &Url) -> Result<Fetched, FetchError> {
        tokio::time::timeout(TIMEOUT, self.get_unbounded(url))
            .await
            .unwrap_or_else(|_| Err(FetchError::Timeout(url.to_string())))
    }

    async fn get_unbounded(&self, url: &Url) -> Result<Fetched, FetchError> {
        let shown = url.to_string();
        if !self.scheme_allowed(url) {
            return Err(FetchError::Scheme(shown));
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let (name, addr) = match url.host() {
            None => return Err(FetchError::NoHost(shown)),
            Some(Host::Ipv4(ip)) => (None, SocketAddr::new(IpAddr::V4(ip), port)),
            Some(Host::Ipv6(ip)) => (None, SocketAddr::new(IpAddr::V6(ip), port)),
            Some(Host::Domain(name)) => (Some(name), self.resolve(name, port).await?),
        };
        if !self.allow_insecure && !is_public(addr.ip()) {
            return Err(FetchError::NotPublic {
                host: url.host_str().unwrap_or_default().to_owned(),
                addr: addr.ip(),
            });
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(name) = name {
            builder = builder.resolve(name, addr);
        }
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: shown.clone(),
            reason: e.without_url().to_string(),
        };
        let client = builder.build().map_err(transport)?;
        let mut response = client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect { url: shown });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: shown,
                status: status.as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BYTES as u64)
        {
            return Err(FetchError::TooLarge(shown));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map_or(DEFAULT_MAX_AGE, cache_lifetime);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(FetchError::TooLarge(shown));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }

    /// The first address of `name`; all of them must be public, so a name
    /// that also points inside cannot be raced into the pinned one.
    async fn resolve(&self, name: &str, port: u16) -> Result<SocketAddr, FetchError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| FetchError::Resolve(name.to_owned()))?
            .collect();
        if let Some(bad) = addrs
            .iter()
            .find(|a| !self.allow_insecure && !is_public(a.ip()))
        {
            return Err(FetchError::NotPublic {
                host: name.to_owned(),
                addr: bad.ip(),
            });
        }
        addrs
            .first()
            .copied()
            .ok_or_else(|| FetchError::Resolve(name.to_owned()))
    }
}

/// How long a response may be reused, from its Cache-Control header.
fn cache_lifetime(header: &str) -> Duration {
    let mut max_age = None;
    for directive in header.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            max_age = seconds.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_MAX_AGE)
        .min(LONGEST_MAX_AGE)
}

/// Globally routable unicast: not loopback, private, link-local (cloud
/// metadata lives there), shared, documentation, multicast or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64 can reach private v4
                || first == 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} counted as public");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} counted as private");
        }
    }

    #[test]
    fn cache_control_sets_the_lifetime() {
        assert_eq!(
            cache_lifetime("public, max-age=60"),
            Duration::from_secs(60)
        );
        assert_eq!(cache_lifetime("no-store"), Duration::ZERO);
        assert_eq!(cache_lifetime("max-age=99999999"), LONGEST_MAX_AGE);
        assert_eq!(cache_lifetime("private"), DEFAULT_MAX_AGE);
    }

    proptest::proptest! {
        #[test]
        fn private_ranges_are_never_public(b in 0u8.., c in 0u8.., d in 0u8..) {
            for ip in [
                std::net::Ipv4Addr::new(10, b, c, d),
                std::net::Ipv4Addr::new(127, b, c, d),
                std::net::Ipv4Addr::new(169, 254, c, d),
                std::net::Ipv4Addr::new(192, 168, c, d),
                std::net::Ipv4Addr::new(172, 16 + b % 16, c, d),
                std::net::Ipv4Addr::new(100, 64 + b % 64, c, d),
            ] {
                proptest::prop_assert!(!is_public(IpAddr::V4(ip)), "{}", ip);
                proptest::prop_assert!(!is_public(IpAddr::V6(ip.to_ipv6_mapped())), "{}", ip);
            }
        }
    }
}
