//! A client and a person, driven over HTTP: registration, the browser's
//! trip through /authorize, the dev provider's form, consent, and /token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{redirect::Policy, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

pub const REDIRECT: &str = "http://127.0.0.1:7777/callback";

pub struct Flow {
    /// The browser: keeps cookies, never follows redirects by itself.
    pub browser: reqwest::Client,
    /// The MCP client's own HTTP client (no cookies).
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = mcp_auth_broker::secrets::generate();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

impl Flow {
    pub fn new(base: &str) -> Flow {
        Flow {
            browser: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn register(&self, metadata: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/register"))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// A public client with the usual loopback redirect.
    pub async fn public_client(&self) -> String {
        let (status, body) = self
            .register(json!({
                "client_name": "Test Client",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            }))
            .await;
        assert_eq!(status, 201, "{body}");
        body["client_id"].as_str().unwrap().to_owned()
    }

    pub fn authorize_url(&self, client_id: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
        let mut url = Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "st4te");
        for (k, v) in extra {
            url.query_pairs_mut().append_pair(k, v);
        }
        url.to_string()
    }

    pub async fn get(&self, url: &str) -> Response {
        self.browser.get(url).send().await.unwrap()
    }

    /// From /authorize through the provider's sign-in form to the broker's
    /// answer at /callback (a consent page, a redirect, or an error page).
    pub async fn login(&self, authorize_url: &str, email: &str, verified: bool) -> Response {
        self.sign_out().await;
        let to_idp = self.get(authorize_url).await;
        assert_eq!(
            to_idp.status(),
            303,
            "authorize should redirect upstream: {}",
            to_idp.text().await.unwrap()
        );
        let form_page = self.get(&location(&to_idp)).await;
        assert_eq!(form_page.status(), 200);
        let html = form_page.text().await.unwrap();
        let action = attribute(&html, "form", "action");
        let mut fields = vec![
            ("ticket", hidden(&html, "ticket")),
            ("email", email.to_owned()),
        ];
        if verified {
            fields.push(("email_verified", "true".into()));
        }
        let to_callback = self
            .browser
            .post(action)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(to_callback.status(), 303);
        self.get(&location(&to_callback)).await
    }

    /// Ends the browser's broker session, so the next /authorize goes to
    /// the provider again.
    pub async fn sign_out(&self) {
        assert_eq!(self.get(&self.url("/logout")).await.status(), 200);
    }

    pub async fn decide(&self, consent_html: &str, decision: &str) -> Response {
        let action = attribute(consent_html, "form", "action");
        let fields = [
            ("request", hidden(consent_html, "request")),
            ("csrf", hidden(consent_html, "csrf")),
            ("decision", decision.to_owned()),
        ];
        self.browser
            .post(action)
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    /// Login + Allow: the client's redirect with `code`, `state`, `iss`.
    pub async fn authorize(&self, client_id: &str, pkce: &Pkce, email: &str) -> Url {
        self.authorize_with(client_id, pkce, email, &[]).await
    }

    /// The same, with `extra` /authorize parameters (`scope`, `resource` …).
    pub async fn authorize_with(
        &self,
        client_id: &str,
        pkce: &Pkce,
        email: &str,
        extra: &[(&str, &str)],
    ) -> Url {
        let callback = self
            .login(&self.authorize_url(client_id, pkce, extra), email, true)
            .await;
        let redirect = if callback.status() == 200 {
            let html = callback.text().await.unwrap();
            assert!(html.contains("Allow"), "consent page expected: {html}");
            self.decide(&html, "allow").await
        } else {
            callback
        };
        assert_eq!(redirect.status(), 303, "{}", redirect.text().await.unwrap());
        let target = Url::parse(&location(&redirect)).unwrap();
        assert!(target.as_str().starts_with(REDIRECT), "{target}");
        target
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(r.headers()["cache-control"], "no-store");
        (status, r.json().await.unwrap())
    }

    pub async fn redeem(&self, client_id: &str, code: &str, pkce: &Pkce) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
            ("client_id", client_id),
        ])
        .await
    }

    /// The whole dance for `email`; returns the token response.
    pub async fn access_token(&self, email: &str) -> Value {
        self.client_and_tokens(email).await.1
    }

    /// A fresh public client and the token response it got for `email`.
    pub async fn client_and_tokens(&self, email: &str) -> (String, Value) {
        let client_id = self.public_client().await;
        let pkce = Pkce::new();
        let code = param(&self.authorize(&client_id, &pkce, email).await, "code").unwrap();
        let (status, body) = self.redeem(&client_id, &code, &pkce).await;
        assert_eq!(status, 200, "{body}");
        (client_id, body)
    }

    /// A fresh public client's access token for `email`, authorized with
    /// `extra` /authorize parameters (`scope`, `resource` …).
    pub async fn access_token_with(&self, email: &str, extra: &[(&str, &str)]) -> String {
        let client_id = self.public_client().await;
        let pkce = Pkce::new();
        let redirect = self.authorize_with(&client_id, &pkce, email, extra).await;
        let code = param(&redirect, "code").expect("a code");
        let (status, body) = self.redeem(&client_id, &code, &pkce).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The text the broker serves at `path` (e.g. /metrics).
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A JSON document the broker serves at `path`.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub fn location(r: &Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
        .replace("&#43;", "+")
}

fn attribute(html: &str, tag: &str, attr: &str) -> String {
    let start = html
        .find(&format!("<{tag} "))
        .unwrap_or_else(|| panic!("no <{tag}> in {html}"));
    let marker = format!("{attr}=\"");
    let from = start + html[start..].find(&marker).unwrap() + marker.len();
    let end = from + html[from..].find('"').unwrap();
    html[from..end]
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

/// An MCP JSON-RPC call over Streamable HTTP.
#[derive(Debug)]
pub struct McpReply {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub body: Value,
}

impl Flow {
    pub async fn mcp(&self, token: Option<&str>, message: Value) -> McpReply {
        let mut request = self
            .http
            .post(self.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&message);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = r.text().await.unwrap();
        McpReply {
            status,
            challenge,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    /// initialize + initialized + tools/call whoami; the parsed whoami JSON.
    pub async fn whoami(&self, token: &str) -> Result<Value, McpReply> {
        let init = self
            .mcp(Some(token), json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}))
            .await;
        if init.status != 200 {
            return Err(init);
        }
        self.mcp(
            Some(token),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        let call = self
            .mcp(Some(token), json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
            .await;
        if call.status != 200 {
            return Err(call);
        }
        let text = call.body["result"]["content"][0]["text"]
            .as_str()
            .expect("whoami text")
            .to_owned();
        Ok(serde_json::from_str(&text).unwrap())
    }
}
