//! The middleware that records SCIM requests. It keeps at most
//! [`CAPTURE_BYTES`] of a request body as it streams to the handler (no
//! copy of the whole body, no change to body limits) and reads a response
//! body only when the status is an error, whose bodies are small.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use roster_store::portal::RequestRecord;

use crate::observe::ProvenDirectory;
use crate::state::AppState;
use crate::token_cache::token_digest;

/// Bytes of a request body captured for the log.
const CAPTURE_BYTES: usize = 16 * 1024;
/// Bytes of a body the log keeps, after secrets are removed.
const KEEP_BYTES: usize = 4 * 1024;

const PREFIX: &str = "/scim/v2/";

/// The directory id a SCIM path names (`/scim/v2/{dir}/...`).
fn path_directory(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(PREFIX)?;
    let dir = rest.split('/').next()?;
    (!dir.is_empty()).then_some(dir)
}

pub async fn capture(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(named) = path_directory(req.uri().path()).map(str::to_owned) else {
        return next.run(req).await;
    };
    let started = Instant::now();
    let at = roster_store::now_ms();
    let method = req.method().to_string();
    let path = super::redact::path(req.uri().path(), req.uri().query());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect::<String>());
    let bearer = bearer_of(&req);
    let proven = req.extensions().get::<ProvenDirectory>().cloned();

    let seen: Arc<Mutex<Vec<u8>>> = Arc::default();
    let (parts, body) = req.into_parts();
    let sink = seen.clone();
    let body = body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref()
            && let Ok(mut buf) = sink.lock()
        {
            let room = CAPTURE_BYTES.saturating_sub(buf.len());
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
        frame
    });
    let resp = next.run(Request::from_parts(parts, Body::new(body))).await;
    let status = resp.status().as_u16();
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);

    let proven_dir = proven.as_ref().and_then(|p| p.get()).map(str::to_owned);
    let authenticated = proven_dir.is_some();
    let directory_id = match proven_dir {
        Some(d) => d,
        // A live token on a path cut or changed: the token says whose it is.
        None if status == 404 => match &bearer {
            Some(token) => owner(&state, token).await.unwrap_or(named),
            None => named,
        },
        None => named,
    };
    let provider = user_agent
        .as_deref()
        .and_then(crate::provider::from_user_agent)
        .map(str::to_owned);
    let mut record = RequestRecord {
        directory_id,
        at,
        method,
        path,
        status,
        latency_ms,
        authenticated,
        error: None,
        user_agent,
        provider,
        request_body: None,
        response_body: None,
    };
    if status < 400 {
        state.request_log.push(record);
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // Roster's own error bodies are small and whole; read without a limit,
    // so the client always gets the body the handler made.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => axum::body::Bytes::new(),
    };
    record.error = error_detail(&bytes);
    record.response_body = super::redact::body(&bytes, KEEP_BYTES);
    if let Ok(seen) = seen.lock() {
        record.request_body = super::redact::body(&seen, KEEP_BYTES);
    }
    state.request_log.push(record);
    Response::from_parts(parts, Body::from(bytes))
}

/// The bearer token of a request, owned (the request moves on).
fn bearer_of(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The directory a live token belongs to (the token cache first).
async fn owner(state: &AppState, token: &str) -> Option<String> {
    if let Some(dir) = state.tokens.get(&token_digest(token)) {
        return Some(dir);
    }
    state.store.authenticate(token).await.ok().flatten()
}

/// The `detail` of a SCIM error body (or the `message` of another JSON error).
fn error_detail(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("detail")
        .or_else(|| v.get("message"))
        .and_then(serde_json::Value::as_str)
        .map(|s| s.chars().take(1024).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_comes_from_scim_paths_only() {
        assert_eq!(path_directory("/scim/v2/abc/Users"), Some("abc"));
        assert_eq!(path_directory("/scim/v2/abc"), Some("abc"));
        assert_eq!(path_directory("/scim/v2/"), None);
        assert_eq!(path_directory("/api/v1/directories"), None);
    }

    #[test]
    fn error_details_are_read_from_scim_bodies() {
        assert_eq!(
            error_detail(br#"{"detail":"bad","status":"400"}"#).as_deref(),
            Some("bad")
        );
        assert_eq!(error_detail(b"not json"), None);
    }
}
