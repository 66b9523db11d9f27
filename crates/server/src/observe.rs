//! What every request leaves behind: its metrics (route template, status,
//! latency, and the SCIM operation it was), counted once the answer is known,
//! whichever layer gave it.

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
    resp
}
