//! `GET /authorize`: check the request, remember it in the database, and send
//! the person to the upstream provider.

use serde::{Deserialize, Serialize};

use super::login::{after_login, Next};
use super::redirect_uri;
use crate::allowlist::{AllowedUser, Status};
use crate::config::OAuthSettings;
use crate::secrets;
use crate::store::{now, AuthRequest, BrowserSession, Client};
use crate::upstream::Upstream;
use crate::web::ErrorPage;
use crate::AppState;

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct AuthorizeQuery {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
    pub idp_hint: Option<String>,
}

/// A refused authorization request: on our own page while the redirect URI
/// is not trusted, back to the client once it is.
#[derive(Debug)]
pub enum Refusal {
    Page(ErrorPage),
    Redirect(String),
}

impl From<ErrorPage> for Refusal {
    fn from(page: ErrorPage) -> Self {
        Refusal::Page(page)
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        Refusal::Page(e.into())
    }
}

/// Where a valid authorization request goes next.
pub enum Started {
    /// To the upstream provider's authorization URL.
    Upstream {
        location: String,
        /// Binds the pending request to this browser (set as a cookie).
        browser_secret: String,
    },
    /// Several providers and no `idp_hint`: the person picks one.
    Chooser(ChooserPage),
    /// The browser's broker session vouches for the person already.
    SignedIn { next: Next, browser_secret: String },
}

/// "Continue with …", one button per upstream.
#[derive(askama::Template)]
#[template(path = "chooser.html")]
pub struct ChooserPage {
    pub choices: Vec<(String, String)>,
}

/// What the browser brings to /authorize.
pub struct Browser {
    pub login_secret: Option<String>,
    pub session_secret: Option<String>,
}

/// `redirect_uri` with `params` added to its query (existing ones kept).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in params {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
    }
    url.to_string()
}

/// The error redirect of RFC 6749 §4.1.2.1, with `iss` (RFC 9207).
pub fn error_redirect(
    app: &AppState,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> String {
    redirect_with(
        redirect_uri,
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("state", state),
            ("iss", Some(app.settings().issuer())),
        ],
    )
}

pub async fn start(
    app: &AppState,
    q: AuthorizeQuery,
    browser: Browser,
) -> Result<Started, Refusal> {
    let client = trusted_client(app, q.client_id.as_deref()).await?;
    let redirect_uri = trusted_redirect(&client, q.redirect_uri.as_deref())?;
    let state = q.state.as_deref();
    let refuse = |error: &str, description: &str| {
        Refusal::Redirect(error_redirect(
            app,
            &redirect_uri,
            state,
            error,
            description,
        ))
    };

    let Asked { challenge, scope } = check_request(&q, &app.settings().oauth)
        .map_err(|(error, description)| refuse(error, &description))?;
    let settings = app.settings();
    // Without `resource`, the token is for the built-in endpoint.
    let resource = match q.resource.as_deref() {
        None => app.mcp_resource().to_owned(),
        Some(asked) => match app.known_resource(asked) {
            Some(known) => known.to_owned(),
            None => {
                return Err(refuse(
                    "invalid_target",
                    &format!("resource must be one of {}", app.resources().join(", ")),
                ))
            }
        },
    };
    let signed_in = match browser_session(app, browser.session_secret.as_deref()).await? {
        Some(session)
            if q.idp_hint
                .as_deref()
                .is_none_or(|h| h == session.upstream_id) =>
        {
            active_user(app, &session.user_id)
                .await?
                .map(|user| (session, user))
        }
        _ => None,
    };
    let upstream = match (&q.idp_hint, &signed_in) {
        (_, Some((session, _))) => app.upstreams().get(&session.upstream_id),
        (Some(hint), None) => app.upstreams().get(hint),
        (None, None) => match app.upstreams().all() {
            [only] => Some(only),
            [] => None,
            several => return Ok(Started::Chooser(chooser(app, &q, several))),
        },
    }
    .ok_or_else(|| {
        Refusal::Page(ErrorPage::bad_request(
            "No identity provider is configured for this server (or idp_hint names none); ask an administrator.",
        ))
    })?;

    let browser_secret = browser.login_secret.unwrap_or_else(secrets::generate);
    let created_at = now();
    let request = AuthRequest {
        id: secrets::generate(),
        browser_hash: secrets::hash(&browser_secret),
        client_id: client.client_id.clone(),
        redirect_uri,
        state: q.state.clone(),
        code_challenge: challenge.to_owned(),
        scope,
        resource,
        upstream_id: upstream.settings.id.clone(),
        upstream_nonce: secrets::generate(),
        upstream_verifier: secrets::generate(),
        user_id: None,
        csrf_hash: None,
        created_at,
        expires_at: created_at + settings.oauth.login_ttl.0.as_secs() as i64,
    };
    if let Some((_, user)) = signed_in {
        app.store().insert_auth_request(&request).await?;
        let next = after_login(app, &request, &user).await?;
        return Ok(Started::SignedIn {
            next,
            browser_secret,
        });
    }
    let location = upstream
        .authorize_url(
            &app.callback_url(),
            &request.id,
            &request.upstream_nonce,
            &request.upstream_verifier,
        )
        .await
        .map_err(|e| unreachable(app, upstream, &q, &e))?;
    app.store().insert_auth_request(&request).await?;
    Ok(Started::Upstream {
        location,
        browser_secret,
    })
}

/// What a well-formed authorization request asks for.
pub struct Asked<'q> {
    pub challenge: &'q str,
    pub scope: String,
}

/// Checks the request's own parameters (state, response_type, PKCE, scope)
/// against `oauth`; a refusal is an OAuth error code and its description.
pub fn check_request<'q>(
    q: &'q AuthorizeQuery,
    oauth: &OAuthSettings,
) -> Result<Asked<'q>, (&'static str, String)> {
    if q.state
        .as_deref()
        .is_some_and(|s| s.chars().any(char::is_control))
    {
        return Err((
            "invalid_request",
            "state must not contain control characters".into(),
        ));
    }
    if q.response_type.as_deref() != Some("code") {
        return Err((
            "unsupported_response_type",
            "response_type must be code".into(),
        ));
    }
    let Some(challenge) = q.code_challenge.as_deref().filter(|c| !c.is_empty()) else {
        return Err((
            "invalid_request",
            "code_challenge is required (PKCE with S256)".into(),
        ));
    };
    if q.code_challenge_method.as_deref() != Some("S256") {
        return Err((
            "invalid_request",
            "code_challenge_method must be S256; plain is not accepted".into(),
        ));
    }
    let challenge_ok = (43..=128).contains(&challenge.len())
        && challenge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !challenge_ok {
        return Err((
            "invalid_request",
            "code_challenge must be 43 to 128 base64url characters".into(),
        ));
    }
    let scope = match q.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => oauth.default_scopes.join(" "),
        Some(asked) => {
            if let Some(bad) = asked
                .split_whitespace()
                .find(|s| !oauth.scopes_supported.iter().any(|x| x == s))
            {
                return Err((
                    "invalid_scope",
                    format!("scope {bad:?} is not offered by this server"),
                ));
            }
            asked.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    };
    Ok(Asked { challenge, scope })
}

async fn browser_session(
    app: &AppState,
    secret: Option<&str>,
) -> Result<Option<BrowserSession>, Refusal> {
    match secret {
        Some(secret) => Ok(app.store().session(&secrets::hash(secret), now()).await?),
        None => Ok(None),
    }
}

/// The person behind a broker session, if they may still sign in.
async fn active_user(app: &AppState, user_id: &str) -> Result<Option<AllowedUser>, Refusal> {
    Ok(app
        .store()
        .user_by_id(user_id)
        .await?
        .filter(|u| u.status == Status::Active))
}

fn chooser(
    app: &AppState,
    q: &AuthorizeQuery,
    upstreams: &[std::sync::Arc<Upstream>],
) -> ChooserPage {
    let choices = upstreams
        .iter()
        .map(|u| {
            let hinted = AuthorizeQuery {
                idp_hint: Some(u.settings.id.clone()),
                ..q.clone()
            };
            (
                format!("Continue with {}", u.settings.label()),
                authorize_link(app, &hinted),
            )
        })
        .collect();
    ChooserPage { choices }
}

fn authorize_link(app: &AppState, q: &AuthorizeQuery) -> String {
    format!(
        "{}/authorize?{}",
        app.settings().issuer(),
        serde_urlencoded::to_string(q).unwrap_or_default()
    )
}

/// The provider could not be reached to start the login.
fn unreachable(
    app: &AppState,
    upstream: &Upstream,
    q: &AuthorizeQuery,
    error: &crate::upstream::UpstreamError,
) -> Refusal {
    tracing::warn!(upstream = %upstream.settings.id, error = %error, "upstream unavailable");
    let mut page = ErrorPage::new(
        axum::http::StatusCode::BAD_GATEWAY,
        "The identity provider is unavailable",
        format!(
            "{} cannot be reached right now. Please try again in a moment.",
            upstream.settings.label()
        ),
    )
    .with_retry(authorize_link(
        app,
        &AuthorizeQuery {
            idp_hint: Some(upstream.settings.id.clone()),
            ..q.clone()
        },
    ));
    if app.upstreams().all().len() > 1 {
        page = page.with_choose_again(authorize_link(
            app,
            &AuthorizeQuery {
                idp_hint: None,
                ..q.clone()
            },
        ));
    }
    Refusal::Page(page)
}

async fn trusted_client(app: &AppState, client_id: Option<&str>) -> Result<Client, Refusal> {
    let client_id = client_id.filter(|c| !c.is_empty()).ok_or_else(|| {
        ErrorPage::bad_request("The application did not say who it is (client_id is missing).")
    })?;
    super::cimd::client(app, client_id)
        .await
        .map_err(ErrorPage::from)?
        .filter(|c| !c.disabled)
        .ok_or_else(|| {
            ErrorPage::bad_request("The application is not registered with this server (unknown client_id). It should register again.")
                .into()
        })
}

fn trusted_redirect(client: &Client, asked: Option<&str>) -> Result<String, Refusal> {
    match asked {
        Some(uri) if redirect_uri::matches(&client.redirect_uris, uri) => Ok(uri.to_owned()),
        None if client.redirect_uris.len() == 1 => Ok(client.redirect_uris[0].clone()),
        None => Err(ErrorPage::bad_request(
            "redirect_uri is required: the application registered several.",
        )
        .into()),
        Some(_) => Err(ErrorPage::bad_request(
            "The redirect_uri is not one this application registered, so you are not sent there.",
        )
        .into()),
    }
}
