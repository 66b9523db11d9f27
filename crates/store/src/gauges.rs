//! What the server's `/metrics` reads from the store when it is scraped:
//! the size of SQLite's write-ahead log, PostgreSQL's connection pool, and
//! how far each webhook endpoint lags behind the event log. Read at scrape
//! time rather than kept by the loops, so the numbers are the database's own
//! (shared by every instance) and cost nothing between scrapes.

use std::time::Duration;

use crate::db::Db;
use crate::{StoreResult, vals};

/// One scrape's worth of store gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Bytes in SQLite's write-ahead log (`-wal` file); `None` on PostgreSQL.
    pub sqlite_wal_bytes: Option<u64>,
    /// This process's PostgreSQL connection pool; `None` on SQLite.
    pub pool: Option<PoolGauges>,
    /// Every enabled webhook endpoint, by id.
    pub webhooks: Vec<WebhookLag>,
}

/// Connections of a PostgreSQL pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolGauges {
    /// Checked out by a call.
    pub in_use: u32,
    /// Open and free.
    pub idle: u32,
    /// Calls waiting for a connection.
    pub waiting: u64,
}

/// How far an endpoint is behind the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookLag {
    pub endpoint: String,
    /// Events after its cursor (of its directory, when it has one).
    pub events: i64,
    /// When the oldest of them was written (Unix ms); `None` when caught up.
    pub oldest_ms: Option<i64>,
}

/// The lag of every enabled endpoint.
pub fn webhook_lag(c: &dyn Db) -> StoreResult<Vec<WebhookLag>> {
    // Events of other directories are not an endpoint's to deliver; events of
    // types it does not take are, in effect (its cursor must pass them).
    let rows = c.query(
        "SELECT w.id,
                (SELECT COUNT(*) FROM events e
                  WHERE e.seq > w.cursor
                    AND (w.directory_id IS NULL OR e.directory_id = w.directory_id)),
                (SELECT e.created_at FROM events e
                  WHERE e.seq > w.cursor
                    AND (w.directory_id IS NULL OR e.directory_id = w.directory_id)
                  ORDER BY e.seq LIMIT 1)
           FROM webhook_endpoints w
          WHERE w.enabled <> ?
          ORDER BY w.id",
        vals![0_i64],
    )?;
    rows.iter()
        .map(|r| {
            Ok(WebhookLag {
                endpoint: r.get(0)?,
                events: r.get(1)?,
                oldest_ms: r.get(2)?,
            })
        })
        .collect()
}

/// Counts a committed write transaction for `/metrics`: its requests (SQLite
/// commits several together), the events it wrote and how long COMMIT took.
pub(crate) fn committed(backend: &'static str, requests: usize, events: i64, took: Duration) {
    metrics::histogram!("roster_store_write_batch_size", "backend" => backend)
        .record(requests as f64);
    metrics::histogram!("roster_store_commit_duration_seconds", "backend" => backend)
        .record(took.as_secs_f64());
    if let Ok(n) = u64::try_from(events)
        && n > 0
    {
        metrics::counter!("roster_events_written_total").increment(n);
    }
}
