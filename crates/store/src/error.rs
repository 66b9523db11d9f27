use roster_scim::ScimError;

/// The store's one error type. Protocol outcomes (not found, uniqueness,
/// precondition) are SCIM errors; everything else is the database's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("database error: {0}")]
    Database(String),
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
        StoreError::Database(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Database(format!("stored JSON is unreadable: {e}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
