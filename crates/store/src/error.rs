use std::error::Error;
use std::fmt;
use std::sync::Arc;

use roster_scim::ScimError;

/// The error underneath a [`StoreError::Database`], shared so the error stays `Clone`.
pub type Source = Arc<dyn Error + Send + Sync>;

/// The store's one error type. Protocol outcomes (not found, uniqueness,
/// precondition) are SCIM errors; everything else is the database's fault.
#[derive(Debug, Clone)]
pub enum StoreError {
    Scim(ScimError),
    /// The database failed, or holds what it should not. `context` says what
    /// failed; `source`, when there is one, is the driver's or the system's
    /// error, kept for [`Error::source`] rather than folded into the text.
    Database {
        context: String,
        source: Option<Source>,
    },
    /// The database cannot be reached or is too busy to answer right now
    /// (PostgreSQL down or restarting, no pooled connection in time, SQLite
    /// locked past its busy timeout): the same request may well succeed
    /// shortly, so clients are told to retry rather than shown a failure.
    Unavailable(String),
    Closed,
    /// A cursor points before what retention kept: events up to `floor` are gone.
    CursorExpired {
        floor: i64,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Scim(e) => fmt::Display::fmt(e, f),
            StoreError::Database { context, .. } => write!(f, "database error: {context}"),
            StoreError::Unavailable(detail) => write!(f, "the database is unavailable: {detail}"),
            StoreError::Closed => f.write_str("the store is shutting down"),
            StoreError::CursorExpired { floor } => write!(
                f,
                "events up to {} were removed by retention and this cursor is older; start again without `after` and reconcile from the directory API",
                crate::events::event_id(*floor)
            ),
        }
    }
}

// By hand rather than derived: the source of a database error is the error
// itself, not the `Arc` that shares it, so callers can downcast it.
impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // Transparent, as the message is.
            StoreError::Scim(e) => e.source(),
            StoreError::Database {
                source: Some(s), ..
            } => Some(&**s),
            _ => None,
        }
    }
}

impl From<ScimError> for StoreError {
    fn from(e: ScimError) -> Self {
        StoreError::Scim(e)
    }
}

impl StoreError {
    /// A database error with nothing underneath: what was found wrong.
    pub fn database(context: impl Into<String>) -> Self {
        StoreError::Database {
            context: context.into(),
            source: None,
        }
    }

    /// A database error caused by `source`; `context` says what failed.
    pub fn database_from(
        context: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        StoreError::Database {
            context: context.into(),
            source: Some(Arc::from(source.into())),
        }
    }

    /// The message followed by every error underneath it, `: `-separated,
    /// as an operator's log line wants it.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut next = self.source();
        while let Some(e) = next {
            out.push_str(": ");
            out.push_str(&e.to_string());
            next = e.source();
        }
        out
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if sqlite_busy(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::database_from("a SQLite call failed", e)
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
        StoreError::database_from("stored JSON is unreadable", e)
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
                    StoreError::Database { .. }
                ),
                "code {code}"
            );
        }
        assert!(matches!(
            StoreError::from(rusqlite::Error::QueryReturnedNoRows),
            StoreError::Database { .. }
        ));
    }

    #[test]
    fn a_database_error_keeps_what_caused_it() {
        let e = StoreError::from(sqlite_failure(rusqlite::ffi::SQLITE_CORRUPT));
        let source = e.source().expect("the SQLite error is kept");
        assert!(
            source.downcast_ref::<rusqlite::Error>().is_some(),
            "{source:?}"
        );
        assert_eq!(e.to_string(), "database error: a SQLite call failed");
        assert!(
            e.chain()
                .starts_with("database error: a SQLite call failed: ")
        );
        assert!(e.chain().len() > e.to_string().len() + 2, "{}", e.chain());
        // Cloned (a transaction keeps its first failure), the source stays.
        assert!(e.clone().source().is_some());
        let plain = StoreError::database("webhook vanished");
        assert!(plain.source().is_none());
        assert_eq!(plain.chain(), "database error: webhook vanished");
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
