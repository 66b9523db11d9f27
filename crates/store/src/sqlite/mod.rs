//! The embedded store: one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that commits whatever requests are
//! waiting together (group commit): each request runs inside its own savepoint,
//! so a failing one rolls back alone, unless it refuses before it writes
//! ([`Isolation::None`]), and every reply is sent only after the shared COMMIT
//! is durable, which a second thread sees to while the writer goes on
//! (`durable`). Reads run on a small pool of read-only connections,
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
    /// Whether opening rebuilds the attribute index when it was built for
    /// other schemas ([`crate::index::ensure`]). Only the server should: a
    /// command run without the server's configuration (`roster token issue`
    /// without `--config`) would otherwise drop the extension attributes
    /// from the index under the running server.
    pub ensure_index: bool,
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
            ensure_index: true,
        }
    }
}

/// Work for the writer thread: runs inside the open transaction (or is told that
/// none could be opened), and returns how it ended and what to do once the
/// commit's outcome is known. `solo` says it is the only job of its
/// transaction, which then needs no savepoint of its own: a failure rolls the
/// whole transaction back instead.
type Job = Box<dyn FnOnce(Option<&Connection>, bool) -> (Completion, Ended) + Send>;

/// How a job ended, as the writer must know it to commit or roll back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Done,
    /// Failed, and left nothing behind (it wrote nothing, or its savepoint
    /// was rolled back).
    Refused,
    /// Failed after writing, without a savepoint to roll back to: the whole
    /// transaction must go.
    FailedAfterWriting,
}

/// What keeps a job's writes apart from those of the jobs sharing its
/// transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// A savepoint of its own, so that a failure anywhere rolls back only it.
    Savepoint,
    /// None: the job refuses before its first write (`rows::resources`), so a
    /// refusal leaves nothing behind. A savepoint made SQLite copy every page
    /// the job touched into a sub-journal, about a tenth of a lone `POST`'s
    /// instructions. Should the job still fail after writing (a database
    /// fault, a bug), the whole batch rolls back and the other jobs in it are
    /// told to retry.
    None,
}

/// Work for a reader thread: runs on its connection and sends its own reply.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Arc<ReadPool>,
    reg: Arc<SchemaRegistry>,
    options: SqliteOptions,
    keys: crate::index::KeyShelf,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database file.
    pub fn open(options: SqliteOptions, reg: Arc<SchemaRegistry>) -> StoreResult<Self> {
        let horizon = Horizon::default();
        let mut writer = conn::open_writer(&options.path, &horizon)?;
        conn::migrate(&mut writer)?;
        // Fills the attribute index after the migration that made it, or
        // anew when the schemas changed since it was built.
        if options.ensure_index {
            let tx = writer.transaction().db()?;
            crate::index::ensure(&*tx, &reg)?;
            tx.commit().db()?;
        }
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
            keys: Default::default(),
        })
    }

    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.reg
    }

    /// Runs `f` in the writer's transaction, inside its own savepoint when it
    /// shares the transaction with other jobs and `isolation` asks for one.
    async fn write<R, F>(&self, isolation: Isolation, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (job, rx) = job(isolation, f);
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

/// The writer's job for `f`, and where its reply will come.
fn job<R, F>(isolation: Isolation, f: F) -> (Job, oneshot::Receiver<StoreResult<R>>)
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
{
    let (tx, rx) = oneshot::channel::<StoreResult<R>>();
    let job: Job = Box::new(move |conn: Option<&Connection>, solo: bool| {
        let (result, ended) = match conn {
            // Alone in its transaction a job needs no savepoint, which spares
            // SQLite copying every page it touches into a sub-journal.
            Some(conn) if solo || isolation == Isolation::None => run_bare(conn, f),
            Some(conn) => {
                let result = run_in_savepoint(conn, f);
                let ended = if result.is_ok() {
                    Ended::Done
                } else {
                    Ended::Refused
                };
                (result, ended)
            }
            None => (
                Err(StoreError::internal("no transaction could be opened")),
                Ended::Refused,
            ),
        };
        let done: Completion = Box::new(move |commit: Result<(), StoreError>| {
            let _ = tx.send(commit.and(result));
        });
        (done, ended)
    });
    (job, rx)
}

/// Runs `f` without a savepoint; a failure is `FailedAfterWriting` when `f`
/// changed rows before it (a failed statement itself changes none).
fn run_bare<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<R>,
) -> (StoreResult<R>, Ended) {
    let before = conn.total_changes();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(StoreError::internal("a write panicked")));
    let ended = match &result {
        Ok(_) => Ended::Done,
        Err(_) if conn.total_changes() == before => Ended::Refused,
        Err(_) => Ended::FailedAfterWriting,
    };
    (result, ended)
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
        let mut failed = None;
        for job in batch {
            // SQLite rolls the whole transaction back by itself on some
            // errors (a full disk, an I/O error): the jobs after that would
            // run outside any transaction, each committed on its own.
            let lost = failed.is_some() && conn.is_autocommit();
            let (done, ended) = job((!lost).then_some(&conn), solo);
            if failed.is_none()
                && (ended == Ended::FailedAfterWriting
                    || solo && ended != Ended::Done
                    || conn.is_autocommit())
            {
                failed = Some(completions.len());
            }
            completions.push(done);
        }
        if let Some(culprit) = failed {
            // The failed job already holds its error; undo whatever it wrote,
            // and with it what the others wrote: they are told to retry, and
            // nothing of theirs was committed. Replies still wait for earlier
            // commits to be on disk, since their jobs may have read them.
            let completions = completions
                .into_iter()
                .enumerate()
                .map(|(i, done)| if i == culprit { done } else { retry(done) })
                .collect();
            let outcome = if conn.is_autocommit() {
                Ok(())
            } else {
                conn.execute_batch("ROLLBACK").map_err(crate::error::sqlite)
            };
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

/// The completion of a job whose work was rolled back with another's.
fn retry(done: Completion) -> Completion {
    Box::new(move |_| {
        done(Err(StoreError::Unavailable(
            "a request committed together with this one failed, and both were rolled back; \
             retry"
                .into(),
        )))
    })
}

/// Moves the pending trigram rows into FTS5 when enough have gathered
/// (`crate::index::text`), inside the batch's transaction. A failure
/// leaves them pending, where searches still find them: the batch commits.
fn move_pending_text(conn: &Connection, flush_rows: i64) {
    // Asked first, so the batches that move nothing open no savepoint.
    let moved = match crate::index::text::due(conn, flush_rows) {
        Ok(false) => Ok(()),
        Ok(true) => run_in_savepoint(conn, |c| crate::index::text::flush(c)),
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

    fn key_shelf(&self) -> &crate::index::KeyShelf {
        &self.keys
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
        self.write(Isolation::Savepoint, move |c| f(c)).await
    }

    async fn run_write_refusing_first<R, F>(&self, _directory: String, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        self.write(Isolation::None, move |c| f(c)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `jobs` as one batch of the writer and returns their replies and
    /// the notes (`store_meta` keys) that were committed.
    fn one_batch(jobs: Vec<(Isolation, WriteFn)>) -> (Vec<StoreResult<()>>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.db");
        drop(
            SqliteStore::open(SqliteOptions::new(&path), Arc::new(SchemaRegistry::core())).unwrap(),
        );
        let horizon = Horizon::default();
        let mut conn = conn::open_writer(&path, &horizon).unwrap();
        conn::migrate(&mut conn).unwrap();
        let syncer = Syncer::start(&path, horizon).unwrap();
        let (tx, rx) = mpsc::channel::<Job>();
        let mut replies = Vec::new();
        // Queued before the writer starts, so that it takes them together.
        for (isolation, f) in jobs {
            let (job, reply) = job(isolation, f);
            tx.send(job).unwrap();
            replies.push(reply);
        }
        drop(tx);
        writer_loop(conn, rx, 256, crate::index::text::FLUSH_ROWS, syncer);
        let replies = replies
            .into_iter()
            .map(|r| r.blocking_recv().unwrap())
            .collect();
        let check = Connection::open(&path).unwrap();
        let notes = check
            .prepare("SELECT key FROM store_meta WHERE key LIKE 'note-%' ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<Vec<String>>>()
            .unwrap();
        (replies, notes)
    }

    type WriteFn = Box<dyn FnOnce(&Connection) -> StoreResult<()> + Send>;

    fn note(name: &'static str) -> WriteFn {
        Box::new(move |c| {
            c.execute(
                "INSERT INTO store_meta (key, value) VALUES (?1, 1)",
                [format!("note-{name}")],
            )
            .db()?;
            Ok(())
        })
    }

    fn note_then_fail(name: &'static str) -> WriteFn {
        Box::new(move |c| {
            note(name)(c)?;
            Err(StoreError::internal("failed after writing"))
        })
    }

    /// Job `culprit` got its own failure; every other job is told to retry.
    fn assert_failed_with_the_others_told_to_retry(replies: &[StoreResult<()>], culprit: usize) {
        for (i, reply) in replies.iter().enumerate() {
            if i == culprit {
                assert!(
                    matches!(reply, Err(StoreError::Internal { .. })),
                    "{reply:?}"
                );
            } else {
                assert!(
                    matches!(reply, Err(StoreError::Unavailable(_))),
                    "job {i} is told to retry: {reply:?}"
                );
            }
        }
    }

    fn refuse() -> WriteFn {
        Box::new(|_| Err(StoreError::Invalid("refused before writing".into())))
    }

    #[test]
    fn a_job_refused_before_writing_leaves_the_others_of_its_batch_committed() {
        let (replies, notes) = one_batch(vec![
            (Isolation::None, note("a")),
            (Isolation::None, refuse()),
            (Isolation::Savepoint, note_then_fail("b")),
            (Isolation::None, note("c")),
        ]);
        assert!(replies[0].is_ok());
        assert!(matches!(replies[1], Err(StoreError::Invalid(_))));
        assert!(matches!(replies[2], Err(StoreError::Internal { .. })));
        assert!(replies[3].is_ok());
        assert_eq!(
            notes,
            ["note-a", "note-c"],
            "the savepoint took b's write back"
        );
    }

    #[test]
    fn a_transaction_sqlite_rolled_back_by_itself_commits_nothing_after_it() {
        // What SQLite does on a full disk or an I/O error, done here by hand.
        let lose_it: WriteFn = Box::new(|c| {
            note("b")(c)?;
            c.execute_batch("ROLLBACK").db()?;
            Err(StoreError::internal("the transaction was rolled back"))
        });
        let (replies, notes) = one_batch(vec![
            (Isolation::None, note("a")),
            (Isolation::Savepoint, lose_it),
            (Isolation::None, note("c")),
            (Isolation::Savepoint, note("d")),
        ]);
        assert_failed_with_the_others_told_to_retry(&replies, 1);
        assert!(notes.is_empty(), "nothing is committed: {notes:?}");
    }

    #[test]
    fn a_job_failing_after_writing_without_a_savepoint_rolls_its_whole_batch_back() {
        let (replies, notes) = one_batch(vec![
            (Isolation::None, note("a")),
            (Isolation::Savepoint, note("b")),
            (Isolation::None, note_then_fail("c")),
            (Isolation::None, note("d")),
        ]);
        assert_failed_with_the_others_told_to_retry(&replies, 2);
        assert!(
            notes.is_empty(),
            "nothing of the batch is committed: {notes:?}"
        );
    }
}
