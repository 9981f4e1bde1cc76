//! Redirect URI rules: https, or http on a loopback host; no fragment; exact
//! match except that a loopback URI matches on any port (RFC 8252 §7.3).

use url::Url;

use crate::config::is_loopback;

/// Whether `raw` may be registered as a redirect URI.
pub fn check(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not an absolute URL ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("{raw:?} must not contain a fragment"));
    }
    // `https://trusted.example@evil.example/` reads as one host and goes to another.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?} must not contain a user name or password"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(format!(
            "{raw:?} must use https (http only on a loopback host)"
        )),
    }
}

/// Whether the URI a client presents is one it registered.
pub fn matches(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(presented) = Url::parse(presented) else {
        return false;
    };
    if presented.scheme() != "http" || !is_loopback(&presented) {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| Url::parse(r).ok())
        .any(|r| {
            r.scheme() == "http"
                && r.host() == presented.host()
                && r.path() == presented.path()
                && r.query() == presented.query()
                && r.username() == presented.username()
                && presented.fragment().is_none()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(check("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(check("http://localhost:6274/oauth/callback").is_ok());
        assert!(check("http://127.0.0.1/cb").is_ok());
        assert!(check("http://[::1]:9/cb").is_ok());
        assert!(check("http://evil.example/cb").is_err());
        assert!(check("https://a.example/cb#frag").is_err());
        assert!(check("javascript:alert(1)").is_err());
        assert!(check("https://user@app.example/cb").is_err());
        assert!(check("https://app.example@evil.example/cb").is_err());
        assert!(check("https://u:p@app.example/cb").is_err());
        assert!(check("/relative").is_err());
    }

    #[test]
    fn exact_match_except_loopback_port() {
        let reg = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/callback".to_string(),
            "http://localhost:3000/cb".to_string(),
        ];
        assert!(matches(&reg, "https://app.example/cb"));
        assert!(!matches(&reg, "https://app.example/cb/"));
        assert!(!matches(&reg, "https://app.example:8443/cb"));
        assert!(!matches(&reg, "https://app.example/cb?x=1"));
        assert!(matches(&reg, "http://127.0.0.1:51234/callback"));
        assert!(matches(&reg, "http://localhost:9999/cb"));
        assert!(!matches(&reg, "http://127.0.0.1:51234/other"));
        assert!(
            !matches(&reg, "http://localhost:9999/callback"),
            "host must match too"
        );
        assert!(!matches(&reg, "http://evil.example:3000/cb"));
        assert!(!matches(&reg, "http://127.0.0.1:5/callback#x"));
    }

    proptest::proptest! {
        /// Whatever a client sends, a URI that passes is https or loopback
        /// http, and has neither fragment nor credentials.
        #[test]
        fn what_passes_is_safe(raw in "\\PC{0,80}|(https?|javascript|data|file)://[a-z0-9.@:\\[\\]#?/%-]{0,40}") {
            if let Ok(url) = check(&raw) {
                proptest::prop_assert!(url.fragment().is_none());
                proptest::prop_assert!(url.username().is_empty() && url.password().is_none());
                proptest::prop_assert!(url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)));
            }
        }

        /// A presented URI on another host never matches a registered one.
        #[test]
        fn another_host_never_matches(host in "[a-z]{1,12}\\.(example|test)", port in 1u16.., path in "/[a-z/]{0,12}") {
            let registered = vec![
                "https://app.example/cb".to_string(),
                "http://127.0.0.1/cb".to_string(),
                "http://localhost/cb".to_string(),
            ];
            for scheme in ["http", "https"] {
                let presented = format!("{scheme}://{host}:{port}{path}");
                proptest::prop_assert!(!matches(&registered, &presented), "{}", presented);
            }
        }
    }
}
