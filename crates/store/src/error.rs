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
