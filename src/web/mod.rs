//! Pages for people: errors, consent, the dev provider's sign-in. Every page
//! refuses to be framed (clickjacking on the consent button).

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

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
}

impl ErrorPage {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        ErrorPage {
            status,
            title,
            message: message.into(),
            back: None,
        }
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
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
