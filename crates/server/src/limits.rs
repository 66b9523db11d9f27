//! Framing and size limits on what clients send (docs/limits.md).
//!
//! Every limit answers with a SCIM error whose detail names the setting, so a
//! client learns what to change and an operator which knob to turn; none of
//! them turns into a 500, a hang or a dropped connection.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use roster_scim::ScimError;
use roster_scim::json::{JsonLimits, parse_limited};
use roster_scim::patch::PatchRequest;
use serde_json::Value;

use crate::config::ServerConfig;
use crate::error::scim_error_response;
use crate::state::AppState;

/// The JSON limits a request body is read with.
pub fn json_limits(cfg: &ServerConfig) -> JsonLimits {
    JsonLimits {
        max_depth: cfg.max_json_depth,
        max_object_members: cfg.max_json_object_members,
        max_array_len: cfg.max_json_array_len,
        max_string_bytes: cfg.max_string_bytes,
    }
}

/// Reads a whole request body of at most `limit` bytes within the body
/// timeout. A declared `Content-Length` over the limit is refused before a
/// byte is read, and the body is never buffered past the limit.
pub async fn read_body(
    cfg: &ServerConfig,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    setting: &str,
) -> Result<Bytes, ScimError> {
    let too_large = || {
        ScimError::new(
            413,
            None,
            format!("the request body is larger than {setting}: {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let timeout = Duration::from_secs(cfg.body_read_timeout_secs.max(1));
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ScimError::new(
            408,
            None,
            format!(
                "the request body did not arrive within body_read_timeout_secs ({} s)",
                cfg.body_read_timeout_secs
            ),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            // axum reports the limit as a LengthLimitError somewhere in the source chain.
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                if s.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large());
                }
                source = s.source();
            }
            Err(ScimError::invalid_syntax(
                "the request body could not be read completely (the connection broke or the framing was wrong)",
            ))
        }
    }
}

/// Parses a request body as JSON within the configured limits.
pub fn parse_json(cfg: &ServerConfig, bytes: &[u8]) -> Result<Value, ScimError> {
    parse_limited(bytes, &json_limits(cfg))
}

/// The limits a write checks beyond the JSON reader, carried into the
/// update closures that run inside the store's transaction.
#[derive(Debug, Clone, Copy)]
pub struct WriteLimits {
    pub max_identifier_bytes: usize,
    pub max_patch_operations: usize,
}

impl From<&ServerConfig> for WriteLimits {
    fn from(cfg: &ServerConfig) -> Self {
        WriteLimits {
            max_identifier_bytes: cfg.max_identifier_bytes,
            max_patch_operations: cfg.max_patch_operations,
        }
    }
}

/// Reads a PatchOp message, refusing more than `max_patch_operations` first.
pub fn patch_request(body: &Value, limits: WriteLimits) -> Result<PatchRequest, ScimError> {
    check_patch_operations(body, limits.max_patch_operations)?;
    PatchRequest::from_json(body)
}

/// Attributes that identify a resource: compared, indexed and shown in logs
/// and admin tools, so they get a short maximum and no control characters
/// (a newline in a userName forges log lines; NUL cannot be stored at all).
const IDENTIFIERS: [&str; 3] = ["userName", "displayName", "externalId"];

/// Checks the identifiers of a canonical (normalised) document.
pub fn check_identifiers(doc: &Value, max_bytes: usize) -> Result<(), ScimError> {
    for name in IDENTIFIERS {
        if let Some(Value::String(s)) = doc.get(name) {
            check_identifier(name, s, max_bytes)?;
        }
    }
    Ok(())
}

/// Checks one identifier: at most `max_bytes`, no control characters.
pub fn check_identifier(name: &str, value: &str, max_bytes: usize) -> Result<(), ScimError> {
    if value.len() > max_bytes {
        return Err(ScimError::invalid_value(format!(
            "{name} is {} bytes long; max_identifier_bytes is {max_bytes}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ScimError::invalid_value(format!(
            "{name} must not contain control characters (NUL, line breaks, tabs, …)"
        )));
    }
    Ok(())
}

/// A resource id from the URL. Ids this server issues are UUIDs, so a
/// long or control-laden id can only be a probe: answer 404 without asking
/// the store (PostgreSQL refuses NUL in text, which would be a 500).
pub fn check_path_id(id: &str, max_bytes: usize) -> Result<(), ScimError> {
    if id.len() > max_bytes || id.chars().any(char::is_control) {
        return Err(ScimError::not_found("no resource has that id"));
    }
    Ok(())
}

/// Refuses a PATCH with more operations than `max_patch_operations`.
pub fn check_patch_operations(body: &Value, max: usize) -> Result<(), ScimError> {
    let count = body
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
                .map(|(_, v)| v)
        })
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if count > max {
        return Err(ScimError::new(
            413,
            None,
            format!("the PATCH has {count} operations; max_patch_operations is {max}"),
        ));
    }
    Ok(())
}

/// Refuses a filter longer than `max_filter_bytes`.
pub fn check_filter_text(text: &str, max: usize) -> Result<(), ScimError> {
    if text.len() > max {
        return Err(ScimError::invalid_filter(format!(
            "the filter is {} bytes long; max_filter_bytes is {max}",
            text.len()
        )));
    }
    if text.contains('\0') {
        return Err(ScimError::invalid_filter(
            "the filter must not contain NUL characters",
        ));
    }
    Ok(())
}

/// Middleware: request target and header size limits, checked before any
/// handler runs. hyper itself refuses heads past a larger hard cap (its read
/// buffer, see [`crate::listener`]); below that, these answers are SCIM errors.
pub async fn frame_limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let cfg = &state.config;
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > cfg.max_url_bytes {
        return scim_error_response(&ScimError::new(
            414,
            None,
            format!(
                "the request target is {target} bytes long; max_url_bytes is {}",
                cfg.max_url_bytes
            ),
        ));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > cfg.max_header_bytes {
        return scim_error_response(&ScimError::new(
            431,
            None,
            format!(
                "the request headers are {header_bytes} bytes; max_header_bytes is {}",
                cfg.max_header_bytes
            ),
        ));
    }
    next.run(req).await.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_have_a_length_and_no_control_characters() {
        let ok = json!({"userName": "ada@example.com", "externalId": "00u1", "title": "a\nb"});
        check_identifiers(&ok, 64).unwrap();
        let long = json!({"userName": "x".repeat(65)});
        let e = check_identifiers(&long, 64).unwrap_err();
        assert!(e.detail.contains("max_identifier_bytes"), "{}", e.detail);
        for bad in ["a\u{0}b", "a\nb", "a\tb", "a\u{7f}"] {
            let doc = json!({"displayName": bad});
            assert_eq!(check_identifiers(&doc, 64).unwrap_err().status, 400);
        }
    }

    #[test]
    fn path_ids_with_controls_are_not_found() {
        assert!(check_path_id("0197a2b4-0000-7000-8000-000000000000", 1024).is_ok());
        assert_eq!(check_path_id("a\0b", 1024).unwrap_err().status, 404);
        assert_eq!(
            check_path_id(&"x".repeat(2000), 1024).unwrap_err().status,
            404
        );
    }

    #[test]
    fn patch_operation_count_is_limited() {
        let body = json!({"operations": [{"op": "add"}, {"op": "add"}, {"op": "add"}]});
        assert!(check_patch_operations(&body, 3).is_ok());
        let e = check_patch_operations(&body, 2).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(e.detail.contains("max_patch_operations"));
    }

    #[test]
    fn filter_length_and_nul() {
        assert!(check_filter_text("userName eq \"a\"", 100).is_ok());
        assert!(
            check_filter_text("userName eq \"a\"", 5)
                .unwrap_err()
                .detail
                .contains("max_filter_bytes")
        );
        assert!(check_filter_text("userName eq \"\0\"", 100).is_err());
    }
}
