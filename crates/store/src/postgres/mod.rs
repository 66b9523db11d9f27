//! The store for scale: PostgreSQL, shared by any number of Roster processes.
//!
//! Every call runs on a pooled connection on a blocking thread (the queries
//! are the same synchronous code SQLite runs, see `crate::rows`). Writes to a
//! directory take a transaction-scoped advisory lock on it first, so
//! processes take turns per directory exactly as SQLite's single writer does:
//! read-modify-write (PUT, PATCH, If-Match) never loses an update, and two
//! transactions never wait on each other's rows in opposite orders, so no
//! deadlock can reach a client. Different directories write in parallel.

mod analyze;
pub(crate) mod conn;
mod copy;
pub mod tls;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use roster_scim::schema::SchemaRegistry;

use crate::db::Db;
/// For the plan tests in `tests/pg_plans.rs`.
#[doc(hidden)]
pub use crate::rows::resources::taken_names_sql;
use crate::rows::store::SqlStore;
use crate::{ListOptions, StoreError, StoreResult, vals};
pub use conn::{PgConn, SCHEMA_VERSION};

/// How to reach PostgreSQL and how many connections to keep.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/database[?options]`.
    pub url: String,
    /// Most connections this process opens (each serves one call at a time).
    pub pool_size: u32,
    /// How long a call waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// Where the tables live; `None` uses the connection's search_path.
    pub schema: Option<String>,
    pub list: ListOptions,
    /// Encrypts webhook secrets at rest when set (`secret_key`).
    pub secret_key: Option<crate::secrets::SecretKey>,
    /// The longest a read statement may run before PostgreSQL stops it
    /// (`statement_timeout_ms`); `None`: no limit.
    pub statement_timeout: Option<Duration>,
    /// See `SqliteOptions::ensure_index`.
    pub ensure_index: bool,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            pool_size: 16,
            acquire_timeout: Duration::from_secs(10),
            schema: None,
            list: ListOptions::default(),
            secret_key: None,
            statement_timeout: None,
            ensure_index: true,
        }
    }
}

pub struct PgStore {
    pool: r2d2::Pool<conn::Manager>,
    /// Calls waiting for a connection (r2d2 does not count them).
    waiting: Arc<AtomicU64>,
    reg: Arc<SchemaRegistry>,
    options: PgOptions,
    analyzer: Arc<analyze::Analyzer>,
    keys: crate::index::KeyShelf,
}

impl PgStore {
    /// Connects, creating and migrating the schema if needed.
    pub fn open(options: PgOptions, reg: Arc<SchemaRegistry>) -> StoreResult<Self> {
        let (url, tls) = tls::split_url(&options.url)?;
        let mut config: postgres::Config = url.parse().map_err(|e| {
            StoreError::internal_from(
                "the PostgreSQL URL is not valid; write it as postgres://user@host:5432/database",
                e,
            )
        })?;
        config.ssl_mode(tls::driver_mode(tls.mode));
        let tls = match tls.mode {
            tls::SslMode::Disable => None,
            _ => Some(tls::RustlsConnect::new(&tls)?),
        };
        let manager = conn::Manager {
            config,
            tls,
            schema: options.schema.clone(),
            statement_timeout: options.statement_timeout,
        };
        let analyzer = Arc::new(analyze::Analyzer::start(manager.clone())?);
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.acquire_timeout)
            // A connection broken by a database restart is replaced, not handed out.
            .test_on_check_out(true)
            .build(manager)
            .map_err(|e| {
                // r2d2 reports the last connection error, which never
                // holds the URL or its password.
                let why = e.to_string();
                StoreError::internal_from(
                    format!(
                        "cannot connect to PostgreSQL (check that it runs and that the URL, user, database and sslmode are right): {why}"
                    ),
                    e,
                )
            })?;
        let store = PgStore {
            pool,
            waiting: Arc::new(AtomicU64::new(0)),
            reg,
            options,
            analyzer,
            keys: Default::default(),
        };
        let c = store.conn()?;
        conn::migrate(&c)?;
        if store.options.ensure_index && conn::ensure_index(&c, &store.reg)?.is_some_and(|n| n > 0)
        {
            // A rebuilt index has no page marked all-visible: until a
            // VACUUM, a count of a broad filter reads a heap page for
            // nearly every entry (2 to 4 s at 1,000,000 users, against
            // 0.1 to 0.2 s after it).
            store.analyzer.due();
        }
        Ok(store)
    }

    /// [`PgStore::open`] from async code: connecting blocks, so it runs on a blocking thread.
    pub async fn connect(options: PgOptions, reg: Arc<SchemaRegistry>) -> StoreResult<Self> {
        tokio::task::spawn_blocking(move || Self::open(options, reg))
            .await
            .map_err(|e| StoreError::internal_from("connecting failed", e))?
    }

    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.reg
    }

    fn conn(&self) -> StoreResult<r2d2::PooledConnection<conn::Manager>> {
        self.pool.get().map_err(|e| conn::pool_unavailable(&e))
    }

    /// Runs `f` on a connection, on a blocking thread.
    async fn run<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&PgConn) -> StoreResult<R> + Send + 'static,
    {
        let pool = self.pool.clone();
        let waiting = self.waiting.clone();
        tokio::task::spawn_blocking(move || {
            waiting.fetch_add(1, Ordering::Relaxed);
            let c = pool.get();
            waiting.fetch_sub(1, Ordering::Relaxed);
            let c = c.map_err(|e| conn::pool_unavailable(&e))?;
            std::panic::catch_unwind(AssertUnwindSafe(|| f(&c)))
                .unwrap_or_else(|_| Err(StoreError::internal("a database call panicked")))
        })
        .await
        .map_err(|e| StoreError::internal_from("database task failed", e))?
    }

    /// Runs `f` outside any transaction, under the statement timeout.
    async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        let result = self.run(move |c| f(c)).await;
        crate::error::read_outcome(result, self.options.statement_timeout, "postgres")
    }

    /// Runs `f` in one transaction, holding the lock of `directory` if given.
    async fn write_in<R, F>(&self, directory: Option<String>, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        let analyzer = self.analyzer.clone();
        self.run(move |c| {
            c.begin()?;
            let before = c.writes();
            let result = lock_writer(c, directory.as_deref()).and_then(|()| f(c));
            // A connection goes back to the pool outside any transaction,
            // whatever failed: one left open would hold its locks (and every
            // reader's view of the event log) until the pool dropped it.
            let started = Instant::now();
            let outcome = result.and_then(|r| c.batch("COMMIT").map(|()| r));
            if outcome.is_ok() {
                let events = c.events_written();
                crate::gauges::committed("postgres", 1, events, started.elapsed());
                analyzer.wrote(c.writes().saturating_sub(before));
            }
            if outcome.is_err() {
                // A broken connection cannot roll back; the pool drops it.
                let _ = c.batch("ROLLBACK");
            }
            outcome
        })
        .await
    }
}

/// Marks the transaction as a Roster writer (before it has a transaction id:
/// see `rows::visible_events`) and takes the directory's write lock, both
/// until the transaction ends.
fn lock_writer(c: &dyn Db, directory: Option<&str>) -> StoreResult<()> {
    let class = i64::from(crate::rows::WRITER_LOCK);
    match directory {
        Some(d) => c.exec(
            "SELECT pg_advisory_xact_lock_shared(?::int4, hashtext(current_schema())),
                    pg_advisory_xact_lock(hashtextextended(?, 0))",
            vals![class, format!("roster/directory/{d}")],
        )?,
        None => c.exec(
            "SELECT pg_advisory_xact_lock_shared(?::int4, hashtext(current_schema()))",
            vals![class],
        )?,
    };
    Ok(())
}

#[async_trait]
impl SqlStore for PgStore {
    fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.reg
    }

    fn list_options(&self) -> &ListOptions {
        &self.options.list
    }

    fn schema_version(&self) -> (&'static str, i64) {
        ("SELECT version FROM roster_schema", conn::SCHEMA_VERSION)
    }

    fn secret_key(&self) -> Option<crate::secrets::SecretKey> {
        self.options.secret_key.clone()
    }

    fn key_shelf(&self) -> &crate::index::KeyShelf {
        &self.keys
    }

    fn backend_gauges(&self) -> crate::gauges::Gauges {
        let state = self.pool.state();
        crate::gauges::Gauges {
            pool: Some(crate::gauges::PoolGauges {
                in_use: state.connections.saturating_sub(state.idle_connections),
                idle: state.idle_connections,
                waiting: self.waiting.load(Ordering::Relaxed),
            }),
            ..Default::default()
        }
    }

    async fn run_read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        self.read(f).await
    }

    async fn run_write<R, F>(&self, directory: Option<String>, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        self.write_in(directory, f).await
    }
}
