//! The person's side after the upstream: `GET /callback` (verify, allowlist
//! gate, consent or not) and `POST /consent` (Allow / Deny).

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::authorize::{error_redirect, redirect_with};
use crate::allowlist::{AllowedUser, Email, Status, UserChange};
use crate::secrets;
use crate::store::{now, AuditEvent, AuthCode, AuthRequest, BrowserSession, Store};
use crate::upstream::{UpstreamError, UpstreamIdentity};
use crate::web::{Back, ErrorPage};
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    pub request: String,
    pub csrf: String,
    pub decision: String,
}

/// The consent page's content.
#[derive(askama::Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub action: String,
    pub request: String,
    pub csrf: String,
    pub client: String,
    pub redirect_host: String,
    pub email: String,
    pub scopes: Vec<String>,
}

pub enum Next {
    /// Back to the client (with a code or an error).
    Redirect(String),
    Consent(Box<ConsentPage>),
}

/// Who sent the request, for the audit log.
pub struct Origin {
    pub ip: Option<String>,
    pub browser_secret: Option<String>,
}

/// A successful upstream login: what comes next, and the broker session
/// the browser now holds.
pub struct SignedIn {
    pub next: Next,
    pub session_secret: String,
}

pub async fn callback(
    app: &AppState,
    q: CallbackQuery,
    origin: &Origin,
) -> Result<SignedIn, ErrorPage> {
    let request = pending(app, q.state.as_deref(), origin).await?;
    let store = app.store();
    let upstream = app.upstreams().get(&request.upstream_id).ok_or_else(|| {
        ErrorPage::bad_request("The identity provider of this sign-in is no longer configured.")
    })?;
    if let Some(error) = q.error {
        audit(
            store,
            "login_failed",
            None,
            &request,
            json!({ "upstream": upstream.settings.id, "error": error }),
            origin,
        )
        .await;
        let detail = q.error_description.unwrap_or(error);
        return Err(ErrorPage::new(
            StatusCode::BAD_REQUEST,
            "Sign-in was not completed",
            format!("{} said: {detail}", upstream.settings.label()),
        )
        .with_retry(restart_url(app, &request)));
    }
    let code = q
        .code
        .ok_or_else(|| ErrorPage::bad_request("The identity provider sent no code."))?;
    let identity = match upstream
        .finish(
            &app.callback_url(),
            &code,
            &request.upstream_nonce,
            &request.upstream_verifier,
        )
        .await
    {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(upstream = %upstream.settings.id, error = %e, "upstream login failed");
            audit(
                store,
                "login_failed",
                None,
                &request,
                json!({ "upstream": upstream.settings.id, "reason": e.to_string() }),
                origin,
            )
            .await;
            return Err(match e {
                UpstreamError::Refused(reason) => ErrorPage::new(
                    StatusCode::FORBIDDEN,
                    "Access denied",
                    format!(
                        "Sign-in with {} is not accepted here: {reason}.",
                        upstream.settings.label()
                    ),
                ),
                _ => ErrorPage::new(
                    StatusCode::BAD_GATEWAY,
                    "Sign-in could not be verified",
                    format!(
                        "{} did not answer properly, so the sign-in could not be verified.",
                        upstream.settings.label()
                    ),
                )
                .with_retry(restart_url(app, &request)),
            });
        }
    };
    let linking = app.settings().allowlist.link_providers;
    match admit(store, &identity, &upstream.settings.id, linking).await? {
        Ok(user) => {
            audit(
                store,
                "login_ok",
                Some(user.email.as_str()),
                &request,
                json!({ "upstream": upstream.settings.id }),
                origin,
            )
            .await;
            let session_secret = secrets::generate();
            let at = now();
            store
                .start_session(
                    &secrets::hash(&session_secret),
                    &BrowserSession {
                        user_id: user.user_id.clone(),
                        upstream_id: upstream.settings.id.clone(),
                    },
                    at,
                    at + app.settings().session.lifetime.0.as_secs() as i64,
                )
                .await?;
            Ok(SignedIn {
                next: after_login(app, &request, &user).await?,
                session_secret,
            })
        }
        Err(denial) => {
            audit(
                store,
                "login_denied",
                identity.email.as_deref(),
                &request,
                json!({ "upstream": upstream.settings.id, "reason": denial.reason }),
                origin,
            )
            .await;
            let csrf = secrets::generate();
            store
                .bind_auth_request(&request.id, None, &secrets::hash(&csrf))
                .await?;
            let client = store.client(&request.client_id).await?;
            let mut page = ErrorPage::new(StatusCode::FORBIDDEN, "Access denied", denial.message);
            page.back = Some(Box::new(Back {
                action: format!("{}/consent", app.settings().issuer()),
                request: request.id.clone(),
                csrf,
                client: client
                    .and_then(|c| c.client_name)
                    .unwrap_or_else(|| "the application".into()),
            }));
            Err(page)
        }
    }
}

/// A person known to be signed in (just now upstream, or by the broker
/// session) and allowed: the code at once if they approved this client
/// before, else the consent page.
pub async fn after_login(
    app: &AppState,
    request: &AuthRequest,
    user: &AllowedUser,
) -> Result<Next, ErrorPage> {
    let store = app.store();
    let scopes: Vec<&str> = request.scope.split_whitespace().collect();
    if store
        .has_consent(&user.user_id, &request.client_id, &scopes)
        .await?
    {
        return issue_code(app, request, &user.user_id)
            .await
            .map(Next::Redirect);
    }
    let csrf = secrets::generate();
    store
        .bind_auth_request(&request.id, Some(&user.user_id), &secrets::hash(&csrf))
        .await?;
    let client = store.client(&request.client_id).await?;
    let name = client
        .and_then(|c| c.client_name)
        .unwrap_or_else(|| request.client_id.clone());
    Ok(Next::Consent(Box::new(ConsentPage {
        action: format!("{}/consent", app.settings().issuer()),
        request: request.id.clone(),
        csrf,
        client: name,
        redirect_host: url::Url::parse(&request.redirect_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default(),
        email: user.email.to_string(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    })))
}

/// /authorize again with the client's original parameters (its PKCE
/// challenge too, so the client's verifier still fits).
pub fn restart_url(app: &AppState, request: &AuthRequest) -> String {
    let mut url = format!("{}/authorize?", app.settings().issuer());
    url.push_str(
        &url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &request.client_id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("code_challenge", &request.code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("scope", &request.scope)
            .append_pair("resource", &request.resource)
            .extend_pairs(request.state.as_deref().map(|s| ("state", s)))
            .finish(),
    );
    url
}

pub async fn decide(app: &AppState, form: ConsentForm, origin: &Origin) -> Result<Next, ErrorPage> {
    let request = pending(app, Some(&form.request), origin).await?;
    let csrf_ok = request
        .csrf_hash
        .as_deref()
        .is_some_and(|h| secrets::matches(&form.csrf, h));
    if !csrf_ok {
        return Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Start again from your application.",
        ));
    }
    let store = app.store();
    match (form.decision.as_str(), request.user_id.as_deref()) {
        ("allow", Some(user_id)) => {
            store
                .save_consent(user_id, &request.client_id, &request.scope, now())
                .await?;
            issue_code(app, &request, user_id).await.map(Next::Redirect)
        }
        ("deny", _) => {
            store.finish_auth_request(&request.id).await?;
            audit(store, "consent_denied", None, &request, json!({}), origin).await;
            Ok(Next::Redirect(error_redirect(
                app,
                &request.redirect_uri,
                request.state.as_deref(),
                "access_denied",
                "the person did not allow access",
            )))
        }
        _ => Err(ErrorPage::bad_request("Choose Allow or Deny.")),
    }
}

/// The request named by `id`, if it is still pending and this browser began it.
async fn pending(
    app: &AppState,
    id: Option<&str>,
    origin: &Origin,
) -> Result<AuthRequest, ErrorPage> {
    let gone = || {
        ErrorPage::bad_request(
            "This sign-in has expired or was already used. Start again from your application.",
        )
    };
    let id = id.filter(|s| !s.is_empty()).ok_or_else(gone)?;
    let request = app.store().auth_request(id).await?.ok_or_else(gone)?;
    let same_browser = origin
        .browser_secret
        .as_deref()
        .is_some_and(|s| secrets::matches(s, &request.browser_hash));
    if !same_browser {
        return Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "Sign-in started elsewhere",
            "This sign-in was started in another browser (or your cookies were cleared). Start again from your application.",
        ));
    }
    if request.expires_at <= now() {
        let minutes = app.settings().oauth.login_ttl.0.as_secs().div_ceil(60);
        return Err(ErrorPage::bad_request(format!(
            "This sign-in took longer than the {minutes} minutes it may take, so it was stopped to keep your account safe. You can start it again."
        ))
        .with_retry(restart_url(app, &request)));
    }
    Ok(request)
}

/// Why a verified login is refused, for the person and the audit log.
struct Denial {
    reason: &'static str,
    message: String,
}

/// The allowlist gate: a verified email on the allowlist and active, or of
/// an allowed domain (which adds the person).
async fn admit(
    store: &Store,
    identity: &UpstreamIdentity,
    upstream: &str,
    link_providers: bool,
) -> Result<Result<AllowedUser, Denial>, ErrorPage> {
    let Some(raw) = identity.email.as_deref() else {
        return Ok(Err(Denial {
            reason: "no_email",
            message: "The identity provider did not share an email address.".into(),
        }));
    };
    let Ok(email) = Email::parse(raw) else {
        return Ok(Err(Denial {
            reason: "bad_email",
            message: format!("{raw} is not an email address this server can use."),
        }));
    };
    if !identity.email_verified {
        return Ok(Err(Denial {
            reason: "unverified_email",
            message: format!(
                "The identity provider has not verified {email}, so it cannot be used to sign in."
            ),
        }));
    }
    let not_listed = || Denial {
        reason: "not_allowlisted",
        message: format!("{email} is not on this server's allowlist — ask an administrator."),
    };
    let user = match store.user(&email).await? {
        Some(user) => user,
        None if store.domain_allowed(email.domain()).await? => {
            store
                .upsert_user(
                    &email,
                    &UserChange {
                        name: identity.name.clone(),
                        ..UserChange::default()
                    },
                )
                .await?;
            store
                .user(&email)
                .await?
                .ok_or_else(ErrorPage::unavailable)?
        }
        None => return Ok(Err(not_listed())),
    };
    if user.status != Status::Active {
        return Ok(Err(Denial {
            reason: "suspended",
            message: format!("{email} is suspended on this server — ask an administrator."),
        }));
    }
    let same_identity = match (&user.provider, &user.provider_subject) {
        (Some(provider), Some(subject)) => provider == upstream && *subject == identity.subject,
        _ => true,
    };
    if !same_identity && !link_providers {
        return Ok(Err(Denial {
            reason: "other_identity",
            message: format!(
                "{email} signs in here with another account or identity provider than this one. Use that one, or ask an administrator."
            ),
        }));
    }
    store
        .record_login(&user.user_id, upstream, &identity.subject, now())
        .await?;
    Ok(Ok(user))
}

async fn issue_code(
    app: &AppState,
    request: &AuthRequest,
    user_id: &str,
) -> Result<String, ErrorPage> {
    let store = app.store();
    // Only one of two racing submissions may turn the request into a code.
    if !store.finish_auth_request(&request.id).await? {
        return Err(ErrorPage::bad_request(
            "This sign-in was already completed.",
        ));
    }
    let code = secrets::generate();
    let created_at = now();
    store
        .insert_auth_code(
            &AuthCode {
                code_hash: secrets::hash(&code),
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                scope: request.scope.clone(),
                resource: request.resource.clone(),
                user_id: user_id.to_owned(),
                expires_at: created_at + app.settings().oauth.code_ttl.0.as_secs() as i64,
                used_at: None,
                refresh_family_id: None,
                access_jti: None,
                access_expires_at: None,
            },
            created_at,
        )
        .await?;
    Ok(redirect_with(
        &request.redirect_uri,
        &[
            ("code", Some(&code)),
            ("state", request.state.as_deref()),
            ("iss", Some(app.settings().issuer())),
        ],
    ))
}

async fn audit(
    store: &Store,
    event: &str,
    email: Option<&str>,
    request: &AuthRequest,
    detail: serde_json::Value,
    origin: &Origin,
) {
    let entry = AuditEvent {
        event,
        email,
        client_id: Some(&request.client_id),
        detail,
        ip: origin.ip.clone(),
    };
    store.audit(entry).await;
}
