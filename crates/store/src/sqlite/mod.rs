//! The embedded store: one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that commits whatever requests are
//! waiting together (group commit): each request runs inside its own savepoint,
//! so a failing one rolls back alone, and every reply is sent only after the
//! shared COMMIT is durable. Reads run on a small pool of read-only connections.

pub(crate) mod conn;
mod db;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use roster_scim::schema::SchemaRegistry;
use rusqlite::Connection;
use tokio::sync::{Semaphore, oneshot};

use crate::model::*;
use crate::rows::{admin, directory_api, list, outbox, resources, settings, tx, webhooks};
use crate::webhooks::{DeliveryRecord, Leased, Progress, WebhookEndpoint};
use crate::{ListOptions, Store, StoreError, StoreResult, TxWork};

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// Read connections (concurrent readers).
    pub readers: usize,
    /// Most requests committed in one transaction.
    pub max_batch: usize,
    pub list: ListOptions,
    /// Encrypts webhook secrets at rest when set (`secret_key`).
    pub secret_key: Option<crate::secrets::SecretKey>,
}

impl SqliteOptions {
    pub fn new(path: impl AsRef<Path>) -> Self {
        SqliteOptions {
            path: path.as_ref().to_path_buf(),
            readers: 4,
            max_batch: 256,
            list: ListOptions::default(),
            secret_key: None,
        }
    }
}

/// Work for the writer thread: runs inside the open transaction (or is told that
/// none could be opened), and returns whether it succeeded and what to do once
/// the commit's outcome is known. `solo` says it is the only job of its
/// transaction, which then needs no savepoint of its own: a failure rolls the
/// whole transaction back instead.
type Job = Box<dyn FnOnce(Option<&Connection>, bool) -> (Completion, bool) + Send>;
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;

pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Arc<ReadPool>,
    reg: Arc<SchemaRegistry>,
    options: SqliteOptions,
}

struct ReadPool {
    conns: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database file.
    pub fn open(options: SqliteOptions, reg: Arc<SchemaRegistry>) -> StoreResult<Self> {
        let mut writer = conn::open_writer(&options.path)?;
        conn::migrate(&mut writer)?;
        let readers = (0..options.readers.max(1))
            .map(|_| conn::open_reader(&options.path))
            .collect::<StoreResult<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel::<Job>();
        let max_batch = options.max_batch.max(1);
        std::thread::Builder::new()
            .name("roster-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, max_batch))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            writer: Mutex::new(tx),
            readers: Arc::new(ReadPool {
                permits: Semaphore::new(readers.len()),
                conns: Mutex::new(readers),
            }),
            reg,
            options,
        })
    }

    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.reg
    }

    /// Runs `f` in the writer's transaction, inside its own savepoint when it
    /// shares the transaction with other jobs.
    async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<R>>();
        let job: Job = Box::new(move |conn: Option<&Connection>, solo: bool| {
            let result = match conn {
                // Alone in its transaction a job needs no savepoint, which spares
                // SQLite copying every page it touches into a sub-journal.
                Some(conn) if solo => std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| Err(StoreError::Database("a write panicked".into()))),
                Some(conn) => run_in_savepoint(conn, f),
                None => Err(StoreError::Database(
                    "no transaction could be opened".into(),
                )),
            };
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit: Result<(), String>| {
                let outcome = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Database(e)),
                };
                let _ = tx.send(outcome);
            });
            (done, ok)
        });
        self.writer
            .lock()
            .map_err(|_| StoreError::Closed)?
            .send(job)
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read connection, off the async runtime.
    async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool
                .conns
                .lock()
                .map_err(|_| StoreError::Closed)?
                .pop()
                .ok_or(StoreError::Closed)?;
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(&conn)))
                .unwrap_or_else(|_| Err(StoreError::Database("a read panicked".into())));
            if let Ok(mut conns) = pool.conns.lock() {
                conns.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

fn run_in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<R>,
) -> StoreResult<R> {
    conn.execute_batch("SAVEPOINT job")?;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(StoreError::Database("a write panicked".into())));
    match &result {
        Ok(_) => conn.execute_batch("RELEASE job")?,
        Err(_) => conn.execute_batch("ROLLBACK TO job; RELEASE job")?,
    }
    result
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>, max_batch: usize) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let why = Err(e.to_string());
            for job in batch {
                job(None, false).0(why.clone());
            }
            continue;
        }
        let solo = batch.len() == 1;
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let mut failed_solo = false;
        for job in batch {
            let (done, ok) = job(Some(&conn), solo);
            failed_solo |= solo && !ok;
            completions.push(done);
        }
        let outcome = if failed_solo {
            // The job already reported its error; undo whatever it wrote.
            conn.execute_batch("ROLLBACK").map_err(|e| e.to_string())
        } else {
            let committed = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
            if committed.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            committed
        };
        for c in completions {
            c(outcome.clone());
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn transaction(&self, directory: &str, work: TxWork) -> StoreResult<()> {
        let dir = directory.to_owned();
        let reg = self.reg.clone();
        self.write(move |c| {
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
        self.write(move |c| directory_api::create_first(c, &name))
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
        self.write(move |c| directory_api::delete(c, &id)).await
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
        self.write(move |c| admin::set_deactivation(c, &dir, mode))
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
        self.write(move |c| settings::update(c, &dir, &change))
            .await
    }

    async fn create(&self, directory: &str, new: NewResource) -> StoreResult<Stored> {
        let dir = directory.to_owned();
        let reg = self.reg.clone();
        self.write(move |c| resources::create(c, &reg, &settings::DirSettings::new(&dir), new))
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
        self.write(move |c| {
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
        self.write(move |c| {
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
