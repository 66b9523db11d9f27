//! The store's roles, one trait each, and [`Store`], their union.
//!
//! Code that needs one role takes that trait (`&dyn EventLog`,
//! `Arc<dyn TokenStore>`); code that needs several, or hands the store on,
//! takes `Arc<dyn Store>`, which converts to any of its roles. Both backends
//! implement every role. [`crate::prelude`] brings them all into scope.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::model::*;
use crate::{StoreResult, TxWork, directory_api, events, web_sessions, webhooks};

/// The SCIM resources of a directory (users and groups): their writes,
/// alone or in one transaction, their reads and lists, and the membership
/// rows between them.
#[async_trait]
pub trait ResourceStore: Send + Sync + 'static {
    /// Runs `work` in one transaction: it commits when `work` returns Ok, and
    /// nothing of it survives when `work` returns an error.
    async fn transaction(&self, directory: &str, work: TxWork) -> StoreResult<()>;

    /// Creates a resource in a directory.
    async fn create(&self, directory: &str, new: NewResource) -> StoreResult<Stored>;
    /// One resource of a directory; `None` when there is no such resource.
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
    /// Deletes a resource; `if_match` is the expected version.
    async fn delete(
        &self,
        directory: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
    ) -> StoreResult<()>;
    /// One page of a directory's resources of one type, filtered and sorted.
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

/// Directories themselves: creating (alone or with a first token), listing,
/// renaming and deleting them, and each directory's settings and
/// deactivation mode.
#[async_trait]
pub trait DirectoryStore: Send + Sync + 'static {
    /// Creates an empty directory.
    async fn create_directory(&self, actor: &Actor, name: &str) -> StoreResult<Directory>;
    /// Every directory, by id.
    async fn list_directories(&self) -> StoreResult<Vec<Directory>>;
    /// One directory; `None` when there is no such directory.
    async fn get_directory(&self, id: &str) -> StoreResult<Option<Directory>>;

    /// Creates a directory and its first token together; the plaintext token is returned once.
    async fn create_directory_with_token(
        &self,
        actor: &Actor,
        name: &str,
        attrs: DirectoryAttrs,
    ) -> StoreResult<(Directory, TokenInfo, String)>;
    /// On an empty database, creates a directory and its first token; `None`
    /// when any directory exists. Atomic across processes: instances that
    /// start together on an empty database create one directory between them.
    async fn create_first_directory(
        &self,
        actor: &Actor,
        name: &str,
    ) -> StoreResult<Option<(Directory, TokenInfo, String)>>;
    /// A page of directories, filtered (to a key's scope among others), in either order.
    async fn directory_page(
        &self,
        query: directory_api::DirectoryQuery,
    ) -> StoreResult<directory_api::Page<Directory>>;
    /// User and group counts of some directories, in one query.
    async fn directory_counts(
        &self,
        ids: &[String],
    ) -> StoreResult<HashMap<String, DirectoryCounts>>;
    /// Changes a directory's name, organization, domain or type, audited as
    /// `directory.updated`; `None` when unknown.
    async fn update_directory(
        &self,
        actor: &Actor,
        id: &str,
        change: DirectoryChange,
    ) -> StoreResult<Option<Directory>>;
    /// Records the provider type detected from a directory's requests unless
    /// one is set; true when it was recorded. Not an administrative change:
    /// no audit record.
    async fn detect_provider(&self, id: &str, provider: &str) -> StoreResult<bool>;
    /// None when there is no such directory.
    async fn rename_directory(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
    ) -> StoreResult<Option<Directory>>;
    /// Deletes a directory and all its data, writing `dsync.deleted`; false when unknown.
    async fn delete_directory(&self, actor: &Actor, id: &str) -> StoreResult<bool>;

    /// How the directory reports deactivations; `None` for an unknown directory.
    async fn deactivation(&self, directory: &str) -> StoreResult<Option<Deactivation>>;
    /// Sets it; false for an unknown directory.
    async fn set_deactivation(
        &self,
        actor: &Actor,
        directory: &str,
        mode: Deactivation,
    ) -> StoreResult<bool>;
    /// A directory's settings; `None` for an unknown directory.
    async fn settings(&self, directory: &str) -> StoreResult<Option<DirectorySettings>>;
    /// Changes some settings in one transaction and returns them all; `None`
    /// for an unknown directory. A new custom-attribute mapping applies to
    /// events written from then on: events already written keep their data.
    async fn update_settings(
        &self,
        actor: &Actor,
        directory: &str,
        change: SettingsChange,
    ) -> StoreResult<Option<DirectorySettings>>;
}

/// The app-facing directory API's reads: a directory's users and groups,
/// normalized, paged by id. Read-only.
#[async_trait]
pub trait DirectoryReads: Send + Sync + 'static {
    /// A page of a directory's users, normalized; not found for an unknown directory or group.
    async fn directory_users(
        &self,
        directory: &str,
        query: directory_api::UserQuery,
    ) -> StoreResult<directory_api::ObjectPage>;
    /// A page of a directory's groups, normalized; not found for an unknown directory.
    async fn directory_groups(
        &self,
        directory: &str,
        query: directory_api::GroupQuery,
    ) -> StoreResult<directory_api::ObjectPage>;
    /// A page of a group's direct user members; not found for an unknown group.
    async fn group_users(
        &self,
        group_id: &str,
        paging: directory_api::Paging,
    ) -> StoreResult<directory_api::ObjectPage>;
    /// One user or group, normalized, in whichever directory it is; a user
    /// comes with its groups (normalized).
    async fn directory_object(
        &self,
        kind: Kind,
        id: &str,
    ) -> StoreResult<Option<(serde_json::Value, Vec<serde_json::Value>)>>;
}

/// Credentials: the bearer tokens of directories (issue, list, revoke,
/// rotate, authenticate) and the admin API keys (create, list, revoke,
/// rotate, authenticate). Only digests are stored; a plaintext is returned
/// once, when it is minted. Every change is audited, naming `actor`.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Mints a new bearer token for a directory; the plaintext is returned once and never stored.
    async fn issue_token(
        &self,
        actor: &Actor,
        directory_id: &str,
    ) -> StoreResult<(TokenInfo, String)>;
    /// The tokens of a directory, revoked ones included, by id.
    async fn list_tokens(&self, directory_id: &str) -> StoreResult<Vec<TokenInfo>>;
    /// Revokes a token by id; false when there is no such live token.
    async fn revoke_token(&self, actor: &Actor, token_id: &str) -> StoreResult<bool>;
    /// Revokes a live token of one directory; false when it has no such token.
    async fn revoke_directory_token(
        &self,
        actor: &Actor,
        directory: &str,
        token_id: &str,
    ) -> StoreResult<bool>;
    /// Issues a successor to a live token (of `directory`, when given) and lets
    /// the old one work for `overlap_secs` more; None when there is no such live token.
    async fn rotate_token(
        &self,
        actor: &Actor,
        directory: Option<&str>,
        token_id: &str,
        overlap_secs: i64,
    ) -> StoreResult<Option<directory_api::Rotation>>;
    /// The directory a bearer token belongs to, if the token is live.
    async fn authenticate(&self, token: &str) -> StoreResult<Option<String>>;

    /// Mints an admin API key with a scope; the plaintext is returned once
    /// and never stored. A scope limited to directories names existing ones.
    async fn create_admin_key(
        &self,
        actor: &Actor,
        name: &str,
        scope: &AdminKeyScope,
    ) -> StoreResult<(AdminKeyInfo, String)>;
    /// Every admin key, revoked ones included, by id.
    async fn list_admin_keys(&self) -> StoreResult<Vec<AdminKeyInfo>>;
    /// Revokes a live admin key now; `None` when there is no such live key.
    async fn revoke_admin_key(&self, actor: &Actor, id: &str) -> StoreResult<Option<AdminKeyInfo>>;
    /// Gives a live admin key a new secret, which is returned once; the old
    /// secret stops working at once. `None` when there is no such live key.
    async fn rotate_admin_key(
        &self,
        actor: &Actor,
        id: &str,
    ) -> StoreResult<Option<(AdminKeyInfo, String)>>;
    /// The live admin key `key` is, with its scope.
    async fn authenticate_admin(&self, key: &str) -> StoreResult<Option<AdminKeyInfo>>;
    /// The admin key with this id while it is live; `None` once revoked or unknown.
    async fn live_admin_key(&self, id: &str) -> StoreResult<Option<AdminKeyInfo>>;
}

/// Browser sessions of the dashboard and the Admin Portal, generic over
/// what they are bound to ([`web_sessions::SessionScope`]).
#[async_trait]
pub trait WebSessionStore: Send + Sync + 'static {
    /// Opens a session, audited as `web_session.created` naming `actor`;
    /// returns it and the cookie's secret, which is not stored.
    async fn create_web_session(
        &self,
        actor: &Actor,
        scope: &web_sessions::SessionScope,
        lifetime: web_sessions::SessionLifetime,
    ) -> StoreResult<(web_sessions::WebSession, String)>;
    /// The live session a cookie's secret opens; records its use (at most
    /// once a minute), so its idle clock restarts.
    async fn web_session(&self, cookie: &str) -> StoreResult<Option<web_sessions::WebSession>>;
    /// Ends a session (sign-out); false when the cookie opened none.
    async fn end_web_session(&self, cookie: &str) -> StoreResult<bool>;
}

/// The audit log: one record per administrative change, written by the
/// change's own transaction.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Records in commit order, as `query` asks.
    async fn audit_log(&self, query: AuditQuery) -> StoreResult<Vec<AuditRecord>>;
}

/// The event log the resource writes append to: reads by sequence number
/// (the events API, the webhook dispatcher) and retention.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Events after the sequence number `after`, oldest first, optionally
    /// restricted to some types and to some directories.
    async fn list_events(
        &self,
        after: i64,
        limit: u64,
        types: &[String],
        directories: Option<&[String]>,
    ) -> StoreResult<Vec<events::Event>>;

    /// A page of events in either order, filtered by type, directory,
    /// organization and time.
    async fn event_page(
        &self,
        query: directory_api::EventQuery,
    ) -> StoreResult<directory_api::Page<events::Event>>;

    /// One event by sequence number.
    async fn event(&self, seq: i64) -> StoreResult<Option<events::Event>>;

    /// Deletes events older than `cutoff_ms` that every enabled webhook endpoint has delivered.
    async fn prune_events(&self, cutoff_ms: i64) -> StoreResult<u64>;
}

/// Webhook endpoints and their delivery state: the endpoints and their
/// signing secrets, the delivery log, redeliveries, and the leases under
/// which one dispatcher at a time delivers to an endpoint.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Registers an endpoint for some event types (all when empty) of one
    /// directory or all, receiving events from now on; returns it with its
    /// signing secret, in plaintext. `format` decides the deliveries' payload
    /// and signature.
    async fn create_webhook(
        &self,
        actor: &Actor,
        url: &str,
        format: webhooks::WebhookFormat,
        types: &[String],
        directory: Option<&str>,
    ) -> StoreResult<(webhooks::WebhookEndpoint, String)> {
        self.create_webhook_with(
            actor,
            url,
            format,
            types,
            directory,
            webhooks::DeliveryOptions::default(),
        )
        .await
    }
    /// [`Self::create_webhook`] with delivery options (in flight, batches).
    async fn create_webhook_with(
        &self,
        actor: &Actor,
        url: &str,
        format: webhooks::WebhookFormat,
        types: &[String],
        directory: Option<&str>,
        options: webhooks::DeliveryOptions,
    ) -> StoreResult<(webhooks::WebhookEndpoint, String)>;
    /// Changes an endpoint's settings, each when given, audited as one
    /// `webhook.updated`; returns the endpoint as it now is, `None` when
    /// there is no such endpoint.
    async fn update_webhook(
        &self,
        actor: &Actor,
        id: &str,
        update: &webhooks::WebhookUpdate,
    ) -> StoreResult<Option<webhooks::WebhookEndpoint>>;
    /// An endpoint's signing secret in plaintext (the WorkOS endpoint object
    /// shows it); `None` when there is no such endpoint.
    async fn webhook_secret(&self, id: &str) -> StoreResult<Option<String>>;
    /// Every endpoint, by id.
    async fn list_webhooks(&self) -> StoreResult<Vec<webhooks::WebhookEndpoint>>;
    /// One endpoint; `None` when there is no such endpoint.
    async fn get_webhook(&self, id: &str) -> StoreResult<Option<webhooks::WebhookEndpoint>>;
    /// Enables or disables an endpoint; enabling also clears a failing state
    /// and any backoff. False when there is no such endpoint.
    async fn set_webhook_enabled(
        &self,
        actor: &Actor,
        id: &str,
        enabled: bool,
    ) -> StoreResult<bool>;
    /// Gives an endpoint a new signing secret and returns it; `None` when
    /// there is no such endpoint.
    async fn rotate_webhook_secret(&self, actor: &Actor, id: &str) -> StoreResult<Option<String>>;
    /// Deletes an endpoint; false when there is no such endpoint.
    async fn delete_webhook(&self, actor: &Actor, id: &str) -> StoreResult<bool>;
    /// Fails, naming the endpoint, when a stored webhook secret cannot be read
    /// with the configured `secret_key` or its previous keys (wrong or
    /// missing key); with a key, encrypts with it the secrets stored in
    /// plaintext or under a previous key, all in one transaction. Returns how
    /// many it encrypted.
    async fn check_webhook_secrets(&self) -> StoreResult<usize>;
    /// The newest `limit` delivery attempts to an endpoint, newest first.
    async fn webhook_deliveries(
        &self,
        id: &str,
        limit: u64,
    ) -> StoreResult<Vec<webhooks::DeliveryRecord>>;
    /// Queues one event to be sent to an endpoint again; false if either is unknown.
    async fn redeliver(&self, id: &str, event_seq: i64) -> StoreResult<bool>;
    /// Leases up to `limit` endpoints that have events to deliver, are due
    /// and are not leased (by anyone, `owner` included: a lease held is a
    /// dispatcher at work).
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
    /// Gives up `owner`'s lease on an endpoint, so any dispatcher may claim it at once.
    async fn release_webhook(&self, id: &str, owner: &str) -> StoreResult<()>;
}

/// What one readiness check of the store found: `Err` holds why a part
/// fails, in words fit for an unauthenticated probe (no SQL, no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// A trivial read through the normal read path answered.
    pub database: Result<(), String>,
    /// The database's schema version is the one this build migrates to.
    pub migrations: Result<(), String>,
    /// A write transaction opens and commits (for SQLite: the writer thread
    /// is alive and takes work).
    pub writer: Result<(), String>,
}

impl Health {
    /// True when every part answered.
    pub fn is_ok(&self) -> bool {
        self.database.is_ok() && self.migrations.is_ok() && self.writer.is_ok()
    }
}

/// Readiness of the store, for the server's `/health/ready`.
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// Checks the database answers a read, its schema is current and the
    /// write path takes work, each within `within` (the read and the write
    /// run at once). Never fails: each failing part is named in the result.
    async fn health(&self, within: std::time::Duration) -> Health;
}

/// What the server's `/metrics` reads from the store at scrape time.
#[async_trait]
pub trait StoreGauges: Send + Sync + 'static {
    /// The WAL size or the pool's connections, and every enabled webhook
    /// endpoint's lag behind the event log.
    async fn gauges(&self) -> StoreResult<crate::gauges::Gauges>;
}

/// Every role at once: what a backend is, and what code that hands the store
/// on holds (`Arc<dyn Store>`). Implemented for everything that implements
/// all the roles; an `Arc<dyn Store>` converts to an `Arc` of any one role.
pub trait Store:
    ResourceStore
    + DirectoryStore
    + DirectoryReads
    + TokenStore
    + EventLog
    + WebhookStore
    + AuditLog
    + HealthCheck
    + StoreGauges
    + WebSessionStore
    + crate::google::GoogleStore
    + crate::portal::PortalStore
{
}

impl<T> Store for T where
    T: ResourceStore
        + DirectoryStore
        + DirectoryReads
        + TokenStore
        + EventLog
        + WebhookStore
        + AuditLog
        + HealthCheck
        + StoreGauges
        + WebSessionStore
        + crate::google::GoogleStore
        + crate::portal::PortalStore
{
}
