//! Per-client-IP rate limits on the endpoints an attacker would hammer
//! (registration, token, login pages), answered 429 with `Retry-After`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Extensions, HeaderMap, HeaderValue, Request, Response, StatusCode};
use governor::middleware::NoOpMiddleware;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

use crate::address_range::{any_contains, AddressRange};
use crate::config::RateLimitSettings;

/// The client's address: the peer, or — only when the peer is a trusted
/// proxy — the right-most untrusted address in `X-Forwarded-For`.
#[derive(Clone, Debug)]
pub struct ClientIp {
    trusted_proxies: Arc<Vec<AddressRange>>,
}

impl ClientIp {
    pub fn of<T>(&self, req: &Request<T>) -> IpAddr {
        client_address(req.extensions(), req.headers(), &self.trusted_proxies)
    }
}

/// The client's address for rate limits and the audit log. In-process tests
/// have no peer and share the unspecified address.
pub fn client_address(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted_proxies: &[AddressRange],
) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !any_contains(trusted_proxies, peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !any_contains(trusted_proxies, *ip))
        .unwrap_or(peer)
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        Ok(self.of(req))
    }
}

pub type Limit = GovernorLayer<ClientIp, NoOpMiddleware, Body>;

/// `None` when rate limiting is switched off.
pub fn layer(settings: &RateLimitSettings, trusted_proxies: &[AddressRange]) -> Option<Limit> {
    if !settings.enabled {
        return None;
    }
    let config = GovernorConfigBuilder::default()
        .period(Duration::from_secs_f64(1.0 / settings.requests_per_second))
        .burst_size(settings.burst)
        .key_extractor(ClientIp {
            trusted_proxies: Arc::new(trusted_proxies.to_vec()),
        })
        .finish()?;
    Some(GovernorLayer::new(Arc::new(config)).error_handler(too_many))
}

/// An OAuth-shaped 429 that tells the client when to come back.
fn too_many(error: GovernorError) -> Response<Body> {
    let wait = match error {
        GovernorError::TooManyRequests { wait_time, .. } => wait_time.max(1),
        _ => 1,
    };
    let body = serde_json::json!({
        "error": "temporarily_unavailable",
        "error_description": format!("too many requests from this address; retry in {wait} s"),
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from(wait));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: Option<&str>) -> Request<()> {
        let mut req = Request::builder().uri("/token");
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        let mut req = req.body(()).unwrap();
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(
            format!("{peer}:5000").parse().unwrap(),
        ));
        req
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = ClientIp {
            trusted_proxies: Arc::new(vec!["10.0.0.1".parse().unwrap()]),
        };
        assert_eq!(
            ip.of(&request("203.0.113.9", Some("1.2.3.4"))).to_string(),
            "203.0.113.9",
            "a spoofed header is ignored"
        );
        assert_eq!(
            ip.of(&request("10.0.0.1", Some("1.2.3.4, 198.51.100.7")))
                .to_string(),
            "198.51.100.7",
            "right-most untrusted hop"
        );
        assert_eq!(
            ip.of(&request("10.0.0.1", Some("198.51.100.7, 10.0.0.1")))
                .to_string(),
            "198.51.100.7"
        );
        assert_eq!(ip.of(&request("10.0.0.1", None)).to_string(), "10.0.0.1");
    }
}
