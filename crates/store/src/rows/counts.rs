//! Per-directory resource counts, kept with the directory so that nothing
//! that shows how many users or groups a directory holds (an unfiltered
//! list's `totalResults`, the directory objects of `/api/v1` and the WorkOS
//! API, the dashboard, the portal's connection status) reads the resources.
//!
//! A write transaction adds up what its creates, deletes and changes of
//! `active` do to the counts ([`Pending`]) and writes the sum once, just
//! before it commits ([`flush`]): one statement per transaction, so a bulk
//! load's held inserts stay batched (PostgreSQL sends them before any other
//! statement). On PostgreSQL the row stays locked until the commit, which
//! costs nothing more: every write to a directory already holds that
//! directory's write lock until then.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde_json::Value;

use crate::db::{Db, Dialect, Val};
use crate::model::{DirectoryCounts, Kind};
use crate::{StoreResult, vals};

/// What a transaction's writes changed in one directory's counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub users: i64,
    pub inactive_users: i64,
    pub groups: i64,
}

impl Delta {
    fn is_zero(&self) -> bool {
        *self == Delta::default()
    }
}

/// A user is inactive when its `active` is `false`; a missing `active` is
/// active. [`inactive_sql`] says the same in SQL.
pub fn is_inactive(kind: Kind, doc: &Value) -> bool {
    kind == Kind::User && doc.get("active") == Some(&Value::Bool(false))
}

/// The SQL condition of [`is_inactive`] on a `doc` column (users only).
pub fn inactive_sql(d: Dialect, doc: &str) -> String {
    match d {
        Dialect::Sqlite => format!("json_type({doc}, '$.active') = 'false'"),
        Dialect::Postgres => format!("({doc} -> 'active')::text = 'false'"),
    }
}

/// The counts a transaction has changed and not yet written, with marks for
/// the savepoints of operation groups (a group rolled back takes its changes
/// with it).
#[derive(Debug, Default)]
pub struct Pending {
    delta: Cell<Delta>,
    marks: RefCell<Vec<Delta>>,
}

impl Pending {
    fn add(&self, kind: Kind, sign: i64, doc: &Value) {
        let mut d = self.delta.get();
        match kind {
            Kind::User => {
                d.users += sign;
                if is_inactive(kind, doc) {
                    d.inactive_users += sign;
                }
            }
            Kind::Group => d.groups += sign,
        }
        self.delta.set(d);
    }

    pub fn created(&self, kind: Kind, doc: &Value) {
        self.add(kind, 1, doc);
    }

    pub fn deleted(&self, kind: Kind, doc: &Value) {
        self.add(kind, -1, doc);
    }

    /// A resource's document changed from `before` to `after`.
    pub fn changed(&self, kind: Kind, before: &Value, after: &Value) {
        let (was, is) = (is_inactive(kind, before), is_inactive(kind, after));
        if was != is {
            let mut d = self.delta.get();
            d.inactive_users += i64::from(is) - i64::from(was);
            self.delta.set(d);
        }
    }

    /// Remembers the counts at a savepoint.
    pub fn mark(&self) {
        self.marks.borrow_mut().push(self.delta.get());
    }

    /// Forgets the last mark, keeping (`true`) or undoing what came after it.
    pub fn release(&self, keep: bool) {
        if let Some(mark) = self.marks.borrow_mut().pop()
            && !keep
        {
            self.delta.set(mark);
        }
    }

    fn take(&self) -> Delta {
        self.delta.take()
    }
}

/// Writes a transaction's pending counts (if any) into the directory's row.
/// `x = x + n`, so concurrent writers of other directories never conflict
/// and those of one directory (which take turns) never lose an update.
pub fn flush(c: &dyn Db, dir: &str, pending: &Pending) -> StoreResult<()> {
    let d = pending.take();
    if d.is_zero() {
        return Ok(());
    }
    c.exec(
        "INSERT INTO directory_counts (directory_id, user_count, inactive_user_count, group_count)
         VALUES (?, ?, ?, ?)
         ON CONFLICT (directory_id) DO UPDATE SET
             user_count = directory_counts.user_count + excluded.user_count,
             inactive_user_count = directory_counts.inactive_user_count + excluded.inactive_user_count,
             group_count = directory_counts.group_count + excluded.group_count",
        vals![dir, d.users, d.inactive_users, d.groups],
    )?;
    Ok(())
}

/// The counts of the given directories (zeros for one with no resources).
pub fn read(c: &dyn Db, ids: &[String]) -> StoreResult<HashMap<String, DirectoryCounts>> {
    let mut out: HashMap<String, DirectoryCounts> = ids
        .iter()
        .map(|id| (id.clone(), DirectoryCounts::default()))
        .collect();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT directory_id, user_count, inactive_user_count, group_count
             FROM directory_counts WHERE directory_id IN ({marks})"
        );
        let values: Vec<Val> = chunk.iter().map(Val::from).collect();
        for r in c.query(&sql, &values)? {
            let dir: String = r.get(0)?;
            let (users, inactive, groups): (i64, i64, i64) = (r.get(1)?, r.get(2)?, r.get(3)?);
            if let Some(counts) = out.get_mut(&dir) {
                *counts = DirectoryCounts {
                    active_users: users - inactive,
                    inactive_users: inactive,
                    groups,
                };
            }
        }
    }
    Ok(out)
}

/// How many resources of `kind` a directory holds.
pub fn of_kind(c: &dyn Db, dir: &str, kind: Kind) -> StoreResult<u64> {
    let n: Option<i64> =
        crate::db::scalar(c, &format!("SELECT {}", of_kind_sql(kind, "?")), vals![dir])?;
    Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
}

/// [`of_kind`] as a scalar SQL expression, the directory bound as `dir`
/// (`?` or `?N`), to count in the same statement as something else.
pub fn of_kind_sql(kind: Kind, dir: &str) -> String {
    let column = match kind {
        Kind::User => "user_count",
        Kind::Group => "group_count",
    };
    format!("COALESCE((SELECT {column} FROM directory_counts WHERE directory_id = {dir}), 0)")
}

/// The counts table, filled from the resources. Safe to run again at any
/// schema version (it recounts), so the step may move in the migration order.
pub fn migration(d: Dialect) -> String {
    let (text, int) = match d {
        Dialect::Postgres => ("TEXT COLLATE \"C\"", "BIGINT"),
        Dialect::Sqlite => ("TEXT", "INTEGER"),
    };
    let (user, group) = (Kind::User.code(), Kind::Group.code());
    let inactive = inactive_sql(d, "r.doc");
    let without_rowid = match d {
        Dialect::Sqlite => " WITHOUT ROWID",
        Dialect::Postgres => "",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS directory_counts (
    directory_id         {text} PRIMARY KEY REFERENCES directories(id) ON DELETE CASCADE,
    user_count           {int} NOT NULL DEFAULT 0,
    inactive_user_count  {int} NOT NULL DEFAULT 0,
    group_count          {int} NOT NULL DEFAULT 0
){without_rowid};
INSERT INTO directory_counts (directory_id, user_count, inactive_user_count, group_count)
SELECT d.id,
    (SELECT count(*) FROM resources r WHERE r.directory_id = d.id AND r.rtype = {user}),
    (SELECT count(*) FROM resources r WHERE r.directory_id = d.id AND r.rtype = {user} AND {inactive}),
    (SELECT count(*) FROM resources r WHERE r.directory_id = d.id AND r.rtype = {group})
FROM directories d WHERE true
ON CONFLICT (directory_id) DO UPDATE SET
    user_count = excluded.user_count,
    inactive_user_count = excluded.inactive_user_count,
    group_count = excluded.group_count;
"
    )
}

#[cfg(test)]
mod tests {
    use roster_scim::schema::SchemaRegistry;
    use rusqlite::Connection;
    use serde_json::json;

    use super::*;
    use crate::Tx;
    use crate::model::NewResource;
    use crate::rows::tx::DbTx;
    use crate::rows::{admin, directory_api};
    use crate::sqlite::conn;

    fn setup() -> (Connection, SchemaRegistry, String) {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        conn::migrate(&mut c).unwrap();
        let dir = admin::create_directory(&c, "d", &Default::default())
            .unwrap()
            .id;
        (c, SchemaRegistry::core(), dir)
    }

    fn new(kind: Kind, doc: Value) -> NewResource {
        NewResource {
            kind,
            doc,
            members: Vec::new(),
            groups: Vec::new(),
        }
    }

    fn counts(c: &Connection, dir: &str) -> DirectoryCounts {
        read(c, &[dir.to_owned()]).unwrap()[dir]
    }

    fn stored_rows(c: &Connection) -> i64 {
        c.query_row("SELECT count(*) FROM directory_counts", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_rolled_back_group_takes_its_counts_with_it() {
        let (c, reg, dir) = setup();
        let mut tx = DbTx::new(&c, &reg, &dir);
        tx.create(new(Kind::User, json!({"userName": "a", "active": false})))
            .unwrap();
        tx.begin_group().unwrap();
        tx.create(new(Kind::Group, json!({"displayName": "g"})))
            .unwrap();
        tx.create(new(Kind::User, json!({"userName": "b"})))
            .unwrap();
        tx.end_group(false).unwrap();
        tx.begin_group().unwrap();
        tx.create(new(Kind::User, json!({"userName": "c"})))
            .unwrap();
        tx.end_group(true).unwrap();
        tx.settings.finish(&c).unwrap();
        assert_eq!(
            counts(&c, &dir),
            DirectoryCounts {
                active_users: 1,
                inactive_users: 1,
                groups: 0
            }
        );
        // Nothing pending: a second flush writes nothing.
        tx.settings.finish(&c).unwrap();
        assert_eq!(counts(&c, &dir).active_users, 1);
    }

    #[test]
    fn the_migration_recounts_and_may_run_again() {
        let (c, reg, dir) = setup();
        let mut tx = DbTx::new(&c, &reg, &dir);
        for (name, active) in [("a", json!(true)), ("b", json!(false)), ("c", json!("no"))] {
            tx.create(new(Kind::User, json!({"userName": name, "active": active})))
                .unwrap();
        }
        tx.create(new(Kind::Group, json!({"displayName": "g"})))
            .unwrap();
        // Not flushed: only the migration's recount fills the row.
        assert_eq!(counts(&c, &dir), DirectoryCounts::default());
        for _ in 0..2 {
            c.execute_batch(&migration(Dialect::Sqlite)).unwrap();
            assert_eq!(
                counts(&c, &dir),
                DirectoryCounts {
                    active_users: 2,
                    inactive_users: 1,
                    groups: 1
                }
            );
        }
        // The directory's row goes with the directory.
        assert!(directory_api::delete(&c, &crate::model::Actor::Cli, &dir).unwrap());
        assert_eq!(stored_rows(&c), 0);
    }

    #[test]
    fn inactive_in_rust_and_in_sql_agree() {
        let c = Connection::open_in_memory().unwrap();
        for doc in [
            json!({}),
            json!({"active": true}),
            json!({"active": false}),
            json!({"active": "false"}),
            json!({"active": null}),
            json!({"active": 0}),
        ] {
            let sql: bool = c
                .query_row(
                    &format!(
                        "SELECT coalesce({}, 0)",
                        inactive_sql(Dialect::Sqlite, "?1")
                    ),
                    [doc.to_string()],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(sql, is_inactive(Kind::User, &doc), "{doc}");
        }
    }
}
