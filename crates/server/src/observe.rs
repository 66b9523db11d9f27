//! What every request leaves behind, once its answer is known whichever
//! layer gave it: its metrics (route template, status, latency, the SCIM
//! operation it was) and one access-log line (request id, directory, route,
//! status, latency). Neither ever holds a header, a query or a body, so no
//! credential, secret or password can reach them.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::config::ServerConfig;

/// The directory a request's token proved, once the authentication of the
/// SCIM API has run; empty for requests that proved none.
#[derive(Clone, Default)]
pub struct ProvenDirectory(Arc<OnceLock<String>>);

impl ProvenDirectory {
    /// Records on the request that its token proved `directory`.
    pub fn record(parts: &Parts, directory: &str) {
        if let Some(p) = parts.extensions.get::<ProvenDirectory>() {
            let _ = p.0.set(directory.to_owned());
        }
    }

    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// Middleware: counts the request with its route template and status.
pub async fn track(State(cfg): State<Arc<ServerConfig>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let proven = ProvenDirectory::default();
    req.extensions_mut().insert(proven.clone());
    let resp = next.run(req).await;
    let took = started.elapsed();
    let route = route.as_deref().unwrap_or("unmatched");
    let status = resp.status().as_u16();
    let labelled = proven.get().filter(|_| cfg.metrics_directory_labels);
    crate::metrics::http_request(method.as_str(), route, status, took, labelled);
    tracing::info!(
        request_id = %request_id,
        directory_id = proven.get().unwrap_or("-"),
        method = %method,
        route,
        status,
        latency_ms = took.as_secs_f64() * 1000.0,
        "request",
    );
    resp
}
