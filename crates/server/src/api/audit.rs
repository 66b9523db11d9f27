//! `GET /api/v1/audit_log`: administrative changes in commit order, by cursor.

use axum::Json;
use axum::extract::State;
use roster_store::{AuditQuery, AuditRecord, audit_id, parse_audit_id};
use serde_json::{Value, json};

use super::{AdminAuth, AppError, params};
use crate::request::QueryParams;
use crate::state::AppState;

fn filter(q: &QueryParams, name: &str) -> Option<String> {
    q.get(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Records after `after` (a record id), oldest first, at most `limit`,
/// optionally only those with one `target_id` or by one `actor`. Reading
/// spans every directory, so it needs an unlimited key (read-only will do).
#[utoipa::path(
    get,
    path = "/api/v1/audit_log",
    tag = "admin",
    params(
        ("after" = Option<String>, Query, description = "An audit record id (aud_…): the records after it"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Records a page, 1 to 1000 (default 100)"),
        ("target_id" = Option<String>, Query, description = "Only changes to this object"),
        ("actor" = Option<String>, Query, description = "Only changes by this actor (admin_key:<id>, cli, …)"),
    ),
    responses(
        (status = 200, description = "A page of records, oldest first", body = crate::openapi::objects::AuditList),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    a: AdminAuth,
    q: QueryParams,
) -> Result<Json<Value>, AppError> {
    a.require_unlimited()?;
    let after = match q.get("after").map(str::trim).filter(|a| !a.is_empty()) {
        None => 0,
        Some(id) => parse_audit_id(id).ok_or_else(|| {
            AppError::bad_request(format!(
                "after must be an audit record id such as aud_0000000000000001, not {id:?}"
            ))
        })?,
    };
    let query = AuditQuery {
        after,
        limit: params::limit_within(&q, params::DEFAULT_LIMIT, params::MAX_LIMIT)?,
        newest: false,
        target_id: filter(&q, "target_id"),
        actor: filter(&q, "actor"),
    };
    let records = s.store.audit_log(query).await?;
    // Where to go on from: the last record, or where the reader was, so a
    // follower polls with the same cursor until something new commits.
    let next = records
        .last()
        .map(AuditRecord::id)
        .or_else(|| (after > 0).then(|| audit_id(after)));
    Ok(Json(json!({
        "object": "list",
        "data": records.iter().map(AuditRecord::to_json).collect::<Vec<_>>(),
        "list_metadata": {"after": next},
    })))
}
