//! The store for scale: PostgreSQL, shared by any number of Roster processes.
//!
//! Every call runs on a pooled connection on a blocking thread (the queries
//! are the same synchronous code SQLite runs, see `crate::rows`). Writes to a
//! directory take a transaction-scoped advisory lock on it first, so
//! processes take turns per directory exactly as SQLite's single writer does:
//! read-modify-write (PUT, PATCH, If-Match) never loses an update, and two
//! transactions never wait on each other's rows in opposite orders, so no
//! deadlock can reach a client. Different directories write in parallel.

mod conn;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roster_scim::schema::SchemaRegistry;

use crate::db::Db;
use crate::model::*;
use crate::rows::{admin, directory_api, list, outbox, resources, settings, tx, webhooks};
use crate::webhooks::{DeliveryRecord, Leased, Progress, WebhookEndpoint};
use crate::{ListOptions, Store, StoreError, StoreResult, TxWork, vals};
pub use conn::PgConn;

/// How to reach PostgreSQL and how many connections to keep.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/database[?options]`.
    pub url: String,
    /// Most connections this process opens (each serves one call at a time).
    pub pool_size: u32,
    /// How long a call waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// Where the tables live; `None` uses the connection's search_path.
    pub schema: Option<String>,
    pub list: ListOptions,
    /// Encrypts webhook secrets at rest when set (`secret_key`).
    pub secret_key: Option<crate::secrets::SecretKey>,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            pool_size: 16,
            acquire_timeout: Duration::from_secs(10),
            schema: None,
            list: ListOptions::default(),
            secret_key: None,
        }
    }
}

pub struct PgStore {
    pool: r2d2::Pool<conn::Manager>,
    reg: Arc<SchemaRegistry>,
    options: PgOptions,
}

impl PgStore {
    /// Connects, creating and migrating the schema if needed.
    pub fn open(options: PgOptions, reg: Arc<SchemaRegistry>) -> StoreResult<Self> {
        let config: postgres::Config = options.url.parse().map_err(|e| {
            StoreError::Database(format!(
                "the PostgreSQL URL is not valid ({e}); write it as postgres://user@host:5432/database"
            ))
        })?;
        let manager = conn::Manager {
            config,
            schema: options.schema.clone(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.acquire_timeout)
            // A connection broken by a database restart is replaced, not handed out.
            .test_on_check_out(true)
            .build(manager)
            .map_err(|e| {
                StoreError::Database(format!(
                    "cannot connect to PostgreSQL: {e}; check that it runs and that the URL, user and database are right"
                ))
            })?;
        let store = PgStore { pool, reg, options };
        let c = store.conn()?;
        conn::migrate(&c)?;
        Ok(store)
    }

    /// [`PgStore::open`] from async code: connecting blocks, so it runs on a blocking thread.
    pub async fn connect(options: PgOptions, reg: Arc<SchemaRegistry>) -> StoreResult<Self> {
        tokio::task::spawn_blocking(move || Self::open(options, reg))
            .await
            .map_err(|e| StoreError::Database(format!("connecting failed: {e}")))?
    }

    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.reg
    }

    fn conn(&self) -> StoreResult<r2d2::PooledConnection<conn::Manager>> {
        self.pool
            .get()
            .map_err(|e| StoreError::Database(format!("no PostgreSQL connection available: {e}")))
    }

    /// Runs `f` on a connection, on a blocking thread.
    async fn run<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&PgConn) -> StoreResult<R> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let c = pool.get().map_err(|e| {
                StoreError::Database(format!("no PostgreSQL connection available: {e}"))
            })?;
            std::panic::catch_unwind(AssertUnwindSafe(|| f(&c)))
                .unwrap_or_else(|_| Err(StoreError::Database("a database call panicked".into())))
        })
        .await
        .map_err(|e| StoreError::Database(format!("database task failed: {e}")))?
    }

    async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        self.run(move |c| f(c)).await
    }

    /// Runs `f` in one transaction, holding the lock of `directory` if given.
    async fn write_in<R, F>(&self, directory: Option<String>, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        self.run(move |c| {
            c.begin()?;
            let result = lock_writer(c, directory.as_deref()).and_then(|()| f(c));
            // A connection goes back to the pool outside any transaction,
            // whatever failed: one left open would hold its locks (and every
            // reader's view of the event log) until the pool dropped it.
            let outcome = result.and_then(|r| c.batch("COMMIT").map(|()| r));
            if outcome.is_err() {
                // A broken connection cannot roll back; the pool drops it.
                let _ = c.batch("ROLLBACK");
            }
            outcome
        })
        .await
    }

    async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        self.write_in(None, f).await
    }
}

/// Marks the transaction as a Roster writer (before it has a transaction id:
/// see `rows::visible_events`) and takes the directory's write lock, both
/// until the transaction ends.
fn lock_writer(c: &dyn Db, directory: Option<&str>) -> StoreResult<()> {
    let class = i64::from(crate::rows::WRITER_LOCK);
    match directory {
        Some(d) => c.exec(
            "SELECT pg_advisory_xact_lock_shared(?::int4, hashtext(current_schema())),
                    pg_advisory_xact_lock(hashtextextended(?, 0))",
            vals![class, format!("roster/directory/{d}")],
        )?,
        None => c.exec(
            "SELECT pg_advisory_xact_lock_shared(?::int4, hashtext(current_schema()))",
            vals![class],
        )?,
    };
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn transaction(&self, directory: &str, work: TxWork) -> StoreResult<()> {
        let dir = directory.to_owned();
        let reg = self.reg.clone();
        self.write_in(Some(dir.clone()), move |c| {
            let mut tx = tx::DbTx::new(c, &reg, &dir);
            let result = work(&mut tx);
            match tx.poisoned {
                Some(e) => Err(e),
                None => result,
            }
        })
        .await
    }

    async fn create_directory(&self, name: &str) -> StoreResult<Directory> {
        let name = name.to_owned();
        self.write(move |c| admin::create_directory(c, &name)).await
    }

    async fn list_directories(&self) -> StoreResult<Vec<Directory>> {
        self.read(|c| admin::list_directories(c)).await
    }

    async fn get_directory(&self, id: &str) -> StoreResult<Option<Directory>> {
        let id = id.to_owned();
        self.read(move |c| admin::get_directory(c, &id)).await
    }

    async fn issue_token(&self, directory_id: &str) -> StoreResult<(TokenInfo, String)> {
        let dir = directory_id.to_owned();
        self.write(move |c| admin::issue_token(c, &dir)).await
    }

    async fn list_tokens(&self, directory_id: &str) -> StoreResult<Vec<TokenInfo>> {
        let dir = directory_id.to_owned();
        self.read(move |c| admin::list_tokens(c, &dir)).await
    }

    async fn revoke_token(&self, token_id: &str) -> StoreResult<bool> {
        let id = token_id.to_owned();
        self.write(move |c| admin::revoke_token(c, &id)).await
    }

    async fn authenticate(&self, token: &str) -> StoreResult<Option<String>> {
        let token = token.to_owned();
        self.read(move |c| admin::authenticate(c, &token)).await
    }

    async fn create_admin_key(&self, name: &str) -> StoreResult<(AdminKeyInfo, String)> {
        let name = name.to_owned();
        self.write(move |c| admin::create_admin_key(c, &name)).await
    }

    async fn authenticate_admin(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.read(move |c| admin::authenticate_admin(c, &key)).await
    }

    async fn list_events(
        &self,
        after: i64,
        limit: u64,
        types: &[String],
        directory: Option<&str>,
    ) -> StoreResult<Vec<crate::events::Event>> {
        let types = types.to_vec();
        let directory = directory.map(str::to_owned);
        self.read(move |c| outbox::list(c, after, limit, &types, directory.as_deref()))
            .await
    }

    async fn prune_events(&self, cutoff_ms: i64) -> StoreResult<u64> {
        self.write(move |c| outbox::prune(c, cutoff_ms)).await
    }

    async fn event(&self, seq: i64) -> StoreResult<Option<crate::events::Event>> {
        self.read(move |c| webhooks::event(c, seq)).await
    }

    async fn create_webhook(
        &self,
        url: &str,
        types: &[String],
        directory: Option<&str>,
    ) -> StoreResult<(WebhookEndpoint, String)> {
        let (url, types, dir) = (url.to_owned(), types.to_vec(), directory.map(str::to_owned));
        let key = self.options.secret_key.clone();
        self.write(move |c| webhooks::create(c, key.as_ref(), &url, &types, dir.as_deref()))
            .await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.read(|c| webhooks::list(c)).await
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<Option<WebhookEndpoint>> {
        let id = id.to_owned();
        self.read(move |c| webhooks::get(c, &id)).await
    }

    async fn set_webhook_enabled(&self, id: &str, enabled: bool) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| webhooks::set_enabled(c, &id, enabled))
            .await
    }

    async fn rotate_webhook_secret(&self, id: &str) -> StoreResult<Option<String>> {
        let id = id.to_owned();
        let key = self.options.secret_key.clone();
        self.write(move |c| webhooks::rotate_secret(c, key.as_ref(), &id))
            .await
    }

    async fn check_webhook_secrets(&self) -> StoreResult<usize> {
        let key = self.options.secret_key.clone();
        self.write(move |c| webhooks::check_secrets(c, key.as_ref()))
            .await
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| webhooks::delete(c, &id)).await
    }

    async fn webhook_deliveries(&self, id: &str, limit: u64) -> StoreResult<Vec<DeliveryRecord>> {
        let id = id.to_owned();
        self.read(move |c| webhooks::deliveries(c, &id, limit))
            .await
    }

    async fn redeliver(&self, id: &str, event_seq: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| webhooks::redeliver(c, &id, event_seq))
            .await
    }

    async fn claim_webhooks(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<Leased>> {
        let owner = owner.to_owned();
        let key = self.options.secret_key.clone();
        self.write(move |c| webhooks::claim(c, key.as_ref(), &owner, lease_ms, limit))
            .await
    }

    async fn webhook_progress(
        &self,
        id: &str,
        owner: &str,
        lease_ms: i64,
        progress: Progress,
    ) -> StoreResult<bool> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.write(move |c| webhooks::progress(c, &id, &owner, lease_ms, &progress))
            .await
    }

    async fn release_webhook(&self, id: &str, owner: &str) -> StoreResult<()> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.write(move |c| webhooks::release(c, &id, &owner)).await
    }

    // ---- Directory administration and the app-facing directory API ----

    async fn create_directory_with_token(
        &self,
        name: &str,
    ) -> StoreResult<(Directory, TokenInfo, String)> {
        let name = name.to_owned();
        self.write(move |c| directory_api::create_with_token(c, &name))
            .await
    }

    async fn create_first_directory(
        &self,
        name: &str,
    ) -> StoreResult<Option<(Directory, TokenInfo, String)>> {
        let name = name.to_owned();
        // One lock for "the first directory" (no directory id looks like it):
        // starts that race take turns.
        self.write_in(Some("(first)".to_owned()), move |c| {
            directory_api::create_first(c, &name)
        })
        .await
    }

    async fn list_directories_page(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<(Vec<Directory>, Option<String>)> {
        let after = after.map(str::to_owned);
        self.read(move |c| directory_api::list_page(c, after.as_deref(), limit))
            .await
    }

    async fn rename_directory(&self, id: &str, name: &str) -> StoreResult<Option<Directory>> {
        let (id, name) = (id.to_owned(), name.to_owned());
        self.write(move |c| directory_api::rename(c, &id, &name))
            .await
    }

    async fn delete_directory(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write_in(Some(id.clone()), move |c| directory_api::delete(c, &id))
            .await
    }

    async fn revoke_directory_token(&self, directory: &str, token_id: &str) -> StoreResult<bool> {
        let (dir, id) = (directory.to_owned(), token_id.to_owned());
        self.write(move |c| directory_api::revoke_in(c, &dir, &id))
            .await
    }

    async fn rotate_token(
        &self,
        directory: Option<&str>,
        token_id: &str,
        overlap_secs: i64,
    ) -> StoreResult<Option<crate::directory_api::Rotation>> {
        let (dir, id) = (directory.map(str::to_owned), token_id.to_owned());
        let overlap_ms = overlap_secs.saturating_mul(1000);
        self.write(move |c| directory_api::rotate(c, dir.as_deref(), &id, overlap_ms))
            .await
    }

    async fn directory_users(
        &self,
        directory: &str,
        query: crate::directory_api::UserQuery,
    ) -> StoreResult<crate::directory_api::ObjectPage> {
        let dir = directory.to_owned();
        self.read(move |c| directory_api::list_users(c, &dir, &query))
            .await
    }

    async fn directory_groups(
        &self,
        directory: &str,
        query: crate::directory_api::GroupQuery,
    ) -> StoreResult<crate::directory_api::ObjectPage> {
        let dir = directory.to_owned();
        self.read(move |c| directory_api::list_groups(c, &dir, &query))
            .await
    }

    async fn group_users(
        &self,
        group_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<crate::directory_api::ObjectPage> {
        let (group, after) = (group_id.to_owned(), after.map(str::to_owned));
        self.read(move |c| directory_api::group_users(c, &group, after.as_deref(), limit))
            .await
    }

    async fn directory_object(
        &self,
        kind: Kind,
        id: &str,
    ) -> StoreResult<Option<serde_json::Value>> {
        let id = id.to_owned();
        self.read(move |c| directory_api::object(c, kind, &id))
            .await
    }

    // ---- end of the directory API block ----

    async fn deactivation(&self, directory: &str) -> StoreResult<Option<Deactivation>> {
        let dir = directory.to_owned();
        self.read(move |c| admin::deactivation(c, &dir)).await
    }

    async fn set_deactivation(&self, directory: &str, mode: Deactivation) -> StoreResult<bool> {
        let dir = directory.to_owned();
        self.write_in(Some(dir.clone()), move |c| {
            admin::set_deactivation(c, &dir, mode)
        })
        .await
    }

    async fn settings(&self, directory: &str) -> StoreResult<Option<DirectorySettings>> {
        let dir = directory.to_owned();
        self.read(move |c| settings::load(c, &dir, false)).await
    }

    async fn update_settings(
        &self,
        directory: &str,
        change: SettingsChange,
    ) -> StoreResult<Option<DirectorySettings>> {
        let dir = directory.to_owned();
        self.write_in(Some(dir.clone()), move |c| {
            settings::update(c, &dir, &change)
        })
        .await
    }

    async fn create(&self, directory: &str, new: NewResource) -> StoreResult<Stored> {
        let dir = directory.to_owned();
        let reg = self.reg.clone();
        self.write_in(Some(dir.clone()), move |c| {
            resources::create(c, &reg, &settings::DirSettings::new(&dir), new)
        })
        .await
    }

    async fn get(&self, directory: &str, kind: Kind, id: &str) -> StoreResult<Option<Stored>> {
        let (dir, id) = (directory.to_owned(), id.to_owned());
        self.read(move |c| resources::get(c, &dir, kind, &id)).await
    }

    async fn update(
        &self,
        directory: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        f: UpdateFn,
    ) -> StoreResult<Stored> {
        let (dir, id) = (directory.to_owned(), id.to_owned());
        let reg = self.reg.clone();
        self.write_in(Some(dir.clone()), move |c| {
            resources::update(
                c,
                &reg,
                &settings::DirSettings::new(&dir),
                kind,
                &id,
                if_match,
                f,
            )
        })
        .await
    }

    async fn delete(
        &self,
        directory: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
    ) -> StoreResult<()> {
        let (dir, id) = (directory.to_owned(), id.to_owned());
        self.write_in(Some(dir.clone()), move |c| {
            resources::delete(c, &settings::DirSettings::new(&dir), kind, &id, if_match)
        })
        .await
    }

    async fn list(&self, directory: &str, query: ListQuery) -> StoreResult<ListResult> {
        let dir = directory.to_owned();
        let reg = self.reg.clone();
        let opts = self.options.list.clone();
        self.read(move |c| list::list(c, &reg, &opts, &dir, &query))
            .await
    }

    async fn members(
        &self,
        directory: &str,
        group_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<MemberRow>>> {
        let dir = directory.to_owned();
        let ids = group_ids.to_vec();
        self.read(move |c| resources::members_of(c, &dir, &ids, true))
            .await
    }

    async fn groups_of(
        &self,
        directory: &str,
        member_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<MemberRow>>> {
        let dir = directory.to_owned();
        let ids = member_ids.to_vec();
        self.read(move |c| resources::members_of(c, &dir, &ids, false))
            .await
    }
}
