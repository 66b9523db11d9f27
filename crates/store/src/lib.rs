//! Storage for Roster: the [`Store`] trait, its SQLite implementation (the
//! embedded default) and its PostgreSQL implementation (for several instances).
//!
//! Every operation that changes a resource runs in one transaction with
//! everything derived from it (index rows, membership rows), so nothing is
//! ever half-applied.

pub mod cursor;
pub mod db;
pub mod error;
pub mod postgres;
mod rows;
pub mod secrets;
pub mod sql;
pub mod sqlite;
mod tokens;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

pub use error::{StoreError, StoreResult};
pub use postgres::{PgOptions, PgStore};
pub use roster_domain::model::*;
/// The domain types the store persists, under the paths the store has
/// always offered them.
pub use roster_domain::{directory_api, events, model};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use tokens::{hash_token, new_admin_key, new_token};

/// The wall clock in Unix milliseconds, as every stored timestamp is kept.
pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Settings that shape list results.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// How long a cursor stays valid, in seconds.
    pub cursor_timeout_secs: i64,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            cursor_timeout_secs: 3600,
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
pub async fn in_transaction<R, F>(store: &dyn Store, directory: &str, f: F) -> StoreResult<R>
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
    result.ok_or_else(|| StoreError::Database("the transaction produced no result".into()))
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Runs `work` in one transaction: it commits when `work` returns Ok, and
    /// nothing of it survives when `work` returns an error.
    async fn transaction(&self, directory: &str, work: TxWork) -> StoreResult<()>;

    async fn create_directory(&self, name: &str) -> StoreResult<Directory>;
    async fn list_directories(&self) -> StoreResult<Vec<Directory>>;
    async fn get_directory(&self, id: &str) -> StoreResult<Option<Directory>>;

    /// Mints a new bearer token for a directory; the plaintext is returned once and never stored.
    async fn issue_token(&self, directory_id: &str) -> StoreResult<(TokenInfo, String)>;
    async fn list_tokens(&self, directory_id: &str) -> StoreResult<Vec<TokenInfo>>;
    /// Revokes a token by id; false when there is no such live token.
    async fn revoke_token(&self, token_id: &str) -> StoreResult<bool>;
    /// The directory a bearer token belongs to, if the token is live.
    async fn authenticate(&self, token: &str) -> StoreResult<Option<String>>;

    /// Mints an admin API key; the plaintext is returned once and never stored.
    async fn create_admin_key(&self, name: &str) -> StoreResult<(AdminKeyInfo, String)>;
    /// The id of the live admin key, if `key` is one.
    async fn authenticate_admin(&self, key: &str) -> StoreResult<Option<String>>;

    /// Events after the sequence number `after`, oldest first, optionally
    /// restricted to some types and one directory.
    async fn list_events(
        &self,
        after: i64,
        limit: u64,
        types: &[String],
        directory: Option<&str>,
    ) -> StoreResult<Vec<events::Event>>;

    /// Deletes events older than `cutoff_ms` that every enabled webhook endpoint has delivered.
    async fn prune_events(&self, cutoff_ms: i64) -> StoreResult<u64>;

    /// One event by sequence number.
    async fn event(&self, seq: i64) -> StoreResult<Option<events::Event>>;

    // Webhook endpoints and their delivery state.
    async fn create_webhook(
        &self,
        url: &str,
        types: &[String],
        directory: Option<&str>,
    ) -> StoreResult<(webhooks::WebhookEndpoint, String)>;
    async fn list_webhooks(&self) -> StoreResult<Vec<webhooks::WebhookEndpoint>>;
    async fn get_webhook(&self, id: &str) -> StoreResult<Option<webhooks::WebhookEndpoint>>;
    async fn set_webhook_enabled(&self, id: &str, enabled: bool) -> StoreResult<bool>;
    async fn rotate_webhook_secret(&self, id: &str) -> StoreResult<Option<String>>;
    async fn delete_webhook(&self, id: &str) -> StoreResult<bool>;
    /// Fails, naming the endpoint, when a stored webhook secret cannot be read
    /// with the configured `secret_key` or its previous keys (wrong or
    /// missing key); with a key, encrypts with it the secrets stored in
    /// plaintext or under a previous key, all in one transaction. Returns how
    /// many it encrypted.
    async fn check_webhook_secrets(&self) -> StoreResult<usize>;
    async fn webhook_deliveries(
        &self,
        id: &str,
        limit: u64,
    ) -> StoreResult<Vec<webhooks::DeliveryRecord>>;
    /// Queues one event to be sent to an endpoint again; false if either is unknown.
    async fn redeliver(&self, id: &str, event_seq: i64) -> StoreResult<bool>;
    /// Leases up to `limit` endpoints that have events to deliver and are due.
    async fn claim_webhooks(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<webhooks::Leased>>;
    /// Records attempts and moves the endpoint on; false when the lease was lost.
    async fn webhook_progress(
        &self,
        id: &str,
        owner: &str,
        lease_ms: i64,
        progress: webhooks::Progress,
    ) -> StoreResult<bool>;
    async fn release_webhook(&self, id: &str, owner: &str) -> StoreResult<()>;

    // ---- Directory administration and the app-facing directory API ----

    /// Creates a directory and its first token together; the plaintext token is returned once.
    async fn create_directory_with_token(
        &self,
        name: &str,
    ) -> StoreResult<(Directory, TokenInfo, String)>;
    /// On an empty database, creates a directory and its first token; `None`
    /// when any directory exists. Atomic across processes: instances that
    /// start together on an empty database create one directory between them.
    async fn create_first_directory(
        &self,
        name: &str,
    ) -> StoreResult<Option<(Directory, TokenInfo, String)>>;
    /// Up to `limit` directories with ids after `after`, and the cursor of the next page.
    async fn list_directories_page(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<(Vec<Directory>, Option<String>)>;
    /// None when there is no such directory.
    async fn rename_directory(&self, id: &str, name: &str) -> StoreResult<Option<Directory>>;
    /// Deletes a directory and all its data, writing `dsync.deleted`; false when unknown.
    async fn delete_directory(&self, id: &str) -> StoreResult<bool>;
    /// Revokes a live token of one directory; false when it has no such token.
    async fn revoke_directory_token(&self, directory: &str, token_id: &str) -> StoreResult<bool>;
    /// Issues a successor to a live token (of `directory`, when given) and lets
    /// the old one work for `overlap_secs` more; None when there is no such live token.
    async fn rotate_token(
        &self,
        directory: Option<&str>,
        token_id: &str,
        overlap_secs: i64,
    ) -> StoreResult<Option<directory_api::Rotation>>;
    /// A page of a directory's users, normalized; not found for an unknown directory or group.
    async fn directory_users(
        &self,
        directory: &str,
        query: directory_api::UserQuery,
    ) -> StoreResult<directory_api::ObjectPage>;
    async fn directory_groups(
        &self,
        directory: &str,
        query: directory_api::GroupQuery,
    ) -> StoreResult<directory_api::ObjectPage>;
    /// A page of a group's direct user members; not found for an unknown group.
    async fn group_users(
        &self,
        group_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<directory_api::ObjectPage>;
    /// One user or group, normalized, in whichever directory it is.
    async fn directory_object(
        &self,
        kind: Kind,
        id: &str,
    ) -> StoreResult<Option<serde_json::Value>>;

    // ---- end of the directory API block ----

    /// How the directory reports deactivations; `None` for an unknown directory.
    async fn deactivation(&self, directory: &str) -> StoreResult<Option<Deactivation>>;
    /// Sets it; false for an unknown directory.
    async fn set_deactivation(&self, directory: &str, mode: Deactivation) -> StoreResult<bool>;
    /// A directory's settings; `None` for an unknown directory.
    async fn settings(&self, directory: &str) -> StoreResult<Option<DirectorySettings>>;
    /// Changes some settings in one transaction and returns them all; `None`
    /// for an unknown directory. A new custom-attribute mapping applies to
    /// events written from then on: events already written keep their data.
    async fn update_settings(
        &self,
        directory: &str,
        change: SettingsChange,
    ) -> StoreResult<Option<DirectorySettings>>;

    async fn create(&self, directory: &str, new: NewResource) -> StoreResult<Stored>;
    async fn get(&self, directory: &str, kind: Kind, id: &str) -> StoreResult<Option<Stored>>;
    /// Read-modify-write inside one transaction; `if_match` is the expected version.
    async fn update(
        &self,
        directory: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        f: UpdateFn,
    ) -> StoreResult<Stored>;
    async fn delete(
        &self,
        directory: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
    ) -> StoreResult<()>;
    async fn list(&self, directory: &str, query: ListQuery) -> StoreResult<ListResult>;
    /// Members of each group, with what `members[].display` shows.
    async fn members(
        &self,
        directory: &str,
        group_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<MemberRow>>>;
    /// Groups each resource is a direct member of.
    async fn groups_of(
        &self,
        directory: &str,
        member_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<MemberRow>>>;
}
