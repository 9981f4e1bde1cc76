//! Discovery documents: RFC 9728 protected-resource metadata and RFC 8414
//! authorization-server metadata, with the issuer identical everywhere.

use serde_json::{json, Value};

use super::client_assertion::ALGORITHMS;
use crate::config::{BackendSettings, Settings};

const AUTH_METHODS: [&str; 4] = [
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

/// The built-in MCP endpoint's metadata (RFC 9728).
pub fn protected_resource(settings: &Settings) -> Value {
    resource_metadata(
        settings,
        &settings.mcp_resource(),
        &settings.oauth.scopes_supported,
        "mcp-auth-broker",
    )
}

/// A gateway backend's: its own resource, and the scopes it needs.
pub fn backend_resource(settings: &Settings, backend: &BackendSettings) -> Value {
    resource_metadata(
        settings,
        &backend.resource(settings.issuer()),
        backend.scopes_to_ask(&settings.oauth.default_scopes),
        backend.name(),
    )
}

fn resource_metadata(settings: &Settings, resource: &str, scopes: &[String], name: &str) -> Value {
    json!({
        "resource": resource,
        "authorization_servers": [settings.issuer()],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": name,
    })
}

pub fn authorization_server(settings: &Settings) -> Value {
    let issuer = settings.issuer();
    let assertion_algorithms: Vec<String> = ALGORITHMS.iter().map(|a| format!("{a:?}")).collect();
    let mut metadata = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        "client_id_metadata_document_supported": settings.registration.cimd_enabled,
        "scopes_supported": settings.oauth.scopes_supported,
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [settings.tokens.algorithm],
    });
    if let Some(fields) = metadata
        .as_object_mut()
        .filter(|_| !settings.registration.enabled)
    {
        fields.remove("registration_endpoint");
    }
    metadata
}
