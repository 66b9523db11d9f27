//! Storage for Roster: the store's role traits ([`ResourceStore`],
//! [`DirectoryStore`], [`DirectoryReads`], [`TokenStore`], [`EventLog`],
//! [`WebhookStore`]) and [`Store`], their union; the SQLite implementation (the
//! embedded default) and the PostgreSQL implementation (for several instances).
//!
//! Every operation that changes a resource runs in one transaction with
//! everything derived from it (index rows, membership rows), so nothing is
//! ever half-applied.

pub mod cursor;
pub mod db;
pub mod error;
pub mod gauges;
pub mod google;
pub mod index;
pub mod portal;
pub mod postgres;
mod roles;
mod rows;
pub mod secrets;
pub mod sql;
pub mod sqlite;
mod tokens;
pub mod web_sessions;
pub mod webhooks;

use std::sync::{Arc, Mutex};

pub use error::{StoreError, StoreResult};
pub use google::GoogleStore;
pub use portal::PortalStore;
pub use postgres::{PgOptions, PgStore};
pub use roles::{
    AuditLog, DirectoryReads, DirectoryStore, EventLog, Health, HealthCheck, ResourceStore, Store,
    StoreGauges, TokenStore, WebSessionStore, WebhookStore,
};
pub use roster_domain::model::*;
/// The domain types the store persists, under the paths the store has
/// always offered them.
pub use roster_domain::{directory_api, events, model};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use tokens::{hash_token, new_admin_key, new_token};

/// The role traits, whose methods are called through any store: `use
/// roster_store::prelude::*;` where a module calls methods of several.
pub mod prelude {
    pub use crate::google::GoogleStore;
    pub use crate::portal::PortalStore;
    pub use crate::roles::{
        AuditLog, DirectoryReads, DirectoryStore, EventLog, HealthCheck, ResourceStore, Store,
        StoreGauges, TokenStore, WebSessionStore, WebhookStore,
    };
}

/// The wall clock in Unix milliseconds, as every stored timestamp is kept.
pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Settings that shape list results.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// How long a cursor stays valid, in seconds.
    pub cursor_timeout_secs: i64,
    /// A filter with fewer index candidates than this is selective: its
    /// resources are fetched by number; with more, the list walks the
    /// directory in page order (see `rows::list`).
    pub selective: u64,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            cursor_timeout_secs: 3600,
            selective: 2_000,
        }
    }
}

/// A reply remembered under an `Idempotency-Key`, with a digest of the request it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotentReply {
    pub request_hash: Vec<u8>,
    pub response: serde_json::Value,
}

/// Synchronous access to one open transaction, for work that spans several
/// operations (a bulk request). Every call runs in its own savepoint, so a
/// failing operation rolls back alone and the rest commit together.
pub trait Tx {
    fn create(&mut self, new: NewResource) -> StoreResult<Stored>;
    fn get(&mut self, kind: Kind, id: &str) -> StoreResult<Option<Stored>>;
    fn update(
        &mut self,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        f: UpdateFn,
    ) -> StoreResult<Stored>;
    fn delete(&mut self, kind: Kind, id: &str, if_match: Option<i64>) -> StoreResult<()>;
    /// The reply stored under `key` within the last `window_ms`, if any.
    fn idempotent_reply(
        &mut self,
        key: &str,
        window_ms: i64,
    ) -> StoreResult<Option<IdempotentReply>>;
    fn remember_reply(&mut self, key: &str, reply: &IdempotentReply) -> StoreResult<()>;
    /// Names (folded userName / displayName) the coming creates will take. A
    /// store may check them all at once now rather than one by one later.
    fn expect_creates(&mut self, names: &[(Kind, String)]) -> StoreResult<()> {
        let _ = names;
        Ok(())
    }
    /// Opens a group of operations that is kept or undone as one (not nestable).
    fn begin_group(&mut self) -> StoreResult<()>;
    /// Closes the open group: `keep` false undoes all of it, events included.
    fn end_group(&mut self, keep: bool) -> StoreResult<()>;
}

/// Work run inside one transaction of a directory; an error rolls all of it back.
pub type TxWork = Box<dyn FnOnce(&mut dyn Tx) -> StoreResult<()> + Send>;

/// Runs `f` in one transaction and returns what it returns. When `f` returns
/// an error, nothing it did is committed.
pub async fn in_transaction<R, F>(
    store: &dyn ResourceStore,
    directory: &str,
    f: F,
) -> StoreResult<R>
where
    R: Send + 'static,
    F: FnOnce(&mut dyn Tx) -> StoreResult<R> + Send + 'static,
{
    let slot = Arc::new(Mutex::new(None));
    let out = slot.clone();
    store
        .transaction(
            directory,
            Box::new(move |tx| {
                let r = f(tx)?;
                if let Ok(mut s) = out.lock() {
                    *s = Some(r);
                }
                Ok(())
            }),
        )
        .await?;
    let result = slot.lock().ok().and_then(|mut s| s.take());
    result.ok_or_else(|| StoreError::internal("the transaction produced no result"))
}
