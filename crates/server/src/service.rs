//! SCIM operations on resources: the rules between the HTTP handlers and the store.

use crate::limits::{
    WriteLimits, check_filter_text, check_identifiers, check_patch_operations, patch_request,
};
use roster_scim::ScimError;
use roster_scim::filter::{check_filter, parse_filter_nested};
use roster_scim::members::{MemberOp, user_groups};
use roster_scim::patch::{PatchRequest, apply_patch};
use roster_scim::project::Projection;
use roster_scim::sort::SortKey;
use std::collections::HashMap;
use std::sync::Arc;

use roster_scim::schema::SchemaRegistry;
use roster_scim::validate::{normalize, take_members};
use roster_store::{
    IdempotentReply, Kind, ListQuery, ListResult, MemberRow, NewResource, Page, SortOrder,
    StoreError, Stored, Update, UpdateFn, in_transaction,
};
use serde_json::Value;

use crate::error::ApiResult;
use crate::password;
use crate::state::AppState;

fn limits(state: &AppState) -> WriteLimits {
    WriteLimits::from(state.config.as_ref())
}

/// The members (of groups) or group memberships (of users) the projection
/// shows for `resources`, read in one query for the page; empty when the
/// projection leaves them out.
pub async fn related(
    state: &AppState,
    directory: &str,
    projection: &Projection,
    resources: &[Stored],
) -> ApiResult<HashMap<String, Vec<MemberRow>>> {
    let Some(kind) = resources.first().map(|s| s.kind) else {
        return Ok(HashMap::new());
    };
    let attr = match kind {
        Kind::Group => "members",
        Kind::User => "groups",
    };
    if !projection.includes(&state.reg, state.resource_type(kind)?, attr) {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = resources.iter().map(|s| s.id.clone()).collect();
    Ok(match kind {
        Kind::Group => state.store.members(directory, &ids).await?,
        Kind::User => state.store.groups_of(directory, &ids).await?,
    })
}

/// A validated new resource from a client body (passwords already hashed).
pub fn prepare_create(
    reg: &SchemaRegistry,
    kind: Kind,
    body: &Value,
    limits: WriteLimits,
) -> Result<NewResource, ScimError> {
    let rt = reg
        .resource_type(kind.name())
        .ok_or_else(|| ScimError::internal("no resource type"))?;
    let mut doc = normalize(reg, rt, body, None)?;
    check_identifiers(&doc, limits.max_identifier_bytes)?;
    let members = if kind == Kind::Group {
        take_members(&mut doc)?
    } else {
        Vec::new()
    };
    // A tolerance: `groups` is readOnly (RFC 7643 §4.1.2) and `normalize`
    // drops it, but a user created with groups joins them.
    let groups = if kind == Kind::User {
        user_groups(body)?.unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(NewResource {
        kind,
        doc,
        members,
        groups,
    })
}

/// The groups a user PUT sets, as a tolerance (`groups` is readOnly): a
/// non-empty list becomes exactly the user's direct groups. An absent,
/// `null` or empty `groups` leaves memberships alone: Okta sends
/// `"groups": []` with every user PUT while it manages memberships through
/// the groups (Group Push), so an empty list cannot mean "no groups".
fn groups_to_set(kind: Kind, body: &Value) -> Result<Option<Vec<String>>, ScimError> {
    if kind != Kind::User {
        return Ok(None);
    }
    Ok(user_groups(body)?.filter(|g| !g.is_empty()))
}

pub async fn create(state: &AppState, dir: &str, kind: Kind, mut body: Value) -> ApiResult<Stored> {
    hash_passwords(state, dir, kind, None, &mut body).await?;
    let new = prepare_create(&state.reg, kind, &body, limits(state))?;
    Ok(state.store.create(dir, new).await?)
}

pub async fn get(state: &AppState, dir: &str, kind: Kind, id: &str) -> ApiResult<Stored> {
    state
        .store
        .get(dir, kind, id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("{} {id} not found", kind.name())).into())
}

/// Hashes every plaintext password a user body carries. For an existing user
/// (`id`), a resent password that matches the stored hash keeps that hash.
pub async fn hash_passwords(
    state: &AppState,
    dir: &str,
    kind: Kind,
    id: Option<&str>,
    body: &mut Value,
) -> ApiResult<()> {
    // Most writes carry no password: skip the read of the stored hash for them.
    if kind != Kind::User || password::password_slots(body).is_empty() {
        return Ok(());
    }
    let current = match id {
        Some(id) => state.store.get(dir, kind, id).await?.and_then(|s| {
            s.doc
                .get("password")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        None => None,
    };
    Ok(password::hash_in_body(body, current.as_deref()).await?)
}

/// PUT: replace every attribute the client may write. A group body without a
/// `members` key keeps its members; `"members": []` empties the group.
pub async fn replace(
    state: &AppState,
    dir: &str,
    kind: Kind,
    id: &str,
    if_match: Option<i64>,
    mut body: Value,
) -> ApiResult<Stored> {
    hash_passwords(state, dir, kind, Some(id), &mut body).await?;
    let update = replace_fn(state.reg.clone(), kind, body, limits(state));
    Ok(state.store.update(dir, kind, id, if_match, update).await?)
}

/// The update a PUT makes, run against the current resource inside the store's transaction.
pub fn replace_fn(
    reg: Arc<SchemaRegistry>,
    kind: Kind,
    body: Value,
    limits: WriteLimits,
) -> UpdateFn {
    let has_members = body
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case("members")));
    Box::new(move |current: &Stored| {
        let rt = reg
            .resource_type(kind.name())
            .ok_or_else(|| ScimError::internal("no resource type"))?;
        let mut doc = normalize(&reg, rt, &body, Some(&current.doc))?;
        check_identifiers(&doc, limits.max_identifier_bytes)?;
        // writeOnly: a client cannot read the password back, so a PUT without one keeps it.
        if doc.get("password").is_none()
            && let Some(p) = current.doc.get("password")
            && let Value::Object(o) = &mut doc
        {
            o.insert("password".into(), p.clone());
        }
        let mut members = Vec::new();
        if kind == Kind::Group {
            let list = take_members(&mut doc)?;
            if has_members {
                members.push(MemberOp::ReplaceAll(list));
            }
        }
        Ok(Update {
            doc,
            members,
            groups: groups_to_set(kind, &body)?,
        })
    })
}

pub async fn patch(
    state: &AppState,
    dir: &str,
    kind: Kind,
    id: &str,
    if_match: Option<i64>,
    mut body: Value,
) -> ApiResult<Stored> {
    // Count first: hashing is slow, and a huge PATCH is refused anyway.
    check_patch_operations(&body, state.config.max_patch_operations)?;
    hash_passwords(state, dir, kind, Some(id), &mut body).await?;
    let request = patch_request(&body, limits(state))?;
    let update = patch_fn(state.reg.clone(), kind, request, limits(state));
    Ok(state.store.update(dir, kind, id, if_match, update).await?)
}

/// The update a PATCH makes: apply the operations, then validate the result as a whole.
pub fn patch_fn(
    reg: Arc<SchemaRegistry>,
    kind: Kind,
    request: PatchRequest,
    limits: WriteLimits,
) -> UpdateFn {
    Box::new(move |current: &Stored| {
        let rt = reg
            .resource_type(kind.name())
            .ok_or_else(|| ScimError::internal("no resource type"))?;
        let mut doc = current.doc.clone();
        let outcome = apply_patch(&reg, rt, &mut doc, &request)?;
        let doc = normalize(&reg, rt, &doc, Some(&current.doc))?;
        check_identifiers(&doc, limits.max_identifier_bytes)?;
        Ok(Update {
            doc,
            members: outcome.members,
            groups: None,
        })
    })
}

/// Adds and removes members of group `id` (stored ids), as a SCIM PATCH
/// with `add` and `remove` operations on `members` would: the group's
/// attributes stay, and each change is a `dsync.group.user_added` or
/// `user_removed` event.
pub async fn change_members(
    state: &AppState,
    dir: &str,
    id: &str,
    add: Vec<String>,
    remove: Vec<String>,
) -> ApiResult<Stored> {
    let added: Vec<Value> = add
        .into_iter()
        .map(|value| serde_json::json!({ "value": value }))
        .collect();
    let added = roster_scim::members::MemberRef::list_from_json(&Value::Array(added))?;
    let update: UpdateFn = Box::new(move |current: &Stored| {
        let mut members = Vec::new();
        if !remove.is_empty() {
            members.push(MemberOp::Remove(remove));
        }
        if !added.is_empty() {
            members.push(MemberOp::Add(added));
        }
        Ok(Update {
            doc: current.doc.clone(),
            members,
            groups: None,
        })
    });
    Ok(state
        .store
        .update(dir, Kind::Group, id, None, update)
        .await?)
}

pub async fn delete(
    state: &AppState,
    dir: &str,
    kind: Kind,
    id: &str,
    if_match: Option<i64>,
) -> ApiResult<()> {
    Ok(state.store.delete(dir, kind, id, if_match).await?)
}

/// A list request in protocol terms, from query parameters or a SearchRequest.
#[derive(Debug, Default, Clone)]
pub struct Search {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    /// `Some("")` asks for the first page of cursor paging.
    pub cursor: Option<String>,
}

pub async fn list(
    state: &AppState,
    dir: &str,
    kind: Kind,
    search: &Search,
) -> ApiResult<(ListResult, Page)> {
    let rt = state.resource_type(kind)?;
    let filter = match search.filter.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            check_filter_text(text, state.config.max_filter_bytes)?;
            // For the log lines of this request, a statement timeout's above all.
            tracing::Span::current().record("filter", text);
            let f = parse_filter_nested(text, state.config.max_filter_depth)?;
            Some(check_filter(&state.reg, rt, &f)?)
        }
    };
    let sort_order = match search
        .sort_order
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("ascending") => SortOrder::Ascending,
        Some("descending") => SortOrder::Descending,
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "sortOrder must be \"ascending\" or \"descending\", not {other:?}"
            ))
            .into());
        }
    };
    let cfg = &state.config;
    // RFC 7644 §3.4.2.4: a negative count is 0; a large one is clamped, never an error.
    let count = search
        .count
        .map(|c| c.max(0) as u64)
        .unwrap_or(cfg.default_page_size)
        .min(cfg.max_page_size);
    let page = match &search.cursor {
        Some(c) => Page::Cursor {
            cursor: Some(c.clone()).filter(|c| !c.trim().is_empty()),
            count,
        },
        None => Page::Index {
            // startIndex below 1 is read as 1.
            start: search.start_index.unwrap_or(1).max(1) as u64,
            count,
        },
    };
    let sort = match search.sort_by.as_deref() {
        Some(text) if !text.trim().is_empty() => Some(SortKey::resolve(&state.reg, rt, text)?),
        _ => None,
    };
    let query = ListQuery {
        kind,
        filter,
        sort,
        sort_order,
        page: page.clone(),
    };
    Ok((state.store.list(dir, query).await?, page))
}

/// POST with an `Idempotency-Key`: the first request creates, a retry with the
/// same key and body answers with the resource it created (as it is now),
/// another body under the same key is refused.
pub async fn create_idempotent(
    state: &AppState,
    dir: &str,
    kind: Kind,
    mut body: Value,
    key: (String, Vec<u8>),
) -> ApiResult<Stored> {
    hash_passwords(state, dir, kind, None, &mut body).await?;
    let new = prepare_create(&state.reg, kind, &body, limits(state))?;
    let window_ms = state.config.idempotency_window_secs.saturating_mul(1000);
    let (key, hash) = key;
    let outcome = in_transaction(state.store.as_ref(), dir, move |tx| {
        match tx.idempotent_reply(&key, window_ms)? {
            Some(prev) if prev.request_hash == hash => {
                let id = prev.response["id"].as_str().unwrap_or_default().to_owned();
                return Ok(Err(id));
            }
            Some(_) => return Err(StoreError::from(crate::idempotency::conflict())),
            None => {}
        }
        let stored = tx.create(new)?;
        let reply = IdempotentReply {
            request_hash: hash,
            response: serde_json::json!({"status": 201, "id": stored.id}),
        };
        tx.remember_reply(&key, &reply)?;
        Ok::<_, StoreError>(Ok(stored))
    })
    .await?;
    match outcome {
        Ok(stored) => Ok(stored),
        Err(replayed_id) => get(state, dir, kind, &replayed_id).await,
    }
}
