//! Directory administration (create with a first token, rename, delete, token
//! rotation) and the app-facing reads of normalized users and groups, in SQL
//! both stores accept.

use serde_json::{Value, json};

use super::admin::{create_directory, directory_row, get_directory, issue_token, token_row};
use super::audit::{self, Target};
use super::outbox::data_of;
use super::read::{STORED_COLUMNS, to_stored};
use super::settings::DirSettings;
use crate::db::{self, Db, Dialect, Row, Val};
use crate::directory_api::{GroupQuery, ObjectPage, Rotation, UserQuery, UserState};
use crate::events;
use crate::model::{Actor, Directory, Kind, Stored, TokenInfo};
use crate::{StoreResult, now_ms, vals};

/// A row of `STORED_COLUMNS` followed by the directory id.
fn stored_in_dir(mut r: Row) -> StoreResult<(Stored, String)> {
    let dir = r.take_text(6)?;
    r.0.truncate(6);
    Ok((to_stored(r)?, dir))
}

/// An empty directory, audited.
pub fn create(c: &dyn Db, actor: &Actor, name: &str) -> StoreResult<Directory> {
    let d = create_directory(c, name)?;
    audit::record(
        c,
        actor,
        "directory.created",
        Target::directory(&d.id),
        &json!({"name": d.name}),
    )?;
    Ok(d)
}

/// A directory and its first token in one transaction, so a directory never
/// exists without a way to reach it. One change: one audit record, naming the token.
pub fn create_with_token(
    c: &dyn Db,
    actor: &Actor,
    name: &str,
) -> StoreResult<(Directory, TokenInfo, String)> {
    let d = create_directory(c, name)?;
    let (info, token) = issue_token(c, &d.id)?;
    audit::record(
        c,
        actor,
        "directory.created",
        Target::directory(&d.id),
        &json!({"name": d.name, "token_id": info.id}),
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
    create_with_token(c, actor, name).map(Some)
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

/// Directories after `after` in id order, only those in `only` when given,
/// plus the cursor of the next page.
pub fn list_page(
    c: &dyn Db,
    after: Option<&str>,
    limit: u64,
    only: Option<&[String]>,
) -> StoreResult<(Vec<Directory>, Option<String>)> {
    let mut values: Vec<Val> = vec![after.unwrap_or("").into(), fetch_limit(limit).into()];
    let mut sql = "SELECT id, name, created_at FROM directories WHERE id > ?1".to_owned();
    if let Some(only) = only {
        // Bound one by one: a key names a handful of directories.
        let marks: Vec<String> = only
            .iter()
            .map(|d| {
                values.push(d.into());
                format!("?{}", values.len())
            })
            .collect();
        if marks.is_empty() {
            return Ok((Vec::new(), None));
        }
        sql.push_str(&format!(" AND id IN ({})", marks.join(", ")));
    }
    sql.push_str(" ORDER BY id LIMIT ?2");
    let dirs = c
        .query(&sql, &values)?
        .iter()
        .map(directory_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(split_page(dirs, limit, |d| d.id.clone()))
}

pub fn rename(c: &dyn Db, actor: &Actor, id: &str, name: &str) -> StoreResult<Option<Directory>> {
    let Some(previous) = get_directory(c, id)? else {
        return Ok(None);
    };
    let d = c
        .query_opt(
            "UPDATE directories SET name = ? WHERE id = ? RETURNING id, name, created_at",
            vals![name, id],
        )?
        .map(|r| directory_row(&r))
        .transpose()?;
    if let Some(d) = &d {
        audit::record(
            c,
            actor,
            "directory.renamed",
            Target::directory(id),
            &json!({"name": d.name, "previous_name": previous.name}),
        )?;
    }
    Ok(d)
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

/// Rows one past the page size, to learn whether another page follows.
fn fetch_limit(limit: u64) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

fn split_page<T>(
    mut rows: Vec<T>,
    limit: u64,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let after = rows.last().map(key);
        (rows, after)
    } else {
        (rows, None)
    }
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

/// Runs a keyset query whose rows are `STORED_COLUMNS` plus the directory id,
/// and normalizes each row.
fn normalized_page(c: &dyn Db, sql: &str, values: &[Val], limit: u64) -> StoreResult<ObjectPage> {
    let rows = c
        .query(sql, values)?
        .into_iter()
        .map(stored_in_dir)
        .collect::<StoreResult<Vec<_>>>()?;
    let (rows, after) = split_page(rows, limit, |(s, _)| s.id.clone());
    // A page comes from one directory: its settings are read once.
    let mut settings: Option<DirSettings> = None;
    let mut data = Vec::with_capacity(rows.len());
    for (s, dir) in &rows {
        let ds = match settings.take() {
            Some(ds) if ds.dir() == dir => ds,
            _ => DirSettings::new(dir),
        };
        data.push(data_of(c, &ds, s)?);
        settings = Some(ds);
    }
    Ok(ObjectPage { data, after })
}

/// Appends `cond` with one bound value, numbering the placeholder.
fn push_cond(sql: &mut String, values: &mut Vec<Val>, cond: &str, v: Val) {
    values.push(v);
    sql.push_str(&cond.replace("?", &format!("?{}", values.len())));
}

pub fn list_users(c: &dyn Db, dir: &str, q: &UserQuery) -> StoreResult<ObjectPage> {
    require_directory(c, dir)?;
    if let Some(group) = &q.group
        && directory_of(c, Kind::Group, group)?.as_deref() != Some(dir)
    {
        return Err(not_found(&format!("no group {group} in directory {dir}")));
    }
    let (sql, values) = users_statement(c.dialect(), dir, q);
    normalized_page(c, &sql, &values, q.limit)
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
    if let Some(after) = &q.after {
        push_cond(
            &mut sql,
            &mut values,
            &format!(" AND {id_col} > ?"),
            after.into(),
        );
    }
    if let Some(t) = q.updated_after {
        push_cond(&mut sql, &mut values, " AND r.last_modified > ?", t.into());
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
    sql.push_str(&format!(" ORDER BY {id_col}"));
    push_cond(
        &mut sql,
        &mut values,
        " LIMIT ?",
        fetch_limit(q.limit).into(),
    );
    (sql, values)
}

pub fn list_groups(c: &dyn Db, dir: &str, q: &GroupQuery) -> StoreResult<ObjectPage> {
    require_directory(c, dir)?;
    let mut values: Vec<Val> = Vec::new();
    let mut sql = format!("SELECT {STORED_COLUMNS}, r.directory_id FROM resources r WHERE ");
    push_cond(&mut sql, &mut values, "r.directory_id = ?", dir.into());
    push_cond(
        &mut sql,
        &mut values,
        " AND r.rtype = ?",
        Kind::Group.code().into(),
    );
    if let Some(after) = &q.after {
        push_cond(&mut sql, &mut values, " AND r.id > ?", after.into());
    }
    if let Some(t) = q.updated_after {
        push_cond(&mut sql, &mut values, " AND r.last_modified > ?", t.into());
    }
    sql.push_str(" ORDER BY r.id");
    push_cond(
        &mut sql,
        &mut values,
        " LIMIT ?",
        fetch_limit(q.limit).into(),
    );
    normalized_page(c, &sql, &values, q.limit)
}

/// Direct user members of a group, in user id order.
pub fn group_users(
    c: &dyn Db,
    group: &str,
    after: Option<&str>,
    limit: u64,
) -> StoreResult<ObjectPage> {
    if directory_of(c, Kind::Group, group)?.is_none() {
        return Err(not_found(&format!("no group {group}")));
    }
    let sql = format!(
        "SELECT {STORED_COLUMNS}, r.directory_id FROM group_members gm JOIN resources r ON r.id = gm.member_id
         WHERE gm.group_id = ?1 AND gm.member_type = ?2 AND gm.member_id > ?3
         ORDER BY gm.member_id LIMIT ?4"
    );
    let values = vals![
        group,
        Kind::User.code(),
        after.unwrap_or(""),
        fetch_limit(limit)
    ];
    normalized_page(c, &sql, values, limit)
}

/// One user or group, normalized, wherever it lives.
pub fn object(c: &dyn Db, kind: Kind, id: &str) -> StoreResult<Option<Value>> {
    let row = c.query_opt(
        &format!(
            "SELECT {STORED_COLUMNS}, r.directory_id FROM resources r WHERE r.id = ? AND r.rtype = ?"
        ),
        vals![id, kind.code()],
    )?;
    row.map(|r| {
        let (s, dir) = stored_in_dir(r)?;
        data_of(c, &DirSettings::new(&dir), &s)
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use roster_scim::members::MemberRef;
    use roster_scim::schema::SchemaRegistry;
    use serde_json::json;

    use rusqlite::{Connection, params};

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
        resources::create(c, &SchemaRegistry::core(), &DirSettings::new(dir), new)
            .unwrap()
            .id
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
        resources::create(c, &SchemaRegistry::core(), &DirSettings::new(dir), new)
            .unwrap()
            .id
    }

    fn count(c: &Connection, sql: &str, dir: &str) -> i64 {
        c.query_row(sql, [dir], |r| r.get(0)).unwrap()
    }

    #[test]
    fn deleting_a_directory_leaves_no_row_behind_but_its_events() {
        let c = db();
        let (gone, _, gone_token) = create_with_token(&c, &Actor::Cli, "gone").unwrap();
        let (kept, _, kept_token) = create_with_token(&c, &Actor::Cli, "kept").unwrap();
        for d in [&gone.id, &kept.id] {
            let u = user(&c, d, "a", None);
            c.execute(
                "INSERT INTO resource_values (directory_id, attr, value, resource_id) VALUES (?, 'emails.value', 'a@x', ?)",
                params![d, u],
            )
            .unwrap();
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

        assert!(delete(&c, &Actor::Cli, &gone.id).unwrap());
        assert!(!delete(&c, &Actor::Cli, &gone.id).unwrap());

        for table in [
            "tokens",
            "resources",
            "resource_values",
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
        let (d, first, token) = create_with_token(&c, &Actor::Cli, "d").unwrap();
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
        let (d, _, _) = create_with_token(&c, &Actor::Cli, "d").unwrap();
        let a = user(&c, &d.id, "a", Some(false));
        let b = user(&c, &d.id, "b", None);
        let g = group(&c, &d.id, "g", &[&a, &b]);
        let all = UserQuery {
            limit: 10,
            ..Default::default()
        };
        let inactive_in_g = UserQuery {
            group: Some(g.clone()),
            state: Some(UserState::Inactive),
            after: Some(String::new()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(list_users(&c, &d.id, &all).unwrap().data.len(), 2);
        let page = list_users(&c, &d.id, &inactive_in_g).unwrap();
        assert_eq!(page.data.len(), 1);
        assert_eq!(page.data[0]["id"], a.as_str());
        // Keyset pages walk an index in id order: no sort of the directory or group.
        for q in [&all, &inactive_in_g] {
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
}
