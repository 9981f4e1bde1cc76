//! `serve`: the listener, the middleware every route shares, and graceful
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;

use axum::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::IntoResponse;
use axum::{middleware, Router};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::store::{Store, StoreError};
use crate::{app, error_shape, metrics, web, AppState, StartError};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every route shares, outermost first: request ids, tracing,
/// branding, metrics (timeouts and oversized bodies included), the shaping
/// of the next two layers' answers, timeouts and the body limit. One `Router::layer` for
/// all of them, not one each: a layer boundary is a boxed route that axum
/// clones, with all it wraps, on every request, so stacked boundaries cost
/// each request a clone per pair of them (BENCHMARKS.md).
pub fn with_middleware(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let settings = state.settings();
    // Only the path is logged: query strings carry codes and tokens.
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
    });
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                web::with_branding,
            ))
            .layer(middleware::from_fn(metrics::track))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                error_shape::layer,
            ))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                settings.server.request_timeout.0,
            ))
            // The timeout's own answer needs a body type with a default.
            .map_response(IntoResponse::into_response)
            .layer(RequestBodyLimitLayer::new(settings.server.max_body_bytes)),
    )
}

/// CORS for endpoints browser-based clients call (the MCP Inspector): no
/// credentials, and the headers MCP clients must read.
pub fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

/// Connects the store, migrates if configured, and serves until `shutdown`
/// resolves; in-flight requests then get `server.shutdown_grace` to finish.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let store = Store::connect(&settings.database).await?;
    if settings.database.auto_migrate {
        store.migrate().await?;
    }
    let grace = settings.server.shutdown_grace.0;
    let state = AppState::build(settings, store.clone()).await?;
    // Loaded before serving, so a healthy start never answers 503; if this
    // fails the broker serves anyway and bearer requests get 503 until the
    // watcher's next refresh succeeds.
    let failing = match refresh_revocations(&state).await {
        Ok(()) => false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot load the revocation view; bearer requests get 503 until it loads");
            true
        }
    };
    let metrics_server = match &state.settings().server.metrics_bind {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.map_err(StartError::Metrics)?;
            let metrics = crate::metrics_app(state.clone());
            Some(tokio::spawn(
                async move { axum::serve(listener, metrics).await },
            ))
        }
        None => None,
    };
    let router = app(state.clone());
    let tool_audit = state.tool_audit().clone();
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stopping_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    let housekeeper = tokio::spawn(housekeeping(state.clone()));
    let watcher = tokio::spawn(watch_revocations(state, failing));
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => log_exit(result),
        _ = stopping_rx => {
            match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => log_exit(result),
                Err(_) => tracing::warn!(?grace, "shutdown grace elapsed; dropping remaining requests"),
            }
        }
    }
    housekeeper.abort();
    watcher.abort();
    if let Some(metrics) = metrics_server {
        metrics.abort();
    }
    tool_audit.flush().await;
    store.close().await;
    Ok(())
}

/// Every `server.housekeeping_interval` (a minute), on every replica: sweep
/// expired rows, pick up (or rotate, or retire) signing keys so all replicas
/// agree within that time, and renew upstream metadata before a login has
/// to wait for it.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(state.settings().server.housekeeping_interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start-up just did this
    loop {
        tick.tick().await;
        let idle = state.settings().registration.client_idle_expiry.0.as_secs() as i64;
        let ttl = state.settings().tokens.access_token_ttl.0.as_secs() as i64;
        if let Err(e) = state
            .store()
            .purge_expired(crate::store::now(), idle, ttl)
            .await
        {
            tracing::warn!(error = %e, "cannot purge expired rows");
        }
        if let Err(e) = state.maintain_keys().await {
            tracing::warn!(error = %e, "cannot maintain signing keys");
        }
        state.upstreams().refresh_stale().await;
    }
}

/// Every `revocation.poll_interval`, on every replica: read what changed
/// in the revocation view's sources. Failures are logged when they start and
/// when they end, not at every poll; `failing` is how start-up went.
async fn watch_revocations(state: AppState, mut failing: bool) {
    let mut tick = tokio::time::interval(state.settings().revocation.poll_interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start-up just did this
    loop {
        tick.tick().await;
        match refresh_revocations(&state).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("the revocation view is up to date again");
            }
            Err(e) if !failing => {
                failing = true;
                let staleness = state.settings().revocation.max_staleness.0;
                tracing::warn!(error = %e, ?staleness, "cannot refresh the revocation view; bearer tokens are refused with 503 once it is older than max_staleness");
            }
            _ => {}
        }
    }
}

/// One refresh, bounded by `max_staleness`: a hung database must not stall
/// the watcher (the view fails closed on its own meanwhile).
async fn refresh_revocations(state: &AppState) -> Result<(), StoreError> {
    let limit = state.settings().revocation.max_staleness.0;
    match tokio::time::timeout(limit, state.revocation().refresh(state.store())).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
    }
}

fn log_exit(result: Result<std::io::Result<()>, tokio::task::JoinError>) {
    match result {
        Ok(Ok(())) => tracing::info!("stopped"),
        Ok(Err(e)) => tracing::error!(error = %e, "server error"),
        Err(e) => tracing::error!(error = %e, "server task failed"),
    }
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
