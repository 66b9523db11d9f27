//! The embedded store: one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that commits whatever requests are
//! waiting together (group commit): each request runs inside its own savepoint,
//! so a failing one rolls back alone, and every reply is sent only after the
//! shared COMMIT is durable, which a second thread sees to while the writer
//! goes on (`durable`). Reads run on a small pool of read-only connections,
//! each owned by a thread of its own.

mod checkpoint;
pub(crate) mod conn;
mod db;
mod deadline;
mod durable;

pub use conn::SCHEMA_VERSION;

use crate::error::DbResultExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use roster_scim::schema::SchemaRegistry;
use rusqlite::Connection;
use tokio::sync::{Semaphore, oneshot};

use crate::db::Db;
use crate::rows::store::SqlStore;
use crate::{ListOptions, StoreError, StoreResult};
use deadline::Deadline;
use durable::{Completion, Horizon, Syncer};

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// Read connections (concurrent readers).
    pub readers: usize,
    /// Most requests committed in one transaction.
    pub max_batch: usize,
    pub list: ListOptions,
    /// Encrypts webhook secrets at rest when set (`secret_key`).
    pub secret_key: Option<crate::secrets::SecretKey>,
    /// The longest a read may run before SQLite stops it
    /// (`statement_timeout_ms`); `None`: no limit. Writes have none (see
    /// `deadline`).
    pub statement_timeout: Option<Duration>,
    /// Pending trigram rows at which the writer moves them into FTS5
    /// (`crate::index::text::FLUSH_ROWS` unless a test wants both kinds of
    /// rows in a small directory).
    pub text_flush_rows: i64,
}

impl SqliteOptions {
    pub fn new(path: impl AsRef<Path>) -> Self {
        SqliteOptions {
            path: path.as_ref().to_path_buf(),
            readers: 4,
            max_batch: 256,
            list: ListOptions::default(),
            secret_key: None,
            statement_timeout: None,
            text_flush_rows: crate::index::text::FLUSH_ROWS,
        }
    }
}

/// Work for the writer thread: runs inside the open transaction (or is told that
/// none could be opened), and returns whether it succeeded and what to do once
/// the commit's outcome is known. `solo` says it is the only job of its
/// transaction, which then needs no savepoint of its own: a failure rolls the
/// whole transaction back instead.
type Job = Box<dyn FnOnce(Option<&Connection>, bool) -> (Completion, bool) + Send>;

/// Work for a reader thread: runs on its connection and sends its own reply.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Arc<ReadPool>,
    reg: Arc<SchemaRegistry>,
    options: SqliteOptions,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database file.
    pub fn open(options: SqliteOptions, reg: Arc<SchemaRegistry>) -> StoreResult<Self> {
        let horizon = Horizon::default();
        let mut writer = conn::open_writer(&options.path, &horizon)?;
        conn::migrate(&mut writer)?;
        // Fills the attribute index after the migration that made it, or
        // anew when the schemas changed since it was built.
        let tx = writer.transaction().db()?;
        crate::index::ensure(&*tx, &reg)?;
        tx.commit().db()?;
        checkpoint::start(&mut writer, &options.path)?;
        let readers = ReadPool::start(
            &options.path,
            &horizon,
            options.readers.max(1),
            options.statement_timeout,
        )?;
        let syncer = Syncer::start(&options.path, horizon)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let max_batch = options.max_batch.max(1);
        let flush_rows = options.text_flush_rows.max(1);
        std::thread::Builder::new()
            .name("roster-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, max_batch, flush_rows, syncer))
            .map_err(|e| StoreError::internal_from("cannot start the writer thread", e))?;
        Ok(SqliteStore {
            writer: Mutex::new(tx),
            readers,
            reg,
            options,
        })
    }

    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.reg
    }

    /// Runs `f` in the writer's transaction, inside its own savepoint when it
    /// shares the transaction with other jobs.
    async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<R>>();
        let job: Job = Box::new(move |conn: Option<&Connection>, solo: bool| {
            let result = match conn {
                // Alone in its transaction a job needs no savepoint, which spares
                // SQLite copying every page it touches into a sub-journal.
                Some(conn) if solo => std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| Err(StoreError::internal("a write panicked"))),
                Some(conn) => run_in_savepoint(conn, f),
                None => Err(StoreError::internal("no transaction could be opened")),
            };
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit: Result<(), StoreError>| {
                let _ = tx.send(commit.and(result));
            });
            (done, ok)
        });
        self.writer
            .lock()
            .map_err(|_| StoreError::Closed)?
            .send(job)
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read connection, off the async runtime, under the
    /// statement timeout.
    async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let permit = self
            .readers
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let reader = self
            .readers
            .idle
            .lock()
            .map_err(|_| StoreError::Closed)?
            .pop()
            .ok_or(StoreError::Closed)?;
        let pool = self.readers.clone();
        let again = reader.clone();
        let (tx, rx) = oneshot::channel::<StoreResult<R>>();
        let job: ReadJob = Box::new(move |conn: &Connection| {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(StoreError::internal("a read panicked")));
            // Idle again before the reply goes out, and whether or not anyone
            // still waits for it: a cancelled request must not shrink the pool.
            if let Ok(mut idle) = pool.idle.lock() {
                idle.push(again);
            }
            drop(permit);
            let _ = tx.send(result);
        });
        reader.send(job).map_err(|_| StoreError::Closed)?;
        let result = rx.await.map_err(|_| StoreError::Closed)?;
        crate::error::read_outcome(result, self.options.statement_timeout, "sqlite")
    }
}

/// Read connections, each owned by a thread of its own.
///
/// Not tokio's blocking pool: it starts a thread whenever none is idle and
/// ends threads idle for 10 s, so a burst of slow reads left more threads,
/// each with its own allocator arenas, and the server's thread count and
/// memory followed the bursts. A thread that owns its connection also keeps
/// SQLite's page cache in one arena.
struct ReadPool {
    /// The idle readers' queues, the one idle most recently on top: at low
    /// concurrency one connection, its page cache warm, serves most reads,
    /// and the others' caches stay empty.
    idle: Mutex<Vec<mpsc::Sender<ReadJob>>>,
    /// One per idle reader.
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// The threads stop when the pool (holding their queues' senders) is dropped.
    fn start(
        path: &Path,
        horizon: &Horizon,
        n: usize,
        limit: Option<Duration>,
    ) -> StoreResult<Arc<ReadPool>> {
        let mut idle = Vec::with_capacity(n);
        for i in 0..n {
            let reader = Reader::open(path, horizon, limit)?;
            let (tx, rx) = mpsc::channel::<ReadJob>();
            std::thread::Builder::new()
                .name(format!("roster-sqlite-reader-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        if let Some(d) = &reader.deadline {
                            d.start();
                        }
                        job(&reader.conn);
                        if let Some(d) = &reader.deadline {
                            d.stop();
                        }
                    }
                })
                .map_err(|e| StoreError::internal_from("cannot start a reader thread", e))?;
            idle.push(tx);
        }
        Ok(Arc::new(ReadPool {
            idle: Mutex::new(idle),
            permits: Arc::new(Semaphore::new(n)),
        }))
    }
}

/// One read connection, with its deadline.
struct Reader {
    conn: Connection,
    deadline: Option<Arc<Deadline>>,
}

impl Reader {
    fn open(path: &Path, horizon: &Horizon, limit: Option<Duration>) -> StoreResult<Reader> {
        let mut conn = conn::open_reader(path, horizon)?;
        let deadline = match limit {
            Some(limit) => Some(Deadline::install(&mut conn, limit)?),
            None => None,
        };
        Ok(Reader { conn, deadline })
    }
}

fn run_in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<R>,
) -> StoreResult<R> {
    conn.execute_batch("SAVEPOINT job").db()?;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(StoreError::internal("a write panicked")));
    match &result {
        Ok(_) => conn.execute_batch("RELEASE job").db()?,
        Err(_) => conn.execute_batch("ROLLBACK TO job; RELEASE job").db()?,
    }
    result
}

fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    max_batch: usize,
    flush_rows: i64,
    mut syncer: Syncer,
) {
    let fail_all = |batch: Vec<Job>, why: StoreError| {
        for job in batch {
            job(None, false).0(Err(why.clone()));
        }
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Some(why) = syncer.failure() {
            fail_all(batch, why);
            continue;
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            fail_all(batch, crate::error::sqlite(e));
            continue;
        }
        // The events sequence before this batch: its events stay hidden until
        // the batch is on disk.
        let base = match events_sequence(&conn) {
            Ok(base) => base,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                fail_all(batch, crate::error::sqlite(e));
                continue;
            }
        };
        let size = batch.len();
        let solo = size == 1;
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let mut failed_solo = false;
        for job in batch {
            let (done, ok) = job(Some(&conn), solo);
            failed_solo |= solo && !ok;
            completions.push(done);
        }
        if failed_solo {
            // The job already reported its error; undo whatever it wrote. Its
            // reply still waits for earlier commits to be on disk, since it may
            // have read them.
            let outcome = conn.execute_batch("ROLLBACK").map_err(crate::error::sqlite);
            syncer.finish(syncer.last(), outcome, completions);
            continue;
        }
        move_pending_text(&conn, flush_rows);
        // Savepoints rolled back took their events with them: the sequence's
        // advance is what this batch writes.
        let head = events_sequence(&conn).unwrap_or(base);
        let generation = syncer.committing(base);
        let started = Instant::now();
        let committed = conn.execute_batch("COMMIT").map_err(crate::error::sqlite);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        } else {
            crate::gauges::committed("sqlite", size, head - base, started.elapsed());
        }
        syncer.finish(generation, committed, completions);
    }
}

/// Moves the pending trigram rows into FTS5 when enough have gathered
/// (`crate::index::text`), inside the batch's transaction. A failure
/// leaves them pending, where searches still find them: the batch commits.
fn move_pending_text(conn: &Connection, flush_rows: i64) {
    // Counted first, so the batches that move nothing open no savepoint.
    let moved = match crate::index::text::pending(conn) {
        Ok(n) if n < flush_rows => Ok(()),
        Ok(_) => run_in_savepoint(conn, |c| crate::index::text::flush(c)),
        Err(e) => Err(e),
    };
    if let Err(e) = moved {
        tracing::warn!(error = %e, "could not move pending trigram rows into attr_text; they stay pending");
    }
}

fn events_sequence(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
    )?
    .query_row([], |r| r.get(0))
}

#[async_trait]
impl SqlStore for SqliteStore {
    fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.reg
    }

    fn list_options(&self) -> &ListOptions {
        &self.options.list
    }

    fn schema_version(&self) -> (&'static str, i64) {
        ("PRAGMA user_version", SCHEMA_VERSION)
    }

    fn secret_key(&self) -> Option<crate::secrets::SecretKey> {
        self.options.secret_key.clone()
    }

    fn backend_gauges(&self) -> crate::gauges::Gauges {
        let mut wal = self.options.path.clone().into_os_string();
        wal.push("-wal");
        // No file is an empty log (SQLite removes it on a clean close).
        let bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
        crate::gauges::Gauges {
            sqlite_wal_bytes: Some(bytes),
            ..Default::default()
        }
    }

    async fn run_read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        self.read(move |c| f(c)).await
    }

    /// One writer already serializes every write: no directory lock needed.
    async fn run_write<R, F>(&self, _directory: Option<String>, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        self.write(move |c| f(c)).await
    }
}
