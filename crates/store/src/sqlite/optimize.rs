//! Planner statistics for SQLite: `PRAGMA optimize` when the store opens and
//! after every [`ROWS`] rows written since it last ran. It analyzes only the
//! tables that need it (an index without statistics, or ten times more or
//! fewer rows than at their last analysis), each reading at most
//! [`ANALYSIS_LIMIT`] rows per index, so most calls only look at each
//! table's size, and the analyses themselves come at 10, 100, 1,000, …
//! times a table's first size: a handful in a directory's life.
//!
//! Read connections load statistics when they open (and when the schema
//! changes, which a later ANALYZE does not do), so after an analysis the
//! readers open their connections anew ([`Generation`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

/// Rows written (by every statement, index rows and events included) after
/// which the writer looks again.
pub const ROWS: u64 = 1_000;

/// Rows ANALYZE reads per index (`PRAGMA analysis_limit`): estimates that
/// are good enough to choose between indexes, at a bounded cost per table.
pub const ANALYSIS_LIMIT: u32 = 1_000;

/// Counts analyses, so that readers know to reopen their connections.
#[derive(Debug, Clone, Default)]
pub struct Generation(Arc<AtomicU64>);

impl Generation {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn advance(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The writer's bookkeeping: rows written since the last look.
pub struct Planner {
    generation: Generation,
    /// `total_changes` of the writer at the last look.
    seen: u64,
}

impl Planner {
    /// Sets the analysis limit on the writer and optimizes once.
    pub fn start(conn: &Connection, generation: Generation) -> rusqlite::Result<Planner> {
        conn.execute_batch(&format!("PRAGMA analysis_limit = {ANALYSIS_LIMIT}"))?;
        let mut planner = Planner {
            generation,
            seen: 0,
        };
        planner.optimize(conn)?;
        Ok(planner)
    }

    /// After a commit: optimizes when enough rows were written since the
    /// last look. A failure is logged; it costs plan quality, not data.
    pub fn committed(&mut self, conn: &Connection) {
        if conn.total_changes().saturating_sub(self.seen) < ROWS {
            return;
        }
        if let Err(e) = self.optimize(conn) {
            tracing::warn!(error = %e, "PRAGMA optimize failed");
        }
    }

    /// Runs the ANALYZEs `PRAGMA optimize` finds due, in one transaction;
    /// returns the tables analyzed.
    fn optimize(&mut self, conn: &Connection) -> rusqlite::Result<Vec<String>> {
        // 0x10000: every table, not only those this connection planned with;
        // 0x00002: ANALYZE where it is due; 0x00001: only say which.
        let due: Vec<String> = conn
            .prepare("PRAGMA optimize = 0x10003")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        if !due.is_empty() {
            conn.execute_batch(&format!("BEGIN IMMEDIATE; {}; COMMIT", due.join("; ")))
                .inspect_err(|_| {
                    let _ = conn.execute_batch("ROLLBACK");
                })?;
            self.generation.advance();
            tracing::debug!(tables = ?due, "analyzed for the query planner");
        }
        self.seen = conn.total_changes();
        Ok(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_rows(c: &Connection) -> i64 {
        c.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .and_then(|exists| {
            if exists == 0 {
                Ok(0)
            } else {
                c.query_row("SELECT count(*) FROM sqlite_stat1", [], |r| r.get(0))
            }
        })
        .unwrap()
    }

    #[test]
    fn tables_are_analyzed_once_written_and_again_after_tenfold_growth() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT); CREATE INDEX t_b ON t(b);")
            .unwrap();
        let generation = Generation::default();
        let mut p = Planner::start(&c, generation.clone()).unwrap();
        // Nothing to learn from an empty table.
        assert_eq!(stat_rows(&c), 0);
        assert_eq!(generation.get(), 0);

        let insert = |from: i64, to: i64| {
            c.execute(
                "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
                 INSERT INTO t SELECT i, 'v' || (i % 7) FROM n",
                [from, to],
            )
            .unwrap();
        };
        insert(1, 500);
        p.committed(&c);
        assert_eq!(stat_rows(&c), 0, "fewer than ROWS written: no look");
        insert(501, 1_500);
        p.committed(&c);
        assert_eq!(generation.get(), 1);
        let stat: String = c
            .query_row("SELECT stat FROM sqlite_stat1 WHERE idx = 't_b'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(stat.starts_with("1500 "), "{stat}");

        // Twice as many rows: looked at, not analyzed again.
        insert(1_501, 3_000);
        p.committed(&c);
        assert_eq!(generation.get(), 1);
        // Ten times as many: analyzed again.
        insert(3_001, 16_000);
        p.committed(&c);
        assert_eq!(generation.get(), 2);
    }
}
