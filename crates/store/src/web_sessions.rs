//! Browser sessions of the web pages: the operator dashboard (bound to an
//! admin key) and the Admin Portal (bound to one directory). The cookie
//! holds a random secret; the store keeps only its SHA-256 digest, so a
//! copy of the database opens no session.

/// Who a session acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionScope {
    /// The dashboard, acting with an admin key (its id): the key is checked
    /// on every request, so revoking it ends the session.
    Admin(String),
    /// The Admin Portal of one directory (its id).
    Portal(String),
}

impl SessionScope {
    /// The `scope` column.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionScope::Admin(_) => "admin",
            SessionScope::Portal(_) => "portal",
        }
    }

    /// The admin key id or directory id the session is bound to.
    pub fn subject(&self) -> &str {
        match self {
            SessionScope::Admin(s) | SessionScope::Portal(s) => s,
        }
    }

    pub(crate) fn from_columns(kind: &str, subject: String) -> Option<Self> {
        match kind {
            "admin" => Some(SessionScope::Admin(subject)),
            "portal" => Some(SessionScope::Portal(subject)),
            _ => None,
        }
    }
}

/// How long a new session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetime {
    /// Unused for longer than this, it ends; `None`: only the absolute limit applies.
    pub idle_secs: Option<i64>,
    /// It ends this long after it began, however busy.
    pub max_secs: i64,
}

/// A live session, as a request finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Hex SHA-256 of the cookie's secret: names the session in the store and logs.
    pub id: String,
    pub scope: SessionScope,
    /// The token every state-changing form of the signed-in browser carries.
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// Unix ms after which the session is over, whatever happens.
    pub expires_at: i64,
    pub idle_secs: Option<i64>,
}
