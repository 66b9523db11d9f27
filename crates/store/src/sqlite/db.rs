//! [`Db`] over a rusqlite connection.

use crate::error::DbResultExt;
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, params_from_iter};

use crate::StoreResult;
use crate::db::{Db, Dialect, Row, Val};

fn to_sql(v: &Val) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match v {
        Val::Null => ValueRef::Null,
        Val::Int(i) => ValueRef::Integer(*i),
        Val::Real(f) => ValueRef::Real(*f),
        Val::Text(s) => ValueRef::Text(s.as_bytes()),
        Val::Bytes(b) => ValueRef::Blob(b),
    })
}

fn from_sql(v: SqlValue) -> Val {
    match v {
        SqlValue::Null => Val::Null,
        SqlValue::Integer(i) => Val::Int(i),
        SqlValue::Real(f) => Val::Real(f),
        SqlValue::Text(s) => Val::Text(s),
        SqlValue::Blob(b) => Val::Bytes(b),
    }
}

impl Db for Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&self, sql: &str, params: &[Val]) -> StoreResult<u64> {
        let n = self
            .prepare_cached(sql)
            .db()?
            .execute(params_from_iter(params.iter().map(to_sql)))
            .db()?;
        Ok(n as u64)
    }

    fn query(&self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
        let mut stmt = self.prepare_cached(sql).db()?;
        let width = stmt.column_count();
        let rows = stmt
            .query_map(params_from_iter(params.iter().map(to_sql)), |r| {
                (0..width)
                    .map(|i| r.get::<_, SqlValue>(i).map(from_sql))
                    .collect::<rusqlite::Result<Vec<Val>>>()
                    .map(Row)
            })
            .db()?;
        rows.collect::<rusqlite::Result<Vec<Row>>>().db()
    }

    fn batch(&self, sql: &str) -> StoreResult<()> {
        self.execute_batch(sql).db()?;
        Ok(())
    }

    fn writes(&self) -> u64 {
        self.total_changes()
    }
}
