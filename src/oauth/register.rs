//! Dynamic client registration (RFC 7591).

use serde::Deserialize;
use serde_json::{json, Map, Value};
use wildmatch::WildMatch;

use super::error::OAuthError;
use super::redirect_uri;
use crate::config::RegistrationSettings;
use crate::secrets;
use crate::store::{now, Client, NewClient, Store};

const AUTH_METHODS: [&str; 3] = ["none", "client_secret_basic", "client_secret_post"];
const GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];

#[derive(Deserialize)]
pub struct Request {
    pub redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub scope: Option<String>,
}

/// Client metadata that passed the checks every kind of client shares.
pub struct Described {
    pub document: Map<String, Value>,
    pub request: Request,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
}

/// Validates the metadata, stores the client and returns the RFC 7591
/// response (with the secret, the only time it is ever shown).
pub async fn register(
    store: &Store,
    policy: &RegistrationSettings,
    presented_token: Option<&str>,
    body: &[u8],
) -> Result<Value, OAuthError> {
    admit(policy, presented_token)?;
    let Described {
        document,
        request,
        redirect_uris,
        grant_types,
        response_types,
    } = describe(policy, body)?;
    let method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    if !AUTH_METHODS.contains(&method.as_str()) {
        return Err(OAuthError::invalid_client_metadata(format!(
            "token_endpoint_auth_method {method:?} is not supported (use one of {})",
            AUTH_METHODS.join(", ")
        )));
    }

    let issued_at = now();
    let client_id = uuid::Uuid::new_v4().to_string();
    let secret = (method != "none").then(secrets::generate);
    let mut response = document;
    response.insert("client_id".into(), json!(client_id));
    response.insert("client_id_issued_at".into(), json!(issued_at));
    response.insert("redirect_uris".into(), json!(redirect_uris));
    response.insert("token_endpoint_auth_method".into(), json!(method));
    response.insert("grant_types".into(), json!(grant_types));
    response.insert("response_types".into(), json!(response_types));
    let stored = Value::Object(response.clone());
    if let Some(secret) = &secret {
        response.insert("client_secret".into(), json!(secret));
        response.insert("client_secret_expires_at".into(), json!(0));
    }

    let client = Client {
        client_id,
        client_secret_hash: secret.as_deref().map(secrets::hash),
        client_name: request.client_name,
        redirect_uris,
        grant_types,
        token_endpoint_auth_method: method,
        disabled: false,
        metadata: stored,
        metadata_expires_at: None,
    };
    store
        .insert_client(&NewClient {
            client: &client,
            response_types: &response_types,
            scope: request.scope.as_deref(),
            created_at: issued_at,
        })
        .await?;
    Ok(Value::Object(response))
}

/// Parses client metadata (a registration request or a metadata document)
/// and applies the checks every kind of client shares: redirect URIs safe
/// and allowed by policy, the code flow only, a sane name.
pub fn describe(policy: &RegistrationSettings, body: &[u8]) -> Result<Described, OAuthError> {
    let document: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        OAuthError::invalid_client_metadata(format!("the body must be a JSON object: {e}"))
    })?;
    if let Some(field) = control_characters(&document) {
        return Err(OAuthError::invalid_client_metadata(format!(
            "{field} contains control characters"
        )));
    }
    let request: Request = serde_json::from_value(Value::Object(document.clone()))
        .map_err(|e| OAuthError::invalid_client_metadata(format!("malformed metadata: {e}")))?;
    let redirect_uris = request.redirect_uris.clone().unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(OAuthError::invalid_redirect_uri(
            "redirect_uris must list at least one URI",
        ));
    }
    for uri in &redirect_uris {
        redirect_uri::check(uri).map_err(OAuthError::invalid_redirect_uri)?;
        if !policy.allowed_redirect_uris.is_empty()
            && !policy
                .allowed_redirect_uris
                .iter()
                .any(|p| WildMatch::new(p).matches(uri))
        {
            return Err(OAuthError::invalid_redirect_uri(format!(
                "{uri:?} is not allowed by this server's registration policy"
            )));
        }
    }
    let grant_types = request
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(bad) = grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(OAuthError::invalid_client_metadata(format!(
            "grant type {bad:?} is not supported"
        )));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types must include authorization_code",
        ));
    }
    let response_types = request
        .response_types
        .clone()
        .unwrap_or_else(|| vec!["code".into()]);
    if response_types != ["code"] {
        return Err(OAuthError::invalid_client_metadata(
            "response_types must be [\"code\"]",
        ));
    }
    if request
        .client_name
        .as_deref()
        .is_some_and(|n| n.chars().count() > 200)
    {
        return Err(OAuthError::invalid_client_metadata(
            "client_name is longer than 200 characters",
        ));
    }
    Ok(Described {
        document,
        request,
        redirect_uris,
        grant_types,
        response_types,
    })
}

/// Whether this server takes registrations, and from whom.
fn admit(policy: &RegistrationSettings, presented: Option<&str>) -> Result<(), OAuthError> {
    if !policy.enabled {
        return Err(OAuthError::access_denied(
            "dynamic client registration is disabled on this server",
        ));
    }
    match (&policy.initial_access_token, presented) {
        (None, _) => Ok(()),
        (Some(expected), Some(token)) if secrets::matches(token, &secrets::hash(expected)) => {
            Ok(())
        }
        (Some(_), _) => Err(OAuthError::invalid_token(
            "registration needs a valid initial access token",
        )),
    }
}

/// The first field whose text holds a control character (NUL, newlines in a
/// name shown to people…), if any.
fn control_characters(document: &Map<String, Value>) -> Option<String> {
    fn bad(value: &Value) -> bool {
        match value {
            Value::String(s) => s.chars().any(char::is_control),
            Value::Array(items) => items.iter().any(bad),
            Value::Object(fields) => fields
                .iter()
                .any(|(k, v)| k.chars().any(char::is_control) || bad(v)),
            _ => false,
        }
    }
    document
        .iter()
        .find(|(k, v)| k.chars().any(char::is_control) || bad(v))
        .map(|(k, _)| k.escape_debug().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    fn policy() -> RegistrationSettings {
        RegistrationSettings {
            enabled: true,
            initial_access_token: None,
            allowed_redirect_uris: Vec::new(),
            client_idle_expiry: HumanDuration(std::time::Duration::from_secs(60)),
            cimd_enabled: true,
            cimd_allow_insecure_hosts: false,
        }
    }

    proptest::proptest! {
        /// Any body: an answer, never a panic.
        #[test]
        fn any_body_is_answered(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = describe(&policy(), &body);
        }

        /// Metadata that passes has only redirect URIs registration allows.
        #[test]
        fn accepted_metadata_has_safe_redirects(
            uris in proptest::collection::vec("\\PC{0,40}|https?://[a-z0-9.@:#/-]{0,30}", 0..4),
            name in proptest::option::of("\\PC{0,250}"),
        ) {
            let body = serde_json::json!({ "redirect_uris": uris, "client_name": name }).to_string();
            if let Ok(described) = describe(&policy(), body.as_bytes()) {
                for uri in &described.redirect_uris {
                    proptest::prop_assert!(redirect_uri::check(uri).is_ok(), "{}", uri);
                }
                proptest::prop_assert!(control_characters(&described.document).is_none());
            }
        }
    }
}
