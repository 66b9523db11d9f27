//! [`Tx`] over a store's open transaction.

use roster_scim::schema::SchemaRegistry;

use super::admin::now_ms;
use super::resources;
use super::settings::DirSettings;
use crate::db::Db;
use crate::model::*;
use crate::{IdempotentReply, StoreError, StoreResult, Tx, vals};

pub struct DbTx<'c> {
    pub conn: &'c dyn Db,
    pub reg: &'c SchemaRegistry,
    pub directory: &'c str,
    /// The directory's settings, read once for the whole transaction.
    pub settings: DirSettings,
    /// A database failure inside an operation: the whole transaction must roll
    /// back, because the failed operation may have left part of its writes.
    pub poisoned: Option<StoreError>,
}

impl<'c> DbTx<'c> {
    pub fn new(conn: &'c dyn Db, reg: &'c SchemaRegistry, directory: &'c str) -> Self {
        DbTx {
            conn,
            reg,
            directory,
            settings: DirSettings::new(directory),
            poisoned: None,
        }
    }

    /// Notes a database failure; protocol errors (validation, uniqueness) stay per-operation.
    fn guard<R>(&mut self, r: StoreResult<R>) -> StoreResult<R> {
        if let Err(StoreError::Database(e)) = &r
            && self.poisoned.is_none()
        {
            self.poisoned = Some(StoreError::Database(e.clone()));
        }
        r
    }

    /// Runs one operation in a nested savepoint: on error it leaves no trace.
    fn op<R>(&self, f: impl FnOnce(&dyn Db) -> StoreResult<R>) -> StoreResult<R> {
        self.conn.batch("SAVEPOINT op")?;
        let result = f(self.conn);
        match &result {
            Ok(_) => self.conn.batch("RELEASE op")?,
            Err(_) => self.conn.batch("ROLLBACK TO op; RELEASE op")?,
        }
        result
    }
}

impl Tx for DbTx<'_> {
    fn create(&mut self, new: NewResource) -> StoreResult<Stored> {
        // No savepoint: `resources::create` refuses before writing anything, and a
        // database failure after that poisons the whole transaction. Savepoints
        // per create cost more than the inserts themselves on bulk loads.
        let r = resources::create(self.conn, self.reg, &self.settings, new);
        self.guard(r)
    }

    fn get(&mut self, kind: Kind, id: &str) -> StoreResult<Option<Stored>> {
        resources::get(self.conn, self.directory, kind, id)
    }

    fn update(
        &mut self,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        f: UpdateFn,
    ) -> StoreResult<Stored> {
        let r = self.op(|c| resources::update(c, self.reg, &self.settings, kind, id, if_match, f));
        self.guard(r)
    }

    fn delete(&mut self, kind: Kind, id: &str, if_match: Option<i64>) -> StoreResult<()> {
        let r = self.op(|c| resources::delete(c, &self.settings, kind, id, if_match));
        self.guard(r)
    }

    fn idempotent_reply(
        &mut self,
        key: &str,
        window_ms: i64,
    ) -> StoreResult<Option<IdempotentReply>> {
        let row = self.conn.query_opt(
            "SELECT request_hash, response FROM idempotency_keys
             WHERE directory_id = ? AND key = ? AND created_at > ?",
            vals![self.directory, key, now_ms() - window_ms],
        )?;
        row.map(|mut r| {
            let response = r.take_text(1)?;
            Ok(IdempotentReply {
                request_hash: r.get(0)?,
                response: serde_json::from_str(&response)?,
            })
        })
        .transpose()
    }

    fn remember_reply(&mut self, key: &str, reply: &IdempotentReply) -> StoreResult<()> {
        // An expired entry under the same key is replaced.
        self.conn.exec(
            "INSERT INTO idempotency_keys (directory_id, key, request_hash, response, created_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (directory_id, key) DO UPDATE SET request_hash = excluded.request_hash,
                 response = excluded.response, created_at = excluded.created_at",
            vals![
                self.directory,
                key,
                &reply.request_hash,
                reply.response.to_string(),
                now_ms()
            ],
        )?;
        Ok(())
    }

    fn expect_creates(&mut self, names: &[(Kind, String)]) -> StoreResult<()> {
        let r = resources::expect_creates(self.conn, self.directory, names);
        self.guard(r)
    }

    fn begin_group(&mut self) -> StoreResult<()> {
        self.conn.batch("SAVEPOINT op_group")?;
        Ok(())
    }

    fn end_group(&mut self, keep: bool) -> StoreResult<()> {
        self.conn.batch(if keep {
            "RELEASE op_group"
        } else {
            "ROLLBACK TO op_group; RELEASE op_group"
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::HashSet;

    use roster_scim::schema::SchemaRegistry;
    use rusqlite::Connection;
    use serde_json::json;

    use super::*;
    use crate::db::{Dialect, Row, Val};
    use crate::events::CustomAttributes;
    use crate::model::SettingsChange;
    use crate::rows::{admin, settings};
    use crate::sqlite::conn;

    /// A connection that holds inserts as PostgreSQL's does, over SQLite,
    /// counting the statements that would send the held ones first.
    struct Holding {
        inner: Connection,
        flushes: Cell<usize>,
        settings_reads: Cell<usize>,
        keys: RefCell<HashSet<String>>,
    }

    impl Db for Holding {
        fn dialect(&self) -> Dialect {
            Dialect::Sqlite
        }
        fn exec(&self, sql: &str, params: &[Val]) -> StoreResult<u64> {
            self.flushes.set(self.flushes.get() + 1);
            self.inner.exec(sql, params)
        }
        fn query(&self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
            self.flushes.set(self.flushes.get() + 1);
            self.inner.query(sql, params)
        }
        fn batch(&self, sql: &str) -> StoreResult<()> {
            self.inner.batch(sql)
        }
        fn insert_later(&self, sql: &str, params: &[Val]) -> StoreResult<()> {
            self.inner.exec(sql, params).map(|_| ())
        }
        fn holds_inserts(&self) -> bool {
            true
        }
        fn hold_key(&self, key: &str, take: bool) -> bool {
            if take {
                self.keys.borrow_mut().insert(key.to_owned())
            } else {
                self.keys.borrow().contains(key)
            }
        }
        fn query_held(&self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
            if sql.contains("FROM directories") {
                self.settings_reads.set(self.settings_reads.get() + 1);
            }
            self.inner.query(sql, params)
        }
    }

    #[test]
    fn a_bulk_of_creates_reads_the_settings_once_and_keeps_inserts_held() {
        let mut c = Connection::open_in_memory().unwrap();
        conn::migrate(&mut c).unwrap();
        let reg = SchemaRegistry::core();
        let dir = admin::create_directory(&c, "d").unwrap().id;
        let mapping = CustomAttributes::parse(
            &reg,
            &json!({"dept": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}),
        )
        .unwrap();
        let change = SettingsChange {
            custom_attributes: Some(Some(mapping)),
            ..Default::default()
        };
        settings::update(&c, &dir, &change).unwrap().unwrap();
        let db = Holding {
            inner: c,
            flushes: Cell::new(0),
            settings_reads: Cell::new(0),
            keys: RefCell::new(HashSet::new()),
        };
        let mut tx = DbTx::new(&db, &reg, &dir);
        for i in 0..100 {
            tx.create(NewResource {
                kind: Kind::User,
                doc: json!({
                    "userName": format!("u{i}"),
                    "emails": [{"value": format!("u{i}@x")}],
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}
                }),
                members: Vec::new(),
                groups: Vec::new(),
            })
            .unwrap();
        }
        assert_eq!(db.settings_reads.get(), 1, "the mapping is read once");
        assert_eq!(
            db.flushes.get(),
            0,
            "no statement sent the held inserts early"
        );
        let data: String = db
            .inner
            .query_row(
                "SELECT data FROM events WHERE type = 'dsync.user.created' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let data: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(data["custom_attributes"], json!({"dept": "D"}));
    }
}
