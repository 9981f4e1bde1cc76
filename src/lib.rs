//! mcp-auth-broker: an OAuth 2.1 authorization server for MCP that federates
//! to upstream OpenID Connect providers and admits people by allowlist.

pub mod admin;
pub mod allowlist;
pub mod config;
mod health;
pub mod server;
pub mod store;
pub mod telemetry;

use std::sync::Arc;

use axum::Router;

use crate::config::Settings;
use crate::store::Store;

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    store: Store,
}

impl AppState {
    pub fn new(settings: Settings, store: Store) -> AppState {
        AppState {
            inner: Arc::new(Inner { settings, store }),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// The whole HTTP surface; tests build the same router.
pub fn app(state: AppState) -> Router {
    let settings = state.settings().clone();
    server::with_middleware(health::routes(), &settings).with_state(state)
}
