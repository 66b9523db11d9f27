//! The store's queries, written once for both SQLite and PostgreSQL over [`crate::db::Db`].

pub mod admin;
pub mod directory_api;
pub mod list;
pub mod outbox;
pub mod resources;
pub mod settings;
pub mod tx;
pub mod webhooks;

use crate::db::Dialect;

/// The advisory lock (two-key form) every PostgreSQL write transaction holds,
/// shared, from before it has a transaction id until it ends: it tells
/// readers which running transactions are Roster's.
pub const WRITER_LOCK: (i32, i32) = (0x526f_7374, 0x6576); // "Rost", "ev"

/// A condition on `events.seq` that hides events of transactions that may
/// still commit, so a reader following `seq` never passes an event that
/// commits later. SQLite has one writer: every visible event is final.
///
/// PostgreSQL numbers a transaction's events `(xid << 20) + n`. Among the
/// transactions running at the reader's snapshot (`xip`), those that are
/// Roster's (they hold [`WRITER_LOCK`]) or that committed since (their events
/// are invisible to this snapshot though final) may still add events below
/// their number: the reader stops below the smallest of them. Other
/// applications' transactions on the same server never hold events back.
pub fn visible_events(d: Dialect) -> String {
    match d {
        Dialect::Sqlite => String::new(),
        Dialect::Postgres => format!(
            " AND seq < (COALESCE((
                SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
                WHERE pg_xact_status(x) = 'committed'
                   OR x::text::bigint % 4294967296 IN (
                      SELECT t.transactionid::text::bigint FROM pg_locks t
                      JOIN pg_locks w ON w.pid = t.pid
                      WHERE t.locktype = 'transactionid' AND w.locktype = 'advisory'
                        AND w.classid = {} AND w.objid = {} AND w.objsubid = 2)
              ), pg_snapshot_xmax(pg_current_snapshot())::text::bigint) << 20)",
            WRITER_LOCK.0, WRITER_LOCK.1
        ),
    }
}
