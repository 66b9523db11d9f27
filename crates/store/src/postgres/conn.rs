//! Connections: [`Db`] over a `postgres` client, the pool's connection
//! manager, and the schema migration.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::{HashMap, HashSet};
use std::error::Error;

use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};

use crate::db::{Db, Dialect, Row, Val, postgres_placeholders};
use crate::{StoreError, StoreResult};

const SCHEMA_VERSION: i64 = 2;
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
    /// Inserts held back by `insert_later`, in order, and the unique keys they take.
    held: RefCell<Vec<(String, Vec<Val>)>>,
    held_keys: RefCell<HashSet<String>>,
    /// Unique keys a batch check found free; only true until the next flush,
    /// since anything else this transaction sends may change them.
    free_keys: RefCell<HashSet<String>>,
}

/// Most parameters in one multi-row INSERT (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;

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
        let stmt = self.client()?.prepare(&postgres_placeholders(sql))?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= STATEMENT_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    /// Starts a transaction: events it writes are numbered from zero.
    pub fn begin(&self) -> StoreResult<()> {
        self.events.set(0);
        self.drop_held();
        self.batch("BEGIN")
    }

    fn drop_held(&self) {
        self.held.borrow_mut().clear();
        self.held_keys.borrow_mut().clear();
        self.free_keys.borrow_mut().clear();
    }

    /// Sends the held inserts, each statement's rows as multi-row INSERTs,
    /// statements in the order they first appear: a row's parent (a resource
    /// for its index values) is held before it, so its statement goes first.
    fn flush(&self) -> StoreResult<()> {
        self.free_keys.borrow_mut().clear();
        if self.held.borrow().is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut *self.held.borrow_mut());
        self.held_keys.borrow_mut().clear();
        let mut groups: Vec<(String, Vec<Vec<Val>>)> = Vec::new();
        for (sql, row) in held {
            match groups.iter_mut().find(|(s, _)| *s == sql) {
                Some((_, rows)) => rows.push(row),
                None => groups.push((sql, vec![row])),
            }
        }
        for (sql, rows) in &groups {
            let per = (MAX_PARAMS / rows[0].len().max(1)).max(1);
            for chunk in rows.chunks(per) {
                self.insert_rows(sql, chunk)?;
            }
        }
        Ok(())
    }

    fn insert_rows(&self, sql: &str, rows: &[Vec<Val>]) -> StoreResult<()> {
        let at = sql
            .find("VALUES")
            .ok_or_else(|| StoreError::Database("a held insert has no VALUES".into()))?
            + "VALUES".len();
        let (head, tuple) = sql.split_at(at);
        let tuples = vec![tuple.trim(); rows.len()].join(", ");
        let text = postgres_placeholders(&format!("{head} {tuples}"));
        let values: Vec<&(dyn ToSql + Sync)> = rows
            .iter()
            .flat_map(|p| p.iter().map(|v| v as &(dyn ToSql + Sync)))
            .collect();
        // Unprepared: the text differs with the row count, and one parse per batch is cheap.
        self.client()?.execute(text.as_str(), &values)?;
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
        Ok(self.client()?.execute(&stmt, &params(p))?)
    }

    fn query(&self, sql: &str, p: &[Val]) -> StoreResult<Vec<Row>> {
        self.flush()?;
        self.query_held(sql, p)
    }

    fn query_held(&self, sql: &str, p: &[Val]) -> StoreResult<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let rows = self.client()?.query(&stmt, &params(p))?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| column(r, i))
                    .collect::<Result<Vec<Val>, _>>()
                    .map(Row)
                    .map_err(StoreError::from)
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
        self.client()?.batch_execute(sql)?;
        Ok(())
    }

    fn insert_later(&self, sql: &str, params: &[Val]) -> StoreResult<()> {
        self.held
            .borrow_mut()
            .push((sql.to_owned(), params.to_vec()));
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

    fn next_event_index(&self) -> StoreResult<i64> {
        let n = self.events.get();
        if n >= 1 << 20 {
            return Err(StoreError::Database(
                "one transaction wrote more than 1,048,576 events; split the request".into(),
            ));
        }
        self.events.set(n + 1);
        Ok(n)
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // The server's message, not the Debug form with the statement text.
        match e.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                let detail = format!("{} ({code})", db.message());
                if unavailable_sqlstate(code) {
                    StoreError::Unavailable(detail)
                } else {
                    StoreError::Database(detail)
                }
            }
            None if lost_connection(&e) => StoreError::Unavailable(e.to_string()),
            None => StoreError::Database(e.to_string()),
        }
    }
}

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
    pub schema: Option<String>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        // Notices ("already exists, skipping") are not worth a log line each.
        // Custom plans always: a generic plan cannot see a filter's values,
        // and for `co` it reads a whole directory's values where the custom
        // plan reads a trigram index (docs/benchmarks.md, PostgreSQL at scale).
        client.batch_execute(
            "SET client_min_messages TO warning; SET plan_cache_mode TO force_custom_plan",
        )?;
        if let Some(schema) = &self.schema {
            let quoted = schema.replace('"', "");
            client.batch_execute(&format!("SET search_path TO \"{quoted}\", public"))?;
        }
        Ok(PgConn {
            client: RefCell::new(Some(client)),
            statements: RefCell::new(HashMap::new()),
            events: Cell::new(0),
            held: RefCell::new(Vec::new()),
            held_keys: RefCell::new(HashSet::new()),
            free_keys: RefCell::new(HashSet::new()),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        match conn.client.get_mut() {
            Some(c) => c.simple_query("").map(|_| ()),
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
        return Err(StoreError::Database(format!(
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
        return Ok(());
    };
    let ops = format!("\"{}\".gin_trgm_ops", schema.replace('"', ""));
    conn.batch(&format!(
        "CREATE INDEX resources_name_trgm ON resources USING gin (name_key {ops});
         CREATE INDEX resource_values_trgm ON resource_values USING gin (value {ops});"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = StoreError::from(e);
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    }

    #[test]
    fn a_terminated_session_is_unavailable_and_a_bad_statement_is_not() {
        let url = std::env::var("ROSTER_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut c = Client::connect(&url, NoTls)
            .expect("PostgreSQL answers at ROSTER_TEST_POSTGRES (default 127.0.0.1:5432/test)");
        let bad = StoreError::from(c.batch_execute("SELEC 1").unwrap_err());
        assert!(matches!(bad, StoreError::Database(_)), "{bad:?}");
        // What a server restart does to every session: 57P01 admin_shutdown.
        let killed = StoreError::from(
            c.batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
                .unwrap_err(),
        );
        assert!(matches!(killed, StoreError::Unavailable(_)), "{killed:?}");
        // And every later call on that connection, until the pool drops it.
        let closed = StoreError::from(c.batch_execute("SELECT 1").unwrap_err());
        assert!(matches!(closed, StoreError::Unavailable(_)), "{closed:?}");
    }
}
