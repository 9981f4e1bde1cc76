//! `[mcp]` settings: the backend MCP servers the gateway puts behind the
//! broker, and their checks at start-up.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::allowlist::Role;
use crate::config::HumanDuration;

/// What every backend path starts with.
pub const PATH_PREFIX: &str = "/mcp/";

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct McpSettings {
    /// Backend MCP servers, each served at its own path of the broker.
    #[serde(default)]
    pub backends: Vec<BackendSettings>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BackendSettings {
    /// The public path on the broker, e.g. `/mcp/github`; also the tail of
    /// the backend's resource (`{issuer}{path}`) and of its metadata URL.
    pub path: String,
    /// The backend's Streamable HTTP endpoint.
    pub url: String,
    /// Scopes a token needs (all of them) to use this backend.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Allowlist roles admitted; empty admits every role.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Send `X-Forwarded-User` (the person's stable id) and
    /// `X-Forwarded-Email`.
    #[serde(default)]
    pub identity_headers: bool,
    /// Send `Authorization: Bearer <JWT>` minted by the broker for this
    /// backend (audience = `url`), about 60 s long.
    #[serde(default)]
    pub forward_token: bool,
    /// Longest wait for the backend's response headers (streams themselves
    /// are not bounded).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_scopes() -> Vec<String> {
    vec!["mcp:tools".into()]
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(25))
}

impl BackendSettings {
    /// The short name used in messages and logs: the path after `/mcp/`.
    pub fn name(&self) -> &str {
        self.path.strip_prefix(PATH_PREFIX).unwrap_or(&self.path)
    }

    /// Its resource (RFC 8707/9728) and the audience of its tokens.
    pub fn resource(&self, issuer: &str) -> String {
        format!("{issuer}{}", self.path)
    }

    /// The scopes a client should ask for: this backend's, or the broker's
    /// defaults when it needs none in particular.
    pub fn scopes_to_ask<'a>(&'a self, defaults: &'a [String]) -> &'a [String] {
        if self.scopes.is_empty() {
            defaults
        } else {
            &self.scopes
        }
    }
}

/// What the rest of the settings say that the backends must agree with.
pub struct Context<'a> {
    pub issuer: &'a str,
    pub scopes_supported: &'a [String],
    pub request_timeout: Duration,
}

impl McpSettings {
    /// One line per problem.
    pub fn problems(&self, context: &Context<'_>) -> Vec<String> {
        let mut problems = Vec::new();
        let mut paths = HashSet::new();
        // A backend's token must never be a token the broker accepts.
        let mut ours: HashSet<String> = HashSet::from([format!("{}/mcp", context.issuer)]);
        ours.extend(self.backends.iter().map(|b| b.resource(context.issuer)));
        for (i, backend) in self.backends.iter().enumerate() {
            let key = format!("mcp.backends[{i}]");
            if let Err(why) = check_path(&backend.path) {
                problems.push(format!("{key}.path: {:?} {why}", backend.path));
            } else if !paths.insert(backend.path.as_str()) {
                problems.push(format!(
                    "{key}.path: {:?} is used by more than one backend",
                    backend.path
                ));
            }
            match check_url(&backend.url) {
                Err(why) => problems.push(format!("{key}.url: {:?} {why}", backend.url)),
                Ok(url) if ours.contains(url.as_str().trim_end_matches('/')) => problems.push(format!(
                    "{key}.url: {:?} is one of the broker's own resources; tokens minted for the backend would be accepted by the broker",
                    backend.url
                )),
                Ok(_) => {}
            }
            for scope in &backend.scopes {
                if !context.scopes_supported.contains(scope) {
                    problems.push(format!(
                        "{key}.scopes: {scope:?} is not in oauth.scopes_supported"
                    ));
                }
            }
            if backend.timeout.0.is_zero() || backend.timeout.0 >= context.request_timeout {
                problems.push(format!(
                    "{key}.timeout: must be longer than 0s and shorter than server.request_timeout ({}s), which bounds every request",
                    context.request_timeout.as_secs()
                ));
            }
        }
        problems
    }
}

/// `/mcp/` then segments of letters, digits, `-`, `_`, `.`; no empty,
/// `.` or `..` segment, no trailing slash.
fn check_path(path: &str) -> Result<(), &'static str> {
    let rest = path
        .strip_prefix(PATH_PREFIX)
        .ok_or("must start with /mcp/ (and /mcp itself is the built-in endpoint)")?;
    let ok = rest.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    });
    if ok {
        Ok(())
    } else {
        Err("must be /mcp/ followed by segments of letters, digits, -, _ or . (no empty segment, no trailing /)")
    }
}

fn check_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("must not carry credentials or a fragment".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(path: &str, url: &str) -> BackendSettings {
        BackendSettings {
            path: path.into(),
            url: url.into(),
            scopes: default_scopes(),
            roles: Vec::new(),
            identity_headers: false,
            forward_token: false,
            timeout: default_timeout(),
        }
    }

    fn problems(backends: Vec<BackendSettings>) -> Vec<String> {
        let supported = ["mcp:tools".to_string(), "mcp:admin".to_string()];
        McpSettings { backends }.problems(&Context {
            issuer: "https://broker.example",
            scopes_supported: &supported,
            request_timeout: Duration::from_secs(30),
        })
    }

    #[test]
    fn good_backends_pass() {
        let p = problems(vec![
            backend("/mcp/github", "http://github-mcp:8000/mcp"),
            backend("/mcp/team-a/jira_1.0", "https://jira.internal/mcp"),
        ]);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn paths_are_checked() {
        for bad in [
            "/mcp",
            "/mcp/",
            "/other/x",
            "mcp/x",
            "/mcp/x/",
            "/mcp//x",
            "/mcp/../admin",
            "/mcp/a b",
            "/mcp/{x}",
            "/mcp/*x",
        ] {
            let p = problems(vec![backend(bad, "http://b/mcp")]);
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(p[0].starts_with("mcp.backends[0].path: "), "{p:?}");
        }
        let p = problems(vec![
            backend("/mcp/a", "http://a/mcp"),
            backend("/mcp/a", "http://b/mcp"),
        ]);
        assert_eq!(
            p,
            ["mcp.backends[1].path: \"/mcp/a\" is used by more than one backend"]
        );
    }

    #[test]
    fn urls_scopes_and_timeouts_are_checked() {
        let mut b = backend("/mcp/x", "ftp://b/mcp");
        b.scopes = vec!["mcp:tools".into(), "repo".into()];
        b.timeout = HumanDuration(Duration::from_secs(30));
        let p = problems(vec![b]);
        assert!(p[0].contains("must be an http or https URL"), "{p:?}");
        assert_eq!(
            p[1],
            "mcp.backends[0].scopes: \"repo\" is not in oauth.scopes_supported"
        );
        assert!(p[2].starts_with("mcp.backends[0].timeout: must be longer than 0s and shorter than server.request_timeout (30s)"), "{p:?}");
        for bad in ["not a url", "http://user:pw@b/mcp", "http://b/mcp#x"] {
            assert_eq!(problems(vec![backend("/mcp/x", bad)]).len(), 1, "{bad}");
        }
    }

    #[test]
    fn a_backend_url_may_not_be_a_resource_of_the_broker() {
        for own in [
            "https://broker.example/mcp",
            "https://broker.example/mcp/",
            "https://broker.example/mcp/y",
        ] {
            let p = problems(vec![
                backend("/mcp/x", own),
                backend("/mcp/y", "http://y/mcp"),
            ]);
            assert_eq!(p.len(), 1, "{own}: {p:?}");
            assert!(p[0].contains("one of the broker's own resources"), "{p:?}");
        }
    }
}
