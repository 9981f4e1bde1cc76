//! Typed settings: `config/default.toml` (built in) < `--config FILE` < `BROKER__*` env.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::{Host, Url};

use crate::address_range::AddressRange;

pub use crate::gateway::config::{BackendSettings, McpSettings};

const DEFAULTS: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "BROKER";

/// Every problem found while loading settings, one human line each.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub oauth: OAuthSettings,
    pub tokens: TokenSettings,
    pub cors: CorsSettings,
    pub registration: RegistrationSettings,
    pub rate_limit: RateLimitSettings,
    pub revocation: RevocationSettings,
    #[serde(default)]
    pub introspection: IntrospectionSettings,
    /// The gateway's backend MCP servers.
    #[serde(default)]
    pub mcp: McpSettings,
    pub allowlist: AllowlistSettings,
    pub session: SessionSettings,
    pub branding: BrandingSettings,
    #[serde(default)]
    pub upstreams: Vec<UpstreamSettings>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OAuthSettings {
    pub scopes_supported: Vec<String>,
    pub default_scopes: Vec<String>,
    pub code_ttl: HumanDuration,
    pub login_ttl: HumanDuration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TokenSettings {
    pub algorithm: String,
    pub access_token_ttl: HumanDuration,
    pub refresh_token_ttl: HumanDuration,
    pub refresh_grace: HumanDuration,
    /// PEM (PKCS#8) keys of `algorithm` from files, e.g. a mounted k8s
    /// Secret: the first signs, all verify; nothing is generated or stored.
    #[serde(default)]
    pub private_key_files: Vec<std::path::PathBuf>,
    /// Seals private keys in the database (AES-256-GCM); 32+ characters.
    #[serde(default)]
    pub key_encryption_secret: Option<String>,
    /// Required for HS256: at least 32 bytes.
    #[serde(default)]
    pub hs256_secret: Option<String>,
    /// Generate a new signing key this often (RS256/ES256); off when unset.
    #[serde(default)]
    pub rotate_every: Option<HumanDuration>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IntrospectionSettings {
    /// Resource servers that may call /introspect with HTTP Basic.
    #[serde(default)]
    pub clients: Vec<IntrospectionClient>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IntrospectionClient {
    pub id: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_env: Option<String>,
}

impl IntrospectionClient {
    pub fn resolve_secret(&self) -> Result<String, String> {
        match (&self.secret, &self.secret_env) {
            (Some(secret), None) => Ok(secret.clone()),
            (None, Some(name)) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
            }
            _ => Err(format!(
                "introspection client {}: set exactly one of secret, secret_env",
                self.id
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RegistrationSettings {
    pub enabled: bool,
    /// When set, /register needs `Authorization: Bearer <this>`.
    #[serde(default)]
    pub initial_access_token: Option<String>,
    /// Patterns (`*` matches anything) every registered redirect URI must
    /// match; empty allows any https or loopback URI.
    pub allowed_redirect_uris: Vec<String>,
    /// Dynamic clients unused this long are deleted (they re-register).
    pub client_idle_expiry: HumanDuration,
    /// Accept `client_id`s that are https URLs of client metadata documents.
    pub cimd_enabled: bool,
    /// Let metadata documents (and their JWKS) live on http URLs and private
    /// or loopback addresses: for tests and local development only.
    pub cimd_allow_insecure_hosts: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Sustained requests per second per client address.
    pub requests_per_second: f64,
    /// Requests a client may make at once before the rate applies.
    pub burst: u32,
}

/// Live revocation (`crate::revocation`) and the verified-token cache.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RevocationSettings {
    /// The promise: suspensions, removals, revoked tokens and withdrawn
    /// grants take effect on every replica within this. A replica whose
    /// view is older (database unreachable) refuses bearer tokens with 503.
    pub max_staleness: HumanDuration,
    /// How often each replica reads the changes.
    pub poll_interval: HumanDuration,
    /// Changes are read again for this long after their timestamp, for
    /// transactions that commit late and clocks that disagree a little.
    pub overlap: HumanDuration,
    /// Verified tokens remembered (by SHA-256) so repeated requests skip the
    /// signature check; 0 turns the cache off.
    pub verified_token_cache: usize,
}

impl RevocationSettings {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.poll_interval.0.is_zero() {
            problems.push("revocation.poll_interval: must be longer than 0s".into());
        }
        // One slow or failed poll must not make a healthy replica refuse.
        if self.max_staleness.0 < self.poll_interval.0 * 2 {
            problems.push(
                "revocation.max_staleness: must be at least twice revocation.poll_interval".into(),
            );
        }
        if self.overlap.0 < Duration::from_secs(1) {
            problems
                .push("revocation.overlap: must be at least 1s (timestamps are in seconds)".into());
        }
        problems
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AllowlistSettings {
    /// Admit a person's email from a second provider (else only the one
    /// of their first login may sign them in).
    pub link_providers: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SessionSettings {
    /// How long a browser stays signed in to the broker after an upstream
    /// login, so further client authorizations skip the provider.
    pub lifetime: HumanDuration,
}

/// How the person-facing pages look.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BrandingSettings {
    pub product_name: String,
    /// An https image shown at the top of every page.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// `#rgb` or `#rrggbb`, for buttons and links.
    pub primary_color: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CorsSettings {
    /// Browser origins allowed to call the API endpoints; `["*"]` for any.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct UpstreamSettings {
    pub id: String,
    pub kind: UpstreamKind,
    /// Required for `oidc`; the presets derive it (set it only to point a
    /// preset elsewhere, e.g. a national cloud or a test server).
    #[serde(default)]
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,
    #[serde(default = "default_upstream_scopes")]
    pub scopes: Vec<String>,
    /// Shown on pages ("Continue with …"); defaults to the id.
    #[serde(default)]
    pub display_name: Option<String>,
    /// google: the Workspace domain; sent as `hd` and required in the ID token.
    #[serde(default)]
    pub hosted_domain: Option<String>,
    /// entra: a tenant id or domain, or `organizations` / `common`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// entra with `organizations`/`common`: the tenant ids (`tid`) admitted.
    #[serde(default)]
    pub allowed_tenants: Vec<String>,
    /// entra: where the email comes from — `email` (trusted only with
    /// `xms_edov`) or, single-tenant only, `preferred_username`.
    #[serde(default)]
    pub email_claim: Option<String>,
    /// cognito: the user pool's AWS region and id.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub user_pool_id: Option<String>,
    /// cognito: the hosted UI domain, when discovery does not name it.
    #[serde(default)]
    pub domain: Option<String>,
}

/// Entra's tenant names that stand for many tenants.
pub const ENTRA_MULTI_TENANT: [&str; 2] = ["organizations", "common"];

fn default_upstream_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// Any OpenID Connect provider, found by discovery from `issuer`.
    Oidc,
    /// Google (accounts.google.com), optionally one Workspace domain.
    Google,
    /// Microsoft Entra ID (Azure AD), one tenant or several.
    Entra,
    /// An AWS Cognito user pool.
    Cognito,
    /// The development provider built into the broker (`serve --dev`).
    Dev,
}

impl BrandingSettings {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let hex = self.primary_color.strip_prefix('#').unwrap_or("-");
        if !matches!(hex.len(), 3 | 6) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            problems.push(format!(
                "branding.primary_color: {:?} must be a colour like \"#2456d6\"",
                self.primary_color
            ));
        }
        if let Some(logo) = &self.logo_url {
            if !Url::parse(logo).is_ok_and(|u| u.scheme() == "https") {
                problems.push(format!("branding.logo_url: {logo:?} must be an https URL"));
            }
        }
        if self.product_name.trim().is_empty() || self.product_name.chars().any(char::is_control) {
            problems.push("branding.product_name: must be a non-empty line of text".into());
        }
        problems
    }
}

impl UpstreamKind {
    /// As written in the config file.
    pub fn name(self) -> &'static str {
        match self {
            UpstreamKind::Oidc => "oidc",
            UpstreamKind::Google => "google",
            UpstreamKind::Entra => "entra",
            UpstreamKind::Cognito => "cognito",
            UpstreamKind::Dev => "dev",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServerSettings {
    pub bind: String,
    pub public_url: String,
    pub request_timeout: HumanDuration,
    pub max_body_bytes: usize,
    pub shutdown_grace: HumanDuration,
    pub readiness_timeout: HumanDuration,
    /// Reverse proxies whose `X-Forwarded-For` is believed: addresses or
    /// CIDR blocks.
    pub trusted_proxies: Vec<AddressRange>,
    /// How often each replica sweeps expired rows, loads signing keys made
    /// elsewhere and renews upstream metadata.
    pub housekeeping_interval: HumanDuration,
    /// Serve /metrics on this address only (else on `bind`).
    #[serde(default)]
    pub metrics_bind: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: HumanDuration,
    pub auto_migrate: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// A duration written as a human string (`"30s"`, `"1h"`, `"30d"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a duration (write e.g. \"30s\", \"15m\", \"1h\", \"30d\")"
                ))
            })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // In the largest unit that is exact: "90d", not "2months 29days 2h…".
        let ms = self.0.as_millis();
        let text = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ]
        .iter()
        .find(|(unit, _)| ms > 0 && ms % unit == 0)
        .map_or(format!("{ms}ms"), |(unit, name)| {
            format!("{}{name}", ms / unit)
        });
        serializer.serialize_str(&text)
    }
}

/// Where settings come from besides the built-in defaults.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    /// The process environment (or a test's stand-in for it).
    pub env: HashMap<String, String>,
}

impl Sources<'_> {
    pub fn from_process(file: Option<&Path>) -> Sources<'_> {
        Sources {
            file,
            env: std::env::vars().collect(),
        }
    }
}

impl Settings {
    pub fn load(sources: &Sources<'_>) -> Result<Settings, ConfigErrors> {
        let config = build(sources).map_err(|e| ConfigErrors(vec![e]))?;
        let mut problems = Vec::new();
        let parsed: Result<Settings, _> = serde_ignored::deserialize(config, |path| {
            problems.push(format!("unknown setting `{path}`"));
        });
        let mut settings: Settings = match parsed {
            Ok(settings) => settings,
            Err(e) => {
                problems.push(e.to_string());
                return Err(ConfigErrors(problems));
            }
        };
        for upstream in &mut settings.upstreams {
            upstream.derive_issuer();
        }
        problems.extend(settings.problems());
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// The OAuth issuer: `public_url` without a trailing slash, byte for byte.
    pub fn issuer(&self) -> &str {
        self.server.public_url.trim_end_matches('/')
    }

    pub fn bind_addr(&self) -> SocketAddr {
        // Checked by `problems()` before any Settings leaves `load`.
        self.server
            .bind
            .parse()
            .expect("server.bind validated at load")
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(bind) = &self.server.metrics_bind {
            if bind.parse::<SocketAddr>().is_err() || *bind == self.server.bind {
                problems.push(format!(
                    "server.metrics_bind: {bind:?} must be an address like \"0.0.0.0:9090\", other than server.bind"
                ));
            }
        }
        if self.server.bind.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "server.bind: {:?} is not an address like \"0.0.0.0:8080\"",
                self.server.bind
            ));
        }
        if let Err(problem) = check_public_url(&self.server.public_url) {
            problems.push(format!("server.public_url: {problem}"));
        }
        if self.server.max_body_bytes == 0 {
            problems.push("server.max_body_bytes: must be greater than 0".into());
        }
        for (key, value) in [
            ("server.request_timeout", self.server.request_timeout),
            ("server.readiness_timeout", self.server.readiness_timeout),
            ("database.connect_timeout", self.database.connect_timeout),
        ] {
            if value.0.is_zero() {
                problems.push(format!("{key}: must be longer than 0s"));
            }
        }
        if let Err(problem) = check_database_url(&self.database.url) {
            problems.push(format!("database.url: {problem}"));
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections: must be at least 1".into());
        }
        problems.extend(self.oauth_problems());
        problems.extend(self.revocation.problems());
        problems.extend(self.mcp.problems(&crate::gateway::config::Context {
            issuer: self.issuer(),
            scopes_supported: &self.oauth.scopes_supported,
            request_timeout: self.server.request_timeout.0,
        }));
        for (i, upstream) in self.upstreams.iter().enumerate() {
            problems.extend(upstream.problems(i, &self.upstreams, self.public_url_is_loopback()));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            problems.push(format!(
                "log.level: {:?} is not a filter: {e}",
                self.log.level
            ));
        }
        problems
    }
}

impl Settings {
    fn public_url_is_loopback(&self) -> bool {
        Url::parse(&self.server.public_url).is_ok_and(|u| is_loopback(&u))
    }

    fn oauth_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.oauth.scopes_supported.is_empty() {
            problems.push("oauth.scopes_supported: list at least one scope".into());
        }
        for scope in &self.oauth.default_scopes {
            if !self.oauth.scopes_supported.contains(scope) {
                problems.push(format!(
                    "oauth.default_scopes: {scope:?} is not in oauth.scopes_supported"
                ));
            }
        }
        for (key, value) in [
            ("oauth.code_ttl", self.oauth.code_ttl),
            ("oauth.login_ttl", self.oauth.login_ttl),
            ("tokens.access_token_ttl", self.tokens.access_token_ttl),
            ("tokens.refresh_token_ttl", self.tokens.refresh_token_ttl),
            ("session.lifetime", self.session.lifetime),
            (
                "server.housekeeping_interval",
                self.server.housekeeping_interval,
            ),
        ] {
            if value.0.is_zero() {
                problems.push(format!("{key}: must be longer than 0s"));
            }
        }
        if self
            .registration
            .initial_access_token
            .as_deref()
            .is_some_and(|t| t.len() < 32)
        {
            problems.push("registration.initial_access_token: use at least 32 characters".into());
        }
        problems.extend(self.branding.problems());
        if self.registration.cimd_allow_insecure_hosts && !self.public_url_is_loopback() {
            problems.push(
                "registration.cimd_allow_insecure_hosts: only for development, with a loopback server.public_url (it lets clients make the broker fetch private addresses)".into(),
            );
        }
        if self.rate_limit.enabled
            && (self.rate_limit.requests_per_second <= 0.0 || self.rate_limit.burst == 0)
        {
            problems
                .push("rate_limit: requests_per_second and burst must be greater than 0".into());
        }
        for origin in self.cors.allowed_origins.iter().filter(|o| *o != "*") {
            let ok = Url::parse(origin).is_ok_and(|u| u.origin().ascii_serialization() == *origin);
            if !ok {
                problems.push(format!("cors.allowed_origins: {origin:?} is not an origin like \"https://app.example.com\""));
            }
        }
        for client in &self.introspection.clients {
            match client.resolve_secret() {
                Ok(secret) if secret.len() < 32 => problems.push(format!(
                    "introspection.clients: the secret of {:?} is shorter than 32 characters",
                    client.id
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("introspection.clients: {e}")),
            }
        }
        match self.tokens.algorithm.as_str() {
            "RS256" | "ES256" => {}
            "HS256" => {
                let len = self.tokens.hs256_secret.as_deref().map_or(0, str::len);
                if len < 32 {
                    problems.push(format!(
                        "tokens.hs256_secret: HS256 needs a secret of at least 32 bytes (this one has {len})"
                    ));
                }
            }
            other => problems.push(format!(
                "tokens.algorithm: {other:?} is not supported (use RS256, ES256 or HS256)"
            )),
        }
        if self
            .tokens
            .key_encryption_secret
            .as_deref()
            .is_some_and(|s| s.len() < 32)
        {
            problems.push("tokens.key_encryption_secret: use at least 32 characters".into());
        }
        if self
            .tokens
            .rotate_every
            .is_some_and(|d| d.0 <= self.tokens.access_token_ttl.0)
        {
            problems
                .push("tokens.rotate_every: must be longer than tokens.access_token_ttl".into());
        }
        problems
    }

    /// `serve --dev`: adds the built-in development provider (loopback only).
    pub fn enable_dev(&mut self) -> Result<(), ConfigErrors> {
        if !self.public_url_is_loopback() {
            return Err(ConfigErrors(vec![format!(
                "--dev: the development provider is allowed only when server.public_url is a loopback URL (it is {:?})",
                self.server.public_url
            )]));
        }
        if !self.upstreams.iter().any(|u| u.kind == UpstreamKind::Dev) {
            self.upstreams.insert(
                0,
                UpstreamSettings {
                    id: "dev".into(),
                    kind: UpstreamKind::Dev,
                    issuer: format!("{}/dev-idp", self.issuer()),
                    client_id: "mcp-auth-broker-dev".into(),
                    client_secret: Some(crate::secrets::generate()),
                    client_secret_env: None,
                    client_secret_file: None,
                    scopes: default_upstream_scopes(),
                    display_name: Some("Development sign-in".into()),
                    ..UpstreamSettings::blank()
                },
            );
        }
        Ok(())
    }

    /// The resource our built-in MCP endpoint serves (RFC 8707/9728).
    pub fn mcp_resource(&self) -> String {
        format!("{}/mcp", self.issuer())
    }

    /// Every resource tokens are issued for: the built-in endpoint first,
    /// then each gateway backend (`{issuer}{path}`).
    pub fn resources(&self) -> Vec<String> {
        std::iter::once(self.mcp_resource())
            .chain(self.mcp.backends.iter().map(|b| b.resource(self.issuer())))
            .collect()
    }
}

impl UpstreamSettings {
    /// No optional field set: a base for upstreams built in code.
    pub fn blank() -> UpstreamSettings {
        UpstreamSettings {
            id: String::new(),
            kind: UpstreamKind::Oidc,
            issuer: String::new(),
            client_id: String::new(),
            client_secret: None,
            client_secret_env: None,
            client_secret_file: None,
            scopes: default_upstream_scopes(),
            display_name: None,
            hosted_domain: None,
            tenant: None,
            allowed_tenants: Vec::new(),
            email_claim: None,
            region: None,
            user_pool_id: None,
            domain: None,
        }
    }

    /// A preset's issuer, unless one was configured.
    fn derive_issuer(&mut self) {
        if !self.issuer.is_empty() {
            return;
        }
        self.issuer = match self.kind {
            UpstreamKind::Google => "https://accounts.google.com".into(),
            UpstreamKind::Entra => match &self.tenant {
                Some(tenant) => format!("https://login.microsoftonline.com/{tenant}/v2.0"),
                None => return,
            },
            UpstreamKind::Cognito => match (&self.region, &self.user_pool_id) {
                (Some(region), Some(pool)) => {
                    format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
                }
                _ => return,
            },
            UpstreamKind::Oidc | UpstreamKind::Dev => return,
        };
    }

    /// Entra with `organizations`/`common`: tokens come from many issuers.
    pub fn is_multi_tenant(&self) -> bool {
        self.kind == UpstreamKind::Entra
            && self
                .tenant
                .as_deref()
                .is_some_and(|t| ENTRA_MULTI_TENANT.contains(&t))
    }

    fn preset_problems(&self, key: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let mut needs = |field: &str, value: bool| {
            if !value {
                problems.push(format!(
                    "{key}.{field}: required for kind {}",
                    self.kind.name()
                ));
            }
        };
        match self.kind {
            UpstreamKind::Entra => {
                needs("tenant", self.tenant.is_some());
                if self.is_multi_tenant() && self.allowed_tenants.is_empty() {
                    problems.push(format!(
                        "{key}.allowed_tenants: list the tenant ids admitted when tenant is organizations or common"
                    ));
                }
                match self.email_claim.as_deref() {
                    None | Some("email") => {}
                    Some("preferred_username") if self.is_multi_tenant() => problems.push(format!(
                        "{key}.email_claim: preferred_username is trusted only with a single tenant (another tenant's admin can set it to anything)"
                    )),
                    Some("preferred_username") => {}
                    Some(other) => problems.push(format!(
                        "{key}.email_claim: {other:?} must be \"email\" or \"preferred_username\""
                    )),
                }
            }
            UpstreamKind::Cognito => {
                if self.issuer.is_empty() {
                    needs("region", self.region.is_some());
                    needs("user_pool_id", self.user_pool_id.is_some());
                }
            }
            UpstreamKind::Oidc | UpstreamKind::Dev => needs("issuer", !self.issuer.is_empty()),
            UpstreamKind::Google => {}
        }
        let misplaced = [
            (
                "hosted_domain",
                self.hosted_domain.is_some(),
                UpstreamKind::Google,
            ),
            ("tenant", self.tenant.is_some(), UpstreamKind::Entra),
            (
                "allowed_tenants",
                !self.allowed_tenants.is_empty(),
                UpstreamKind::Entra,
            ),
            (
                "email_claim",
                self.email_claim.is_some(),
                UpstreamKind::Entra,
            ),
            ("region", self.region.is_some(), UpstreamKind::Cognito),
            (
                "user_pool_id",
                self.user_pool_id.is_some(),
                UpstreamKind::Cognito,
            ),
            ("domain", self.domain.is_some(), UpstreamKind::Cognito),
        ];
        for (field, set, kind) in misplaced {
            if set && self.kind != kind {
                problems.push(format!(
                    "{key}.{field}: only for kind {}, not {}",
                    kind.name(),
                    self.kind.name()
                ));
            }
        }
        problems
    }

    fn problems(
        &self,
        index: usize,
        all: &[UpstreamSettings],
        loopback_broker: bool,
    ) -> Vec<String> {
        let key = format!("upstreams[{index}]");
        let mut problems = Vec::new();
        let id_ok = !self.id.is_empty()
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            problems.push(format!(
                "{key}.id: {:?} must be letters, digits, - or _",
                self.id
            ));
        }
        if all.iter().filter(|u| u.id == self.id).count() > 1 {
            problems.push(format!(
                "{key}.id: {:?} is used by more than one upstream",
                self.id
            ));
        }
        problems.extend(self.preset_problems(&key));
        match Url::parse(&self.issuer) {
            Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) => {
            }
            _ if self.issuer.is_empty() => {}
            _ => problems.push(format!(
                "{key}.issuer: {:?} must be an https URL (http only on a loopback host)",
                self.issuer
            )),
        }
        if self.kind == UpstreamKind::Dev && !loopback_broker {
            problems.push(format!(
                "{key}: the dev provider is allowed only when server.public_url is a loopback URL"
            ));
        }
        let sources = [
            self.client_secret.is_some(),
            self.client_secret_env.is_some(),
            self.client_secret_file.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            problems.push(format!(
                "{key}: set only one of client_secret, client_secret_env, client_secret_file"
            ));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            problems.push(format!("{key}.scopes: must include \"openid\""));
        }
        problems
    }

    /// The client secret from wherever the config says it is.
    pub fn resolve_secret(&self) -> Result<Option<String>, String> {
        if let Some(name) = &self.client_secret_env {
            return std::env::var(name).map(Some).map_err(|_| {
                format!(
                    "upstream {}: environment variable {name} is not set",
                    self.id
                )
            });
        }
        if let Some(path) = &self.client_secret_file {
            return std::fs::read_to_string(path)
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|e| format!("upstream {}: cannot read {}: {e}", self.id, path.display()));
        }
        Ok(self.client_secret.clone())
    }

    /// The provider's name for people ("Continue with …").
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(match self.kind {
            UpstreamKind::Google => "Google",
            UpstreamKind::Entra => "Microsoft",
            _ => &self.id,
        })
    }
}

fn build(sources: &Sources<'_>) -> Result<Config, String> {
    let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
    if let Some(path) = sources.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        // Parse here so a syntax error names the file it is in.
        toml_check(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
    }
    let env: config::Map<String, String> = sources
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    let explicit_url = format!("{ENV_PREFIX}__DATABASE__URL");
    if !sources.env.contains_key(&explicit_url) {
        if let Some(url) = sources.env.get("DATABASE_URL") {
            builder = builder
                .set_override("database.url", url.as_str())
                .map_err(|e| e.to_string())?;
        }
    }
    builder.build().map_err(|e| e.to_string())
}

fn toml_check(text: &str) -> Result<(), String> {
    Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .build()
        .map(drop)
        .map_err(|e| e.to_string())
}

fn check_public_url(raw: &str) -> Result<(), String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?} must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(format!(
            "{raw:?} must be https (plain http is allowed only on a loopback host)"
        )),
    }
}

/// Loopback in the RFC 8252 sense: 127.0.0.0/8, [::1] or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn check_database_url(raw: &str) -> Result<(), String> {
    match crate::store::Backend::of_url(raw) {
        Some(_) => Ok(()),
        None => Err(format!(
            "unsupported database URL (use sqlite://PATH?mode=rwc or postgres://USER:PASS@HOST/DB), got scheme {:?}",
            raw.split(':').next().unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(file: Option<&str>, env: &[(&str, &str)]) -> Result<Settings, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let sources = Sources {
            file: file.map(|_| path.as_path()),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        Settings::load(&sources)
    }

    fn problems(file: Option<&str>, env: &[(&str, &str)]) -> Vec<String> {
        load_with(file, env).expect_err("should be refused").0
    }

    #[test]
    fn defaults_load_and_are_safe() {
        let s = load_with(None, &[]).unwrap();
        assert_eq!(s.issuer(), "http://127.0.0.1:8080");
        assert_eq!(s.database.max_connections, 10);
        assert_eq!(s.server.request_timeout.0, Duration::from_secs(30));
        assert_eq!(s.log.format, LogFormat::Human);
        assert!(s.database.url.starts_with("sqlite://"));
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let file = "[server]\npublic_url = \"https://broker.example.com/\"\n[database]\nmax_connections = 3\nurl = \"sqlite://file.db\"\n";
        let s = load_with(Some(file), &[]).unwrap();
        assert_eq!(s.issuer(), "https://broker.example.com");
        assert_eq!(s.database.max_connections, 3);

        let s = load_with(
            Some(file),
            &[
                ("BROKER__DATABASE__MAX_CONNECTIONS", "7"),
                ("BROKER__SERVER__PUBLIC_URL", "https://env.example.com"),
                ("BROKER__LOG__FORMAT", "json"),
            ],
        )
        .unwrap();
        assert_eq!(s.database.max_connections, 7);
        assert_eq!(s.issuer(), "https://env.example.com");
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.database.url, "sqlite://file.db");
    }

    #[test]
    fn database_url_env_is_honoured_below_the_broker_variable() {
        let s = load_with(None, &[("DATABASE_URL", "postgres://u@h/db")]).unwrap();
        assert_eq!(s.database.url, "postgres://u@h/db");
        let s = load_with(
            None,
            &[
                ("DATABASE_URL", "postgres://u@h/db"),
                ("BROKER__DATABASE__URL", "postgres://u@h/other"),
            ],
        )
        .unwrap();
        assert_eq!(s.database.url, "postgres://u@h/other");
    }

    #[test]
    fn durations_are_human_strings() {
        let s = load_with(
            Some("[server]\nrequest_timeout = \"1h\"\nshutdown_grace = \"30d\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!(s.server.request_timeout.0, Duration::from_secs(3600));
        assert_eq!(s.server.shutdown_grace.0, Duration::from_secs(30 * 86400));

        let p = problems(Some("[server]\nrequest_timeout = \"soon\"\n"), &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("\"soon\" is not a duration"), "{p:?}");
        assert!(p[0].contains("server.request_timeout"), "{p:?}");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_blocks() {
        let s = load_with(
            Some("[server]\ntrusted_proxies = [\"10.42.0.0/16\", \"192.0.2.7\", \"fd00::/8\"]\n"),
            &[],
        )
        .unwrap();
        let shown: Vec<String> = s
            .server
            .trusted_proxies
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(shown, ["10.42.0.0/16", "192.0.2.7", "fd00::/8"]);

        let p = problems(Some("[server]\ntrusted_proxies = [\"10.0.0.0/40\"]\n"), &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("server.trusted_proxies"), "{p:?}");
        assert!(p[0].contains("\"10.0.0.0/40\" is neither"), "{p:?}");
    }

    #[test]
    fn presets_derive_their_issuer_and_check_their_fields() {
        let file = "[[upstreams]]\nid = \"g\"\nkind = \"google\"\nclient_id = \"c\"\nhosted_domain = \"corp.example\"\n\n\
            [[upstreams]]\nid = \"m\"\nkind = \"entra\"\ntenant = \"organizations\"\nallowed_tenants = [\"t1\"]\nclient_id = \"c\"\n\n\
            [[upstreams]]\nid = \"a\"\nkind = \"cognito\"\nregion = \"eu-west-1\"\nuser_pool_id = \"eu-west-1_X\"\nclient_id = \"c\"\n";
        let s = load_with(Some(file), &[]).unwrap();
        let issuers: Vec<&str> = s.upstreams.iter().map(|u| u.issuer.as_str()).collect();
        assert_eq!(
            issuers,
            [
                "https://accounts.google.com",
                "https://login.microsoftonline.com/organizations/v2.0",
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X"
            ]
        );
        assert_eq!(s.upstreams[0].label(), "Google");
        assert_eq!(s.upstreams[1].label(), "Microsoft");

        let bad = "[[upstreams]]\nid = \"m\"\nkind = \"entra\"\nclient_id = \"c\"\n\n\
            [[upstreams]]\nid = \"n\"\nkind = \"entra\"\ntenant = \"common\"\nemail_claim = \"preferred_username\"\nclient_id = \"c\"\n\n\
            [[upstreams]]\nid = \"o\"\nkind = \"oidc\"\nclient_id = \"c\"\nhosted_domain = \"x.example\"\n\n\
            [[upstreams]]\nid = \"p\"\nkind = \"cognito\"\nclient_id = \"c\"\n\n\
            [[upstreams]]\nid = \"q\"\nkind = \"dev\"\nclient_id = \"c\"\n";
        let p = problems(Some(bad), &[]);
        for expected in [
            "upstreams[0].tenant: required for kind entra",
            "upstreams[1].allowed_tenants: list the tenant ids",
            "upstreams[1].email_claim: preferred_username is trusted only with a single tenant",
            "upstreams[2].issuer: required for kind oidc",
            "upstreams[2].hosted_domain: only for kind google, not oidc",
            "upstreams[3].region: required for kind cognito",
            "upstreams[3].user_pool_id: required for kind cognito",
            "upstreams[4].issuer: required for kind dev",
        ] {
            assert!(
                p.iter().any(|l| l.starts_with(expected)),
                "{expected}: {p:?}"
            );
        }
    }

    #[test]
    fn branding_is_checked() {
        let p = problems(
            Some("[branding]\nprimary_color = \"red;}body{display:none\"\nlogo_url = \"http://x.example/l.png\"\n"),
            &[],
        );
        assert!(p[0].starts_with("branding.primary_color"), "{p:?}");
        assert!(p[1].starts_with("branding.logo_url"), "{p:?}");
    }

    #[test]
    fn insecure_metadata_document_hosts_only_in_development() {
        let insecure = ("BROKER__REGISTRATION__CIMD_ALLOW_INSECURE_HOSTS", "true");
        load_with(None, &[insecure]).expect("loopback public_url");
        let p = problems(
            None,
            &[
                insecure,
                ("BROKER__SERVER__PUBLIC_URL", "https://broker.example.com"),
            ],
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("registration.cimd_allow_insecure_hosts: only for development"));
    }

    #[test]
    fn public_url_must_be_https_or_loopback() {
        let p = problems(
            None,
            &[("BROKER__SERVER__PUBLIC_URL", "http://broker.example.com")],
        );
        assert_eq!(p, vec!["server.public_url: \"http://broker.example.com\" must be https (plain http is allowed only on a loopback host)"]);
        for ok in [
            "http://localhost:9000",
            "http://[::1]:8080",
            "http://127.0.0.2",
            "https://a.example",
        ] {
            load_with(None, &[("BROKER__SERVER__PUBLIC_URL", ok)])
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let p = problems(None, &[("BROKER__SERVER__PUBLIC_URL", "not a url")]);
        assert!(
            p[0].starts_with("server.public_url: \"not a url\" is not a URL"),
            "{p:?}"
        );
        let p = problems(
            None,
            &[("BROKER__SERVER__PUBLIC_URL", "https://a.example/?x=1")],
        );
        assert!(p[0].contains("must not have a query"), "{p:?}");
    }

    #[test]
    fn unknown_keys_are_all_reported() {
        let p = problems(
            Some("[server]\nbidn = \"0.0.0.0:1\"\n[nonsense]\nx = 1\n"),
            &[("BROKER__DATABASE__URLL", "x")],
        );
        assert!(
            p.contains(&"unknown setting `server.bidn`".to_string()),
            "{p:?}"
        );
        assert!(
            p.contains(&"unknown setting `nonsense`".to_string()),
            "{p:?}"
        );
        assert!(
            p.contains(&"unknown setting `database.urll`".to_string()),
            "{p:?}"
        );
    }

    #[test]
    fn every_semantic_problem_gets_its_own_line() {
        let p = problems(
            Some("[server]\nbind = \"nowhere\"\nmax_body_bytes = 0\n[database]\nurl = \"mysql://x\"\nmax_connections = 0\n[log]\nlevel = \"=[\"\n"),
            &[],
        );
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p[0].starts_with("server.bind: \"nowhere\""), "{p:?}");
        assert!(p[1].starts_with("server.max_body_bytes"), "{p:?}");
        assert!(
            p[2].starts_with("database.url: unsupported database URL"),
            "{p:?}"
        );
        assert!(p[3].starts_with("database.max_connections"), "{p:?}");
        assert!(p[4].starts_with("log.level"), "{p:?}");
    }

    #[test]
    fn bad_enum_and_bad_file_are_clear() {
        let p = problems(Some("[log]\nformat = \"xml\"\n"), &[]);
        assert!(p[0].contains("xml") && p[0].contains("log.format"), "{p:?}");
        let p = problems(Some("[server\nbind="), &[]);
        assert!(p[0].starts_with("config file "), "{p:?}");
        let missing = Sources {
            file: Some(Path::new("/nonexistent/broker.toml")),
            env: HashMap::new(),
        };
        let p = Settings::load(&missing).unwrap_err().0;
        assert!(
            p[0].starts_with("cannot read config file /nonexistent/broker.toml"),
            "{p:?}"
        );
    }

    #[test]
    fn upstreams_are_checked() {
        let file = "[[upstreams]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"http://idp.example.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\nclient_secret_env = \"X\"\nscopes = [\"email\"]\n\n[[upstreams]]\nid = \"corp\"\nkind = \"dev\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\n";
        let p = problems(
            Some(file),
            &[("BROKER__SERVER__PUBLIC_URL", "https://broker.example.com")],
        );
        let has = |needle: &str| p.iter().any(|l| l.contains(needle));
        assert!(
            has("upstreams[0].issuer: \"http://idp.example.com\" must be an https URL"),
            "{p:?}"
        );
        assert!(has("upstreams[0]: set only one of client_secret"), "{p:?}");
        assert!(has("upstreams[0].scopes: must include \"openid\""), "{p:?}");
        assert!(
            has("upstreams[1].id: \"corp\" is used by more than one upstream"),
            "{p:?}"
        );
        assert!(has("upstreams[1]: the dev provider is allowed only when server.public_url is a loopback URL"), "{p:?}");
    }

    #[test]
    fn dev_mode_only_on_loopback() {
        let mut s = load_with(
            None,
            &[("BROKER__SERVER__PUBLIC_URL", "https://broker.example.com")],
        )
        .unwrap();
        let err = s.enable_dev().unwrap_err().0;
        assert!(
            err[0].starts_with("--dev: the development provider is allowed only"),
            "{err:?}"
        );
        let mut s = load_with(None, &[]).unwrap();
        s.enable_dev().unwrap();
        assert_eq!(s.upstreams[0].issuer, "http://127.0.0.1:8080/dev-idp");
        assert!(
            s.upstreams[0]
                .client_secret
                .as_deref()
                .is_some_and(|x| x.len() >= 43),
            "a fresh secret per process"
        );
    }

    #[test]
    fn upstream_secret_from_env_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").unwrap();
        let mut upstream = load_with(None, &[])
            .map(|mut s| {
                s.enable_dev().unwrap();
                s.upstreams.remove(0)
            })
            .unwrap();
        upstream.client_secret = None;
        upstream.client_secret_file = Some(path);
        assert_eq!(
            upstream.resolve_secret().unwrap().as_deref(),
            Some("from-file")
        );
        upstream.client_secret_file = None;
        upstream.client_secret_env = Some("MCP_BROKER_TEST_SURELY_UNSET".into());
        assert!(upstream
            .resolve_secret()
            .unwrap_err()
            .contains("MCP_BROKER_TEST_SURELY_UNSET is not set"));
    }

    #[test]
    fn signing_settings_are_checked() {
        let p = problems(
            None,
            &[
                ("BROKER__TOKENS__ALGORITHM", "HS256"),
                ("BROKER__TOKENS__HS256_SECRET", "short"),
            ],
        );
        assert_eq!(
            p,
            vec!["tokens.hs256_secret: HS256 needs a secret of at least 32 bytes (this one has 5)"]
        );
        let p = problems(None, &[("BROKER__TOKENS__ALGORITHM", "none")]);
        assert!(
            p[0].starts_with("tokens.algorithm: \"none\" is not supported"),
            "{p:?}"
        );
        let p = problems(None, &[("BROKER__TOKENS__ROTATE_EVERY", "30m")]);
        assert_eq!(
            p,
            vec!["tokens.rotate_every: must be longer than tokens.access_token_ttl"]
        );
        load_with(
            None,
            &[
                ("BROKER__TOKENS__ALGORITHM", "ES256"),
                ("BROKER__TOKENS__ROTATE_EVERY", "30d"),
            ],
        )
        .unwrap();
    }

    #[test]
    fn revocation_settings_are_checked() {
        let s = load_with(None, &[]).unwrap();
        assert_eq!(s.revocation.max_staleness.0, Duration::from_secs(5));
        assert_eq!(s.revocation.poll_interval.0, Duration::from_secs(1));
        let p = problems(
            None,
            &[
                ("BROKER__REVOCATION__MAX_STALENESS", "1s"),
                ("BROKER__REVOCATION__OVERLAP", "0s"),
            ],
        );
        assert_eq!(
            p,
            vec![
                "revocation.max_staleness: must be at least twice revocation.poll_interval",
                "revocation.overlap: must be at least 1s (timestamps are in seconds)"
            ]
        );
    }
}
