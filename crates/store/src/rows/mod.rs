pub mod directory_api;
pub mod webhooks;

/// The condition (appended after a `WHERE` on `events`) that holds back events
/// whose writing transactions may still commit: they are not visible yet, so a
/// cursor never passes one. See docs/design.md.
pub fn visible_events(d: crate::db::Dialect) -> &'static str {
    match d {
        crate::db::Dialect::Sqlite => "",
        crate::db::Dialect::Postgres => {
            " AND seq < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)"
        }
    }
}
