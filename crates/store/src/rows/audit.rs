//! The audit log: one record per administrative change, written in the
//! change's transaction, so a committed change always has its record and a
//! rolled-back one never does.

use serde_json::Value;

use crate::db::{Db, Dialect, Row, Val};
use crate::model::{Actor, AuditQuery, AuditRecord};
use crate::{StoreResult, now_ms, vals};

/// The first key of the advisory lock (two-key form, the second is
/// `hashtext(current_schema())`) a PostgreSQL transaction takes before it
/// numbers its audit record. Held to the commit, it makes numbering order the
/// commit order, so a reader following `seq` never passes a record that
/// commits later. SQLite has one writer: its order is the commit order already.
const AUDIT_LOCK: i32 = 0x4175_6469; // "Audi"

/// What an audit record is about: its kind, id and directory.
pub struct Target<'a> {
    pub kind: &'a str,
    pub id: &'a str,
    pub directory: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn directory(id: &'a str) -> Self {
        Target {
            kind: "directory",
            id,
            directory: Some(id),
        }
    }

    pub fn token(id: &'a str, directory: &'a str) -> Self {
        Target {
            kind: "token",
            id,
            directory: Some(directory),
        }
    }

    pub fn admin_key(id: &'a str) -> Self {
        Target {
            kind: "admin_key",
            id,
            directory: None,
        }
    }

    pub fn webhook(id: &'a str, directory: Option<&'a str>) -> Self {
        Target {
            kind: "webhook",
            id,
            directory,
        }
    }
}

/// Records one change. Call it last in the change's transaction: on
/// PostgreSQL it takes a lock held to the commit, and nothing may wait for
/// another lock while holding it.
pub fn record(
    c: &dyn Db,
    actor: &Actor,
    action: &str,
    target: Target<'_>,
    details: &Value,
) -> StoreResult<()> {
    if c.dialect() == Dialect::Postgres {
        c.batch(&format!(
            "SELECT pg_advisory_xact_lock({AUDIT_LOCK}, hashtext(current_schema()))"
        ))?;
    }
    c.exec(
        "INSERT INTO audit_log (at, actor, action, target_type, target_id, directory_id, details)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        vals![
            now_ms(),
            actor.to_string(),
            action,
            target.kind,
            target.id,
            target.directory,
            details.to_string()
        ],
    )?;
    Ok(())
}

const COLUMNS: &str = "seq, at, actor, action, target_type, target_id, directory_id, details";

fn record_row(r: &Row) -> StoreResult<AuditRecord> {
    let details: String = r.get(7)?;
    Ok(AuditRecord {
        seq: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target_type: r.get(4)?,
        target_id: r.get(5)?,
        directory_id: r.get(6)?,
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
    })
}

/// Records after `q.after` oldest first, or with `q.newest` the newest
/// `q.limit` of them (still oldest first), filtered by target and actor.
pub fn list(c: &dyn Db, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
    let mut values: Vec<Val> = vec![q.after.into()];
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > ?1");
    if let Some(target) = &q.target_id {
        values.push(target.into());
        sql.push_str(&format!(" AND target_id = ?{}", values.len()));
    }
    if let Some(actor) = &q.actor {
        values.push(actor.into());
        sql.push_str(&format!(" AND actor = ?{}", values.len()));
    }
    values.push(i64::try_from(q.limit).unwrap_or(i64::MAX).into());
    let order = if q.newest { "DESC" } else { "ASC" };
    sql.push_str(&format!(" ORDER BY seq {order} LIMIT ?{}", values.len()));
    let mut records = c
        .query(&sql, &values)?
        .iter()
        .map(record_row)
        .collect::<StoreResult<Vec<_>>>()?;
    if q.newest {
        records.reverse();
    }
    Ok(records)
}
