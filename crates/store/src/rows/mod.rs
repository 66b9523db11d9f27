//! The store's queries, written once for both SQLite and PostgreSQL over [`crate::db::Db`].

pub mod admin;
pub mod list;
pub mod outbox;
pub mod resources;
pub mod tx;

use crate::db::Dialect;

/// A condition on `events.seq` that hides events of transactions that may
/// still commit. SQLite has one writer, so every visible event is final;
/// PostgreSQL numbers events by transaction id (see `postgres::events`), and
/// every transaction older than the snapshot's xmin has finished, so a reader
/// that stays below it never passes an event that commits later.
pub fn visible_events(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " AND seq < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)",
    }
}
