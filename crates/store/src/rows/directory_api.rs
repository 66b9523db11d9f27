//! Directory administration (create with a first token, change, delete, token
//! rotation) and the app-facing reads of directories and normalized users and
//! groups, in SQL both stores accept. One query layer serves `/api/v1` and
//! the WorkOS-compatible routes: they differ only in how pages are rendered.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::admin::{
    DIRECTORY_COLUMNS, create_directory, directory_row, get_directory, issue_token, token_row,
};
use super::audit::{self, Target};
use super::read::{STORED_COLUMNS, to_stored};
use super::settings::DirSettings;
use crate::db::{self, Db, Dialect, Row, Val};
use crate::directory_api::{
    Cursor, DirectoryQuery, GroupQuery, ObjectPage, Order, Page, Paging, Rotation, UserQuery,
    UserState,
};
use crate::events::{self, GroupRef};
use crate::index::entries::{CUT, text_key};
use crate::model::{Actor, Directory, DirectoryAttrs, DirectoryChange, Kind, Stored, TokenInfo};
use crate::sql::compile::{key_subquery, value_lookup};
use crate::{StoreResult, now_ms, vals};

/// A row of `STORED_COLUMNS` followed by the directory id.
fn stored_in_dir(mut r: Row) -> StoreResult<(Stored, String)> {
    let dir = r.take_text(6)?;
    r.0.truncate(6);
    Ok((to_stored(r)?, dir))
}

/// An empty directory, audited.
pub fn create(c: &dyn Db, actor: &Actor, name: &str) -> StoreResult<Directory> {
    let d = create_directory(c, name, &DirectoryAttrs::default())?;
    audit::record(
        c,
        actor,
        "directory.created",
        Target::directory(&d.id),
        &json!({"name": d.name}),
    )?;
    Ok(d)
}

/// `details` plus the directory's organization, domain and type, those set.
fn with_attrs(mut details: Value, d: &Directory) -> Value {
    for (field, value) in [
        ("organization_id", &d.organization_id),
        ("domain", &d.domain),
        ("type", &d.provider),
    ] {
        if let Some(v) = value {
            details[field] = Value::String(v.clone());
        }
    }
    details
}

/// A directory and its first token in one transaction, so a directory never
/// exists without a way to reach it. One change: one audit record, naming the token.
pub fn create_with_token(
    c: &dyn Db,
    actor: &Actor,
    name: &str,
    attrs: &DirectoryAttrs,
) -> StoreResult<(Directory, TokenInfo, String)> {
    let d = create_directory(c, name, attrs)?;
    let (info, token) = issue_token(c, &d.id)?;
    audit::record(
        c,
        actor,
        "directory.created",
        Target::directory(&d.id),
        &with_attrs(json!({"name": d.name, "token_id": info.id}), &d),
    )?;
    Ok((d, info, token))
}

/// A directory and its first token, unless the database has a directory already.
pub fn create_first(
    c: &dyn Db,
    actor: &Actor,
    name: &str,
) -> StoreResult<Option<(Directory, TokenInfo, String)>> {
    if !c
        .query("SELECT 1 FROM directories LIMIT 1", &[])?
        .is_empty()
    {
        return Ok(None);
    }
    create_with_token(c, actor, name, &DirectoryAttrs::default()).map(Some)
}

/// A new token for a directory, audited.
pub fn issue(c: &dyn Db, actor: &Actor, directory: &str) -> StoreResult<(TokenInfo, String)> {
    let (info, token) = issue_token(c, directory)?;
    audit::record(
        c,
        actor,
        "token.issued",
        Target::token(&info.id, directory),
        &json!({}),
    )?;
    Ok((info, token))
}

/// Appends `cond` with one bound value, numbering the placeholder.
fn push_cond(sql: &mut String, values: &mut Vec<Val>, cond: &str, v: Val) {
    values.push(v);
    sql.push_str(&cond.replace("?", &format!("?{}", values.len())));
}

/// Appends ` AND {col} IN (...)` over `ids`, bound one by one: a scope
/// names a handful of directories.
pub(crate) fn push_in(sql: &mut String, values: &mut Vec<Val>, col: &str, ids: &[String]) {
    let marks: Vec<String> = ids
        .iter()
        .map(|d| {
            values.push(d.into());
            format!("?{}", values.len())
        })
        .collect();
    sql.push_str(&format!(" AND {col} IN ({})", marks.join(", ")));
}

/// Appends the keyset condition, the order and the limit of `p` over the
/// column `id_col`. The scan runs backwards from a `before` cursor (and
/// [`finish_page`] turns the rows round), so either way it reads one page.
fn keyset(sql: &mut String, values: &mut Vec<Val>, id_col: &str, p: &Paging) {
    let from_before = matches!(p.cursor, Some(Cursor::Before(_)));
    let ascending = (p.order == Order::Asc) != from_before;
    if let Some(id) = p.cursor_id() {
        let op = if ascending { ">" } else { "<" };
        push_cond(sql, values, &format!(" AND {id_col} {op} ?"), id.into());
    }
    let dir = if ascending { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY {id_col} {dir}"));
    push_cond(sql, values, " LIMIT ?", fetch_limit(p.limit).into());
}

/// Rows one past the page size, to learn whether another page follows.
fn fetch_limit(limit: u64) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

/// The page from the rows of a [`keyset`] query: in the requested order,
/// with the cursors of the neighbouring pages. An `after` cursor means
/// objects precede the page; a `before` cursor that objects follow it.
fn finish_page<T>(mut rows: Vec<T>, p: &Paging, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    if matches!(p.cursor, Some(Cursor::Before(_))) {
        rows.reverse();
    }
    let first = rows.first().map(&key);
    let last = rows.last().map(&key);
    let (before, after) = match &p.cursor {
        None => (None, last.filter(|_| more)),
        Some(Cursor::After(_)) => (first, last.filter(|_| more)),
        Some(Cursor::Before(_)) => (first.filter(|_| more), last),
    };
    Page {
        data: rows,
        before,
        after,
    }
}

/// A cursor must come from the list it is used with: an id of another
/// directory's object, or of another kind, is a client mistake worth
/// reporting rather than a silent page. An id that no longer exists still
/// works (its object was deleted; the comparison does not need the row).
fn check_cursor(c: &dyn Db, dir: Option<&str>, kind: Option<Kind>, p: &Paging) -> StoreResult<()> {
    let Some(id) = p.cursor_id() else {
        return Ok(());
    };
    let row = c.query_opt(
        "SELECT directory_id, rtype FROM resources WHERE id = ?",
        vals![id],
    )?;
    let foreign = match row {
        None => false,
        Some(r) => {
            let (owner, rtype): (String, i64) = (r.get(0)?, r.get(1)?);
            kind.is_none_or(|k| k.code() != rtype) || dir.is_some_and(|d| d != owner)
        }
    };
    if foreign {
        return Err(crate::StoreError::InvalidCursor(format!(
            "{id} is not an object of this list; send a list_metadata cursor of the same list"
        )));
    }
    Ok(())
}

/// Directories, filtered, in either order.
pub fn list_directories(c: &dyn Db, q: &DirectoryQuery) -> StoreResult<Page<Directory>> {
    check_cursor(c, None, None, &q.paging)?;
    let mut values: Vec<Val> = Vec::new();
    let mut sql = format!("SELECT {DIRECTORY_COLUMNS} FROM directories WHERE 1 = 1");
    if let Some(only) = &q.only {
        if only.is_empty() {
            return Ok(Page {
                data: Vec::new(),
                before: None,
                after: None,
            });
        }
        push_in(&mut sql, &mut values, "id", only);
    }
    if let Some(org) = &q.organization_id {
        push_cond(
            &mut sql,
            &mut values,
            " AND organization_id = ?",
            org.into(),
        );
    }
    if let Some(domain) = &q.domain {
        push_cond(
            &mut sql,
            &mut values,
            " AND lower(domain) = lower(?)",
            domain.into(),
        );
    }
    if let Some(search) = &q.search {
        let pattern = format!(
            "%{}%",
            search
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        push_cond(
            &mut sql,
            &mut values,
            " AND lower(name) LIKE ? ESCAPE '\\'",
            pattern.into(),
        );
    }
    keyset(&mut sql, &mut values, "id", &q.paging);
    let dirs = c
        .query(&sql, &values)?
        .iter()
        .map(directory_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(finish_page(dirs, &q.paging, |d| d.id.clone()))
}

/// Changes a directory's own attributes; `None` for an unknown directory.
/// Audited as `directory.updated`, naming each field that changed with its
/// new and previous value.
pub fn update(
    c: &dyn Db,
    actor: &Actor,
    id: &str,
    change: &DirectoryChange,
) -> StoreResult<Option<Directory>> {
    let Some(previous) = get_directory(c, id)? else {
        return Ok(None);
    };
    let mut d = previous.clone();
    if let Some(name) = &change.name {
        d.name = name.clone();
    }
    if let Some(org) = &change.organization_id {
        d.organization_id = org.clone();
    }
    if let Some(domain) = &change.domain {
        d.domain = domain.clone();
    }
    if let Some(provider) = &change.provider {
        d.provider = provider.clone();
    }
    d.updated_at = now_ms().max(d.updated_at);
    c.exec(
        "UPDATE directories SET name = ?, organization_id = ?, domain = ?, provider = ?, updated_at = ?
         WHERE id = ?",
        vals![
            &d.name,
            d.organization_id.as_deref(),
            d.domain.as_deref(),
            d.provider.as_deref(),
            d.updated_at,
            id
        ],
    )?;
    if change.organization_id.is_some() {
        super::admin::remember_organization(c, id, d.organization_id.as_deref())?;
    }
    audit::record(
        c,
        actor,
        "directory.updated",
        Target::directory(id),
        &changed_fields(&previous, &d),
    )?;
    Ok(Some(d))
}

/// `{"changes": {field: new}, "previous": {field: old}}` over the fields that
/// differ, under the names the API uses.
fn changed_fields(old: &Directory, new: &Directory) -> Value {
    let mut changes = serde_json::Map::new();
    let mut previous = serde_json::Map::new();
    let name = (Some(&old.name), Some(&new.name));
    for (field, (was, now)) in [
        ("name", name),
        (
            "organization_id",
            (old.organization_id.as_ref(), new.organization_id.as_ref()),
        ),
        ("domain", (old.domain.as_ref(), new.domain.as_ref())),
        ("type", (old.provider.as_ref(), new.provider.as_ref())),
    ] {
        if was != now {
            changes.insert(field.to_owned(), json!(now));
            previous.insert(field.to_owned(), json!(was));
        }
    }
    json!({"changes": changes, "previous": previous})
}

pub fn rename(c: &dyn Db, actor: &Actor, id: &str, name: &str) -> StoreResult<Option<Directory>> {
    update(
        c,
        actor,
        id,
        &DirectoryChange {
            name: Some(name.to_owned()),
            ..DirectoryChange::default()
        },
    )
}

/// Sets the provider type detected from a directory's requests, unless one
/// is set already; false when nothing changed. Not audited: the directory's
/// own traffic, not an administrator, sets it.
pub fn detect_provider(c: &dyn Db, id: &str, provider: &str) -> StoreResult<bool> {
    let n = c.exec(
        "UPDATE directories SET provider = ?, updated_at = ? WHERE id = ? AND provider IS NULL",
        vals![provider, now_ms(), id],
    )?;
    Ok(n > 0)
}

/// Deletes a directory with everything in it. Its events stay (the outbox has
/// no foreign key to directories) so readers behind the head still see them,
/// followed by `dsync.deleted`.
pub fn delete(c: &dyn Db, actor: &Actor, id: &str) -> StoreResult<bool> {
    let Some(d) = get_directory(c, id)? else {
        return Ok(false);
    };
    super::outbox::emit(
        c,
        id,
        events::DIRECTORY_DELETED,
        &events::directory_data(&d),
    )?;
    // Tokens, resources (with their index and membership rows) and idempotency
    // keys go by ON DELETE CASCADE, all indexed from the parent side.
    crate::index::delete_directory(c, id)?;
    c.exec("DELETE FROM directories WHERE id = ?", vals![id])?;
    audit::record(
        c,
        actor,
        "directory.deleted",
        Target::directory(id),
        &json!({"name": d.name}),
    )?;
    Ok(true)
}

const TOKEN_COLUMNS: &str = "id, directory_id, created_at, revoked_at, expires_at";

fn live_token(
    c: &dyn Db,
    directory: Option<&str>,
    token_id: &str,
) -> StoreResult<Option<TokenInfo>> {
    // The directory condition is left out rather than bound as NULL, which
    // PostgreSQL could not type.
    let row = match directory {
        Some(dir) => c.query_opt(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens
                 WHERE id = ?1 AND directory_id = ?2
                   AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?3)"
            ),
            vals![token_id, dir, now_ms()],
        )?,
        None => c.query_opt(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens
                 WHERE id = ?1
                   AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)"
            ),
            vals![token_id, now_ms()],
        )?,
    };
    row.map(|r| token_row(&r)).transpose()
}

/// Revokes a live token of `directory` now; false when there is none.
pub fn revoke_in(c: &dyn Db, actor: &Actor, directory: &str, token_id: &str) -> StoreResult<bool> {
    let n = c.exec(
        "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2 AND directory_id = ?3
           AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)",
        vals![now_ms(), token_id, directory],
    )?;
    if n == 0 {
        return Ok(false);
    }
    audit::record(
        c,
        actor,
        "token.revoked",
        Target::token(token_id, directory),
        &json!({}),
    )?;
    Ok(true)
}

/// Issues a successor to a live token and lets the old one work `overlap_ms`
/// longer. A token already winding down from an earlier rotation never gets
/// more time than it had.
pub fn rotate(
    c: &dyn Db,
    actor: &Actor,
    directory: Option<&str>,
    token_id: &str,
    overlap_ms: i64,
) -> StoreResult<Option<Rotation>> {
    let Some(mut old) = live_token(c, directory, token_id)? else {
        return Ok(None);
    };
    let (new, token) = issue_token(c, &old.directory_id)?;
    let until = now_ms().saturating_add(overlap_ms.max(0));
    let expires = old.expires_at.map_or(until, |e| e.min(until));
    c.exec(
        "UPDATE tokens SET expires_at = ? WHERE id = ?",
        vals![expires, &old.id],
    )?;
    old.expires_at = Some(expires);
    audit::record(
        c,
        actor,
        "token.rotated",
        Target::token(&old.id, &old.directory_id),
        &json!({"new_token_id": new.id, "expires_at": roster_scim::values::format_unix_millis(expires)}),
    )?;
    Ok(Some(Rotation { new, token, old }))
}

fn not_found(what: &str) -> crate::StoreError {
    crate::StoreError::NotFound(what.to_owned())
}

fn require_directory(c: &dyn Db, dir: &str) -> StoreResult<()> {
    match get_directory(c, dir)? {
        Some(_) => Ok(()),
        None => Err(not_found(&format!("no directory {dir}"))),
    }
}

/// The directory a resource of `kind` lives in.
fn directory_of(c: &dyn Db, kind: Kind, id: &str) -> StoreResult<Option<String>> {
    db::scalar(
        c,
        "SELECT directory_id FROM resources WHERE id = ? AND rtype = ?",
        vals![id, kind.code()],
    )
}

/// The groups of each user of a page, in one query for the whole page:
/// user id → its groups (stored), by group id.
fn groups_of_users(c: &dyn Db, users: &[&str]) -> StoreResult<HashMap<String, Vec<Stored>>> {
    let mut out: HashMap<String, Vec<Stored>> = HashMap::new();
    if users.is_empty() {
        return Ok(out);
    }
    let marks: Vec<String> = (1..=users.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "SELECT {STORED_COLUMNS}, gm.member_id FROM group_members gm JOIN resources r ON r.id = gm.group_id
         WHERE gm.member_id IN ({})",
        marks.join(", ")
    );
    let values: Vec<Val> = users.iter().map(|u| Val::from(*u)).collect();
    for r in c.query(&sql, &values)? {
        let (group, user) = stored_in_dir(r)?;
        out.entry(user).or_default().push(group);
    }
    for groups in out.values_mut() {
        groups.sort_by(|a, b| a.id.cmp(&b.id));
    }
    Ok(out)
}

/// Normalizes a page of rows (`STORED_COLUMNS` plus the directory id). A
/// page of users reads all their groups in one query.
fn normalized_page(c: &dyn Db, rows: Vec<Row>, p: &Paging) -> StoreResult<ObjectPage> {
    let rows = rows
        .into_iter()
        .map(stored_in_dir)
        .collect::<StoreResult<Vec<_>>>()?;
    let page = finish_page(rows, p, |(s, _)| s.id.clone());
    let users: Vec<&str> = page
        .data
        .iter()
        .filter(|(s, _)| s.kind == Kind::User)
        .map(|(s, _)| s.id.as_str())
        .collect();
    let mut memberships = groups_of_users(c, &users)?;
    // A page comes from one directory: its settings are read once.
    let mut settings: Option<DirSettings> = None;
    let mut data = Vec::with_capacity(page.data.len());
    let mut groups = HashMap::new();
    for (s, dir) in &page.data {
        let ds = match settings.take() {
            Some(ds) if ds.dir() == dir => ds,
            _ => DirSettings::new(dir),
        };
        if s.kind == Kind::User {
            let mine = memberships.remove(&s.id).unwrap_or_default();
            let refs: Vec<GroupRef> = mine
                .iter()
                .map(|g| GroupRef {
                    id: g.id.clone(),
                    name: g
                        .doc
                        .get("displayName")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect();
            data.push(events::user_data(dir, s, &refs, ds.custom(c)?));
            groups.insert(
                s.id.clone(),
                mine.iter().map(|g| events::group_data(dir, g)).collect(),
            );
        } else {
            data.push(events::group_data(dir, s));
        }
        settings = Some(ds);
    }
    Ok(ObjectPage {
        data,
        before: page.before,
        after: page.after,
        groups,
    })
}

pub fn list_users(c: &dyn Db, dir: &str, q: &UserQuery) -> StoreResult<ObjectPage> {
    require_directory(c, dir)?;
    if let Some(group) = &q.group
        && directory_of(c, Kind::Group, group)?.as_deref() != Some(dir)
    {
        return Err(not_found(&format!("no group {group} in directory {dir}")));
    }
    check_cursor(c, Some(dir), Some(Kind::User), &q.paging)?;
    let (sql, values) = users_statement(c.dialect(), dir, q);
    let rows = c.query(&sql, &values)?;
    normalized_page(c, rows, &q.paging)
}

/// The keyset query behind [`list_users`], with its bound values.
fn users_statement(d: Dialect, dir: &str, q: &UserQuery) -> (String, Vec<Val>) {
    let mut values: Vec<Val> = Vec::new();
    let mut sql = format!("SELECT {STORED_COLUMNS}, r.directory_id FROM ");
    // With a group, walk its membership rows in member id order (the primary
    // key of group_members): a page of a huge group reads only that page.
    let id_col = if let Some(group) = &q.group {
        sql.push_str("group_members gm JOIN resources r ON r.id = gm.member_id WHERE ");
        push_cond(&mut sql, &mut values, "gm.group_id = ?", group.into());
        push_cond(
            &mut sql,
            &mut values,
            " AND gm.member_type = ?",
            Kind::User.code().into(),
        );
        "gm.member_id"
    } else {
        sql.push_str("resources r WHERE ");
        push_cond(&mut sql, &mut values, "r.directory_id = ?", dir.into());
        push_cond(
            &mut sql,
            &mut values,
            " AND r.rtype = ?",
            Kind::User.code().into(),
        );
        "r.id"
    };
    if let Some(t) = q.updated_after {
        push_cond(&mut sql, &mut values, " AND r.last_modified > ?", t.into());
    }
    if let Some(idp_id) = &q.idp_id {
        push_cond(
            &mut sql,
            &mut values,
            " AND r.external_id = ?",
            idp_id.into(),
        );
    }
    if let Some(email) = &q.email {
        // What `emails.value eq` finds: the folded addresses in attr_index.
        let folded = roster_scim::values::fold(email);
        let first = values.len() + 1;
        values.extend([
            Val::from(dir),
            Val::Int(Kind::User.code()),
            Val::from("emails.value"),
            Val::from(text_key(&folded, false)),
        ]);
        let marks: Vec<String> = (first..first + 4).map(|i| format!("?{i}")).collect();
        sql.push_str(" AND ");
        sql.push_str(&value_lookup(
            &key_subquery(&marks[0], &marks[1], &marks[2]),
            &format!("v = {}", marks[3]),
        ));
        if folded.chars().count() > CUT {
            // Longer than an index entry holds: the entry is shared with
            // every address that begins alike, and the document decides.
            let elements = match d {
                Dialect::Sqlite => {
                    "json_each(r.doc, '$.emails') e WHERE e.type = 'object' \
                     AND json_type(e.value, '$.value') = 'text' \
                     AND scim_fold(json_extract(e.value, '$.value')) = ?"
                }
                Dialect::Postgres => {
                    "json_array_elements(CASE WHEN json_typeof(r.doc -> 'emails') = 'array' \
                     THEN r.doc -> 'emails' ELSE '[]'::json END) e(value) \
                     WHERE json_typeof(e.value -> 'value') = 'string' \
                     AND roster_fold(e.value ->> 'value') = ?"
                }
            };
            push_cond(
                &mut sql,
                &mut values,
                &format!(" AND EXISTS (SELECT 1 FROM {elements})"),
                folded.into(),
            );
        }
    }
    // Exactly what events::user_data reports: inactive only when `active` is
    // the JSON value false (not a string, not missing).
    let (active, inactive) = match d {
        Dialect::Sqlite => (
            " AND json_type(r.doc, '$.active') IS NOT 'false'",
            " AND json_type(r.doc, '$.active') = 'false'",
        ),
        Dialect::Postgres => (
            " AND (r.doc -> 'active')::text IS DISTINCT FROM 'false'",
            " AND (r.doc -> 'active')::text = 'false'",
        ),
    };
    match q.state {
        Some(UserState::Active) => sql.push_str(active),
        Some(UserState::Inactive) => sql.push_str(inactive),
        None => {}
    }
    keyset(&mut sql, &mut values, id_col, &q.paging);
    (sql, values)
}

pub fn list_groups(c: &dyn Db, dir: &str, q: &GroupQuery) -> StoreResult<ObjectPage> {
    require_directory(c, dir)?;
    if let Some(user) = &q.user
        && directory_of(c, Kind::User, user)?.as_deref() != Some(dir)
    {
        return Err(not_found(&format!("no user {user} in directory {dir}")));
    }
    check_cursor(c, Some(dir), Some(Kind::Group), &q.paging)?;
    let mut values: Vec<Val> = Vec::new();
    let mut sql = format!("SELECT {STORED_COLUMNS}, r.directory_id FROM ");
    // A user's groups: its membership rows, by (member_id, group_id).
    let id_col = if let Some(user) = &q.user {
        sql.push_str("group_members gm JOIN resources r ON r.id = gm.group_id WHERE ");
        push_cond(&mut sql, &mut values, "gm.member_id = ?", user.into());
        "gm.group_id"
    } else {
        sql.push_str("resources r WHERE ");
        push_cond(&mut sql, &mut values, "r.directory_id = ?", dir.into());
        push_cond(
            &mut sql,
            &mut values,
            " AND r.rtype = ?",
            Kind::Group.code().into(),
        );
        "r.id"
    };
    if let Some(t) = q.updated_after {
        push_cond(&mut sql, &mut values, " AND r.last_modified > ?", t.into());
    }
    keyset(&mut sql, &mut values, id_col, &q.paging);
    let rows = c.query(&sql, &values)?;
    normalized_page(c, rows, &q.paging)
}

/// Direct user members of a group, in user id order.
pub fn group_users(c: &dyn Db, group: &str, paging: &Paging) -> StoreResult<ObjectPage> {
    let Some(dir) = directory_of(c, Kind::Group, group)? else {
        return Err(not_found(&format!("no group {group}")));
    };
    let q = UserQuery {
        group: Some(group.to_owned()),
        paging: paging.clone(),
        ..UserQuery::default()
    };
    list_users(c, &dir, &q)
}

/// One user or group, normalized, wherever it lives; a user with its groups.
pub fn object(c: &dyn Db, kind: Kind, id: &str) -> StoreResult<Option<(Value, Vec<Value>)>> {
    let rows = c.query(
        &format!(
            "SELECT {STORED_COLUMNS}, r.directory_id FROM resources r WHERE r.id = ? AND r.rtype = ?"
        ),
        vals![id, kind.code()],
    )?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut page = normalized_page(c, rows, &Paging::first(1))?;
    let groups = page.groups.drain().flat_map(|(_, g)| g).collect();
    Ok(page.data.pop().map(|data| (data, groups)))
}

#[cfg(test)]
mod tests {
    use roster_scim::members::MemberRef;
    use roster_scim::schema::SchemaRegistry;
    use serde_json::json;

    use rusqlite::Connection;

    use super::*;
    use crate::model::NewResource;
    use crate::rows::{admin, resources};
    use crate::sqlite::conn;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        conn::migrate(&mut c).unwrap();
        c
    }

    fn user(c: &Connection, dir: &str, name: &str, active: Option<bool>) -> String {
        let mut doc = json!({"userName": name});
        if let Some(a) = active {
            doc["active"] = json!(a);
        }
        let new = NewResource {
            kind: Kind::User,
            doc,
            members: vec![],
            groups: vec![],
        };
        let ds = DirSettings::new(dir);
        let id = resources::create(c, &SchemaRegistry::core(), &ds, new)
            .unwrap()
            .id;
        ds.finish(c).unwrap();
        id
    }

    fn group(c: &Connection, dir: &str, name: &str, members: &[&str]) -> String {
        let new = NewResource {
            kind: Kind::Group,
            doc: json!({"displayName": name}),
            members: members
                .iter()
                .map(|m| MemberRef {
                    value: (*m).to_owned(),
                    ty: None,
                })
                .collect(),
            groups: vec![],
        };
        let ds = DirSettings::new(dir);
        let id = resources::create(c, &SchemaRegistry::core(), &ds, new)
            .unwrap()
            .id;
        ds.finish(c).unwrap();
        id
    }

    fn count(c: &Connection, sql: &str, dir: &str) -> i64 {
        c.query_row(sql, [dir], |r| r.get(0)).unwrap()
    }

    #[test]
    fn deleting_a_directory_leaves_no_row_behind_but_its_events() {
        let c = db();
        let (gone, _, gone_token) =
            create_with_token(&c, &Actor::Cli, "gone", &DirectoryAttrs::default()).unwrap();
        let (kept, _, kept_token) =
            create_with_token(&c, &Actor::Cli, "kept", &DirectoryAttrs::default()).unwrap();
        for d in [&gone.id, &kept.id] {
            let u = user(&c, d, "a", Some(true));
            group(&c, d, "g", &[&u]);
            c.execute(
                "INSERT INTO idempotency_keys (directory_id, key, request_hash, response, created_at) VALUES (?, 'k', x'00', '{}', 0)",
                [d],
            )
            .unwrap();
        }
        let events_before = count(
            &c,
            "SELECT COUNT(*) FROM events WHERE directory_id = ?",
            &gone.id,
        );
        // Index rows name their directory through its keys, which go with it.
        let index_rows = |keys: &[i64]| -> i64 {
            keys.iter()
                .map(|k| {
                    c.query_row("SELECT COUNT(*) FROM attr_index WHERE k = ?", [k], |r| {
                        r.get::<_, i64>(0)
                    })
                    .unwrap()
                })
                .sum()
        };
        let keys_of = |d: &str| -> Vec<i64> {
            c.prepare("SELECT k FROM attr_keys WHERE directory_id = ?")
                .unwrap()
                .query_map([d], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let (gone_keys, kept_keys) = (keys_of(&gone.id), keys_of(&kept.id));
        assert!(index_rows(&gone_keys) > 0 && index_rows(&kept_keys) > 0);

        assert!(delete(&c, &Actor::Cli, &gone.id).unwrap());
        assert!(!delete(&c, &Actor::Cli, &gone.id).unwrap());

        assert_eq!(
            index_rows(&gone_keys),
            0,
            "index rows of the deleted directory"
        );
        assert!(
            index_rows(&kept_keys) > 0,
            "index rows of the other directory"
        );
        for table in [
            "tokens",
            "resources",
            "attr_keys",
            "group_members",
            "idempotency_keys",
        ] {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE directory_id = ?");
            assert_eq!(
                count(&c, &sql, &gone.id),
                0,
                "{table} of the deleted directory"
            );
            assert!(
                count(&c, &sql, &kept.id) > 0,
                "{table} of the other directory"
            );
        }
        assert_eq!(
            count(
                &c,
                "SELECT COUNT(*) FROM directories WHERE id = ?",
                &gone.id
            ),
            0
        );
        let types: Vec<String> = c
            .prepare("SELECT type FROM events WHERE directory_id = ? ORDER BY seq")
            .unwrap()
            .query_map([&gone.id], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(types.len() as i64, events_before + 1);
        assert_eq!(
            types.first().map(String::as_str),
            Some(events::DIRECTORY_ACTIVATED)
        );
        assert_eq!(
            types.last().map(String::as_str),
            Some(events::DIRECTORY_DELETED)
        );
        assert_eq!(admin::authenticate(&c, &gone_token).unwrap(), None);
        assert_eq!(admin::authenticate(&c, &kept_token).unwrap(), Some(kept.id));
    }

    #[test]
    fn rotation_never_extends_a_winding_down_token() {
        let c = db();
        let (d, first, token) =
            create_with_token(&c, &Actor::Cli, "d", &DirectoryAttrs::default()).unwrap();
        let r = rotate(&c, &Actor::Cli, None, &first.id, 60_000)
            .unwrap()
            .unwrap();
        let until = r.old.expires_at.unwrap();
        assert_eq!(admin::authenticate(&c, &token).unwrap(), Some(d.id.clone()));
        // Rotating the old token again (another successor) keeps the earlier deadline.
        let again = rotate(&c, &Actor::Cli, Some(&d.id), &first.id, 3_600_000)
            .unwrap()
            .unwrap();
        assert_eq!(again.old.expires_at, Some(until));
        // Scoped to another directory, the token does not exist.
        assert!(
            rotate(&c, &Actor::Cli, Some("other"), &first.id, 0)
                .unwrap()
                .is_none()
        );
        assert!(!revoke_in(&c, &Actor::Cli, "other", &first.id).unwrap());
        // Zero overlap: refused at once, and no longer live.
        rotate(&c, &Actor::Cli, None, &first.id, 0)
            .unwrap()
            .unwrap();
        assert_eq!(admin::authenticate(&c, &token).unwrap(), None);
        assert!(
            rotate(&c, &Actor::Cli, None, &first.id, 0)
                .unwrap()
                .is_none()
        );
        assert!(admin::authenticate(&c, &r.token).unwrap().is_some());
    }

    #[test]
    fn pages_never_sort_the_whole_directory() {
        let c = db();
        let (d, _, _) =
            create_with_token(&c, &Actor::Cli, "d", &DirectoryAttrs::default()).unwrap();
        let a = user(&c, &d.id, "a", Some(false));
        let b = user(&c, &d.id, "b", None);
        let g = group(&c, &d.id, "g", &[&a, &b]);
        let all = UserQuery {
            paging: Paging::first(10),
            ..Default::default()
        };
        let inactive_in_g = UserQuery {
            group: Some(g.clone()),
            state: Some(UserState::Inactive),
            paging: Paging::after(Some(String::new()), 10),
            ..Default::default()
        };
        assert_eq!(list_users(&c, &d.id, &all).unwrap().data.len(), 2);
        let page = list_users(&c, &d.id, &inactive_in_g).unwrap();
        assert_eq!(page.data.len(), 1);
        assert_eq!(page.data[0]["id"], a.as_str());
        // Keyset pages walk an index in id order, either way: no sort of the
        // directory or group.
        let mut backwards = inactive_in_g.clone();
        backwards.paging = Paging {
            cursor: Some(Cursor::Before(a.clone())),
            order: Order::Desc,
            limit: 10,
        };
        for q in [&all, &inactive_in_g, &backwards] {
            let (sql, values) = users_statement(Dialect::Sqlite, &d.id, q);
            let plan: Vec<String> = c
                .query(&format!("EXPLAIN QUERY PLAN {sql}"), &values)
                .unwrap()
                .iter()
                .map(|r| r.get::<String>(3).unwrap())
                .collect();
            assert!(
                !plan.iter().any(|l| l.contains("TEMP B-TREE")),
                "{sql}: {plan:?}"
            );
        }
    }

    /// Counts the statements run through it.
    struct Counting<'a>(&'a Connection, std::cell::Cell<usize>);

    impl Db for Counting<'_> {
        fn dialect(&self) -> Dialect {
            self.0.dialect()
        }
        fn exec(&self, sql: &str, params: &[Val]) -> StoreResult<u64> {
            self.1.set(self.1.get() + 1);
            self.0.exec(sql, params)
        }
        fn query(&self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
            self.1.set(self.1.get() + 1);
            self.0.query(sql, params)
        }
        fn batch(&self, sql: &str) -> StoreResult<()> {
            self.0.batch(sql)
        }
        fn writes(&self) -> u64 {
            self.0.writes()
        }
    }

    #[test]
    fn a_page_of_users_reads_their_groups_in_one_query() {
        let c = db();
        let (d, _, _) =
            create_with_token(&c, &Actor::Cli, "d", &DirectoryAttrs::default()).unwrap();
        let users: Vec<String> = (0..20)
            .map(|i| user(&c, &d.id, &format!("u{i}"), None))
            .collect();
        let refs: Vec<&str> = users.iter().map(String::as_str).collect();
        let g1 = group(&c, &d.id, "g1", &refs);
        let g2 = group(&c, &d.id, "g2", &refs[..5]);
        let counting = Counting(&c, std::cell::Cell::new(0));
        let q = |limit| UserQuery {
            paging: Paging::first(limit),
            ..Default::default()
        };
        let page = list_users(&counting, &d.id, &q(20)).unwrap();
        let for_twenty = counting.1.replace(0);
        list_users(&counting, &d.id, &q(2)).unwrap();
        let for_two = counting.1.get();
        // The statements per page do not grow with the page.
        assert_eq!(for_twenty, for_two);
        assert_eq!(page.data.len(), 20);
        assert_eq!(page.groups[&users[0]].len(), 2);
        assert_eq!(page.groups[&users[0]][0]["id"], g1.as_str());
        assert_eq!(page.groups[&users[19]].len(), 1);
        assert_eq!(page.data[3]["groups"].as_array().unwrap().len(), 2);
        assert!(
            page.groups[&users[3]]
                .iter()
                .any(|g| g["id"] == g2.as_str())
        );
    }

    #[test]
    fn pages_walk_both_orders_both_ways() {
        let c = db();
        let (d, _, _) =
            create_with_token(&c, &Actor::Cli, "d", &DirectoryAttrs::default()).unwrap();
        let ids: Vec<String> = (0..7)
            .map(|i| user(&c, &d.id, &format!("u{i}"), None))
            .collect();
        for order in [Order::Asc, Order::Desc] {
            let mut expected = ids.clone();
            if order == Order::Desc {
                expected.reverse();
            }
            let mut paging = Paging {
                cursor: None,
                order,
                limit: 3,
            };
            let mut seen = Vec::new();
            let mut pages = Vec::new();
            loop {
                let q = UserQuery {
                    paging: paging.clone(),
                    ..Default::default()
                };
                let page = list_users(&c, &d.id, &q).unwrap();
                let got: Vec<String> = page
                    .data
                    .iter()
                    .map(|u| u["id"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(page.before.is_none(), seen.is_empty());
                seen.extend(got.clone());
                pages.push((got, page.before.clone()));
                match page.after {
                    Some(a) => paging.cursor = Some(Cursor::After(a)),
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{order:?}");
            // Backwards from the last page with `before`: the same pages.
            let mut back = pages.last().unwrap().1.clone();
            for (want, _) in pages.iter().rev().skip(1) {
                let q = UserQuery {
                    paging: Paging {
                        cursor: back.clone().map(Cursor::Before),
                        order,
                        limit: 3,
                    },
                    ..Default::default()
                };
                let page = list_users(&c, &d.id, &q).unwrap();
                let got: Vec<String> = page
                    .data
                    .iter()
                    .map(|u| u["id"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(&got, want, "{order:?}");
                back = page.before;
            }
            assert_eq!(back, None);
        }
    }

    #[test]
    fn a_cursor_from_another_list_is_refused() {
        let c = db();
        let (d, _, _) =
            create_with_token(&c, &Actor::Cli, "d", &DirectoryAttrs::default()).unwrap();
        let (other, _, _) =
            create_with_token(&c, &Actor::Cli, "o", &DirectoryAttrs::default()).unwrap();
        let theirs = user(&c, &other.id, "x", None);
        let g = group(&c, &d.id, "g", &[]);
        for cursor in [theirs, g] {
            let q = UserQuery {
                paging: Paging::after(Some(cursor), 3),
                ..Default::default()
            };
            assert!(matches!(
                list_users(&c, &d.id, &q),
                Err(crate::StoreError::InvalidCursor(_))
            ));
        }
        // A deleted object's id still works.
        let q = UserQuery {
            paging: Paging::after(Some(uuid::Uuid::now_v7().to_string()), 3),
            ..Default::default()
        };
        assert!(list_users(&c, &d.id, &q).is_ok());
    }
}
