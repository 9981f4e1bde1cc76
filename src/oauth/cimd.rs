//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! MCP 2025-11-25): a `client_id` that is an https URL names a JSON document
//! describing the client. It is fetched on first use and whenever its cache
//! lifetime has passed, checked like a registration, and kept in
//! `oauth_clients` (kind `cimd`) so every replica and every later step of a
//! login sees the same client.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::error::OAuthError;
use super::register::{self, Described};
use crate::config::RegistrationSettings;
use crate::outbound::Outbound;
use crate::store::{now, Client, NewClient, StoreError, PRIVATE_KEY_JWT};
use crate::web::ErrorPage;
use crate::AppState;

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the client metadata document {url} cannot be used: {reason}")]
    Refused { url: String, reason: String },
}

impl From<DocumentError> for OAuthError {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::Store(e) => e.into(),
            refused => OAuthError::invalid_client(refused.to_string()),
        }
    }
}

impl From<DocumentError> for ErrorPage {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::Store(e) => e.into(),
            refused => {
                ErrorPage::bad_request(format!("This application cannot sign in here: {refused}."))
            }
        }
    }
}

/// The fields of a metadata document beyond what a registration has.
#[derive(Deserialize)]
struct DocumentFields {
    client_id: Option<String>,
    client_secret: Option<Value>,
    client_secret_expires_at: Option<Value>,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
}

/// The client named by `client_id`: a registered one, or the one its
/// metadata document describes (fetched when not cached or stale).
pub async fn client(app: &AppState, client_id: &str) -> Result<Option<Client>, DocumentError> {
    let store = app.store();
    if !client_id.starts_with("https://") && !client_id.starts_with("http://") {
        return Ok(store.client(client_id).await?);
    }
    let refused = |reason: String| DocumentError::Refused {
        url: client_id.to_owned(),
        reason,
    };
    if !app.settings().registration.cimd_enabled {
        return Err(refused(
            "this server does not accept client metadata documents; register with /register instead"
                .into(),
        ));
    }
    let at = now();
    let cached = store.client(client_id).await?;
    if cached
        .as_ref()
        .is_some_and(|c| c.metadata_expires_at.is_none_or(|expires| expires > at))
    {
        return Ok(cached);
    }
    let url = document_url(app.outbound(), client_id).map_err(refused)?;
    let fetched = app
        .outbound()
        .get(&url)
        .await
        .map_err(|e| refused(e.to_string()))?;
    let (client, response_types) = describe(
        &app.settings().registration,
        app.outbound(),
        client_id,
        &fetched.body,
        at + fetched.max_age.as_secs() as i64,
    )
    .map_err(refused)?;
    store
        .upsert_document_client(&NewClient {
            client: &client,
            response_types: &response_types,
            scope: client.metadata.get("scope").and_then(Value::as_str),
            created_at: at,
        })
        .await?;
    Ok(store.client(client_id).await?)
}

/// The document's URL, if `client_id` is one the draft allows: https (http
/// only in development), a path, no fragment, no credentials, and written
/// canonically so that one client cannot appear under two ids.
pub fn document_url(outbound: &Outbound, client_id: &str) -> Result<Url, String> {
    let url = Url::parse(client_id).map_err(|e| format!("it is not a URL ({e})"))?;
    if !outbound.scheme_allowed(&url) {
        return Err("a client_id URL must use https".into());
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("a client_id URL must not contain a fragment or credentials".into());
    }
    if url.path() == "/" {
        return Err("a client_id URL must have a path".into());
    }
    if url.as_str() != client_id {
        return Err(format!(
            "a client_id URL must be written canonically ({})",
            url.as_str()
        ));
    }
    Ok(url)
}

/// Checks a fetched document and turns it into the client it describes.
pub fn describe(
    policy: &RegistrationSettings,
    outbound: &Outbound,
    client_id: &str,
    body: &[u8],
    expires_at: i64,
) -> Result<(Client, Vec<String>), String> {
    let Described {
        document,
        request,
        redirect_uris,
        grant_types,
        response_types,
    } = register::describe(policy, body).map_err(|e| e.description)?;
    let metadata = Value::Object(document);
    let fields: DocumentFields =
        serde_json::from_value(metadata.clone()).map_err(|e| format!("malformed document: {e}"))?;
    match fields.client_id.as_deref() {
        Some(id) if id == client_id => {}
        Some(id) => {
            return Err(format!(
                "its client_id {id:?} is not the URL it was fetched from"
            ))
        }
        None => return Err("it has no client_id".into()),
    }
    if fields.client_secret.is_some() || fields.client_secret_expires_at.is_some() {
        return Err("a metadata document must not contain a client secret".into());
    }
    let method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| "none".into());
    match method.as_str() {
        "none" => {}
        PRIVATE_KEY_JWT => match (&fields.jwks, &fields.jwks_uri) {
            (Some(_), None) => {}
            (None, Some(uri)) => {
                let url = Url::parse(uri).map_err(|e| format!("jwks_uri is not a URL ({e})"))?;
                if !outbound.scheme_allowed(&url) {
                    return Err("jwks_uri must use https".into());
                }
            }
            _ => return Err("private_key_jwt needs exactly one of jwks and jwks_uri".into()),
        },
        other => {
            return Err(format!(
                "token_endpoint_auth_method {other:?} is not allowed: use none or private_key_jwt"
            ))
        }
    }
    let client = Client {
        client_id: client_id.to_owned(),
        client_secret_hash: None,
        client_name: request.client_name,
        redirect_uris,
        grant_types,
        token_endpoint_auth_method: method,
        disabled: false,
        metadata,
        metadata_expires_at: Some(expires_at),
    };
    Ok((client, response_types))
}
