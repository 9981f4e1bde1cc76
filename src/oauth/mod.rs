//! The authorization server's HTTP surface. Handlers only parse and map;
//! the protocol decisions live in the submodules.

mod authorize;
mod browser;
mod cimd;
mod client_assertion;
mod client_auth;
mod error;
mod form;
mod introspect;
mod login;
mod metadata;
mod redirect_uri;
mod register;
mod revoke;
mod token;

use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

pub use client_assertion::ClientKeyCache;
pub use client_auth::basic_credentials;
pub use error::OAuthError;

/// The parsers and checks that face attackers, for the fuzz targets in
/// `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::authorize::{check_request, redirect_with, Asked, AuthorizeQuery};
    pub use super::cimd::{describe as describe_document, document_url};
    pub use super::client_assertion::{
        check as check_assertion, claimed_client, header as assertion_header, parse_keys,
        CheckedClaims,
    };
    pub use super::redirect_uri::{check as check_redirect_uri, matches as redirect_uri_matches};
    pub use super::register::{describe as describe_registration, Described};
}

use crate::bearer::{self, Audience, Identity};
use crate::config::Settings;
use crate::secrets;
use crate::web::{page, ErrorPage};
use crate::AppState;
use authorize::{AuthorizeQuery, Browser, Refusal, Started};
use browser::{ClientIp, Cookie};
use form::ClientForm;
use introspect::IntrospectForm;
use login::{CallbackQuery, ConsentForm, Next, Origin, SignedIn};
use revoke::RevokeForm;
use token::TokenForm;

/// Public discovery documents: any origin may read them. Each gateway
/// backend has its own protected-resource metadata.
pub fn metadata_routes(settings: &Settings) -> Router<AppState> {
    let mut router = Router::new();
    for backend in &settings.mcp.backends {
        let document = Json(metadata::backend_resource(settings, backend));
        router = router
            .route(
                &format!("/.well-known/oauth-protected-resource{}", backend.path),
                get(move || std::future::ready(document)),
            )
            .route(
                &format!("/.well-known/oauth-authorization-server{}", backend.path),
                get(authorization_server),
            );
    }
    router
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server),
        )
        .route(
            "/.well-known/oauth-authorization-server/mcp",
            get(authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(authorization_server),
        )
        .route("/jwks.json", get(jwks))
        .route("/.well-known/jwks.json", get(jwks))
}

/// Endpoints clients call with fetch/XHR (CORS applies).
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/register", post(register))
        .route("/oauth/register", post(register))
        .route("/token", post(token))
        .route("/oauth/token", post(token))
        .route("/revoke", post(revoke))
        .route("/oauth/revoke", post(revoke))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/introspect", post(introspect))
        .route("/oauth/introspect", post(introspect))
}

/// Pages a person's browser navigates to (no CORS: they are not APIs).
pub fn browser_routes() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/oauth/authorize", get(authorize))
        .route("/callback", get(callback))
        .route("/consent", post(consent))
        .route("/logout", get(logout))
}

async fn protected_resource(State(app): State<AppState>) -> Json<Value> {
    Json(metadata::protected_resource(app.settings()))
}

async fn authorization_server(State(app): State<AppState>) -> Json<Value> {
    Json(metadata::authorization_server(app.settings()))
}

async fn jwks(State(app): State<AppState>) -> Json<jsonwebtoken::jwk::JwkSet> {
    Json(app.keys().jwks())
}

async fn register(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let token = bearer::bearer_token(&headers);
    let registered =
        register::register(app.store(), &app.settings().registration, token, &body).await?;
    Ok(no_store(
        (StatusCode::CREATED, Json(registered)).into_response(),
    ))
}

async fn authorize(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuthorizeQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return ErrorPage::bad_request("The sign-in link is malformed.").into_response();
    };
    let settings = app.settings();
    let browser = Browser {
        login_secret: browser::secret(settings, &headers, Cookie::Login),
        session_secret: browser::secret(settings, &headers, Cookie::Session),
    };
    let with_login_cookie = |mut response: Response, secret: &str| {
        response.headers_mut().append(
            header::SET_COOKIE,
            browser::set_cookie(settings, Cookie::Login, secret),
        );
        response
    };
    match authorize::start(&app, query, browser).await {
        Ok(Started::Upstream {
            location,
            browser_secret,
        }) => with_login_cookie(Redirect::to(&location).into_response(), &browser_secret),
        Ok(Started::SignedIn {
            next,
            browser_secret,
        }) => with_login_cookie(next_response(next), &browser_secret),
        Ok(Started::Chooser(chooser)) => page(&chooser),
        Err(Refusal::Page(page)) => page.into_response(),
        Err(Refusal::Redirect(location)) => Redirect::to(&location).into_response(),
    }
}

fn origin(app: &AppState, headers: &HeaderMap, ip: ClientIp) -> Origin {
    Origin {
        ip: ip.0,
        browser_secret: browser::secret(app.settings(), headers, Cookie::Login),
    }
}

async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return ErrorPage::bad_request("The identity provider's answer is malformed.")
            .into_response();
    };
    match login::callback(&app, query, &origin(&app, &headers, ip)).await {
        Ok(SignedIn {
            next,
            session_secret,
        }) => {
            let mut response = next_response(next);
            response.headers_mut().append(
                header::SET_COOKIE,
                browser::set_cookie(app.settings(), Cookie::Session, &session_secret),
            );
            response
        }
        Err(error) => error.into_response(),
    }
}

/// `GET /logout`: ends the broker session of this browser.
async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let settings = app.settings();
    if let Some(secret) = browser::secret(settings, &headers, Cookie::Session) {
        if let Err(e) = app.store().end_session(&secrets::hash(&secret)).await {
            return ErrorPage::from(e).into_response();
        }
    }
    let mut response = page(&SignedOut {});
    response.headers_mut().append(
        header::SET_COOKIE,
        browser::clear_cookie(settings, Cookie::Session),
    );
    response
}

/// The page after /logout.
#[derive(askama::Template)]
#[template(path = "signed_out.html")]
struct SignedOut {}

async fn consent(
    State(app): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return ErrorPage::bad_request(
            "The form is incomplete. Start again from your application.",
        )
        .into_response();
    };
    match login::decide(&app, form, &origin(&app, &headers, ip)).await {
        Ok(next) => next_response(next),
        Err(error) => error.into_response(),
    }
}

fn next_response(next: Next) -> Response {
    match next {
        // 303: the browser follows with GET after the consent POST.
        Next::Redirect(location) => Redirect::to(&location).into_response(),
        Next::Consent(consent) => page(consent.as_ref()),
    }
}

async fn token(
    State(app): State<AppState>,
    headers: HeaderMap,
    ClientForm(client, form): ClientForm<TokenForm>,
) -> Result<Response, OAuthError> {
    let body = token::exchange(&app, &headers, &client, form).await?;
    let mut response = no_store(Json(body).into_response());
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    ClientForm(client, form): ClientForm<RevokeForm>,
) -> Result<Response, OAuthError> {
    revoke::revoke(&app, &headers, &client, form).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}

async fn introspect(
    State(app): State<AppState>,
    headers: HeaderMap,
    ClientForm(client, form): ClientForm<IntrospectForm>,
) -> Result<Response, OAuthError> {
    let body = introspect::introspect(&app, &headers, &client, form).await?;
    Ok(no_store(Json(body).into_response()))
}

/// OpenID Connect userinfo for our own access tokens.
async fn userinfo(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let token = bearer::bearer_token(&headers);
    match bearer::identify_for(&app, token, Audience::AnyOfOurs, None).await {
        Ok(Identity { user, .. }) => no_store(
            Json(serde_json::json!({
                "sub": user.user_id,
                "email": user.email,
                // Only verified emails ever get onto a token.
                "email_verified": true,
                "name": user.name,
            }))
            .into_response(),
        ),
        Err(e) => bearer::challenge(&app, e),
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
