//! Connections: [`Db`] over a `postgres` client, the pool's connection
//! manager, and the schema migration.

use crate::error::DbResultExt;
use std::cell::{Cell, RefCell, RefMut};
use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::io::Write;
use std::sync::Arc;

use bytes::BufMut;

use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};

use super::copy::{COPY_CHUNK, CopyForm, CopyPlan, Held, HeldCopy, Source, copy_form};
use crate::db::{Db, Dialect, Row, Val, postgres_placeholders};
use crate::{StoreError, StoreResult};

pub const SCHEMA_VERSION: i64 = 17;
const SCHEMA: &str = include_str!("schema.sql");
/// The advisory lock key that serializes migrations of concurrent starts.
const MIGRATION_LOCK: i64 = 0x526f_7374_6572; // "Roster"

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Val {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Val::Null, _) => Ok(IsNull::Yes),
            (Val::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Val::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Val::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Val::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Val::Int(i), t) if is_text(t) => i.to_string().to_sql(ty, out),
            (Val::Int(i), _) => i.to_sql(ty, out),
            (Val::Real(f), &Type::INT8) => (*f as i64).to_sql(ty, out),
            (Val::Real(f), t) if is_text(t) => f.to_string().to_sql(ty, out),
            (Val::Real(f), _) => f.to_sql(ty, out),
            (Val::Text(s), &Type::JSON) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Val::Text(s), &Type::JSONB) => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Val::Text(s), &Type::INT8) => s.parse::<i64>()?.to_sql(ty, out),
            (Val::Text(s), &Type::BOOL) => (s == "true").to_sql(ty, out),
            (Val::Text(s), &Type::BYTEA) => s.as_bytes().to_sql(ty, out),
            (Val::Text(s), _) => s.as_str().to_sql(&Type::TEXT, out),
            (Val::Bytes(b), _) => b.as_slice().to_sql(&Type::BYTEA, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn is_text(t: &Type) -> bool {
    matches!(
        *t,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

/// A `json`, `jsonb` or text column as text.
struct RawText(String);

impl<'a> FromSql<'a> for RawText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let bytes = if *ty == Type::JSONB {
            raw.get(1..).unwrap_or_default()
        } else {
            raw
        };
        Ok(RawText(std::str::from_utf8(bytes)?.to_owned()))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB) || is_text(ty)
    }
}

fn column(row: &postgres::Row, i: usize) -> Result<Val, postgres::Error> {
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Val::Null, Val::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map_or(Val::Null, |v| Val::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map_or(Val::Null, |v| Val::Int(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Val::Null, |v| Val::Int(v.into())),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)?
            .map_or(Val::Null, Val::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)?
            .map_or(Val::Null, |v| Val::Real(v.into())),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map_or(Val::Null, Val::Bytes),
        _ => row
            .try_get::<_, Option<RawText>>(i)?
            .map_or(Val::Null, |t| Val::Text(t.0)),
    })
}

/// One pooled connection with its prepared statements.
pub struct PgConn {
    /// Always `Some` until the connection is dropped.
    client: RefCell<Option<Client>>,
    statements: RefCell<HashMap<String, Statement>>,
    events: Cell<i64>,
    /// Inserts held back by `insert_later`: each statement's rows, statements
    /// in the order first held; and the unique keys they take.
    held: RefCell<Vec<(String, Held)>>,
    held_keys: RefCell<HashSet<String>>,
    /// Unique keys a batch check found free; only true until the next flush,
    /// since anything else this transaction sends may change them.
    free_keys: RefCell<HashSet<String>>,
    /// How each held statement is sent (`None`: as multi-row INSERTs).
    copy_plans: RefCell<HashMap<String, Option<Arc<CopyPlan>>>>,
    /// Inside `begin` … COMMIT/ROLLBACK, and the transaction's id once asked.
    in_transaction: Cell<bool>,
    xact_id: Cell<Option<i64>>,
    /// Held statements sent so far by COPY and by multi-row INSERT (for tests).
    sent: Cell<(u64, u64)>,
    /// Rows written (see `Db::writes`).
    writes: Cell<u64>,
    /// Resource numbers this connection may still hand out: `[next, end)`,
    /// a block of the `resource_numbers` sequence.
    numbers: Cell<(i64, i64)>,
    /// The session has a statement timeout, which transactions lift (see `begin`).
    read_limit: bool,
}

/// Most parameters in one multi-row INSERT (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;

/// Whether a statement given to `batch` ends the transaction.
fn ends_transaction(sql: &str) -> bool {
    let s = sql.trim_start().to_ascii_uppercase();
    s.starts_with("COMMIT") || (s.starts_with("ROLLBACK") && !s.starts_with("ROLLBACK TO"))
}

/// Most statements a connection keeps prepared (filters make new SQL text).
const STATEMENT_CACHE: usize = 256;

impl PgConn {
    fn client(&self) -> StoreResult<RefMut<'_, Client>> {
        RefMut::filter_map(self.client.borrow_mut(), Option::as_mut).map_err(|_| StoreError::Closed)
    }

    fn statement(&self, sql: &str) -> StoreResult<Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client()?.prepare(&postgres_placeholders(sql)).db()?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= STATEMENT_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    /// Starts a transaction: events it writes are numbered from zero. The
    /// statement timeout is for reads: a transaction (a write, a migration,
    /// an ANALYZE) runs without it, in the same round trip. A cancelled
    /// write would roll back whole, but a large load that a busy database
    /// makes slow would fail again on every retry.
    pub fn begin(&self) -> StoreResult<()> {
        self.events.set(0);
        self.drop_held();
        self.batch(if self.read_limit {
            "BEGIN; SET LOCAL statement_timeout = 0"
        } else {
            "BEGIN"
        })?;
        self.in_transaction.set(true);
        self.xact_id.set(None);
        Ok(())
    }

    /// Events the current (or last) transaction wrote.
    pub fn events_written(&self) -> i64 {
        self.events.get()
    }

    fn drop_held(&self) {
        self.held.borrow_mut().clear();
        self.held_keys.borrow_mut().clear();
        self.free_keys.borrow_mut().clear();
    }

    /// Sends the held inserts: each statement's rows by one binary COPY (or,
    /// for a statement COPY cannot express, as multi-row INSERTs). Statements
    /// go in the order they were first held, except that new resources go
    /// first: they are the parents of the other held rows (index values).
    fn flush(&self) -> StoreResult<()> {
        self.free_keys.borrow_mut().clear();
        if self.held.borrow().is_empty() {
            return Ok(());
        }
        let mut groups = std::mem::take(&mut *self.held.borrow_mut());
        self.held_keys.borrow_mut().clear();
        groups.sort_by_key(|(sql, _)| !sql.trim_start().starts_with("INSERT INTO resources "));
        for (sql, rows) in groups {
            match rows {
                Held::Values(rows) => {
                    let per = (MAX_PARAMS / rows[0].len().max(1)).max(1);
                    for chunk in rows.chunks(per) {
                        self.insert_rows(&sql, chunk)?;
                    }
                }
                Held::Copy(copy) => self.send_copy(copy)?,
            }
        }
        Ok(())
    }

    /// How a held statement is sent: `None` for multi-row INSERTs. Event
    /// numbers need the transaction's id, which only an open transaction keeps.
    fn copy_plan(&self, sql: &str) -> StoreResult<Option<Arc<CopyPlan>>> {
        let cached = self.copy_plans.borrow().get(sql).cloned();
        let plan = match cached {
            Some(plan) => plan,
            None => {
                let plan = match copy_form(sql) {
                    Some(form) => self.prepare_copy(form)?.map(Arc::new),
                    None => None,
                };
                let mut plans = self.copy_plans.borrow_mut();
                if plans.len() >= STATEMENT_CACHE {
                    plans.clear();
                }
                plans.insert(sql.to_owned(), plan.clone());
                plan
            }
        };
        Ok(plan.filter(|p| self.in_transaction.get() || !p.numbers_events()))
    }

    fn prepare_copy(&self, form: CopyForm) -> StoreResult<Option<CopyPlan>> {
        let columns = form.columns.join(", ");
        let mut client = self.client()?;
        // The columns' types, as the binary format needs them.
        let types: Vec<Type> = client
            .prepare(&format!("SELECT {columns} FROM {} LIMIT 0", form.table))
            .db()?
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        // An event number is written as a bigint placeholder and filled in at the flush.
        if form
            .sources
            .iter()
            .zip(&types)
            .any(|(s, t)| matches!(s, Source::EventSeq(_)) && *t != Type::INT8)
        {
            return Ok(None);
        }
        let statement = client
            .prepare(&format!(
                "COPY {} ({columns}) FROM STDIN (FORMAT binary)",
                form.table
            ))
            .db()?;
        Ok(Some(CopyPlan {
            form,
            statement,
            types,
        }))
    }

    /// The transaction's id (`pg_current_xact_id()`, assigned if it had none),
    /// asked once per transaction.
    fn xact_id(&self) -> StoreResult<i64> {
        if let Some(id) = self.xact_id.get() {
            return Ok(id);
        }
        let id: i64 = self
            .client()?
            .query_one("SELECT pg_current_xact_id()::text::bigint", &[])
            .db()?
            .try_get(0)
            .db()?;
        self.xact_id.set(Some(id));
        Ok(id)
    }

    /// Fills in the event numbers as the SQL form computed them,
    /// `(xid << 20) + n`, and sends the rows by one COPY.
    fn send_copy(&self, mut copy: HeldCopy) -> StoreResult<()> {
        if !copy.events.is_empty() {
            let shifted = self.xact_id()?.wrapping_shl(20);
            for (at, n) in &copy.events {
                let seq = shifted
                    .checked_add(*n)
                    .ok_or_else(|| StoreError::internal("event number out of range"))?;
                if let Some(slot) = copy.data.get_mut(*at..*at + 8) {
                    slot.copy_from_slice(&seq.to_be_bytes());
                }
            }
        }
        copy.data.put_i16(-1); // the trailer
        let mut client = self.client()?;
        let mut writer = client.copy_in(&copy.plan.statement).db()?;
        // In pieces, so the writer's own buffer stays small.
        for piece in copy.data.chunks(COPY_CHUNK) {
            writer.write_all(piece).map_err(|e| {
                StoreError::internal_from(format!("COPY {}", copy.plan.form.table), e)
            })?;
        }
        // Dropped unfinished (on an error above), a COPY is aborted.
        writer.finish().db()?;
        let (copies, inserts) = self.sent.get();
        self.sent.set((copies + 1, inserts));
        Ok(())
    }

    fn insert_rows(&self, sql: &str, rows: &[Vec<Val>]) -> StoreResult<()> {
        let at = sql
            .find("VALUES")
            .ok_or_else(|| StoreError::internal("a held insert has no VALUES"))?
            + "VALUES".len();
        let (head, tuple) = sql.split_at(at);
        let tuples = vec![tuple.trim(); rows.len()].join(", ");
        let text = postgres_placeholders(&format!("{head} {tuples}"));
        let values: Vec<&(dyn ToSql + Sync)> = rows
            .iter()
            .flat_map(|p| p.iter().map(|v| v as &(dyn ToSql + Sync)))
            .collect();
        // Unprepared: the text differs with the row count, and one parse per batch is cheap.
        self.client()?.execute(text.as_str(), &values).db()?;
        let (copies, inserts) = self.sent.get();
        self.sent.set((copies, inserts + 1));
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.client.borrow().as_ref().is_none_or(|c| c.is_closed())
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // Closing a client blocks on its own runtime, which panics inside
        // another one: where a runtime runs this drop, close on a thread.
        if let Some(client) = self.client.get_mut().take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            std::thread::spawn(move || drop(client));
        }
    }
}

fn params(p: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Db for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&self, sql: &str, p: &[Val]) -> StoreResult<u64> {
        self.flush()?;
        let stmt = self.statement(sql)?;
        let n = self.client()?.execute(&stmt, &params(p)).db()?;
        self.writes.set(self.writes.get() + n);
        Ok(n)
    }

    fn query(&self, sql: &str, p: &[Val]) -> StoreResult<Vec<Row>> {
        self.flush()?;
        let rows = self.query_held(sql, p)?;
        // `DELETE … RETURNING` and the like: one row back per row written.
        let verb = sql.trim_start().get(..6).unwrap_or_default();
        if ["INSERT", "UPDATE", "DELETE"]
            .iter()
            .any(|w| verb.eq_ignore_ascii_case(w))
        {
            self.writes.set(self.writes.get() + rows.len() as u64);
        }
        Ok(rows)
    }

    fn writes(&self) -> u64 {
        self.writes.get()
    }

    fn query_held(&self, sql: &str, p: &[Val]) -> StoreResult<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let rows = self.client()?.query(&stmt, &params(p)).db()?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| column(r, i))
                    .collect::<Result<Vec<Val>, _>>()
                    .map(Row)
                    .map_err(postgres_error)
            })
            .collect()
    }

    fn batch(&self, sql: &str) -> StoreResult<()> {
        // Savepoints are taken with nothing held, so whatever is held when
        // one is rolled back came after it: it goes too.
        if sql
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("ROLLBACK")
        {
            self.drop_held();
        } else {
            self.flush()?;
        }
        if ends_transaction(sql) {
            // Ended whether or not this succeeds (a failed COMMIT rolls back).
            self.in_transaction.set(false);
            self.xact_id.set(None);
        }
        self.client()?.batch_execute(sql).db()?;
        Ok(())
    }

    fn insert_later(&self, sql: &str, params: &[Val]) -> StoreResult<()> {
        // A few statements, each held many times.
        let known = self.held.borrow().iter().position(|(s, _)| s == sql);
        let i = match known {
            Some(i) => i,
            None => {
                let rows = match self.copy_plan(sql)? {
                    Some(plan) => Held::Copy(plan.start()),
                    None => Held::Values(Vec::new()),
                };
                let mut held = self.held.borrow_mut();
                held.push((sql.to_owned(), rows));
                held.len() - 1
            }
        };
        match self.held.borrow_mut().get_mut(i).map(|(_, rows)| rows) {
            Some(Held::Values(rows)) => rows.push(params.to_vec()),
            Some(Held::Copy(copy)) => copy.push(params)?,
            None => {}
        }
        // Counted once held: a row that failed to encode left nothing behind.
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }

    fn holds_inserts(&self) -> bool {
        true
    }

    fn free_key(&self, key: &str, note: bool) -> bool {
        if note {
            self.free_keys.borrow_mut().insert(key.to_owned());
            true
        } else {
            self.free_keys.borrow().contains(key)
        }
    }

    fn hold_key(&self, key: &str, take: bool) -> bool {
        if take {
            self.held_keys.borrow_mut().insert(key.to_owned());
            true
        } else {
            self.held_keys.borrow().contains(key)
        }
    }

    fn next_resource_number(&self) -> StoreResult<i64> {
        // One round trip per block of numbers, not per resource: a bulk load
        // holds its inserts and must not stop for each. Numbers of a block
        // a rolled-back transaction took are simply never used.
        let (next, end) = self.numbers.get();
        if next < end {
            self.numbers.set((next + 1, end));
            return Ok(next);
        }
        let base: i64 = self
            .query_held(crate::index::next_number_sql(Dialect::Postgres), &[])?
            .first()
            .map(|r| r.get(0))
            .transpose()?
            .ok_or_else(|| StoreError::internal("no resource number"))?;
        self.numbers
            .set((base + 1, base + crate::index::NUMBER_BLOCK));
        Ok(base)
    }

    fn next_event_index(&self) -> StoreResult<i64> {
        let n = self.events.get();
        if n >= 1 << 20 {
            return Err(StoreError::internal(
                "one transaction wrote more than 1,048,576 events; split the request",
            ));
        }
        self.events.set(n + 1);
        Ok(n)
    }
}

impl<T> DbResultExt<T> for Result<T, postgres::Error> {
    fn db(self) -> StoreResult<T> {
        self.map_err(postgres_error)
    }
}

/// A PostgreSQL error as the domain sees it: a lost connection or a server
/// that cannot serve now is unavailable, a cancelled statement (57014
/// query_canceled: the statement timeout, or an operator's cancel) a
/// timeout, anything else a fault.
pub fn postgres_error(e: postgres::Error) -> StoreError {
    {
        // The server's message, not the Debug form with the statement text,
        // nor its DETAIL line, which quotes the values of the rows involved:
        // no source is kept for a server's error.
        match e.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                let detail = format!("{} ({code})", db.message());
                if unavailable_sqlstate(code) {
                    StoreError::Unavailable(detail)
                } else if code == QUERY_CANCELED {
                    StoreError::Timeout { limit_ms: None }
                } else {
                    StoreError::internal(detail)
                }
            }
            None if lost_connection(&e) => StoreError::Unavailable(e.to_string()),
            None => StoreError::internal_from("a PostgreSQL call failed", e),
        }
    }
}

/// SQLSTATE query_canceled: what `statement_timeout` (or `pg_cancel_backend`) raises.
const QUERY_CANCELED: &str = "57014";

/// SQLSTATEs that mean "the server cannot serve this connection now", not
/// "this statement is wrong": class 08 (connection exceptions), 57P01
/// admin_shutdown (a restart ends every session), 57P02 crash_shutdown,
/// 57P03 cannot_connect_now (still starting or in recovery).
fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// A client-side error that means the server is gone or unreachable: the
/// connection closed, or the socket failed (refused, reset, timed out).
/// postgres::Error hides its kind, so the socket case is found by its source.
fn lost_connection(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// A pool checkout that failed: r2d2 gives up after `acquire_timeout`,
/// whether every connection was busy or none could be opened (the last
/// connect error is in its message). Either way, retrying later can work.
pub(super) fn pool_unavailable(e: &r2d2::Error) -> StoreError {
    StoreError::Unavailable(format!("no PostgreSQL connection available: {e}"))
}

/// Opens connections for the pool; `schema`, when set, is where this
/// store's tables live (tests give each run its own).
#[derive(Debug, Clone)]
pub struct Manager {
    pub config: postgres::Config,
    /// TLS per the URL's `sslmode`; `None` for `sslmode=disable`.
    pub tls: Option<super::tls::RustlsConnect>,
    pub schema: Option<String>,
    /// Each session's `statement_timeout` (reads only: see [`PgConn::begin`]).
    pub statement_timeout: Option<std::time::Duration>,
}

/// A connection that could not be made, with its causes in its text: the
/// pool keeps only the text of the last one, and the driver's own says only
/// "error performing TLS handshake", not what was wrong with the certificate.
#[derive(Debug)]
pub struct ConnectError(pub postgres::Error);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(&self.0);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl std::error::Error for ConnectError {}

impl From<postgres::Error> for ConnectError {
    fn from(e: postgres::Error) -> Self {
        ConnectError(e)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = ConnectError;

    fn connect(&self) -> Result<PgConn, ConnectError> {
        let mut client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone())?,
            None => self.config.connect(NoTls)?,
        };
        // Notices ("already exists, skipping") are not worth a log line each.
        // Custom plans always: a generic plan cannot see a filter's values,
        // and for `co` it reads a whole directory's values where the custom
        // plan reads a trigram index (docs/benchmarks.md, PostgreSQL at scale).
        // No JIT: every statement here is an index lookup or a count, and a
        // statement reaches JIT's cost threshold only when the planner
        // overestimates it; compiling then took 177 ms of a 218 ms page
        // whose rows took 0.1 ms (1,000,000 users).
        client.batch_execute(
            "SET client_min_messages TO warning; SET plan_cache_mode TO force_custom_plan; \
             SET jit = off",
        )?;
        if let Some(schema) = &self.schema {
            let quoted = schema.replace('"', "");
            client.batch_execute(&format!("SET search_path TO \"{quoted}\", public"))?;
        }
        if let Some(limit) = self.statement_timeout {
            // In milliseconds, at least one: 0 would turn the limit off.
            let ms = limit.as_millis().max(1);
            client.batch_execute(&format!("SET statement_timeout = {ms}"))?;
        }
        Ok(PgConn {
            client: RefCell::new(Some(client)),
            statements: RefCell::new(HashMap::new()),
            events: Cell::new(0),
            held: RefCell::new(Vec::new()),
            held_keys: RefCell::new(HashSet::new()),
            free_keys: RefCell::new(HashSet::new()),
            copy_plans: RefCell::new(HashMap::new()),
            in_transaction: Cell::new(false),
            xact_id: Cell::new(None),
            sent: Cell::new((0, 0)),
            writes: Cell::new(0),
            numbers: Cell::new((0, 0)),
            read_limit: self.statement_timeout.is_some(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), ConnectError> {
        match conn.client.get_mut() {
            Some(c) => c.simple_query("").map(|_| ()).map_err(ConnectError),
            None => Ok(()),
        }
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.is_closed()
    }
}

/// Creates or upgrades the schema. An advisory lock makes instances that
/// start together take turns: the first migrates, the others find it done.
pub fn migrate(conn: &PgConn) -> StoreResult<()> {
    conn.begin()?;
    let result = migrate_in_transaction(conn);
    match &result {
        Ok(()) => conn.batch("COMMIT")?,
        Err(_) => {
            let _ = conn.batch("ROLLBACK");
        }
    }
    result
}

/// Fills the attribute index after the migration that made it, or anew when
/// the schemas changed since it was built; under the migration lock, so one
/// instance does it.
/// Returns how many resources a rebuild indexed (see [`crate::index::ensure`]).
pub fn ensure_index(
    conn: &PgConn,
    reg: &roster_scim::schema::SchemaRegistry,
) -> StoreResult<Option<u64>> {
    conn.begin()?;
    let result = conn
        .exec(
            "SELECT pg_advisory_xact_lock(?)",
            crate::vals![MIGRATION_LOCK],
        )
        .and_then(|_| crate::index::ensure(conn, reg));
    match &result {
        Ok(_) => conn.batch("COMMIT")?,
        Err(_) => {
            let _ = conn.batch("ROLLBACK");
        }
    }
    result
}

fn migrate_in_transaction(conn: &PgConn) -> StoreResult<()> {
    conn.exec(
        "SELECT pg_advisory_xact_lock(?)",
        crate::vals![MIGRATION_LOCK],
    )?;
    conn.batch(
        "CREATE TABLE IF NOT EXISTS roster_schema (version BIGINT NOT NULL);
         INSERT INTO roster_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM roster_schema);",
    )?;
    let version: i64 =
        crate::db::scalar(conn, "SELECT version FROM roster_schema", &[])?.unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(StoreError::internal(format!(
            "the database has schema version {version}, newer than this Roster ({SCHEMA_VERSION}); upgrade Roster"
        )));
    }
    if version < 1 {
        conn.batch(SCHEMA)?;
        create_fold(conn)?;
        create_trigram_indexes(conn)?;
    }
    if version < 2 {
        // A directory's custom-attribute mapping (JSON: output key -> SCIM
        // attribute path); NULL: the Enterprise User attributes.
        conn.batch("ALTER TABLE directories ADD COLUMN custom_attributes TEXT")?;
    }
    if version < 3 {
        // Who owns a directory (the app's organization id, a domain) and which
        // provider feeds it; directory_organizations outlives the directory so
        // that its events stay findable by organization.
        conn.batch(
            "ALTER TABLE directories ADD COLUMN organization_id TEXT COLLATE \"C\";
             ALTER TABLE directories ADD COLUMN domain TEXT;
             ALTER TABLE directories ADD COLUMN provider TEXT;
             ALTER TABLE directories ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
             UPDATE directories SET updated_at = created_at;
             CREATE INDEX directories_organization ON directories(organization_id, id)
                 WHERE organization_id IS NOT NULL;
             CREATE TABLE directory_organizations (
                 directory_id     TEXT COLLATE \"C\" PRIMARY KEY,
                 organization_id  TEXT COLLATE \"C\" NOT NULL
             );
             CREATE INDEX directory_organizations_org ON directory_organizations(organization_id);",
        )?;
    }
    if version < 4 {
        // A webhook endpoint's payload and signature format ('roster' or
        // 'workos'), and when its settings last changed (NULL: never since
        // it was created).
        conn.batch(
            "ALTER TABLE webhook_endpoints ADD COLUMN format TEXT NOT NULL DEFAULT 'roster';
             ALTER TABLE webhook_endpoints ADD COLUMN updated_at BIGINT;",
        )?;
    }
    if version < 5 {
        // How deliveries to an endpoint are shaped (NULL max_in_flight: the
        // setting), and how far a dispatcher may have sent.
        conn.batch(
            "ALTER TABLE webhook_endpoints ADD COLUMN max_in_flight BIGINT;
             ALTER TABLE webhook_endpoints ADD COLUMN batch_max_events BIGINT NOT NULL DEFAULT 1;
             ALTER TABLE webhook_endpoints ADD COLUMN batch_max_wait_ms BIGINT NOT NULL DEFAULT 0;
             ALTER TABLE webhook_endpoints ADD COLUMN sent_through BIGINT NOT NULL DEFAULT 0;",
        )?;
    }
    if version < 6 {
        // Admin key scopes and rotation (`directories`: a JSON array of ids,
        // NULL for all), and the audit log, numbered in commit order under
        // the lock `rows::audit` takes.
        conn.batch(
            "ALTER TABLE admin_keys ADD COLUMN read_only BIGINT NOT NULL DEFAULT 0;
             ALTER TABLE admin_keys ADD COLUMN directories TEXT;
             ALTER TABLE admin_keys ADD COLUMN rotated_at BIGINT;
             CREATE TABLE audit_log (
                 seq           BIGSERIAL PRIMARY KEY,
                 at            BIGINT NOT NULL,
                 actor         TEXT COLLATE \"C\" NOT NULL,
                 action        TEXT NOT NULL,
                 target_type   TEXT NOT NULL,
                 target_id     TEXT COLLATE \"C\" NOT NULL,
                 directory_id  TEXT COLLATE \"C\",
                 details       TEXT NOT NULL
             );
             CREATE INDEX audit_log_target ON audit_log(target_id, seq);
             CREATE INDEX audit_log_actor ON audit_log(actor, seq);",
        )?;
    }
    if version < 7 {
        conn.batch(crate::rows::google::MIGRATION)?;
    }
    if version < 8 {
        conn.batch(crate::rows::web_sessions::MIGRATION)?;
        conn.batch(crate::rows::webhooks::RESPONSE_EXCERPT)?;
    }
    if version < 9 {
        // The provider request log, its hourly counts, and portal links.
        conn.batch(&crate::rows::portal::migration(
            crate::db::Dialect::Postgres,
        ))?;
    }
    if version < 10 {
        // Google polls stage their listings here before applying them.
        conn.batch(&crate::rows::google_staging::migration(
            crate::db::Dialect::Postgres,
        ))?;
    }
    if version < 11 {
        conn.batch(crate::rows::google::POLL_STATE)?;
    }
    if version < 12 {
        // Resource numbers and the attribute index behind filters.
        conn.batch(&crate::index::migration(crate::db::Dialect::Postgres))?;
    }
    if version < 13 {
        // Each directory's resource counts, kept as resources come and go.
        conn.batch(&crate::rows::counts::migration(
            crate::db::Dialect::Postgres,
        ))?;
    }
    if version < 14 {
        // Names are searched through the attribute index (version 17 gives
        // it the trigram index), so the name column's own goes.
        conn.batch("DROP INDEX IF EXISTS resources_name_trgm")?;
    }
    if version < 15 {
        // `attr_index` holds the folded emails.value and phoneNumbers.value
        // this table kept, and the compiler reads them there (its indexes,
        // the trigram one included, go with it).
        conn.batch("DROP TABLE IF EXISTS resource_values")?;
    }
    if version < 16 {
        // `meta.created` ranges, as resources_modified serves lastModified.
        conn.batch(
            "CREATE INDEX resources_created ON resources(directory_id, rtype, created, id)",
        )?;
    }
    if version < 17 {
        // Substring search over a row per distinct text value, not over
        // every entry (see `index::text`).
        conn.batch(&crate::index::text::pg_values_migration())?;
        create_values_trigram_index(conn)?;
    }
    conn.exec(
        "UPDATE roster_schema SET version = ?",
        crate::vals![SCHEMA_VERSION],
    )?;
    Ok(())
}

/// `roster_fold(text)`: the case folding of `roster_scim::values::fold`
/// (Rust's `to_lowercase`), which ICU's root locale matches; without ICU,
/// the database's own `lower` (exact for everything but a few scripts).
fn create_fold(conn: &PgConn) -> StoreResult<()> {
    let icu: Option<i64> = crate::db::scalar(
        conn,
        "SELECT 1::bigint FROM pg_collation WHERE collname = 'und-x-icu' LIMIT 1",
        &[],
    )?;
    let body = if icu.is_some() {
        "lower(t COLLATE \"und-x-icu\")"
    } else {
        tracing::warn!(
            "PostgreSQL has no ICU collation: case-insensitive filters fold with lower()"
        );
        "lower(t)"
    };
    conn.batch(&format!(
        "CREATE FUNCTION roster_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
         AS $f$ SELECT {body} $f$"
    ))
}

/// Trigram indexes make `co` and `ew` on userName/displayName and
/// `emails.value` index searches. They need the pg_trgm extension; where it
/// cannot be installed those filters still work, by scanning.
fn create_trigram_indexes(conn: &PgConn) -> StoreResult<()> {
    let Some(ops) = trigram_ops(conn)? else {
        return Ok(());
    };
    conn.batch(&format!(
        "CREATE INDEX resources_name_trgm ON resources USING gin (name_key {ops});
         CREATE INDEX resource_values_trgm ON resource_values USING gin (value {ops});"
    ))
}

/// Substring search over the distinct text values (`crate::index::text`):
/// one trigram index on `attr_text_values.v` serves `co` and `ew` on every
/// attribute.
fn create_values_trigram_index(conn: &PgConn) -> StoreResult<()> {
    let Some(ops) = trigram_ops(conn)? else {
        return Ok(());
    };
    conn.batch(&format!(
        "CREATE INDEX attr_text_values_trgm ON attr_text_values USING gin (v {ops});"
    ))
}

/// `gin_trgm_ops`, qualified by the schema pg_trgm lives in, after
/// installing the extension if it can be; `None` when it is not available.
fn trigram_ops(conn: &PgConn) -> StoreResult<Option<String>> {
    conn.batch("SAVEPOINT trgm")?;
    if let Err(e) = conn.batch("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public") {
        // Another instance may be creating it at this moment; it is there or it is not.
        tracing::debug!("CREATE EXTENSION pg_trgm: {e}");
        conn.batch("ROLLBACK TO trgm")?;
    }
    conn.batch("RELEASE trgm")?;
    let schema: Option<String> = crate::db::scalar(
        conn,
        "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_trgm'",
        &[],
    )?;
    let Some(schema) = schema else {
        tracing::warn!(
            "the pg_trgm extension is not available: co and ew filters will scan a directory"
        );
        return Ok(None);
    };
    Ok(Some(format!(
        "\"{}\".gin_trgm_ops",
        schema.replace('"', "")
    )))
}

#[cfg(test)]
mod tests {
    use r2d2::ManageConnection;
    use roster_scim::schema::SchemaRegistry;
    use serde_json::json;

    use super::*;
    use crate::Tx;
    use crate::model::{Kind, NewResource};
    use crate::rows::{admin, tx::DbTx};

    #[test]
    fn commit_and_rollback_end_a_transaction_and_savepoints_do_not() {
        assert!(ends_transaction("COMMIT"));
        assert!(ends_transaction(" rollback"));
        assert!(!ends_transaction("ROLLBACK TO op; RELEASE op"));
        assert!(!ends_transaction("RELEASE op"));
    }

    use roster_testkit::pg::Schema;

    /// A schema of this test's own (dropped at the end) with Roster's tables;
    /// `None` when the PostgreSQL tests are skipped (no PostgreSQL).
    fn fresh() -> Option<(Schema, PgConn)> {
        fresh_with(None)
    }

    fn fresh_with(statement_timeout: Option<std::time::Duration>) -> Option<(Schema, PgConn)> {
        let schema = Schema::create()?;
        let manager = Manager {
            config: schema.database_url().parse().unwrap(),
            tls: None,
            schema: Some(schema.name().to_owned()),
            statement_timeout,
        };
        let c = manager.connect().unwrap();
        migrate(&c).unwrap();
        Some((schema, c))
    }

    /// A directory, committed: what the tests write into.
    fn directory(c: &PgConn) -> String {
        c.begin().unwrap();
        let dir = admin::create_directory(c, "d", &Default::default())
            .unwrap()
            .id;
        c.batch("COMMIT").unwrap();
        dir
    }

    fn count(c: &PgConn, sql: &str) -> i64 {
        crate::db::scalar(c, sql, &[]).unwrap().unwrap()
    }

    #[test]
    fn a_bulk_of_creates_is_sent_by_copy_with_the_events_numbered_as_sql_numbers_them() {
        let Some((_schema, c)) = fresh() else {
            return;
        };
        let reg = SchemaRegistry::core();
        let dir = directory(&c);

        c.begin().unwrap();
        let before = c.sent.get();
        // Enough that the events' COPY data spans several chunks.
        const N: i64 = 300;
        let names: Vec<(Kind, String)> = (0..N).map(|i| (Kind::User, format!("u{i}"))).collect();
        let mut tx = DbTx::new(&c, &reg, &dir);
        tx.expect_creates(&names).unwrap();
        for (_, name) in &names {
            tx.create(NewResource {
                kind: Kind::User,
                doc: json!({
                    "userName": name,
                    "emails": [{"value": format!("{name}@example.com")}],
                    "phoneNumbers": [{"value": "+1 555 0100"}]
                }),
                members: Vec::new(),
                groups: Vec::new(),
            })
            .unwrap();
        }
        // A name held but not yet sent is still taken.
        assert!(
            tx.create(NewResource {
                kind: Kind::User,
                doc: json!({"userName": "u7"}),
                members: Vec::new(),
                groups: Vec::new(),
            })
            .is_err()
        );
        let xid = count(&c, "SELECT pg_current_xact_id()::text::bigint");
        c.batch("COMMIT").unwrap();
        let (copies, inserts) = c.sent.get();
        assert_eq!(
            (copies - before.0, inserts - before.1),
            (3, 0),
            "one COPY each for resources, attribute index rows and events"
        );
        // The seq the SQL form computed: the transaction's id << 20, plus 0, 1, …
        let positions: Vec<i64> = c
            .query(
                "SELECT seq & 1048575 FROM events WHERE seq >> 20 = ? ORDER BY seq",
                crate::vals![xid],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0).unwrap())
            .collect();
        assert_eq!(positions, (0..N).collect::<Vec<i64>>());
        assert_eq!(
            count(&c, "SELECT count(*) FROM resources WHERE version = 1"),
            N
        );
        // userName, emails.value and phoneNumbers.value of every user, numbered apart.
        assert_eq!(count(&c, "SELECT count(*) FROM attr_index"), 3 * N);
        assert_eq!(
            count(&c, "SELECT count(DISTINCT r) FROM attr_index"),
            count(&c, "SELECT count(*) FROM resources WHERE rtype = 1")
        );

        // A request's check of its names finds the ones the table has.
        c.begin().unwrap();
        let mut tx = DbTx::new(&c, &reg, &dir);
        let user = |name: &str| NewResource {
            kind: Kind::User,
            doc: json!({ "userName": name }),
            members: Vec::new(),
            groups: Vec::new(),
        };
        tx.expect_creates(&[(Kind::User, "u5".into()), (Kind::User, "v1".into())])
            .unwrap();
        assert!(tx.create(user("u5")).is_err(), "u5 exists");
        tx.create(user("v1")).unwrap();
        c.batch("COMMIT").unwrap();
        assert_eq!(
            count(
                &c,
                "SELECT count(*) FROM resources WHERE name_key IN ('u5', 'v1')"
            ),
            2
        );
        let doc: String = crate::db::scalar(
            &c,
            "SELECT doc::text FROM resources WHERE name_key = 'u3'",
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&doc).unwrap()["emails"][0]["value"],
            "u3@example.com"
        );
    }

    #[test]
    fn new_resources_are_sent_before_the_rows_that_refer_to_them() {
        let Some((_schema, c)) = fresh() else {
            return;
        };
        c.begin().unwrap();
        let dir = admin::create_directory(&c, "d", &Default::default())
            .unwrap()
            .id;
        c.insert_later(
            "INSERT INTO group_members (directory_id, group_id, member_id, member_type) VALUES (?, ?, ?, ?)",
            crate::vals![&dir, "g1", "u1", 1i64],
        )
        .unwrap();
        for (id, r, rtype) in [("u1", 1i64, 1i64), ("g1", 2, 2)] {
            c.insert_later(
                "INSERT INTO resources (id, r, directory_id, rtype, name_key, display, external_id, doc, version, created, last_modified)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                crate::vals![id, r, &dir, rtype, id, id, Val::Null, "{}", 0i64, 0i64],
            )
            .unwrap();
        }
        c.batch("COMMIT").unwrap();
        assert_eq!(count(&c, "SELECT count(*) FROM group_members"), 1);
    }

    #[test]
    fn a_row_that_cannot_be_encoded_is_refused_whole() {
        let Some((_schema, c)) = fresh() else {
            return;
        };
        c.begin().unwrap();
        let dir = admin::create_directory(&c, "d", &Default::default())
            .unwrap()
            .id;
        let sql = "INSERT INTO resources (id, r, directory_id, rtype, name_key, display, external_id, doc, version, created, last_modified)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)";
        c.insert_later(
            sql,
            crate::vals![
                "r1",
                1i64,
                &dir,
                1i64,
                "a",
                "a",
                Val::Null,
                "{}",
                0i64,
                0i64
            ],
        )
        .unwrap();
        // `rtype` is a bigint: the row fails half-way through its encoding.
        let bad = c.insert_later(
            sql,
            crate::vals![
                "r2",
                2i64,
                &dir,
                "one",
                "b",
                "b",
                Val::Null,
                "{}",
                0i64,
                0i64
            ],
        );
        assert!(bad.is_err());
        c.insert_later(
            sql,
            crate::vals!["r3", 3i64, &dir, 1i64, "c", "c", "x", "{}", 0i64, 0i64],
        )
        .unwrap();
        c.batch("COMMIT").unwrap();
        assert_eq!(
            count(
                &c,
                "SELECT count(*) FROM resources WHERE id IN ('r1', 'r3')"
            ),
            2
        );
        assert_eq!(count(&c, "SELECT count(*) FROM resources"), 2);
    }

    #[test]
    fn events_held_outside_a_transaction_go_as_an_insert() {
        let Some((_schema, c)) = fresh() else {
            return;
        };
        let dir = directory(&c);
        let events = count(&c, "SELECT count(*) FROM events");
        let before = c.sent.get();
        crate::rows::outbox::emit(&c, &dir, "x", &json!({})).unwrap();
        assert_eq!(count(&c, "SELECT count(*) FROM events"), events + 1);
        assert_eq!(c.sent.get(), (before.0, before.1 + 1));
    }

    #[test]
    fn a_read_past_the_statement_timeout_is_stopped_and_a_transaction_is_not() {
        let Some((_schema, c)) = fresh_with(Some(std::time::Duration::from_millis(50))) else {
            return;
        };
        let e = c.query("SELECT pg_sleep(2)::text", &[]).unwrap_err();
        assert!(matches!(e, StoreError::Timeout { limit_ms: None }), "{e:?}");
        // The same session serves the next statement.
        assert_eq!(count(&c, "SELECT 7::bigint"), 7);
        // A transaction lifts the limit for itself alone.
        c.begin().unwrap();
        c.query("SELECT pg_sleep(0.2)::text", &[]).unwrap();
        c.batch("COMMIT").unwrap();
        let e = c.query("SELECT pg_sleep(2)::text", &[]).unwrap_err();
        assert!(matches!(e, StoreError::Timeout { .. }), "{e:?}");
    }

    #[test]
    fn outage_sqlstates_are_unavailable_and_statement_errors_are_not() {
        for code in [
            "08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P03",
        ] {
            assert!(unavailable_sqlstate(code), "{code}");
        }
        for code in [
            "23505", "40001", "40P01", "42P01", "57014", "53300", "XX000",
        ] {
            assert!(!unavailable_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn a_refused_connection_is_unavailable() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(port)
            .user("roster")
            .connect_timeout(std::time::Duration::from_secs(2));
        let e = config.connect(NoTls).map(drop).unwrap_err();
        let e = postgres_error(e);
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    }

    #[test]
    fn a_terminated_session_is_unavailable_and_a_bad_statement_is_not() {
        let Some(pg) = roster_testkit::pg::postgres() else {
            return;
        };
        let mut c = Client::connect(pg.url(), NoTls).expect("the test PostgreSQL answers");
        let bad = postgres_error(c.batch_execute("SELEC 1").unwrap_err());
        assert!(matches!(bad, StoreError::Internal { .. }), "{bad:?}");
        // What a server restart does to every session: 57P01 admin_shutdown.
        let killed = postgres_error(
            c.batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
                .unwrap_err(),
        );
        assert!(matches!(killed, StoreError::Unavailable(_)), "{killed:?}");
        // And every later call on that connection, until the pool drops it.
        let closed = postgres_error(c.batch_execute("SELECT 1").unwrap_err());
        assert!(matches!(closed, StoreError::Unavailable(_)), "{closed:?}");
    }

    /// A bulk of creates sent by COPY, with a group rolled back, leaves the
    /// counts equal to counting; the recount of the migration agrees.
    #[test]
    fn a_bulk_by_copy_keeps_the_directory_counts() {
        let Some((_schema, c)) = fresh() else {
            return;
        };
        let reg = SchemaRegistry::core();
        let dir = directory(&c);
        c.begin().unwrap();
        let mut tx = DbTx::new(&c, &reg, &dir);
        let names: Vec<(Kind, String)> = (0..50).map(|i| (Kind::User, format!("u{i}"))).collect();
        tx.expect_creates(&names).unwrap();
        let user = |i: usize| NewResource {
            kind: Kind::User,
            doc: json!({"userName": format!("u{i}"), "active": !i.is_multiple_of(3)}),
            members: Vec::new(),
            groups: Vec::new(),
        };
        for i in 0..40 {
            tx.create(user(i)).unwrap();
        }
        tx.begin_group().unwrap();
        for i in 40..50 {
            tx.create(user(i)).unwrap();
        }
        tx.end_group(false).unwrap();
        tx.settings.finish(&c).unwrap();
        c.batch("COMMIT").unwrap();
        let want = crate::model::DirectoryCounts {
            active_users: count(
                &c,
                "SELECT count(*) FROM resources WHERE doc->>'active' = 'true'",
            ),
            inactive_users: count(
                &c,
                "SELECT count(*) FROM resources WHERE doc->>'active' = 'false'",
            ),
            groups: 0,
        };
        assert_eq!((want.active_users, want.inactive_users), (26, 14));
        let read = || crate::rows::counts::read(&c, std::slice::from_ref(&dir)).unwrap()[&dir];
        assert_eq!(read(), want);
        c.batch(&crate::rows::counts::migration(
            crate::db::Dialect::Postgres,
        ))
        .unwrap();
        assert_eq!(read(), want);
    }

    /// The distinct text values of a directory's users, as `attr_text_values` holds them.
    fn text_values(c: &PgConn) -> Vec<(i64, String)> {
        c.query("SELECT k, v FROM attr_text_values ORDER BY k, v", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
            .collect()
    }

    #[test]
    fn value_rows_come_with_the_first_entry_and_go_with_the_last() {
        let Some((_schema, c)) = fresh() else {
            return;
        };
        let reg = SchemaRegistry::core();
        // As the server opens the store: the index is built for its schemas.
        c.begin().unwrap();
        crate::index::ensure(&c, &reg).unwrap();
        c.batch("COMMIT").unwrap();
        let dir = directory(&c);
        let user = |name: &str, title: &str| NewResource {
            kind: Kind::User,
            doc: json!({"userName": name, "title": title, "active": true}),
            members: Vec::new(),
            groups: Vec::new(),
        };
        let titles = |c: &PgConn| -> Vec<String> {
            text_values(c)
                .into_iter()
                .map(|(_, v)| v)
                .filter(|v| !v.starts_with('u'))
                .collect()
        };

        c.begin().unwrap();
        let mut tx = DbTx::new(&c, &reg, &dir);
        let ann = tx.create(user("u-ann", "Engineer")).unwrap().id;
        tx.create(user("u-bob", "Engineer")).unwrap();
        let cat = tx.create(user("u-cat", "Manager")).unwrap().id;
        // A rolled-back group leaves no value of its own.
        tx.begin_group().unwrap();
        tx.create(user("u-dan", "Director")).unwrap();
        tx.end_group(false).unwrap();
        tx.settings.finish(&c).unwrap();
        c.batch("COMMIT").unwrap();
        assert_eq!(titles(&c), ["engineer", "manager"]);

        c.begin().unwrap();
        let mut tx = DbTx::new(&c, &reg, &dir);
        tx.update(
            Kind::User,
            &cat,
            None,
            Box::new(|_| {
                Ok(crate::Update {
                    doc: json!({"userName": "u-cat", "title": "Engineer"}),
                    members: Vec::new(),
                    groups: None,
                })
            }),
        )
        .unwrap();
        tx.delete(Kind::User, &ann, None).unwrap();
        tx.settings.finish(&c).unwrap();
        c.batch("COMMIT").unwrap();
        // The last manager became an engineer; bob and cat still hold it.
        assert_eq!(titles(&c), ["engineer"]);
        let kept = text_values(&c);
        assert_eq!(kept.len(), 3, "two user names and a title: {kept:?}");

        // Filled from the index, as after the migration that made the
        // table, without a rebuild: the same rows, and none of `active`.
        c.begin().unwrap();
        c.batch(
            "DELETE FROM attr_text_values;
             INSERT INTO store_meta (key, value) VALUES ('attr_text_values_fill', 1)
                 ON CONFLICT (key) DO NOTHING",
        )
        .unwrap();
        assert_eq!(crate::index::ensure(&c, &reg).unwrap(), None);
        c.batch("COMMIT").unwrap();
        assert_eq!(text_values(&c), kept);
        assert_eq!(
            count(
                &c,
                "SELECT count(*) FROM store_meta WHERE key = 'attr_text_values_fill'"
            ),
            0
        );

        // A rebuild from the documents gives the same rows.
        c.begin().unwrap();
        c.exec(
            "DELETE FROM store_meta WHERE key = 'attr_index_schemas'",
            &[],
        )
        .unwrap();
        assert!(crate::index::ensure(&c, &reg).unwrap().is_some());
        c.batch("COMMIT").unwrap();
        assert_eq!(text_values(&c), kept);

        // The directory's values go with it.
        c.begin().unwrap();
        crate::index::delete_directory(&c, &dir).unwrap();
        c.batch("COMMIT").unwrap();
        assert!(text_values(&c).is_empty());
    }
}
