//! mcp-auth-broker: an OAuth 2.1 authorization server for MCP that federates
//! to upstream OpenID Connect providers and admits people by allowlist.

pub mod address_range;
pub mod admin;
pub mod allowlist;
pub mod bearer;
pub mod config;
mod error_shape;
pub mod gateway;
mod health;
mod json_rpc;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod outbound;
pub mod rate_limit;
pub mod revocation;
pub mod secrets;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod tool_audit;
pub mod upstream;
pub mod web;

use std::sync::Arc;

use axum::Router;

use crate::config::{BrandingSettings, Settings, UpstreamKind};
use crate::gateway::Gateway;
use crate::oauth::ClientKeyCache;
use crate::outbound::Outbound;
use crate::revocation::RevocationView;
use crate::store::{Store, StoreError};
use crate::tokens::{AccessClaims, KeyError, KeySet, Keys, Signer, TokenError, VerifiedTokens};
use crate::tool_audit::ToolAudit;
use crate::upstream::dev_idp::DevIdp;
use crate::upstream::Upstreams;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("{0}")]
    Upstream(String),
    #[error("server.metrics_bind: {0}")]
    Metrics(std::io::Error),
    #[error("{0}")]
    Gateway(String),
}

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    store: Store,
    keys: Keys,
    upstreams: Upstreams,
    dev_idp: Option<Arc<DevIdp>>,
    outbound: Outbound,
    client_keys: ClientKeyCache,
    /// The audience of our MCP endpoint, computed once for the hot path.
    mcp_resource: String,
    /// Every audience we issue tokens for: `mcp_resource`, then the
    /// gateway's backends.
    resources: Vec<String>,
    gateway: Gateway,
    verified: VerifiedTokens,
    revocation: RevocationView,
    branding: Arc<BrandingSettings>,
    tool_audit: ToolAudit,
}

impl AppState {
    /// Loads (or creates) the signing keys and prepares the upstreams.
    pub async fn build(settings: Settings, store: Store) -> Result<AppState, StartError> {
        let seal = settings.tokens.key_encryption_secret.clone();
        let keys = Keys::load(&store, Signer::from_settings(&settings.tokens)?, seal).await?;
        let upstreams = Upstreams::new(&settings.upstreams).map_err(StartError::Upstream)?;
        let callback = format!("{}/callback", settings.issuer());
        let dev_issuer = format!("{}/dev-idp", settings.issuer());
        let dev_idp = settings
            .upstreams
            .iter()
            .find(|u| u.kind == UpstreamKind::Dev && u.issuer.trim_end_matches('/') == dev_issuer)
            .map(|u| {
                let secret = u
                    .resolve_secret()
                    .map_err(StartError::Upstream)?
                    .unwrap_or_default();
                DevIdp::new(&dev_issuer, &u.client_id, &secret, &callback)
                    .map(Arc::new)
                    .map_err(StartError::from)
            })
            .transpose()?;
        let outbound = Outbound::new(settings.registration.cimd_allow_insecure_hosts);
        let revocation =
            RevocationView::new(&settings.revocation, settings.tokens.access_token_ttl.0);
        let verified = VerifiedTokens::new(settings.revocation.verified_token_cache);
        let mcp_resource = settings.mcp_resource();
        let resources = settings.resources();
        // Without backends nothing is ever sealed: no need for the shared key.
        let session_key = if settings.mcp.backends.is_empty() {
            secrets::generate()
        } else {
            store.shared_secret(gateway::SESSION_KEY).await?
        };
        let gateway = Gateway::new(&settings, &session_key).map_err(StartError::Gateway)?;
        let branding = Arc::new(settings.branding.clone());
        let tool_audit = ToolAudit::start(store.clone());
        metrics::recorder();
        Ok(AppState {
            inner: Arc::new(Inner {
                settings,
                store,
                keys,
                upstreams,
                dev_idp,
                outbound,
                client_keys: ClientKeyCache::default(),
                mcp_resource,
                resources,
                gateway,
                verified,
                revocation,
                branding,
                tool_audit,
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Fetches URLs that clients name, refusing private addresses.
    pub fn outbound(&self) -> &Outbound {
        &self.inner.outbound
    }

    /// Where tool calls are logged (batched, off the request path).
    pub fn tool_audit(&self) -> &ToolAudit {
        &self.inner.tool_audit
    }

    /// How this deployment's pages look.
    pub fn branding(&self) -> Arc<BrandingSettings> {
        self.inner.branding.clone()
    }

    /// Clients' `jwks_uri` key sets, cached on this replica.
    pub fn client_keys(&self) -> &ClientKeyCache {
        &self.inner.client_keys
    }

    /// The signing keys as this replica knows them now.
    pub fn keys(&self) -> KeySet {
        self.inner.keys.current()
    }

    /// The resource (and token audience) of the built-in MCP endpoint.
    pub fn mcp_resource(&self) -> &str {
        &self.inner.mcp_resource
    }

    /// The resource `asked` names (a trailing slash aside), if it is one we
    /// issue tokens for: the built-in endpoint or a gateway backend.
    pub fn known_resource(&self, asked: &str) -> Option<&str> {
        let asked = asked.trim_end_matches('/');
        self.inner
            .resources
            .iter()
            .map(String::as_str)
            .find(|r| *r == asked)
    }

    /// Every resource we issue tokens for, the built-in endpoint first.
    pub fn resources(&self) -> &[String] {
        &self.inner.resources
    }

    /// The backend MCP servers behind the broker.
    pub fn gateway(&self) -> &Gateway {
        &self.inner.gateway
    }

    /// Revoked tokens, inactive people and withdrawn grants, as this
    /// replica knows them.
    pub fn revocation(&self) -> &RevocationView {
        &self.inner.revocation
    }

    /// Validates one of our access tokens for `audience`: from the cache of
    /// verified tokens, else by signature (then cached). Revocation is the
    /// caller's check.
    pub async fn validate_access(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        let now = store::now();
        let keys = &self.inner.keys;
        let cached = self
            .inner
            .verified
            .get(token, audience, now, |kid| keys.knows(kid));
        if let Some(claims) = cached {
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_access(token, audience).await?);
        if let Some(kid) = tokens::header_kid(token) {
            self.inner.verified.insert(token, &kid, claims.clone(), now);
        }
        Ok(claims)
    }

    /// Validates one of our access tokens for whichever of our resources it
    /// names (revocation, introspection, userinfo).
    pub async fn validate_access_any(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        let claimed = tokens::unverified_claim(token, "aud").ok_or(TokenError::Malformed)?;
        let audience = self
            .known_resource(&claimed)
            .filter(|known| *known == claimed)
            .ok_or_else(|| TokenError::Invalid("InvalidAudience".into()))?;
        self.validate_access(token, audience).await
    }

    /// The signature check, learning a key another replica created if the
    /// token names it.
    async fn verify_access(&self, token: &str, audience: &str) -> Result<AccessClaims, TokenError> {
        let issuer = self.settings().issuer();
        let first = tokens::validate(&self.keys(), token, issuer, audience);
        if first != Err(TokenError::UnknownKey) {
            return first;
        }
        match tokens::header_kid(token) {
            Some(kid) if self.inner.keys.learn(self.store(), &kid).await => {
                tokens::validate(&self.keys(), token, issuer, audience)
            }
            _ => first,
        }
    }

    pub fn upstreams(&self) -> &Upstreams {
        &self.inner.upstreams
    }

    /// Every replica, now and then: pick up keys other replicas created,
    /// retire keys no live token needs, and rotate when `tokens.rotate_every`
    /// says so.
    pub async fn maintain_keys(&self) -> Result<(), KeyError> {
        let tokens = &self.settings().tokens;
        let store = self.store();
        let now = store::now();
        if let (Some(every), Signer::Stored(algorithm)) =
            (tokens.rotate_every, Signer::from_settings(tokens)?)
        {
            let age = now
                - store
                    .signing_keys()
                    .await?
                    .iter()
                    .map(|k| k.created_at)
                    .max()
                    .unwrap_or(now);
            if age >= every.0.as_secs() as i64 {
                let key = tokens::create(store, algorithm, tokens.key_encryption_secret.as_deref())
                    .await?;
                tracing::info!(kid = %key.kid, "rotated the signing key");
            }
        }
        for kid in tokens::retire_replaced(store, tokens.access_token_ttl.0, now).await? {
            tracing::info!(%kid, "retired a signing key no live token needs");
        }
        self.inner.keys.reload(store).await
    }

    /// The one redirect URI every upstream sends people back to.
    pub fn callback_url(&self) -> String {
        format!("{}/callback", self.settings().issuer())
    }
}

/// The whole HTTP surface; tests build the same router.
/// `/metrics` alone, for `server.metrics_bind`.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics::page))
        .with_state(state)
}

pub fn app(state: AppState) -> Router {
    let settings = state.settings().clone();
    let any_origin = ["*".to_string()];
    let (mut api, mut pages) = (oauth::api_routes(), oauth::browser_routes());
    // One limiter for both: an address has one budget across them.
    if let Some(limit) = rate_limit::layer(&settings.rate_limit, &settings.server.trusted_proxies) {
        api = api.layer(limit.clone());
        pages = pages.layer(limit);
    }
    let api = api
        .merge(mcp::routes(&state))
        .merge(gateway::routes(&state))
        .layer(server::cors(&settings.cors.allowed_origins));
    let mut router = health::routes()
        .merge(oauth::metadata_routes(&settings).layer(server::cors(&any_origin)))
        .merge(api)
        .merge(pages);
    if let Some(dev) = &state.inner.dev_idp {
        router = router.nest_service("/dev-idp", dev.clone().router());
    }
    if settings.server.metrics_bind.is_none() {
        router = router.route("/metrics", axum::routing::get(metrics::page));
    }
    server::with_middleware(router, &state).with_state(state)
}
