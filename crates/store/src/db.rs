//! The small SQL interface both stores share.
//!
//! The queries that read and write resources, events, tokens and webhooks are
//! written once against [`Db`], in the SQL that SQLite and PostgreSQL both
//! accept: numbered `?N` placeholders (PostgreSQL's connection rewrites them to
//! `$N`), `ON CONFLICT … DO NOTHING` rather than `INSERT OR IGNORE`, integers
//! rather than booleans. Where the two really differ, code asks
//! [`Db::dialect`]. One copy of the logic means one behaviour to test.

use crate::{StoreError, StoreResult};

/// The SQL dialect of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}

impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Int(i64::from(v))
    }
}

impl From<f64> for Val {
    fn from(v: f64) -> Self {
        Val::Real(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_owned())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}

impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}

impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Self {
        Val::Bytes(v)
    }
}

impl From<&[u8]> for Val {
    fn from(v: &[u8]) -> Self {
        Val::Bytes(v.to_vec())
    }
}

impl From<&Vec<u8>> for Val {
    fn from(v: &Vec<u8>) -> Self {
        Val::Bytes(v.clone())
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

/// Bound parameters: `vals![a, b, c]` converts each with `Val::from`.
#[macro_export]
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::db::Val::from($v)),*][..] };
}

/// One result row.
#[derive(Debug, Clone, Default)]
pub struct Row(pub Vec<Val>);

/// Reads a column into a Rust type.
pub trait FromVal: Sized {
    fn from_val(v: &Val) -> Option<Self>;
}

impl FromVal for i64 {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Int(i) => Some(*i),
            Val::Real(f) => Some(*f as i64),
            _ => None,
        }
    }
}

impl FromVal for bool {
    fn from_val(v: &Val) -> Option<Self> {
        i64::from_val(v).map(|i| i != 0)
    }
}

impl FromVal for f64 {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Int(i) => Some(*i as f64),
            Val::Real(f) => Some(*f),
            _ => None,
        }
    }
}

impl FromVal for String {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromVal for Vec<u8> {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Bytes(b) => Some(b.clone()),
            Val::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
}

impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Null => Some(None),
            other => T::from_val(other).map(Some),
        }
    }
}

impl Row {
    /// Column `i` as `T`; a type mismatch is a database error, never a panic.
    pub fn get<T: FromVal>(&self, i: usize) -> StoreResult<T> {
        let v = self.0.get(i).unwrap_or(&Val::Null);
        T::from_val(v).ok_or_else(|| {
            StoreError::internal(format!(
                "column {i} holds {v:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// Column `i` as text, moved out of the row.
    pub fn take_text(&mut self, i: usize) -> StoreResult<String> {
        match self.0.get_mut(i).map(|v| std::mem::replace(v, Val::Null)) {
            Some(Val::Text(s)) => Ok(s),
            other => Err(StoreError::internal(format!(
                "column {i} holds {other:?}, not text"
            ))),
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A connection inside an open transaction (or in autocommit for reads).
pub trait Db {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the number of rows it changed.
    fn exec(&self, sql: &str, params: &[Val]) -> StoreResult<u64>;
    fn query(&self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>>;
    /// Statements without parameters, separated by `;` (savepoints and the like).
    fn batch(&self, sql: &str) -> StoreResult<()>;

    /// Rows this connection has written so far (held inserts included). An
    /// operation inside a transaction must refuse before its first write;
    /// comparing this before and after tells whether it did.
    fn writes(&self) -> u64;

    /// Runs an INSERT whose row count nobody reads. PostgreSQL holds it and
    /// sends the held rows of one statement together, as one binary COPY
    /// (or one multi-row INSERT where COPY cannot do the same), before the
    /// next other statement or the commit; a bulk load then costs a few
    /// statements instead of several per resource. `sql` must be a plain
    /// `INSERT … VALUES (…)` with bare `?` placeholders.
    fn insert_later(&self, sql: &str, params: &[Val]) -> StoreResult<()> {
        self.exec(sql, params).map(|_| ())
    }

    /// Whether this connection holds inserts back (see [`Db::insert_later`]).
    fn holds_inserts(&self) -> bool {
        false
    }

    /// Notes a unique key taken by a held insert, or tells whether one is:
    /// uniqueness checks must see rows the database has not been sent yet.
    fn hold_key(&self, _key: &str, _take: bool) -> bool {
        false
    }

    /// Notes that a unique key was found free by a check that covered many
    /// (valid until anything but a held insert is sent), or asks whether one was.
    fn free_key(&self, _key: &str, _note: bool) -> bool {
        false
    }

    /// A query that sends no held inserts first: for uniqueness checks,
    /// which consult [`Db::hold_key`] for what is held.
    fn query_held(&self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
        self.query(sql, params)
    }

    /// The position of the next event written in this transaction (PostgreSQL
    /// numbers events per transaction; SQLite's rowid does it instead).
    fn next_event_index(&self) -> StoreResult<i64> {
        Ok(0)
    }

    /// The number (`resources.r`) of a resource about to be inserted: what
    /// its index rows name it by. Unique for as long as the resource lives.
    fn next_resource_number(&self) -> StoreResult<i64> {
        self.query_opt(crate::index::next_number_sql(self.dialect()), &[])?
            .map(|r| r.get(0))
            .transpose()?
            .ok_or_else(|| crate::StoreError::internal("no resource number"))
    }

    /// The first row, if any.
    fn query_opt(&self, sql: &str, params: &[Val]) -> StoreResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// The first column of the first row, if there is a row.
pub fn scalar<T: FromVal>(c: &dyn Db, sql: &str, params: &[Val]) -> StoreResult<Option<T>> {
    c.query_opt(sql, params)?.map(|r| r.get(0)).transpose()
}

/// Rewrites `?N` (and bare `?`, numbered in order) to PostgreSQL's `$N`,
/// leaving quoted strings and identifiers alone.
pub fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 1usize;
    let mut quote: Option<char> = None;
    while let Some(ch) = chars.next() {
        if let Some(q) = quote {
            out.push(ch);
            if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '\'' | '"' => {
                quote = Some(ch);
                out.push(ch);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers_outside_quotes() {
        assert_eq!(
            postgres_placeholders("SELECT '?1', \"a?\" FROM t WHERE a = ?2 AND b = ?10"),
            "SELECT '?1', \"a?\" FROM t WHERE a = $2 AND b = $10"
        );
        assert_eq!(
            postgres_placeholders("INSERT INTO t VALUES (?, ?, ?)"),
            "INSERT INTO t VALUES ($1, $2, $3)"
        );
    }

    #[test]
    fn rows_convert_without_panicking() {
        let r = Row(vec![Val::Int(3), Val::Null, Val::Text("x".into())]);
        assert_eq!(r.get::<i64>(0).unwrap(), 3);
        assert_eq!(r.get::<Option<String>>(1).unwrap(), None);
        assert!(r.get::<i64>(2).is_err());
        assert!(r.get::<String>(9).is_err());
    }
}
