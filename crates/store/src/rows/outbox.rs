//! Writing and reading events inside a store's transactions.

use serde_json::Value;

use super::read::get;
use super::settings::DirSettings;
use crate::db::{Db, Dialect, Val, scalar};
use crate::directory_api::{Cursor, EventQuery, Order, Page};
use crate::events::{self, Event, GroupRef};
use crate::model::{Kind, Stored};
use crate::{StoreError, StoreResult, now_ms, vals};

/// Members that joined or left a group in one change.
#[derive(Debug, Default)]
pub struct MemberDiff {
    pub added: Vec<(String, Kind)>,
    pub removed: Vec<(String, Kind)>,
}

impl MemberDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

pub fn emit(c: &dyn Db, dir: &str, event: &str, data: &Value) -> StoreResult<()> {
    emit_text(c, dir, event, data.to_string())
}

/// [`emit`] with the payload already serialized.
pub fn emit_text(c: &dyn Db, dir: &str, event: &str, data: String) -> StoreResult<()> {
    match c.dialect() {
        Dialect::Sqlite => c.insert_later(
            "INSERT INTO events (directory_id, type, data, created_at) VALUES (?, ?, ?, ?)",
            vals![dir, event, data, now_ms()],
        )?,
        // Numbered by transaction id, in the order written: see `visible_events`.
        Dialect::Postgres => c.insert_later(
            "INSERT INTO events (seq, directory_id, type, data, created_at)
             VALUES ((pg_current_xact_id()::text::bigint << 20) + ?, ?, ?, ?, ?)",
            vals![c.next_event_index()?, dir, event, data, now_ms()],
        )?,
    };
    Ok(())
}

pub fn groups_of(c: &dyn Db, dir: &str, user: &str) -> StoreResult<Vec<GroupRef>> {
    // No JOIN and no ORDER BY, as in `resources::members_of`: with the bundled
    // SQLite 3.54 either one re-prepared this cached statement on every run, on
    // the writer thread, once per created or changed user.
    let rows = c.query(
        "SELECT gm.group_id, (SELECT g.display FROM resources g WHERE g.id = gm.group_id)
         FROM group_members gm WHERE gm.member_id = ? AND gm.directory_id = ?",
        vals![user, dir],
    )?;
    let mut groups: Vec<GroupRef> = rows
        .iter()
        .map(|r| {
            Ok(GroupRef {
                id: r.get(0)?,
                name: r.get::<Option<String>>(1)?.unwrap_or_default(),
            })
        })
        .collect::<StoreResult<_>>()?;
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(groups)
}

/// The normalized payload of a resource as it is now in this transaction.
pub fn data_of(c: &dyn Db, ds: &DirSettings, s: &Stored) -> StoreResult<Value> {
    let dir = ds.dir();
    let (groups, custom) = match s.kind {
        Kind::User => (groups_of(c, dir, &s.id)?, ds.custom(c)?),
        Kind::Group => (Vec::new(), None),
    };
    Ok(events::data(dir, s, &groups, custom))
}

/// `dsync.group.user_added` / `user_removed` for each user that joined or left `group`.
/// Nested groups get no membership events: apps see users, not group trees.
pub fn membership_events(
    c: &dyn Db,
    ds: &DirSettings,
    group: &Stored,
    diff: &MemberDiff,
) -> StoreResult<()> {
    if diff.is_empty() {
        return Ok(());
    }
    let dir = ds.dir();
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
        let user_data = data_of(c, ds, &user)?;
        emit(
            c,
            dir,
            event,
            &events::membership(dir, user_data, group_data.clone()),
        )?;
    }
    Ok(())
}

/// `dsync.group.user_added` / `user_removed` for the groups a user joined or
/// left through its own request (its `groups`); `user` is its payload as it
/// now is.
pub fn user_membership_events(
    c: &dyn Db,
    dir: &str,
    user: &Value,
    joined: &[Stored],
    left: &[Stored],
) -> StoreResult<()> {
    let changes = joined
        .iter()
        .map(|g| (g, events::GROUP_USER_ADDED))
        .chain(left.iter().map(|g| (g, events::GROUP_USER_REMOVED)));
    for (group, event) in changes {
        let data = events::membership(dir, user.clone(), events::group_data(dir, group));
        emit(c, dir, event, &data)?;
    }
    Ok(())
}

/// Events after `after` (a sequence number), oldest first.
pub fn list(
    c: &dyn Db,
    after: i64,
    limit: u64,
    types: &[String],
    directories: Option<&[String]>,
) -> StoreResult<Vec<Event>> {
    let floor = pruned_through(c)?;
    if after > 0 && after < floor {
        return Err(StoreError::CursorExpired { floor });
    }
    let mut sql = format!(
        "SELECT seq, directory_id, type, data, created_at FROM events WHERE seq > ?1{}",
        super::visible_events(c.dialect())
    );
    let mut values: Vec<Val> = vec![after.into()];
    if let Some(dirs) = directories {
        if dirs.is_empty() {
            return Ok(Vec::new());
        }
        super::directory_api::push_in(&mut sql, &mut values, "directory_id", dirs);
    }
    if !types.is_empty() {
        super::directory_api::push_in(&mut sql, &mut values, "type", types);
    }
    sql.push_str(&format!(" ORDER BY seq LIMIT {limit}"));
    c.query(&sql, &values)?
        .into_iter()
        .map(|mut r| {
            let seq: i64 = r.get(0)?;
            let data = r.take_text(3)?;
            Ok(Event {
                seq,
                directory_id: r.get(1)?,
                event: r.get(2)?,
                created_at: r.get(4)?,
                data: serde_json::from_str(&data).map_err(|e| {
                    StoreError::internal_from(format!("event {seq} is unreadable"), e)
                })?,
            })
        })
        .collect()
}

fn event_row(mut r: crate::db::Row) -> StoreResult<Event> {
    let seq: i64 = r.get(0)?;
    let data = r.take_text(3)?;
    Ok(Event {
        seq,
        directory_id: r.get(1)?,
        event: r.get(2)?,
        created_at: r.get(4)?,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::internal_from(format!("event {seq} is unreadable"), e))?,
    })
}

/// A page of events in either order, filtered by type, directory,
/// organization and time, with the cursors of the neighbouring pages.
pub fn page(c: &dyn Db, q: &EventQuery) -> StoreResult<Page<Event>> {
    let p = &q.paging;
    let cursor = match p.cursor_id() {
        None => None,
        Some(id) => Some(
            events::parse_event_id(id)
                .ok_or_else(|| StoreError::InvalidCursor(format!("{id:?} is not an event id")))?,
        ),
    };
    let from_before = matches!(p.cursor, Some(Cursor::Before(_)));
    let ascending = (p.order == Order::Asc) != from_before;
    if let Some(seq) = cursor {
        let floor = pruned_through(c)?;
        if seq > 0 && seq < floor {
            return Err(StoreError::CursorExpired { floor });
        }
    }
    let mut sql = format!(
        "SELECT seq, directory_id, type, data, created_at FROM events WHERE 1 = 1{}",
        super::visible_events(c.dialect())
    );
    let mut values: Vec<Val> = Vec::new();
    if let Some(only) = &q.only {
        if only.is_empty() {
            return Ok(Page {
                data: Vec::new(),
                before: None,
                after: None,
            });
        }
        super::directory_api::push_in(&mut sql, &mut values, "directory_id", only);
    }
    let mut cond = |sql: &mut String, text: &str, v: Val| {
        values.push(v);
        sql.push_str(&text.replace('?', &format!("?{}", values.len())));
    };
    if let Some(seq) = cursor {
        let op = if ascending {
            " AND seq > ?"
        } else {
            " AND seq < ?"
        };
        cond(&mut sql, op, seq.into());
    }
    if let Some(d) = &q.directory {
        cond(&mut sql, " AND directory_id = ?", d.into());
    }
    if let Some(org) = &q.organization_id {
        cond(
            &mut sql,
            " AND directory_id IN (SELECT directory_id FROM directory_organizations WHERE organization_id = ?)",
            org.into(),
        );
    }
    if let Some(t) = q.range_start {
        cond(&mut sql, " AND created_at > ?", t.into());
    }
    if let Some(t) = q.range_end {
        cond(&mut sql, " AND created_at < ?", t.into());
    }
    if !q.types.is_empty() {
        let marks: Vec<String> = q
            .types
            .iter()
            .map(|t| {
                values.push(t.into());
                format!("?{}", values.len())
            })
            .collect();
        sql.push_str(&format!(" AND type IN ({})", marks.join(", ")));
    }
    let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
    sql.push_str(&format!(
        " ORDER BY seq {} LIMIT {}",
        if ascending { "ASC" } else { "DESC" },
        limit.saturating_add(1)
    ));
    let mut rows = c
        .query(&sql, &values)?
        .into_iter()
        .map(event_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    if from_before {
        rows.reverse();
    }
    let first = rows.first().map(Event::id);
    let last = rows.last().map(Event::id);
    let (before, after) = match &p.cursor {
        None => (None, last.filter(|_| more)),
        Some(Cursor::After(_)) => (first, last.filter(|_| more)),
        Some(Cursor::Before(_)) => (first.filter(|_| more), last),
    };
    Ok(Page {
        data: rows,
        before,
        after,
    })
}

const PRUNED_THROUGH: &str = "events_pruned_through";

/// The highest sequence number pruning has removed (0 when nothing was pruned).
pub fn pruned_through(c: &dyn Db) -> StoreResult<i64> {
    Ok(scalar(
        c,
        "SELECT value FROM store_meta WHERE key = ?",
        vals![PRUNED_THROUGH],
    )?
    .unwrap_or(0))
}

/// Deletes events created before `cutoff_ms`, except those an enabled webhook
/// endpoint has not delivered yet. Returns how many were deleted.
pub fn prune(c: &dyn Db, cutoff_ms: i64) -> StoreResult<u64> {
    let keep_from: i64 = scalar(
        c,
        "SELECT COALESCE(MIN(cursor), 9223372036854775807) FROM webhook_endpoints WHERE enabled = 1",
        &[],
    )?
    .unwrap_or(i64::MAX);
    let through: Option<i64> = scalar(
        c,
        &format!(
            "SELECT MAX(seq) FROM events WHERE created_at < ?1 AND seq <= ?2{}",
            super::visible_events(c.dialect())
        ),
        vals![cutoff_ms, keep_from],
    )?
    .flatten();
    let Some(through) = through else {
        return Ok(0);
    };
    let n = c.exec("DELETE FROM events WHERE seq <= ?", vals![through])?;
    let greatest = match c.dialect() {
        Dialect::Sqlite => "MAX",
        Dialect::Postgres => "GREATEST",
    };
    c.exec(
        &format!(
            "INSERT INTO store_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = {greatest}(store_meta.value, excluded.value)"
        ),
        vals![PRUNED_THROUGH, through],
    )?;
    Ok(n)
}
