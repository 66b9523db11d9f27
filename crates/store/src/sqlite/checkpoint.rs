//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs on the connection that committed, after
//! its COMMIT: here that is the one writer thread every write waits for, and
//! copying the WAL back into the database file took about a sixth of its time
//! at 16 concurrent clients. The writer's WAL hook only tells this thread
//! how long the WAL is, and this thread checkpoints (PASSIVE: it never blocks
//! the writer or a reader) from a connection of its own.
//!
//! A passive checkpoint running beside a busy writer may never catch the WAL's
//! end, and SQLite restarts the WAL from its beginning only once every frame
//! is back in the database. So when the WAL grows past `INLINE_PAGES` the
//! writer checkpoints itself, as SQLite would by default: that bounds the WAL
//! whatever the load.

use crate::error::DbResultExt;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use rusqlite::Connection;

use crate::{StoreError, StoreResult};

/// WAL length (pages) that asks the checkpoint thread for a checkpoint:
/// SQLite's own default for automatic checkpoints.
pub const CHECKPOINT_PAGES: i32 = 1000;

/// WAL length (pages) at which the writer checkpoints itself (16 MiB with
/// 4 KiB pages).
pub const INLINE_PAGES: i32 = 4_000;

/// Starts the checkpoint thread on its own connection to `path`, and sets the
/// writer's WAL hook to feed it.
pub fn start(writer: &mut Connection, path: &Path) -> StoreResult<()> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::internal_from(format!("cannot open {} for checkpoints", path.display()), e)
    })?;
    conn.execute_batch("PRAGMA busy_timeout = 5000;").db()?;
    // One pending request is enough: a checkpoint covers every frame so far.
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("roster-sqlite-checkpoint".into())
        .spawn(move || checkpoint_loop(conn, rx))
        .map_err(|e| StoreError::internal_from("cannot start the checkpoint thread", e))?;
    set_hook(writer, tx)
}

fn set_hook(writer: &mut Connection, tx: SyncSender<()>) -> StoreResult<()> {
    // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
    writer
        .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            let inline = pages >= INLINE_PAGES
                || (pages >= CHECKPOINT_PAGES
                    && matches!(tx.try_send(()), Err(TrySendError::Disconnected(()))));
            if inline {
                // Most frames are usually back in the database already (the
                // thread's work), so this is short. BUSY means the thread is
                // checkpointing this moment, which is as good.
                match wal.checkpoint() {
                    Ok(()) => checkpointed("inline"),
                    Err(e) => tracing::debug!(pages, "inline WAL checkpoint: {e}"),
                }
            }
            // Never an error: SQLite would report it from a COMMIT that did commit.
            Ok(())
        }))
        .db()?;
    Ok(())
}

/// Counts a checkpoint for `/metrics` (`roster_sqlite_checkpoints_total`).
fn checkpointed(mode: &'static str) {
    metrics::counter!("roster_sqlite_checkpoints_total", "mode" => mode).increment(1);
}

fn checkpoint_loop(conn: Connection, rx: Receiver<()>) {
    // Ends when the writer's connection (and with it the hook) is dropped.
    while rx.recv().is_ok() {
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match result {
            Ok((log, done)) => {
                checkpointed("passive");
                tracing::trace!(log, done, "WAL checkpoint");
            }
            // The next request tries again; the writer's inline checkpoint
            // bounds the WAL meanwhile.
            Err(e) => tracing::warn!("WAL checkpoint failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_thread_brings_the_wal_back_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut w = Connection::open(&path).unwrap();
        w.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB);")
            .unwrap();
        start(&mut w, &path).unwrap();
        let blob = vec![7u8; 4096];
        // Past CHECKPOINT_PAGES, short of INLINE_PAGES.
        for _ in 0..12 {
            w.execute_batch("BEGIN").unwrap();
            for _ in 0..100 {
                w.execute("INSERT INTO t VALUES (?)", [&blob]).unwrap();
            }
            w.execute_batch("COMMIT").unwrap();
        }
        let db_len = || std::fs::metadata(&path).unwrap().len();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // 1,200 rows of 4 KiB: only a checkpoint puts them in the database file.
        while db_len() < 1200 * 4096 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            db_len() >= 1200 * 4096,
            "the database file holds the rows: {} bytes",
            db_len()
        );
    }
}
