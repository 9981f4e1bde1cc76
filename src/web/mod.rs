//! Pages for people: errors, consent, the dev provider's sign-in. Every page
//! refuses to be framed (clickjacking on the consent button).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::config::BrandingSettings;
use crate::AppState;

tokio::task_local! {
    /// The branding of the app serving this request: pages are rendered
    /// deep inside handlers (and from errors) that have no state at hand.
    static BRANDING: Arc<BrandingSettings>;
}

/// What pages show as the product: this app's branding, or the defaults.
pub fn branding() -> Arc<BrandingSettings> {
    BRANDING.try_with(Arc::clone).unwrap_or_else(|_| {
        Arc::new(BrandingSettings {
            product_name: "MCP Auth Broker".into(),
            logo_url: None,
            primary_color: "#2456d6".into(),
        })
    })
}

/// Middleware: every page rendered while handling the request is branded.
pub async fn with_branding(State(app): State<AppState>, request: Request, next: Next) -> Response {
    BRANDING.scope(app.branding(), next.run(request)).await
}

/// A form button on an error page that returns the person to the client
/// (which then gets `error=access_denied`).
#[derive(Debug, Clone)]
pub struct Back {
    pub action: String,
    pub request: String,
    pub csrf: String,
    pub client: String,
}

/// The HTML boundary's error: a page on the broker, never a redirect.
#[derive(Debug, Clone, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    #[template(skip)]
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
    pub back: Option<Box<Back>>,
    /// A link that starts the sign-in again ("Try again").
    pub retry: Option<String>,
    /// A link back to the list of providers, when the one chosen failed
    /// and there are others.
    pub choose_again: Option<String>,
}

impl ErrorPage {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        ErrorPage {
            status,
            title,
            message: message.into(),
            back: None,
            retry: None,
            choose_again: None,
        }
    }

    pub fn with_retry(mut self, url: String) -> Self {
        self.retry = Some(url);
        self
    }

    pub fn with_choose_again(mut self, url: String) -> Self {
        self.choose_again = Some(url);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "This sign-in request cannot be completed",
            message,
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The sign-in service cannot reach its database. Please try again in a moment.",
        )
    }
}

impl From<crate::store::StoreError> for ErrorPage {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Rejected(_) => {
                tracing::warn!(error = %e, "the database refused a request's data");
                ErrorPage::bad_request("The request carries data this server cannot use.")
            }
            other => {
                tracing::error!(error = %other, "database error on a page");
                ErrorPage::unavailable()
            }
        }
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = page(&self);
        *response.status_mut() = status;
        response
    }
}

/// Renders a template with the headers every page carries.
pub fn page<T: Template>(template: &T) -> Response {
    let mut response = match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page failed to render").into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src https:; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
