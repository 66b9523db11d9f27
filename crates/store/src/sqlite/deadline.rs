//! The statement timeout of a read connection. SQLite has no timer of its
//! own: a progress handler, called every [`STEPS`] virtual-machine steps of a
//! running statement, interrupts it once the read's deadline has passed, and
//! the statement fails with SQLITE_INTERRUPT (a [`crate::StoreError::Timeout`]).
//!
//! Only readers get one. The writer runs several requests in one transaction
//! (`sqlite::writer_loop`), and an interrupted INSERT, UPDATE or DELETE rolls
//! back the whole transaction, the other requests' work with it; and a write
//! is short by construction (its lookups are by key), where a read runs
//! whatever filter a client sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::StoreResult;
use crate::error::DbResultExt;

/// Steps between two looks at the clock: tens of microseconds of work,
/// against the few tens of nanoseconds a look costs. A statement shorter
/// than this (a lookup by key) is never interrupted.
const STEPS: i32 = 1_000;

/// When the read on a connection must end; one per reader thread.
pub struct Deadline {
    limit: Duration,
    epoch: Instant,
    /// Nanoseconds after `epoch`; 0: no read is running.
    at: AtomicU64,
}

impl Deadline {
    /// Installs a deadline of `limit` per read on `conn`.
    pub fn install(conn: &mut Connection, limit: Duration) -> StoreResult<Arc<Deadline>> {
        let deadline = Arc::new(Deadline {
            limit,
            epoch: Instant::now(),
            at: AtomicU64::new(0),
        });
        let watch = deadline.clone();
        conn.progress_handler(STEPS, Some(move || watch.passed()))
            .db()?;
        Ok(deadline)
    }

    /// Starts the clock of a read.
    pub fn start(&self) {
        let at = self.nanos(Instant::now() + self.limit).max(1);
        self.at.store(at, Ordering::Relaxed);
    }

    /// Stops it: the connection is idle.
    pub fn stop(&self) {
        self.at.store(0, Ordering::Relaxed);
    }

    fn passed(&self) -> bool {
        let at = self.at.load(Ordering::Relaxed);
        at != 0 && self.nanos(Instant::now()) >= at
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;
    use crate::db::Db;

    /// A statement that runs for as long as it is let: a recursive count.
    const ENDLESS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)
                           SELECT count(*) FROM n";

    #[test]
    fn a_long_read_is_interrupted_at_its_deadline_and_the_connection_serves_on() {
        let mut c = Connection::open_in_memory().unwrap();
        let deadline = Deadline::install(&mut c, Duration::from_millis(30)).unwrap();
        deadline.start();
        let started = Instant::now();
        let e = c.query(ENDLESS, &[]).unwrap_err();
        let took = started.elapsed();
        deadline.stop();
        assert!(matches!(e, StoreError::Timeout { limit_ms: None }), "{e:?}");
        assert!(took >= Duration::from_millis(30), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        // The next read on the same connection runs.
        deadline.start();
        let rows = c.query("SELECT 41 + 1", &[]).unwrap();
        deadline.stop();
        assert_eq!(rows[0].get::<i64>(0).unwrap(), 42);
    }

    #[test]
    fn a_stopped_clock_interrupts_nothing() {
        let mut c = Connection::open_in_memory().unwrap();
        let deadline = Deadline::install(&mut c, Duration::from_millis(1)).unwrap();
        deadline.start();
        deadline.stop();
        // 200,000 rows take far more than a millisecond; with no read's
        // clock running, nothing stops them.
        let rows = c
            .query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
                 SELECT count(*) FROM n",
                &[],
            )
            .unwrap();
        assert_eq!(rows[0].get::<i64>(0).unwrap(), 200_000);
    }
}
