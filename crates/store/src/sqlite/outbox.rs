//! Writing and reading events inside SQLite transactions.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::admin::now_ms;
use super::resources::{MemberDiff, get};
use crate::db::Db;
use crate::events::{self, Event, GroupRef};
use crate::model::{Kind, Stored};
use crate::{StoreError, StoreResult, vals};

pub fn emit(c: &dyn Db, dir: &str, event: &str, data: &Value) -> StoreResult<()> {
    c.exec(
        "INSERT INTO events (directory_id, type, data, created_at) VALUES (?, ?, ?, ?)",
        vals![dir, event, data.to_string(), now_ms()],
    )?;
    Ok(())
}

pub fn groups_of(c: &Connection, dir: &str, user: &str) -> StoreResult<Vec<GroupRef>> {
    // No JOIN and no ORDER BY, as in `resources::members_of`: with the bundled
    // SQLite 3.54 either one re-prepared this cached statement on every run, on
    // the writer thread, once per created or changed user.
    let mut stmt = c.prepare_cached(
        "SELECT gm.group_id, (SELECT g.display FROM resources g WHERE g.id = gm.group_id)
         FROM group_members gm WHERE gm.member_id = ? AND gm.directory_id = ?",
    )?;
    let rows = stmt.query_map(params![user, dir], |r| {
        Ok(GroupRef {
            id: r.get(0)?,
            name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        })
    })?;
    let mut groups: Vec<GroupRef> = rows.collect::<Result<_, _>>()?;
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(groups)
}

/// The normalized payload of a resource as it is now in this transaction.
pub fn data_of(c: &Connection, dir: &str, s: &Stored) -> StoreResult<Value> {
    let groups = match s.kind {
        Kind::User => groups_of(c, dir, &s.id)?,
        Kind::Group => Vec::new(),
    };
    Ok(events::data(dir, s, &groups))
}

/// `dsync.group.user_added` / `user_removed` for each user that joined or left `group`.
/// Nested groups get no membership events: apps see users, not group trees.
pub fn membership_events(
    c: &Connection,
    dir: &str,
    group: &Stored,
    diff: &MemberDiff,
) -> StoreResult<()> {
    if diff.is_empty() {
        return Ok(());
    }
    let group_data = events::group_data(dir, group);
    let changes = diff
        .added
        .iter()
        .map(|m| (m, events::GROUP_USER_ADDED))
        .chain(diff.removed.iter().map(|m| (m, events::GROUP_USER_REMOVED)));
    for ((id, kind), event) in changes {
        if *kind != Kind::User {
            continue;
        }
        let Some(user) = get(c, dir, Kind::User, id)? else {
            continue;
        };
        let user_data = data_of(c, dir, &user)?;
        emit(
            c,
            dir,
            event,
            &events::membership(dir, user_data, group_data.clone()),
        )?;
    }
    Ok(())
}

/// Events after `after` (a sequence number), oldest first.
pub fn list(
    c: &Connection,
    after: i64,
    limit: u64,
    types: &[String],
    directory: Option<&str>,
) -> StoreResult<Vec<Event>> {
    let floor = pruned_through(c)?;
    if after > 0 && after < floor {
        return Err(StoreError::CursorExpired { floor });
    }
    let mut sql =
        String::from("SELECT seq, directory_id, type, data, created_at FROM events WHERE seq > ?1");
    let mut values: Vec<rusqlite::types::Value> = vec![after.into()];
    if let Some(d) = directory {
        values.push(d.to_owned().into());
        sql.push_str(&format!(" AND directory_id = ?{}", values.len()));
    }
    if !types.is_empty() {
        let start = values.len() + 1;
        let marks: Vec<String> = (0..types.len())
            .map(|i| format!("?{}", start + i))
            .collect();
        values.extend(
            types
                .iter()
                .map(|t| rusqlite::types::Value::from(t.clone())),
        );
        sql.push_str(&format!(" AND type IN ({})", marks.join(", ")));
    }
    sql.push_str(&format!(" ORDER BY seq LIMIT {limit}"));
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (seq, directory_id, event, data, created_at) = row?;
        Ok(Event {
            seq,
            directory_id,
            event,
            created_at,
            data: serde_json::from_str(&data)
                .map_err(|e| StoreError::Database(format!("event {seq} is unreadable: {e}")))?,
        })
    })
    .collect()
}

const PRUNED_THROUGH: &str = "events_pruned_through";

/// The highest sequence number pruning has removed (0 when nothing was pruned).
pub fn pruned_through(c: &Connection) -> StoreResult<i64> {
    Ok(
        c.prepare_cached("SELECT value FROM store_meta WHERE key = ?")?
            .query_row([PRUNED_THROUGH], |r| r.get(0))
            .optional()?
            .unwrap_or(0),
    )
}

/// Deletes events created before `cutoff_ms`, except those an enabled webhook
/// endpoint has not delivered yet. Returns how many were deleted.
pub fn prune(c: &Connection, cutoff_ms: i64) -> StoreResult<u64> {
    let keep_from: i64 = c.query_row(
        "SELECT COALESCE(MIN(cursor), 9223372036854775807) FROM webhook_endpoints WHERE enabled = 1",
        [],
        |r| r.get(0),
    )?;
    let through: Option<i64> = c.query_row(
        "SELECT MAX(seq) FROM events WHERE created_at < ?1 AND seq <= ?2",
        params![cutoff_ms, keep_from],
        |r| r.get(0),
    )?;
    let Some(through) = through else {
        return Ok(0);
    };
    let n = c.execute("DELETE FROM events WHERE seq <= ?", [through])?;
    c.execute(
        "INSERT INTO store_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
        params![PRUNED_THROUGH, through],
    )?;
    Ok(n as u64)
}
