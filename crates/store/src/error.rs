use roster_scim::ScimError;

/// The store's one error type. Protocol outcomes (not found, uniqueness,
/// precondition) are SCIM errors; everything else is the database's fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached or is too busy to answer right now
    /// (PostgreSQL down or restarting, no pooled connection in time, SQLite
    /// locked past its busy timeout): the same request may well succeed
    /// shortly, so clients are told to retry rather than shown a failure.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the store is shutting down")]
    Closed,
    /// A cursor points before what retention kept: events up to `floor` are gone.
    #[error(
        "events up to {} were removed by retention and this cursor is older; start again without `after` and reconcile from the directory API",
        crate::events::event_id(*floor)
    )]
    CursorExpired { floor: i64 },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if sqlite_busy(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Database(e.to_string())
        }
    }
}

/// SQLITE_BUSY / SQLITE_LOCKED: another connection (or process) held the
/// lock past `busy_timeout`; nothing is wrong with the request.
fn sqlite_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Database(format!("stored JSON is unreadable: {e}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn a_busy_or_locked_sqlite_is_unavailable_and_other_failures_are_not() {
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_BUSY_SNAPSHOT,
            rusqlite::ffi::SQLITE_LOCKED_SHAREDCACHE,
        ] {
            assert!(
                matches!(
                    StoreError::from(sqlite_failure(code)),
                    StoreError::Unavailable(_)
                ),
                "code {code}"
            );
        }
        for code in [
            rusqlite::ffi::SQLITE_CONSTRAINT,
            rusqlite::ffi::SQLITE_CORRUPT,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_READONLY,
        ] {
            assert!(
                matches!(
                    StoreError::from(sqlite_failure(code)),
                    StoreError::Database(_)
                ),
                "code {code}"
            );
        }
        assert!(matches!(
            StoreError::from(rusqlite::Error::QueryReturnedNoRows),
            StoreError::Database(_)
        ));
    }

    #[test]
    fn sqlite_busy_past_the_timeout_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (x INTEGER); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        other
            .busy_timeout(std::time::Duration::from_millis(50))
            .unwrap();
        let e = other
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)
            .unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    }
}
