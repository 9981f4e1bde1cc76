//! The browser side of a login: the cookie that binds a pending request to
//! the browser that started it, and the caller's address for the audit log.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use std::convert::Infallible;

use crate::config::Settings;
use crate::rate_limit::client_address;
use crate::AppState;

/// The broker's two cookies: one binds a pending login to the browser
/// that started it, the other is the broker session after a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookie {
    Login,
    Session,
}

impl Cookie {
    fn name(self, settings: &Settings) -> &'static str {
        // The __Host- prefix needs Secure, which plain-http loopback cannot have.
        match (self, settings.issuer().starts_with("https://")) {
            (Cookie::Login, true) => "__Host-mcp_broker_login",
            (Cookie::Login, false) => "mcp_broker_login",
            (Cookie::Session, true) => "__Host-mcp_broker_session",
            (Cookie::Session, false) => "mcp_broker_session",
        }
    }

    fn max_age(self, settings: &Settings) -> u64 {
        match self {
            Cookie::Login => settings.oauth.login_ttl.0.as_secs(),
            Cookie::Session => settings.session.lifetime.0.as_secs(),
        }
    }
}

/// The secret from our cookie, if the browser sent one that looks like ours.
pub fn secret(settings: &Settings, headers: &HeaderMap, cookie: Cookie) -> Option<String> {
    let name = cookie.name(settings);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| {
            v.len() == 43
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

pub fn set_cookie(settings: &Settings, cookie: Cookie, secret: &str) -> HeaderValue {
    cookie_header(settings, cookie, secret, cookie.max_age(settings))
}

/// Tells the browser to forget the cookie.
pub fn clear_cookie(settings: &Settings, cookie: Cookie) -> HeaderValue {
    cookie_header(settings, cookie, "", 0)
}

fn cookie_header(settings: &Settings, cookie: Cookie, value: &str, max_age: u64) -> HeaderValue {
    let secure = if settings.issuer().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie.name(settings)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The caller's address (behind `server.trusted_proxies`, the forwarded one).
pub struct ClientIp(pub Option<String>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = client_address(
            &parts.extensions,
            &parts.headers,
            &app.settings().server.trusted_proxies,
        );
        Ok(ClientIp((!ip.is_unspecified()).then(|| ip.to_string())))
    }
}
