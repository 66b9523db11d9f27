//! Reading `/api/v1` requests: JSON bodies, limits, cursors and timestamps,
//! with `AppError`s that say what to send instead.

use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::AppError;
use crate::request::QueryParams;

pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

/// A JSON body; an empty body reads as `{}` so that all-optional bodies may be left out.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, AppError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|e| {
        AppError::bad_request(format!("the body is not what this endpoint takes: {e}"))
    })
}

/// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(q: &QueryParams) -> Result<u64, AppError> {
    match q.get("limit").map(str::trim).filter(|l| !l.is_empty()) {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => l
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                AppError::bad_request(format!("limit must be 1 to {MAX_LIMIT}, not {l:?}"))
            }),
    }
}

/// `after`: the id of the last object of the previous page. Ids are UUIDs, so
/// anything else is a client mistake worth reporting rather than an empty page.
pub fn after(q: &QueryParams) -> Result<Option<String>, AppError> {
    match q.get("after").map(str::trim).filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(a) => uuid::Uuid::parse_str(a)
            .map(|_| Some(a.to_owned()))
            .map_err(|_| {
                AppError::bad_request(format!(
                    "after must be the list_metadata.after of the previous page, not {a:?}"
                ))
            }),
    }
}

/// An RFC 3339 timestamp as Unix milliseconds.
pub fn timestamp(q: &QueryParams, name: &str) -> Result<Option<i64>, AppError> {
    match q.get(name).map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .ok()
            .and_then(|d| i64::try_from(d.unix_timestamp_nanos() / 1_000_000).ok())
            .map(Some)
            .ok_or_else(|| {
                AppError::bad_request(format!(
                    "{name} must be an RFC 3339 timestamp such as 2026-01-31T09:00:00Z, not {t:?}"
                ))
            }),
    }
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds.
pub fn ts(ms: i64) -> String {
    roster_scim::values::format_unix_millis(ms)
}

pub fn ts_opt(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| Value::String(ts(m)))
}

/// The list envelope every `/api/v1` list answers with.
pub fn list(data: Vec<Value>, after: Option<String>) -> Value {
    json!({"object": "list", "data": data, "list_metadata": {"after": after}})
}
