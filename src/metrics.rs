//! Prometheus metrics: one process-wide recorder behind the `metrics`
//! facade, the middleware that times every request by route and status,
//! and the `/metrics` page. Domain code records its own counters with the
//! `metrics` macros (logins, tokens, revocations, tool calls, upstreams).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Latency buckets, in seconds: a token grant takes milliseconds, an
/// upstream login up to the 10 s timeout.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The recorder, installed on first use (once per process: tests start many
/// servers in one process, and they share it).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            if let Err(e) = &installed {
                tracing::warn!(error = %e, "metrics are off: cannot install the recorder");
            }
            installed.ok()
        })
        .as_ref()
}

/// Middleware: counts and times each request under its route pattern (not
/// its path, so ids in paths do not explode the series).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("broker_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("broker_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text format.
pub async fn page(State(app): State<AppState>) -> Response {
    let Some(recorder) = recorder() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not available\n",
        )
            .into_response();
    };
    let (open, idle) = app.store().pool_usage();
    metrics::gauge!("broker_db_pool_connections", "state" => "open").set(open as f64);
    metrics::gauge!("broker_db_pool_connections", "state" => "idle").set(idle as f64);
    recorder.run_upkeep();
    let mut response = recorder.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Every audited event is counted too, under the series operators alert on.
pub fn audited(event: &str, detail: &serde_json::Value) {
    let text = |key: &str| {
        detail
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown")
            .to_owned()
    };
    metrics::counter!("broker_audit_events_total", "event" => event.to_owned()).increment(1);
    match event {
        "login_ok" | "login_failed" | "login_denied" => {
            let outcome = event.trim_start_matches("login_").to_owned();
            metrics::counter!("broker_logins_total", "provider" => text("upstream"), "outcome" => outcome)
                .increment(1);
            if event == "login_denied" {
                metrics::counter!("broker_allowlist_denials_total", "reason" => text("reason"))
                    .increment(1);
            }
        }
        "token_issued" | "token_refreshed" => {
            metrics::counter!("broker_tokens_issued_total", "grant_type" => text("grant_type"))
                .increment(1);
        }
        "revoked" => {
            metrics::counter!("broker_tokens_revoked_total", "kind" => text("kind")).increment(1);
        }
        "refresh_reuse" => metrics::counter!("broker_refresh_reuse_total").increment(1),
        "tool_called" => {
            metrics::counter!("broker_tool_calls_total", "tool" => tool_label(&text("tool")), "outcome" => text("outcome"))
                .increment(1);
        }
        _ => {}
    }
}

/// Tool names come from clients and backends: a name that does not look
/// like a tool's is counted as `other`, so odd requests cannot create
/// unbounded series.
fn tool_label(name: &str) -> String {
    let plausible = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plausible {
        name.to_owned()
    } else {
        "other".to_owned()
    }
}
