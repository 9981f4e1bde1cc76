//! Typed settings: `config/default.toml` (built in) < `--config FILE` < `BROKER__*` env.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Deserializer};
use url::{Host, Url};

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

#[derive(Debug, Clone, Deserialize)]
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
    #[serde(default)]
    pub upstreams: Vec<UpstreamSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OAuthSettings {
    pub scopes_supported: Vec<String>,
    pub default_scopes: Vec<String>,
    pub code_ttl: HumanDuration,
    pub login_ttl: HumanDuration,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IntrospectionSettings {
    /// Resource servers that may call /introspect with HTTP Basic.
    #[serde(default)]
    pub clients: Vec<IntrospectionClient>,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Sustained requests per second per client address.
    pub requests_per_second: f64,
    /// Requests a client may make at once before the rate applies.
    pub burst: u32,
}

/// Live revocation (`crate::revocation`) and the verified-token cache.
#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    /// Browser origins allowed to call the API endpoints; `["*"]` for any.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamSettings {
    pub id: String,
    pub kind: UpstreamKind,
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
}

fn default_upstream_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// Any OpenID Connect provider, found by discovery from `issuer`.
    Oidc,
    /// The development provider built into the broker (`serve --dev`).
    Dev,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: String,
    pub public_url: String,
    pub request_timeout: HumanDuration,
    pub max_body_bytes: usize,
    pub shutdown_grace: HumanDuration,
    pub readiness_timeout: HumanDuration,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: HumanDuration,
    pub auto_migrate: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
        let settings = match parsed {
            Ok(settings) => settings,
            Err(e) => {
                problems.push(e.to_string());
                return Err(ConfigErrors(problems));
            }
        };
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
                },
            );
        }
        Ok(())
    }

    /// The resource our built-in MCP endpoint serves (RFC 8707/9728).
    pub fn mcp_resource(&self) -> String {
        format!("{}/mcp", self.issuer())
    }
}

impl UpstreamSettings {
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
        match Url::parse(&self.issuer) {
            Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) => {
            }
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

    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
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
