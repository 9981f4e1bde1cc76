//! The gateway: existing MCP servers behind the broker. Each backend is a
//! protected resource of its own (`{issuer}{path}`, its own metadata and
//! token audience); the broker checks the caller's token, then relays the
//! Streamable HTTP exchange to the backend without the token, with the
//! caller's identity as headers and/or a short-lived JWT for that backend.

pub mod config;
mod credentials;
mod error;
mod proxy;
mod rpc;
mod sessions;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::routing::get;
use axum::Router;

pub use credentials::{FORWARDED_EMAIL, FORWARDED_USER};
pub use error::{Failure, GatewayError};
pub use sessions::KEY_NAME as SESSION_KEY;

use crate::allowlist::Role;
use crate::config::{BackendSettings, Settings};
use crate::AppState;
use credentials::BackendTokens;
use sessions::SessionSeal;

/// How long a connection to a backend may take to open (the backend's
/// `timeout` bounds it too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The backends, one HTTP client (one connection pool) for all, and the
/// seal that binds their sessions to people.
pub struct Gateway {
    backends: Vec<Arc<Backend>>,
    client: reqwest::Client,
    sessions: SessionSeal,
}

/// One backend, ready for requests.
pub struct Backend {
    /// The path after `/mcp/`, in messages.
    pub name: String,
    /// The public path, e.g. `/mcp/github` (also the audit log's `backend`).
    pub path: String,
    /// Its resource and token audience: `{issuer}{path}`.
    pub resource: String,
    /// Its protected-resource metadata (RFC 9728), for challenges.
    pub metadata_url: String,
    /// What a client should ask for, space-separated.
    pub scope_hint: String,
    /// Longest wait for the backend's response headers.
    pub timeout: Duration,
    scopes: Vec<String>,
    roles: Vec<Role>,
    url: reqwest::Url,
    identity_headers: bool,
    /// Set when the backend gets a broker-signed JWT.
    tokens: Option<BackendTokens>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("path", &self.path)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Backend {
    fn new(settings: &Settings, backend: &BackendSettings) -> Result<Backend, String> {
        let url = reqwest::Url::parse(&backend.url)
            .map_err(|e| format!("mcp.backends {}: url: {e}", backend.path))?;
        Ok(Backend {
            name: backend.name().to_owned(),
            path: backend.path.clone(),
            resource: backend.resource(settings.issuer()),
            metadata_url: format!(
                "{}/.well-known/oauth-protected-resource{}",
                settings.issuer(),
                backend.path
            ),
            scope_hint: backend
                .scopes_to_ask(&settings.oauth.default_scopes)
                .join(" "),
            timeout: backend.timeout.0,
            scopes: backend.scopes.clone(),
            roles: backend.roles.clone(),
            url,
            identity_headers: backend.identity_headers,
            tokens: backend.forward_token.then(BackendTokens::default),
        })
    }

    /// Whether people of `role` may use this backend.
    pub fn admits(&self, role: Role) -> bool {
        self.roles.is_empty() || self.roles.contains(&role)
    }

    /// The roles admitted, for messages.
    fn roles_text(&self) -> String {
        if self.roles.is_empty() {
            return "every role".into();
        }
        let names: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        names.join(", ")
    }
}

impl Gateway {
    pub fn new(settings: &Settings, session_key: &str) -> Result<Gateway, String> {
        let backends = settings
            .mcp
            .backends
            .iter()
            .map(|b| Backend::new(settings, b).map(Arc::new))
            .collect::<Result<_, _>>()?;
        // No redirects (a backend's answer goes back as it is), no proxy
        // from the environment, no overall timeout (streams are unbounded;
        // each request bounds the wait for headers).
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(concat!("mcp-auth-broker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the gateway's HTTP client: {e}"))?;
        Ok(Gateway {
            backends,
            client,
            sessions: SessionSeal::new(session_key),
        })
    }

    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }
}

/// Each backend's path, for GET (SSE streams), POST and DELETE.
pub fn routes(app: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for backend in app.gateway().backends() {
        let path = backend.path.clone();
        let backend = backend.clone();
        let handler = move |State(app): State<AppState>, request: Request| {
            let backend = backend.clone();
            async move { proxy::forward(&app, &backend, request).await }
        };
        router = router.route(
            &path,
            get(handler.clone()).post(handler.clone()).delete(handler),
        );
    }
    router
}
