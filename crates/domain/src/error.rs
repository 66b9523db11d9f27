//! [`DomainError`]: what can go wrong below the HTTP layer, in the domain's
//! terms. The store returns it; the server alone decides what each case
//! looks like on the wire (a SCIM error body, an `/api/v1` body).

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use roster_scim::ScimError;

/// The error underneath a [`DomainError::Internal`], shared so the error stays `Clone`.
pub type Source = Arc<dyn Error + Send + Sync>;

#[derive(Debug, Clone)]
pub enum DomainError {
    /// No such resource, directory or token (in this directory).
    NotFound(String),
    /// A value that must be unique in a directory is taken; `attribute`
    /// names it (`userName`, `displayName`).
    Conflict { attribute: String, message: String },
    /// The resource is not at the version the client named (`If-Match`).
    PreconditionFailed(String),
    /// A value the domain refuses: a resource without its name, a group
    /// inside itself, a member from another directory.
    Invalid(String),
    /// A paging cursor that was not issued for this query, or is damaged.
    InvalidCursor(String),
    /// A paging cursor older than its lifetime.
    ExpiredCursor(String),
    /// The protocol refused the request while it was applied (a PATCH or a
    /// validation that runs inside the transaction); the SCIM error says how.
    Rejected(ScimError),
    /// A fault: the database failed, or holds what it should not. `context`
    /// says what failed; `source`, when there is one, is the driver's or the
    /// system's error, kept for [`Error::source`] rather than folded into the text.
    Internal {
        context: String,
        source: Option<Source>,
    },
    /// The data cannot be reached right now (PostgreSQL down or restarting,
    /// no pooled connection in time, SQLite locked past its busy timeout):
    /// the same request may well succeed shortly.
    Unavailable(String),
    /// A read ran past the statement timeout and the database stopped it
    /// (`limit_ms`: that timeout; `None` when something else cancelled it,
    /// such as an operator's `pg_cancel_backend`). Nothing was changed; the
    /// same request may succeed on a quieter database, a narrower one sooner.
    Timeout { limit_ms: Option<u64> },
    /// The store is shutting down.
    Closed,
    /// An events cursor points before what retention kept: events up to
    /// `floor` are gone.
    CursorExpired { floor: i64 },
}

pub type DomainResult<T> = Result<T, DomainError>;

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::NotFound(m)
            | DomainError::PreconditionFailed(m)
            | DomainError::Invalid(m)
            | DomainError::InvalidCursor(m)
            | DomainError::ExpiredCursor(m)
            | DomainError::Conflict { message: m, .. } => f.write_str(m),
            DomainError::Rejected(e) => fmt::Display::fmt(e, f),
            DomainError::Internal { context, .. } => write!(f, "database error: {context}"),
            DomainError::Unavailable(detail) => {
                write!(f, "the database is unavailable: {detail}")
            }
            DomainError::Timeout { limit_ms: Some(ms) } => {
                write!(
                    f,
                    "a query ran longer than the statement timeout of {ms} ms and was stopped"
                )
            }
            DomainError::Timeout { limit_ms: None } => {
                f.write_str("the database cancelled a query")
            }
            DomainError::Closed => f.write_str("the store is shutting down"),
            DomainError::CursorExpired { floor } => write!(
                f,
                "events up to {} were removed by retention and this cursor is older; start again without `after` and reconcile from the directory API",
                crate::events::event_id(*floor)
            ),
        }
    }
}

// By hand rather than derived: the source of an internal error is the error
// itself, not the `Arc` that shares it, so callers can downcast it.
impl Error for DomainError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // Transparent, as the message is.
            DomainError::Rejected(e) => e.source(),
            DomainError::Internal {
                source: Some(s), ..
            } => Some(&**s),
            _ => None,
        }
    }
}

impl From<ScimError> for DomainError {
    fn from(e: ScimError) -> Self {
        DomainError::Rejected(e)
    }
}

impl From<serde_json::Error> for DomainError {
    fn from(e: serde_json::Error) -> Self {
        DomainError::internal_from("stored JSON is unreadable", e)
    }
}

impl DomainError {
    /// A fault with nothing underneath: what was found wrong.
    pub fn internal(context: impl Into<String>) -> Self {
        DomainError::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// A fault caused by `source`; `context` says what failed.
    pub fn internal_from(
        context: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        DomainError::Internal {
            context: context.into(),
            source: Some(Arc::from(source.into())),
        }
    }

    /// A taken unique value: `attribute` and the message that names its value.
    pub fn conflict(attribute: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Conflict {
            attribute: attribute.into(),
            message: message.into(),
        }
    }

    /// True when the request is refused as it stands (not found, a
    /// conflict, a failed precondition, an invalid value or cursor, a
    /// protocol rejection): nothing failed, and the same request will be
    /// refused again. False for faults and outages.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DomainError::NotFound(_)
                | DomainError::Conflict { .. }
                | DomainError::PreconditionFailed(_)
                | DomainError::Invalid(_)
                | DomainError::InvalidCursor(_)
                | DomainError::ExpiredCursor(_)
                | DomainError::Rejected(_)
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_source_for_downcasting_and_the_chain() {
        let io = std::io::Error::other("disk on fire");
        let e = DomainError::internal_from("writing the WAL", io);
        assert_eq!(e.to_string(), "database error: writing the WAL");
        assert_eq!(e.chain(), "database error: writing the WAL: disk on fire");
        let source = e.source().unwrap();
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn domain_outcomes_show_their_message_alone() {
        let e = DomainError::conflict("userName", "a User with userName \"a\" already exists");
        assert_eq!(e.to_string(), "a User with userName \"a\" already exists");
        assert!(e.source().is_none());
        let e = DomainError::from(ScimError::invalid_value("bad"));
        assert!(matches!(&e, DomainError::Rejected(s) if s.detail == "bad"));
        assert!(e.is_refusal());
        assert!(DomainError::NotFound("x".into()).is_refusal());
        assert!(!DomainError::internal("disk").is_refusal());
        assert!(!DomainError::Unavailable("down".into()).is_refusal());
    }
}
