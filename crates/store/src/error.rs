//! The store's errors are the domain's ([`DomainError`]): what went wrong
//! in its terms, never an HTTP status. This module is where SQLite's errors
//! become them ([`sqlite`]); PostgreSQL's become them in `postgres::conn`,
//! which implements [`DbResultExt`] for its driver's results.

pub use roster_domain::error::Source;
pub use roster_domain::{DomainError as StoreError, DomainResult as StoreResult};

/// A SQLite error as the domain sees it: a busy or locked database is
/// unavailable for now (the request may be retried), an interrupted
/// statement a read stopped at its deadline (only readers are interrupted,
/// see `sqlite::deadline`), anything else a fault that keeps the SQLite
/// error as its source.
pub fn sqlite(e: rusqlite::Error) -> StoreError {
    if sqlite_busy(&e) {
        StoreError::Unavailable(e.to_string())
    } else if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
        StoreError::Timeout { limit_ms: None }
    } else {
        StoreError::internal_from("a SQLite call failed", e)
    }
}

/// The outcome of a read, with the statement timeout named when the
/// database stopped it (drivers say that a statement was cancelled, not
/// which limit cancelled it) and counted for `/metrics` under `backend`.
pub(crate) fn read_outcome<R>(
    result: StoreResult<R>,
    limit: Option<std::time::Duration>,
    backend: &'static str,
) -> StoreResult<R> {
    match result {
        Err(StoreError::Timeout { limit_ms: None }) => {
            metrics::counter!("roster_statement_timeouts_total", "backend" => backend).increment(1);
            Err(StoreError::Timeout {
                limit_ms: limit.map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
            })
        }
        other => other,
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

/// `?` for driver results: `.db()?` turns the driver's error into the domain's.
pub trait DbResultExt<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> DbResultExt<T> for Result<T, rusqlite::Error> {
    fn db(self) -> StoreResult<T> {
        self.map_err(sqlite)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

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
                matches!(sqlite(sqlite_failure(code)), StoreError::Unavailable(_)),
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
                matches!(sqlite(sqlite_failure(code)), StoreError::Internal { .. }),
                "code {code}"
            );
        }
        assert!(matches!(
            sqlite(rusqlite::Error::QueryReturnedNoRows),
            StoreError::Internal { .. }
        ));
    }

    #[test]
    fn a_database_error_keeps_what_caused_it() {
        let e = sqlite(sqlite_failure(rusqlite::ffi::SQLITE_CORRUPT));
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
        let plain = StoreError::internal("webhook vanished");
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
            .map_err(sqlite)
            .unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    }
}
