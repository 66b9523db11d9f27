//! [`Tx`] over a store's open transaction.

use roster_scim::schema::SchemaRegistry;

use super::admin::now_ms;
use super::resources;
use crate::db::Db;
use crate::model::*;
use crate::{IdempotentReply, StoreError, StoreResult, Tx, vals};

pub struct DbTx<'c> {
    pub conn: &'c dyn Db,
    pub reg: &'c SchemaRegistry,
    pub directory: &'c str,
    /// A database failure inside an operation: the whole transaction must roll
    /// back, because the failed operation may have left part of its writes.
    pub poisoned: Option<StoreError>,
}

impl DbTx<'_> {
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
        let r = resources::create(self.conn, self.reg, self.directory, new);
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
        let r = self.op(|c| resources::update(c, self.reg, self.directory, kind, id, if_match, f));
        self.guard(r)
    }

    fn delete(&mut self, kind: Kind, id: &str, if_match: Option<i64>) -> StoreResult<()> {
        let r = self.op(|c| resources::delete(c, self.directory, kind, id, if_match));
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
