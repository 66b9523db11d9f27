//! Planner statistics right after a large load. PostgreSQL plans from the
//! statistics ANALYZE gathers; autovacuum gathers them only once a table
//! changed by a tenth and its next round comes (a minute apart by default),
//! so for a while after a bulk load the planner guesses. It guessed badly
//! enough that a `co` filter ran into the request timeout on a directory just
//! loaded with 10,000 users. So this process analyzes (and vacuums: see
//! [`analyze`]) its schema's tables itself once its own writes since the
//! last analysis reach [`MIN_ROWS`] rows and a tenth of what the tables held
//! then, in the background, on a connection of its own, at most once per
//! [`INTERVAL`] (a later analysis waits out the rest of the interval).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::conn::Manager;
use crate::db::{Db, scalar};
use crate::{StoreError, StoreResult};

/// Rows written (resources, their index rows, events, …) that make an
/// analysis due, however small the tables: below this, the planner's
/// guesses cost little.
pub const MIN_ROWS: u64 = 1_000;

/// The shortest time between two analyses of this process.
pub const INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Counts {
    /// Rows written since the last analysis began.
    pending: AtomicU64,
    /// Rows the schema's tables held at the last analysis.
    analyzed: AtomicU64,
    /// An analysis is asked for and has not begun.
    queued: AtomicBool,
}

/// Counts this process's writes and analyzes when they make it due.
pub struct Analyzer {
    counts: Arc<Counts>,
    wake: Mutex<mpsc::Sender<()>>,
}

impl Analyzer {
    /// Starts the thread that analyzes; it ends when the analyzer is dropped.
    /// Each analysis opens a connection of its own with `manager` (without
    /// the read statement timeout): a VACUUM of a large load takes a while,
    /// and it must not hold one of the pool's connections meanwhile.
    pub fn start(manager: Manager) -> StoreResult<Analyzer> {
        let manager = Manager {
            statement_timeout: None,
            ..manager
        };
        let counts = Arc::new(Counts::default());
        let (wake, woken) = mpsc::channel();
        let shared = counts.clone();
        std::thread::Builder::new()
            .name("roster-pg-analyze".into())
            .spawn(move || run(&manager, &shared, &woken))
            .map_err(|e| StoreError::internal_from("cannot start the analyze thread", e))?;
        Ok(Analyzer {
            counts,
            wake: Mutex::new(wake),
        })
    }

    /// Notes `rows` written by a committed transaction; asks for an analysis
    /// when that makes one due.
    pub fn wrote(&self, rows: u64) {
        if rows == 0 {
            return;
        }
        let pending = self.counts.pending.fetch_add(rows, Ordering::Relaxed) + rows;
        if pending >= MIN_ROWS.max(self.counts.analyzed.load(Ordering::Relaxed) / 10) {
            self.due();
        }
    }

    /// Asks for an analysis, whatever this process wrote: also after writes
    /// it does not count, such as rebuilding the attribute index.
    pub fn due(&self) {
        if !self.counts.queued.swap(true, Ordering::Relaxed)
            && let Ok(wake) = self.wake.lock()
        {
            let _ = wake.send(());
        }
    }
}

fn run(manager: &Manager, counts: &Counts, woken: &mpsc::Receiver<()>) {
    let mut last: Option<Instant> = None;
    while woken.recv().is_ok() {
        // Wait out the interval (and notice a store dropped meanwhile).
        if let Some(at) = last {
            let due = at + INTERVAL;
            loop {
                match woken.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(()) => continue,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        }
        // Writes from here on count toward the next analysis.
        counts.pending.store(0, Ordering::Relaxed);
        counts.queued.store(false, Ordering::Relaxed);
        let started = Instant::now();
        match analyze(manager) {
            Ok(rows) => {
                counts.analyzed.store(rows, Ordering::Relaxed);
                tracing::debug!(
                    rows,
                    took_ms = started.elapsed().as_millis() as u64,
                    "analyzed the tables after a large load"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e.chain(), "VACUUM (ANALYZE) after a large load failed")
            }
        }
        last = Some(Instant::now());
    }
}

/// `VACUUM (ANALYZE)` of every table of the store's schema; returns the
/// rows they hold. VACUUM, not ANALYZE alone: it also marks the pages it
/// finds all-visible, without which a count of a broad filter cannot be
/// answered from `attr_index_lookup` alone and reads a heap page for nearly
/// every entry (a bulk load leaves none marked until autovacuum's round).
/// VACUUM runs outside any transaction, on a connection without a statement
/// timeout.
fn analyze(manager: &Manager) -> StoreResult<u64> {
    use r2d2::ManageConnection;
    let c = manager.connect().map_err(|e| {
        StoreError::internal_from("cannot connect to PostgreSQL to analyze its tables", e)
    })?;
    analyze_in(&c)
}

fn analyze_in(c: &dyn Db) -> StoreResult<u64> {
    let tables: Vec<String> = c
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect::<StoreResult<_>>()?;
    if tables.is_empty() {
        return Ok(0);
    }
    let list: Vec<String> = tables
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    c.batch(&format!("VACUUM (ANALYZE) {}", list.join(", ")))?;
    let rows: Option<i64> = scalar(
        c,
        "SELECT COALESCE(SUM(GREATEST(reltuples, 0)), 0)::bigint FROM pg_class
          WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'",
        &[],
    )?;
    Ok(rows.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}
