//! Reading `/api/v1` requests: JSON bodies, limits, cursors and timestamps,
//! with `AppError`s that say what to send instead.

use axum::body::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;

use roster_store::directory_api::{Cursor, Order, Paging};

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

/// `limit`: 1 to `max`, `default` when absent.
pub fn limit_within(q: &QueryParams, default: u64, max: u64) -> Result<u64, AppError> {
    match text(q, "limit") {
        None => Ok(default),
        Some(l) => l
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| AppError::bad_request(format!("limit must be 1 to {max}, not {l:?}"))),
    }
}

/// A query parameter, trimmed; absent when empty (Node SDKs drop empty values anyway).
pub fn text<'a>(q: &'a QueryParams, name: &str) -> Option<&'a str> {
    q.get(name).map(str::trim).filter(|v| !v.is_empty())
}

/// A cursor parameter: an object id (a UUID), so anything else is a client
/// mistake worth reporting rather than an empty page.
fn cursor(q: &QueryParams, name: &str) -> Result<Option<String>, AppError> {
    match text(q, name) {
        None => Ok(None),
        Some(a) => uuid::Uuid::parse_str(a)
            .map(|_| Some(a.to_owned()))
            .map_err(|_| {
                AppError::bad_request(format!(
                    "{name} must be the list_metadata.{name} of another page, not {a:?}"
                ))
            }),
    }
}

/// `order`: `asc` or `desc` (`normal` is `desc`), `default` when absent.
pub fn order(q: &QueryParams, default: Order) -> Result<Order, AppError> {
    match text(q, "order") {
        None => Ok(default),
        Some(o) if o.eq_ignore_ascii_case("asc") => Ok(Order::Asc),
        Some(o) if o.eq_ignore_ascii_case("desc") || o.eq_ignore_ascii_case("normal") => {
            Ok(Order::Desc)
        }
        Some(o) => Err(AppError::bad_request(format!(
            "order must be asc or desc, not {o:?}"
        ))),
    }
}

/// `before` or `after` (one of them), `order` and `limit`, for lists of objects.
pub fn paging(
    q: &QueryParams,
    default_limit: u64,
    max_limit: u64,
    default_order: Order,
) -> Result<Paging, AppError> {
    let before = cursor(q, "before")?;
    let after = cursor(q, "after")?;
    let cursor = match (before, after) {
        (Some(_), Some(_)) => {
            return Err(AppError::bad_request(
                "give before or after, not both: each names the page next to one object",
            ));
        }
        (Some(b), None) => Some(Cursor::Before(b)),
        (None, a) => a.map(Cursor::After),
    };
    Ok(Paging {
        cursor,
        order: order(q, default_order)?,
        limit: limit_within(q, default_limit, max_limit)?,
    })
}

/// `/api/v1` paging: ascending unless asked, [`DEFAULT_LIMIT`] a page.
pub fn api_paging(q: &QueryParams) -> Result<Paging, AppError> {
    paging(q, DEFAULT_LIMIT, MAX_LIMIT, Order::Asc)
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

/// An optional time as RFC 3339, or `null`.
pub fn ts_opt(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| Value::String(ts(m)))
}

/// The envelope every list answers with, on `/api/v1` and the WorkOS routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// Always `list`.
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<T>,
    pub list_metadata: ListMetadata,
}

/// The cursors of the pages on either side of this one: pass `before` or
/// `after` back as that parameter; `null` at either end.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListMetadata {
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The list envelope every list answers with.
pub fn list<T>(data: Vec<T>, before: Option<String>, after: Option<String>) -> List<T> {
    List {
        object: "list",
        data,
        list_metadata: ListMetadata { before, after },
    }
}
