//! The store's queries, written once for both SQLite and PostgreSQL over [`crate::db::Db`].

pub mod admin;
pub mod admin_keys;
pub mod audit;
pub mod counts;
pub mod directory_api;
pub mod google;
pub mod google_staging;
pub mod list;
pub mod outbox;
pub mod portal;
pub mod read;
pub mod resources;
pub mod settings;
pub mod store;
pub mod tx;
pub mod web_sessions;
pub mod webhooks;

use crate::db::Dialect;

/// The first key of the advisory lock (two-key form) every PostgreSQL write
/// transaction holds, shared, from before it has a transaction id until it
/// ends: it tells readers which running transactions are Roster's. The
/// second key is `hashtext(current_schema())`, so Roster stores in different
/// schemas of one database (test runs, say) never hold each other's events back.
pub const WRITER_LOCK: i32 = 0x526f_7374; // "Rost"

/// A condition on `events.seq` that hides events of transactions that may
/// still commit, so a reader following `seq` never passes an event that
/// commits later. SQLite has one writer, so every visible event is final, but
/// it may not be on disk yet: events of batches still waiting for their fsync
/// stay hidden (`sqlite::durable`).
///
/// PostgreSQL numbers a transaction's events `(xid << 20) + n`. Among the
/// transactions running at the reader's snapshot (`xip`), those that are
/// Roster's (they hold [`WRITER_LOCK`]) or that committed since (their events
/// are invisible to this snapshot though final) may still add events below
/// their number: the reader stops below the smallest of them. Other
/// applications' transactions on the same server never hold events back.
///
/// The two checks run in this order, `pg_locks` first (a `CASE`, whose order
/// PostgreSQL keeps; it evaluated `OR` status-first): a writer ends by being
/// marked committed, then leaving the running set, then releasing its locks,
/// so one not found holding the lock is already `committed` when its status
/// is read after. Status first let a writer that was `in progress` at that
/// check and gone from `pg_locks` a moment later pass unnoticed: the reader
/// moved past its events before they were visible (found by the
/// multi-instance test of `crates/cli/tests`, one skipped event in a few runs).
pub fn visible_events(d: Dialect) -> String {
    match d {
        // A subquery, so the horizon is read once per statement: read per row,
        // a sync finishing mid-scan could admit a later event after an earlier
        // one was left out, and a reader's cursor would pass the earlier one.
        Dialect::Sqlite => " AND seq <= (SELECT roster_event_horizon())".to_owned(),
        Dialect::Postgres => format!(
            " AND seq < (COALESCE((
                SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
                WHERE CASE WHEN x::text::bigint % 4294967296 IN (
                      SELECT t.transactionid::text::bigint FROM pg_locks t
                      JOIN pg_locks w ON w.pid = t.pid
                      WHERE t.locktype = 'transactionid' AND w.locktype = 'advisory'
                        AND w.classid = {} AND w.objid = hashtext(current_schema())::oid
                        AND w.objsubid = 2)
                    THEN true
                    ELSE pg_xact_status(x) = 'committed' END
              ), pg_snapshot_xmax(pg_current_snapshot())::text::bigint) << 20)",
            WRITER_LOCK
        ),
    }
}
