//! The Roster HTTP service: SCIM endpoints per directory, on any [`Store`].

pub mod api;
pub mod auth;
pub mod bulk;
pub mod config;
pub mod connection;
pub mod error;
pub mod fallback;
pub mod google;
pub mod health;
pub mod idempotency;
pub mod limits;
pub mod linger;
pub mod listener;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod password;
pub mod provider;
pub mod rate_limit;
pub mod render;
pub mod request;
pub mod request_log;
mod retention;
mod scim;
pub mod service;
pub mod setup_steps;
pub mod state;
pub mod token_cache;
pub mod token_ops;
pub mod web;
pub mod webhooks;
pub mod workos;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{Request, StatusCode};
use axum::middleware;
use axum::response::Response;
use rate_limit::Concurrency;
use roster_scim::schema::{Schema, SchemaRegistry};
use roster_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use config::{ExtensionConfig, ServerConfig};
pub use state::AppState;

/// Installs the process-wide TLS crypto provider (ring) for outbound HTTPS
/// (webhooks). Idempotent; call it before building any HTTP client.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why a custom extension schema named in the configuration cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionSchemaError {
    #[error("cannot read extension schema {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("extension schema {} is not JSON", file.display())]
    NotJson {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Not a schema Roster can take, or one that clashes with the registry.
    #[error("extension schema {}: {detail}", file.display())]
    Invalid { file: PathBuf, detail: String },
}

/// The core schemas plus the custom extensions named in the configuration.
pub fn build_registry(config: &ServerConfig) -> Result<SchemaRegistry, ExtensionSchemaError> {
    let mut reg = SchemaRegistry::core();
    for ext in &config.extensions {
        let file = || ext.file.clone();
        let text =
            std::fs::read_to_string(&ext.file).map_err(|source| ExtensionSchemaError::Read {
                file: file(),
                source,
            })?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ExtensionSchemaError::NotJson {
                file: file(),
                source,
            })?;
        let schema = Schema::from_json(&json).map_err(|e| ExtensionSchemaError::Invalid {
            file: file(),
            detail: e.detail,
        })?;
        reg.add_extension(schema, &ext.resource_type, ext.required)
            .map_err(|detail| ExtensionSchemaError::Invalid {
                file: file(),
                detail,
            })?;
    }
    Ok(reg)
}

pub fn router(state: AppState) -> Router {
    let cfg = state.config.clone();
    let log_state = state.clone();
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    let concurrency = Concurrency(Arc::new(Semaphore::new(cfg.max_concurrent_requests.max(1))));
    // Layers run outside-in from the last one added: request id, trace,
    // stack errors to SCIM, panics to 500, load shedding, frame limits,
    // request timeout, then the routes.
    scim::routes()
        .merge(openapi::routes().into_router())
        .merge(health::routes())
        .merge(web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(cfg.request_timeout_secs.max(1)),
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::frame_limits,
        ))
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            concurrency,
            rate_limit::shed_load,
        ))
        .layer(CatchPanicLayer::custom(fallback::panic_response))
        .layer(middleware::from_fn(fallback::stack_errors))
        .layer(middleware::from_fn_with_state(
            log_state,
            request_log::capture::capture,
        ))
        .layer(middleware::from_fn_with_state(cfg.clone(), observe::track))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                // The directory is recorded once a token proves it (`auth`),
                // a SCIM filter once a list request is parsed (`service::list`).
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %loggable_path(req.uri().path()),
                    route,
                    request_id = %id,
                    directory_id = tracing::field::Empty,
                    filter = tracing::field::Empty,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// A request path as logs may show it: a portal link's secret is left out
/// (links open once, but a log is no place for a credential, spent or not).
fn loggable_path(path: &str) -> &str {
    if path.starts_with("/portal/open/") {
        "/portal/open/[secret]"
    } else {
        path
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let face = error::Face::of(uri.path());
    let detail = match face {
        error::Face::Scim => "no such endpoint; SCIM lives under /scim/v2/{directory_id}/",
        error::Face::App | error::Face::Workos => {
            "no such endpoint; GET /api/v1/openapi.json lists them"
        }
    };
    face.error(404, detail)
}

async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    error::Face::of(uri.path()).error(405, "this endpoint does not take that method")
}

/// Serves until `shutdown` resolves, then stops accepting, gives requests in
/// flight `shutdown_grace_secs` to finish, and stops the webhook dispatcher
/// (which saves its progress and releases its leases first). Serves
/// `/metrics` on `metrics_listen` when it is set.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    reg: Arc<SchemaRegistry>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = match config.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    serve_with_metrics(listener, metrics, store, reg, config, shutdown).await
}

/// [`serve`], with `/metrics` on a listener already bound (or none).
pub async fn serve_with_metrics(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    store: Arc<dyn Store>,
    reg: Arc<SchemaRegistry>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let metrics_server = match metrics_listener {
        Some(l) => {
            let handle = metrics::recorder().map_err(std::io::Error::other)?;
            Some(tokio::spawn(metrics::serve(
                l,
                store.clone(),
                handle,
                stopped.clone(),
            )))
        }
        None => None,
    };
    let liveness = Arc::new(health::Liveness::default());
    let dispatcher = config.webhooks_enabled.then(|| {
        webhooks::spawn(
            store.clone(),
            config.clone(),
            stopped.clone(),
            liveness.clone(),
        )
    });
    let pruner = retention::spawn(store.clone(), config.event_retention_days, stopped);
    let state = AppState::new(store, reg, config.clone(), liveness);
    let poller = google::spawn(state.clone(), stop.subscribe());
    let served = listener::run(listener, router(state), &config, shutdown).await;
    let _ = stop.send(true);
    if let Some(d) = dispatcher {
        let _ = d.await;
    }
    let _ = pruner.await;
    let _ = poller.await;
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    tracing::info!("webhook dispatcher and event pruner stopped");
    served
}

#[cfg(test)]
mod tests {
    #[test]
    fn portal_link_secrets_stay_out_of_logged_paths() {
        assert_eq!(
            super::loggable_path("/portal/open/rpl_abc"),
            "/portal/open/[secret]"
        );
        assert_eq!(super::loggable_path("/scim/v2/d/Users"), "/scim/v2/d/Users");
    }
}
