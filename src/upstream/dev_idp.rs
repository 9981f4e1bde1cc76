//! The development OpenID provider (`serve --dev`): discovery, JWKS, a page
//! where you type any email, and a token endpoint. The broker reaches it over
//! HTTP like any real upstream, so the same relying-party code is exercised.
//! It keeps no state: its tickets and codes are short-lived signed JWTs.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::oauth::{basic_credentials, OAuthError};
use crate::secrets;
use crate::store::now;
use crate::tokens::{ephemeral_rs256, KeyError, SigningKey};
use crate::web::{page, ErrorPage};

const TICKET_TTL: i64 = 600;
const CODE_TTL: i64 = 60;

pub struct DevIdp {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    key: Arc<SigningKey>,
    grant_encoding: EncodingKey,
    grant_decoding: DecodingKey,
}

/// What the sign-in page (ticket) and then the code carry, signed.
#[derive(Debug, Serialize, Deserialize)]
struct Grant {
    purpose: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    email: Option<String>,
    email_verified: bool,
    exp: i64,
}

impl DevIdp {
    /// `issuer` is where the router is mounted, e.g. `{public_url}/dev-idp`.
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
    ) -> Result<DevIdp, KeyError> {
        let grant_secret = secrets::generate();
        Ok(DevIdp {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            key: ephemeral_rs256()?,
            grant_encoding: EncodingKey::from_secret(grant_secret.as_bytes()),
            grant_decoding: DecodingKey::from_secret(grant_secret.as_bytes()),
        })
    }

    /// Routes relative to the issuer's path; nest them there.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize_page).post(authorize_submit))
            .route("/token", post(token))
            .with_state(self)
    }

    fn sign(&self, grant: &Grant) -> Result<String, ErrorPage> {
        encode(&Header::new(Algorithm::HS256), grant, &self.grant_encoding).map_err(|_| {
            ErrorPage::bad_request("the development provider could not sign its grant")
        })
    }

    fn open(&self, token: &str, purpose: &str) -> Option<Grant> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims = ["exp".to_string()].into();
        let grant = decode::<Grant>(token, &self.grant_decoding, &validation)
            .ok()?
            .claims;
        (grant.purpose == purpose).then_some(grant)
    }
}

async fn discovery(State(idp): State<Arc<DevIdp>>) -> Json<Value> {
    let i = &idp.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "email", "email_verified", "name"],
    }))
}

async fn jwks(State(idp): State<Arc<DevIdp>>) -> Json<Value> {
    Json(json!({ "keys": [idp.key.jwk] }))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "dev_login.html")]
struct LoginPage {
    action: String,
    ticket: String,
    email: String,
}

async fn authorize_page(
    State(idp): State<Arc<DevIdp>>,
    Query(q): Query<AuthorizeQuery>,
) -> Result<Response, ErrorPage> {
    if q.client_id.as_deref() != Some(idp.client_id.as_str()) {
        return Err(ErrorPage::bad_request(
            "unknown client_id for the development provider",
        ));
    }
    let redirect_uri = q.redirect_uri.unwrap_or_default();
    if redirect_uri != idp.redirect_uri {
        return Err(ErrorPage::bad_request(
            "redirect_uri is not the broker's callback",
        ));
    }
    if q.response_type.as_deref() != Some("code") {
        return Err(ErrorPage::bad_request("response_type must be code"));
    }
    let ticket = idp.sign(&Grant {
        purpose: "ticket".into(),
        redirect_uri,
        state: q.state,
        nonce: q.nonce,
        code_challenge: q.code_challenge,
        email: None,
        email_verified: false,
        exp: now() + TICKET_TTL,
    })?;
    Ok(page(&LoginPage {
        action: format!("{}/authorize", idp.issuer),
        ticket,
        email: "dev@example.com".into(),
    }))
}

#[derive(Deserialize)]
struct LoginForm {
    ticket: String,
    email: String,
    email_verified: Option<String>,
}

async fn authorize_submit(
    State(idp): State<Arc<DevIdp>>,
    Form(form): Form<LoginForm>,
) -> Result<Response, ErrorPage> {
    let mut grant = idp.open(&form.ticket, "ticket").ok_or_else(|| {
        ErrorPage::bad_request("this sign-in form expired; start again from your application")
    })?;
    let email = form.email.trim();
    if email.is_empty() || !email.contains('@') {
        return Err(ErrorPage::bad_request("type an email address"));
    }
    grant.purpose = "code".into();
    grant.email = Some(email.to_owned());
    grant.email_verified = form.email_verified.as_deref() == Some("true");
    grant.exp = now() + CODE_TTL;
    let code = idp.sign(&grant)?;
    let mut target = url::Url::parse(&grant.redirect_uri)
        .map_err(|_| ErrorPage::bad_request("bad redirect_uri"))?;
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = &grant.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    Ok(Redirect::to(target.as_str()).into_response())
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn token(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Result<Response, OAuthError> {
    let (client_id, secret) = basic_credentials(&headers)
        .or_else(|| Some((form.client_id.clone()?, form.client_secret.clone()?)))
        .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
    if client_id != idp.client_id || secret != idp.client_secret {
        return Err(OAuthError::invalid_client("unknown client or wrong secret"));
    }
    if form.grant_type.as_deref() != Some("authorization_code") {
        return Err(OAuthError::unsupported_grant_type(
            "only authorization_code",
        ));
    }
    let grant = form
        .code
        .as_deref()
        .and_then(|c| idp.open(c, "code"))
        .ok_or_else(|| OAuthError::invalid_grant("the code is invalid or expired"))?;
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant("redirect_uri does not match"));
    }
    if let Some(challenge) = &grant.code_challenge {
        let verifier = form.code_verifier.as_deref().unwrap_or_default();
        if !secrets::pkce_s256_matches(verifier, challenge) {
            return Err(OAuthError::invalid_grant("PKCE verification failed"));
        }
    }
    let email = grant.email.unwrap_or_default();
    let issued = now();
    let claims = json!({
        "iss": idp.issuer,
        "sub": format!("dev|{}", &secrets::hash(&email.to_lowercase())[..16]),
        "aud": idp.client_id,
        "iat": issued,
        "exp": issued + 300,
        "nonce": grant.nonce,
        "email": email,
        "email_verified": grant.email_verified,
        "name": email.split('@').next(),
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(idp.key.kid.clone());
    let id_token = encode(&header, &claims, &idp.key.encoding).map_err(|_| {
        OAuthError::invalid_request("the development provider could not sign the ID token")
    })?;
    let body = json!({
        "access_token": secrets::generate(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    });
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}
