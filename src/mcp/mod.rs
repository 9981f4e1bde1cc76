//! `/mcp`: rmcp's Streamable HTTP service, stateless (any replica answers),
//! behind our bearer layer. rmcp stays inside this module.

mod guard;
mod tools;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::Request;
use axum::{middleware, Router};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::AppState;

pub fn routes(app: &AppState) -> Router<AppState> {
    let settings = app.settings();
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = url::Url::parse(settings.issuer())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        hosts.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        );
    }
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(hosts);
    let service: StreamableHttpService<tools::BrokerTools, NeverSessionManager> =
        StreamableHttpService::new(
            tools::BrokerTools::factory(app.clone()),
            Arc::new(NeverSessionManager::default()),
            config,
        );
    // axum clones a route's service for every request; rmcp's clone copies
    // its configuration, an Arc's does not.
    let service = Arc::new(service);
    let service = tower::service_fn(move |request: Request| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(service.handle(request).await) }
    });
    Router::new()
        .nest_service("/mcp", service)
        .route_layer(middleware::from_fn_with_state(app.clone(), guard::layer))
}
