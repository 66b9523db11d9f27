//! `GET /api/v1/events`: the event stream in commit order, by cursor.

use axum::Json;
use axum::extract::State;
use roster_store::events::{ALL_TYPES, event_id, parse_event_id};
use serde_json::{Value, json};

use super::{AdminAuth, AppError};
use crate::request::QueryParams;
use crate::state::AppState;

pub const MAX_LIMIT: u64 = 1000;

pub async fn list_events(
    State(s): State<AppState>,
    auth: AdminAuth,
    q: QueryParams,
) -> Result<Json<Value>, AppError> {
    let after = match q.get("after").map(str::trim).filter(|a| !a.is_empty()) {
        None => 0,
        Some(a) => parse_event_id(a).ok_or_else(|| {
            AppError::bad_request(format!(
                "after must be an event id such as evt_0000000000000001, not {a:?}"
            ))
        })?,
    };
    let limit = match q.get("limit").map(str::trim).filter(|l| !l.is_empty()) {
        None => 100,
        Some(l) => l
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                AppError::bad_request(format!("limit must be 1 to {MAX_LIMIT}, not {l:?}"))
            })?,
    };
    let types: Vec<String> = q
        .get("events")
        .map(|e| {
            e.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(bad) = types.iter().find(|t| !ALL_TYPES.contains(&t.as_str())) {
        return Err(AppError::bad_request(format!(
            "unknown event type {bad:?}; known types: {}",
            ALL_TYPES.join(", ")
        )));
    }
    let directory = q
        .get("directory_id")
        .map(str::trim)
        .filter(|d| !d.is_empty());
    // One directory when asked for (and seen), else all the key sees.
    let one;
    let directories = match directory {
        Some(d) => {
            auth.require_directory(d)?;
            one = [d.to_owned()];
            Some(&one[..])
        }
        None => auth.directories(),
    };
    let events = s
        .store
        .list_events(after, limit, &types, directories)
        .await?;
    let next = events.last().map(|e| e.seq).unwrap_or(after);
    Ok(Json(json!({
        "object": "list",
        "data": events.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "list_metadata": {"after": event_id(next)},
    })))
}
