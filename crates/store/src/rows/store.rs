//! Every role of [`crate::Store`] for any store whose queries are the shared ones in `rows`:
//! each backend says only how it reads and how it runs a transaction.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use roster_scim::schema::SchemaRegistry;

use super::{
    admin, admin_keys, audit, directory_api, list, outbox, resources, settings, tx, web_sessions,
    webhooks,
};
use crate::db::Db;
use crate::model::*;
use crate::web_sessions::{SessionLifetime, SessionScope, WebSession};
use crate::webhooks::{
    DeliveryOptions, DeliveryRecord, Leased, Progress, WebhookEndpoint, WebhookFormat,
    WebhookUpdate,
};
use crate::{
    AuditLog, DirectoryReads, DirectoryStore, EventLog, Health, HealthCheck, ListOptions,
    ResourceStore, StoreGauges, StoreResult, TokenStore, TxWork, WebSessionStore, WebhookStore,
};

/// A backend of the shared queries: SQLite's writer thread or PostgreSQL's pool.
#[async_trait]
pub trait SqlStore: Send + Sync + 'static {
    fn registry(&self) -> &Arc<SchemaRegistry>;
    fn list_options(&self) -> &ListOptions;
    fn secret_key(&self) -> Option<crate::secrets::SecretKey>;
    /// The query that reads the database's schema version, and the version
    /// this build migrates to.
    fn schema_version(&self) -> (&'static str, i64);
    /// The backend's own gauges (WAL size, pool), without the shared queries'.
    fn backend_gauges(&self) -> crate::gauges::Gauges;
    /// The attribute keys committed transactions have used.
    fn key_shelf(&self) -> &crate::index::KeyShelf;

    /// Runs `f` on a connection outside any write transaction.
    async fn run_read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static;

    /// Runs `f` in one transaction that commits when it returns Ok; writes
    /// to `directory`, when given, are serialized with every other writer's.
    async fn run_write<R, F>(&self, directory: Option<String>, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static;

    /// [`SqlStore::run_write`] for work that refuses, if at all, before its
    /// first write (`resources::create`, `update` and `delete`): it needs
    /// nothing to undo its own refusal, and SQLite runs it without a
    /// savepoint (`sqlite::Isolation::None`).
    async fn run_write_refusing_first<R, F>(&self, directory: String, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Db) -> StoreResult<R> + Send + 'static,
    {
        self.run_write(Some(directory), f).await
    }
}

/// One create, update or delete of a resource in `directory`, which refuses
/// before its first write: it starts from the keys on the store's shelf,
/// writes the directory's counts last, and hands the keys it learned to the
/// shelf once committed.
async fn resource_write<T: SqlStore, R: Send + 'static>(
    store: &T,
    directory: &str,
    f: impl FnOnce(&dyn Db, &settings::DirSettings) -> StoreResult<R> + Send + 'static,
) -> StoreResult<R> {
    let dir = directory.to_owned();
    let known = store.key_shelf().get(&dir);
    let (result, learned) = store
        .run_write_refusing_first(dir.clone(), move |c| {
            let ds = settings::DirSettings::new(&dir).with_known_keys(known);
            let result = f(c, &ds)?;
            ds.finish(c)?;
            Ok((result, ds.learned_keys()))
        })
        .await?;
    store.key_shelf().publish(directory, learned);
    Ok(result)
}

#[async_trait]
impl<T: SqlStore> ResourceStore for T {
    async fn transaction(&self, directory: &str, work: TxWork) -> StoreResult<()> {
        let dir = directory.to_owned();
        let reg = self.registry().clone();
        let known = self.key_shelf().get(&dir);
        let learned = self
            .run_write(Some(dir.clone()), move |c| {
                let mut tx = tx::DbTx::new(c, &reg, &dir);
                tx.settings = settings::DirSettings::new(&dir).with_known_keys(known);
                let result = work(&mut tx);
                match tx.poisoned {
                    Some(e) => Err(e),
                    None => result.and_then(|()| tx.settings.finish(c)),
                }?;
                Ok(tx.settings.learned_keys())
            })
            .await?;
        self.key_shelf().publish(directory, learned);
        Ok(())
    }

    async fn create(&self, directory: &str, new: NewResource) -> StoreResult<Stored> {
        let reg = self.registry().clone();
        resource_write(self, directory, move |c, ds| {
            resources::create(c, &reg, ds, new)
        })
        .await
    }

    async fn get(&self, directory: &str, kind: Kind, id: &str) -> StoreResult<Option<Stored>> {
        let (dir, id) = (directory.to_owned(), id.to_owned());
        self.run_read(move |c| resources::get(c, &dir, kind, &id))
            .await
    }

    async fn update(
        &self,
        directory: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        f: UpdateFn,
    ) -> StoreResult<Stored> {
        let id = id.to_owned();
        let reg = self.registry().clone();
        resource_write(self, directory, move |c, ds| {
            resources::update(c, &reg, ds, kind, &id, if_match, f)
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
        let id = id.to_owned();
        let reg = self.registry().clone();
        resource_write(self, directory, move |c, ds| {
            resources::delete(c, &reg, ds, kind, &id, if_match)
        })
        .await
    }

    async fn list(&self, directory: &str, query: ListQuery) -> StoreResult<ListResult> {
        let dir = directory.to_owned();
        let reg = self.registry().clone();
        let opts = self.list_options().clone();
        self.run_read(move |c| list::list(c, &reg, &opts, &dir, &query))
            .await
    }

    async fn members(
        &self,
        directory: &str,
        group_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<MemberRow>>> {
        let dir = directory.to_owned();
        let ids = group_ids.to_vec();
        self.run_read(move |c| resources::members_of(c, &dir, &ids, true))
            .await
    }

    async fn groups_of(
        &self,
        directory: &str,
        member_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<MemberRow>>> {
        let dir = directory.to_owned();
        let ids = member_ids.to_vec();
        self.run_read(move |c| resources::members_of(c, &dir, &ids, false))
            .await
    }
}

#[async_trait]
impl<T: SqlStore> DirectoryStore for T {
    async fn create_directory(&self, actor: &Actor, name: &str) -> StoreResult<Directory> {
        let (actor, name) = (actor.clone(), name.to_owned());
        self.run_write(None, move |c| directory_api::create(c, &actor, &name))
            .await
    }

    async fn list_directories(&self) -> StoreResult<Vec<Directory>> {
        self.run_read(|c| admin::list_directories(c)).await
    }

    async fn get_directory(&self, id: &str) -> StoreResult<Option<Directory>> {
        let id = id.to_owned();
        self.run_read(move |c| admin::get_directory(c, &id)).await
    }

    async fn create_directory_with_token(
        &self,
        actor: &Actor,
        name: &str,
        attrs: DirectoryAttrs,
    ) -> StoreResult<(Directory, TokenInfo, String)> {
        let (actor, name) = (actor.clone(), name.to_owned());
        self.run_write(None, move |c| {
            directory_api::create_with_token(c, &actor, &name, &attrs)
        })
        .await
    }

    async fn create_first_directory(
        &self,
        actor: &Actor,
        name: &str,
    ) -> StoreResult<Option<(Directory, TokenInfo, String)>> {
        let (actor, name) = (actor.clone(), name.to_owned());
        // One lock for "the first directory" (no directory id looks like it):
        // starts that race take turns.
        self.run_write(Some("(first)".to_owned()), move |c| {
            directory_api::create_first(c, &actor, &name)
        })
        .await
    }

    async fn directory_page(
        &self,
        query: crate::directory_api::DirectoryQuery,
    ) -> StoreResult<crate::directory_api::Page<Directory>> {
        self.run_read(move |c| directory_api::list_directories(c, &query))
            .await
    }

    async fn directory_counts(
        &self,
        ids: &[String],
    ) -> StoreResult<HashMap<String, DirectoryCounts>> {
        let ids = ids.to_vec();
        self.run_read(move |c| super::counts::read(c, &ids)).await
    }

    async fn update_directory(
        &self,
        actor: &Actor,
        id: &str,
        change: DirectoryChange,
    ) -> StoreResult<Option<Directory>> {
        let (actor, id) = (actor.clone(), id.to_owned());
        self.run_write(Some(id.clone()), move |c| {
            directory_api::update(c, &actor, &id, &change)
        })
        .await
    }

    async fn detect_provider(&self, id: &str, provider: &str) -> StoreResult<bool> {
        let (id, provider) = (id.to_owned(), provider.to_owned());
        self.run_write(Some(id.clone()), move |c| {
            directory_api::detect_provider(c, &id, &provider)
        })
        .await
    }

    async fn rename_directory(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
    ) -> StoreResult<Option<Directory>> {
        let (actor, id, name) = (actor.clone(), id.to_owned(), name.to_owned());
        self.run_write(None, move |c| directory_api::rename(c, &actor, &id, &name))
            .await
    }

    async fn delete_directory(&self, actor: &Actor, id: &str) -> StoreResult<bool> {
        let (actor, dir) = (actor.clone(), id.to_owned());
        let deleted = self
            .run_write(Some(dir.clone()), move |c| {
                directory_api::delete(c, &actor, &dir)
            })
            .await?;
        self.key_shelf().forget(id);
        Ok(deleted)
    }

    async fn deactivation(&self, directory: &str) -> StoreResult<Option<Deactivation>> {
        let dir = directory.to_owned();
        self.run_read(move |c| admin::deactivation(c, &dir)).await
    }

    async fn set_deactivation(
        &self,
        actor: &Actor,
        directory: &str,
        mode: Deactivation,
    ) -> StoreResult<bool> {
        let (actor, dir) = (actor.clone(), directory.to_owned());
        self.run_write(Some(dir.clone()), move |c| {
            admin::set_deactivation(c, &actor, &dir, mode)
        })
        .await
    }

    async fn settings(&self, directory: &str) -> StoreResult<Option<DirectorySettings>> {
        let dir = directory.to_owned();
        self.run_read(move |c| settings::load(c, &dir, false)).await
    }

    async fn update_settings(
        &self,
        actor: &Actor,
        directory: &str,
        change: SettingsChange,
    ) -> StoreResult<Option<DirectorySettings>> {
        let (actor, dir) = (actor.clone(), directory.to_owned());
        self.run_write(Some(dir.clone()), move |c| {
            settings::update(c, &actor, &dir, &change)
        })
        .await
    }
}

#[async_trait]
impl<T: SqlStore> DirectoryReads for T {
    async fn directory_users(
        &self,
        directory: &str,
        query: crate::directory_api::UserQuery,
    ) -> StoreResult<crate::directory_api::ObjectPage> {
        let dir = directory.to_owned();
        self.run_read(move |c| directory_api::list_users(c, &dir, &query))
            .await
    }

    async fn directory_groups(
        &self,
        directory: &str,
        query: crate::directory_api::GroupQuery,
    ) -> StoreResult<crate::directory_api::ObjectPage> {
        let dir = directory.to_owned();
        self.run_read(move |c| directory_api::list_groups(c, &dir, &query))
            .await
    }

    async fn group_users(
        &self,
        group_id: &str,
        paging: crate::directory_api::Paging,
    ) -> StoreResult<crate::directory_api::ObjectPage> {
        let group = group_id.to_owned();
        self.run_read(move |c| directory_api::group_users(c, &group, &paging))
            .await
    }

    async fn directory_object(
        &self,
        kind: Kind,
        id: &str,
    ) -> StoreResult<Option<(serde_json::Value, Vec<serde_json::Value>)>> {
        let id = id.to_owned();
        self.run_read(move |c| directory_api::object(c, kind, &id))
            .await
    }
}

#[async_trait]
impl<T: SqlStore> TokenStore for T {
    async fn issue_token(
        &self,
        actor: &Actor,
        directory_id: &str,
    ) -> StoreResult<(TokenInfo, String)> {
        let (actor, dir) = (actor.clone(), directory_id.to_owned());
        self.run_write(None, move |c| directory_api::issue(c, &actor, &dir))
            .await
    }

    async fn list_tokens(&self, directory_id: &str) -> StoreResult<Vec<TokenInfo>> {
        let dir = directory_id.to_owned();
        self.run_read(move |c| admin::list_tokens(c, &dir)).await
    }

    async fn revoke_token(&self, actor: &Actor, token_id: &str) -> StoreResult<bool> {
        let (actor, id) = (actor.clone(), token_id.to_owned());
        self.run_write(None, move |c| admin::revoke_token(c, &actor, &id))
            .await
    }

    async fn revoke_directory_token(
        &self,
        actor: &Actor,
        directory: &str,
        token_id: &str,
    ) -> StoreResult<bool> {
        let (actor, dir, id) = (actor.clone(), directory.to_owned(), token_id.to_owned());
        self.run_write(None, move |c| {
            directory_api::revoke_in(c, &actor, &dir, &id)
        })
        .await
    }

    async fn rotate_token(
        &self,
        actor: &Actor,
        directory: Option<&str>,
        token_id: &str,
        overlap_secs: i64,
    ) -> StoreResult<Option<crate::directory_api::Rotation>> {
        let (actor, dir, id) = (
            actor.clone(),
            directory.map(str::to_owned),
            token_id.to_owned(),
        );
        let overlap_ms = overlap_secs.saturating_mul(1000);
        self.run_write(None, move |c| {
            directory_api::rotate(c, &actor, dir.as_deref(), &id, overlap_ms)
        })
        .await
    }

    async fn authenticate(&self, token: &str) -> StoreResult<Option<String>> {
        let token = token.to_owned();
        self.run_read(move |c| admin::authenticate(c, &token)).await
    }

    async fn create_admin_key(
        &self,
        actor: &Actor,
        name: &str,
        scope: &AdminKeyScope,
    ) -> StoreResult<(AdminKeyInfo, String)> {
        let (actor, name, scope) = (actor.clone(), name.to_owned(), scope.clone());
        self.run_write(None, move |c| admin_keys::create(c, &actor, &name, &scope))
            .await
    }

    async fn list_admin_keys(&self) -> StoreResult<Vec<AdminKeyInfo>> {
        self.run_read(|c| admin_keys::list(c)).await
    }

    async fn revoke_admin_key(&self, actor: &Actor, id: &str) -> StoreResult<Option<AdminKeyInfo>> {
        let (actor, id) = (actor.clone(), id.to_owned());
        self.run_write(None, move |c| admin_keys::revoke(c, &actor, &id))
            .await
    }

    async fn rotate_admin_key(
        &self,
        actor: &Actor,
        id: &str,
    ) -> StoreResult<Option<(AdminKeyInfo, String)>> {
        let (actor, id) = (actor.clone(), id.to_owned());
        self.run_write(None, move |c| admin_keys::rotate(c, &actor, &id))
            .await
    }

    async fn authenticate_admin(&self, key: &str) -> StoreResult<Option<AdminKeyInfo>> {
        let key = key.to_owned();
        self.run_read(move |c| admin_keys::authenticate(c, &key))
            .await
    }

    async fn live_admin_key(&self, id: &str) -> StoreResult<Option<AdminKeyInfo>> {
        let id = id.to_owned();
        self.run_read(move |c| admin_keys::live(c, &id)).await
    }
}

#[async_trait]
impl<T: SqlStore> WebSessionStore for T {
    async fn create_web_session(
        &self,
        actor: &Actor,
        scope: &SessionScope,
        lifetime: SessionLifetime,
    ) -> StoreResult<(WebSession, String)> {
        let (actor, scope) = (actor.clone(), scope.clone());
        self.run_write(None, move |c| {
            web_sessions::create(c, &actor, &scope, lifetime)
        })
        .await
    }

    async fn web_session(&self, cookie: &str) -> StoreResult<Option<WebSession>> {
        let cookie = cookie.to_owned();
        let found = self
            .run_read(move |c| web_sessions::find(c, &cookie))
            .await?;
        if let Some(s) = &found
            && web_sessions::needs_touch(s)
        {
            let id = s.id.clone();
            self.run_write(None, move |c| web_sessions::touch(c, &id))
                .await?;
        }
        Ok(found)
    }

    async fn end_web_session(&self, cookie: &str) -> StoreResult<bool> {
        let cookie = cookie.to_owned();
        self.run_write(None, move |c| web_sessions::delete(c, &cookie))
            .await
    }
}

#[async_trait]
impl<T: SqlStore> EventLog for T {
    async fn event_page(
        &self,
        query: crate::directory_api::EventQuery,
    ) -> StoreResult<crate::directory_api::Page<crate::events::Event>> {
        self.run_read(move |c| outbox::page(c, &query)).await
    }

    async fn list_events(
        &self,
        after: i64,
        limit: u64,
        types: &[String],
        directories: Option<&[String]>,
    ) -> StoreResult<Vec<crate::events::Event>> {
        let types = types.to_vec();
        let directories = directories.map(<[String]>::to_vec);
        self.run_read(move |c| outbox::list(c, after, limit, &types, directories.as_deref()))
            .await
    }

    async fn event(&self, seq: i64) -> StoreResult<Option<crate::events::Event>> {
        self.run_read(move |c| webhooks::event(c, seq)).await
    }

    async fn prune_events(&self, cutoff_ms: i64) -> StoreResult<u64> {
        self.run_write(None, move |c| outbox::prune(c, cutoff_ms))
            .await
    }
}

#[async_trait]
impl<T: SqlStore> WebhookStore for T {
    async fn create_webhook_with(
        &self,
        actor: &Actor,
        url: &str,
        format: WebhookFormat,
        types: &[String],
        directory: Option<&str>,
        options: DeliveryOptions,
    ) -> StoreResult<(WebhookEndpoint, String)> {
        let (actor, url, types, dir) = (
            actor.clone(),
            url.to_owned(),
            types.to_vec(),
            directory.map(str::to_owned),
        );
        let key = self.secret_key();
        self.run_write(None, move |c| {
            webhooks::create(
                c,
                &actor,
                key.as_ref(),
                &webhooks::NewEndpoint {
                    url: &url,
                    format,
                    types: &types,
                    directory: dir.as_deref(),
                    options: &options,
                },
            )
        })
        .await
    }

    async fn update_webhook(
        &self,
        actor: &Actor,
        id: &str,
        update: &WebhookUpdate,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let (actor, id, update) = (actor.clone(), id.to_owned(), update.clone());
        self.run_write(None, move |c| webhooks::update(c, &actor, &id, &update))
            .await
    }

    async fn webhook_secret(&self, id: &str) -> StoreResult<Option<String>> {
        let id = id.to_owned();
        let key = self.secret_key();
        self.run_read(move |c| webhooks::secret(c, key.as_ref(), &id))
            .await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.run_read(|c| webhooks::list(c)).await
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<Option<WebhookEndpoint>> {
        let id = id.to_owned();
        self.run_read(move |c| webhooks::get(c, &id)).await
    }

    async fn set_webhook_enabled(
        &self,
        actor: &Actor,
        id: &str,
        enabled: bool,
    ) -> StoreResult<bool> {
        let (actor, id) = (actor.clone(), id.to_owned());
        self.run_write(None, move |c| {
            webhooks::set_enabled(c, &actor, &id, enabled)
        })
        .await
    }

    async fn rotate_webhook_secret(&self, actor: &Actor, id: &str) -> StoreResult<Option<String>> {
        let (actor, id) = (actor.clone(), id.to_owned());
        let key = self.secret_key();
        self.run_write(None, move |c| {
            webhooks::rotate_secret(c, &actor, key.as_ref(), &id)
        })
        .await
    }

    async fn delete_webhook(&self, actor: &Actor, id: &str) -> StoreResult<bool> {
        let (actor, id) = (actor.clone(), id.to_owned());
        self.run_write(None, move |c| webhooks::delete(c, &actor, &id))
            .await
    }

    async fn check_webhook_secrets(&self) -> StoreResult<usize> {
        let key = self.secret_key();
        self.run_write(None, move |c| webhooks::check_secrets(c, key.as_ref()))
            .await
    }

    async fn webhook_deliveries(&self, id: &str, limit: u64) -> StoreResult<Vec<DeliveryRecord>> {
        let id = id.to_owned();
        self.run_read(move |c| webhooks::deliveries(c, &id, limit))
            .await
    }

    async fn redeliver(&self, id: &str, event_seq: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.run_write(None, move |c| webhooks::redeliver(c, &id, event_seq))
            .await
    }

    async fn claim_webhooks(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<Leased>> {
        let owner = owner.to_owned();
        let key = self.secret_key();
        self.run_write(None, move |c| {
            webhooks::claim(c, key.as_ref(), &owner, lease_ms, limit)
        })
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
        self.run_write(None, move |c| {
            webhooks::progress(c, &id, &owner, lease_ms, &progress)
        })
        .await
    }

    async fn release_webhook(&self, id: &str, owner: &str) -> StoreResult<()> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.run_write(None, move |c| webhooks::release(c, &id, &owner))
            .await
    }
}

#[async_trait]
impl<T: SqlStore> AuditLog for T {
    async fn audit_log(&self, query: AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        self.run_read(move |c| audit::list(c, &query)).await
    }
}

#[async_trait]
impl<T: SqlStore> HealthCheck for T {
    async fn health(&self, within: std::time::Duration) -> Health {
        let late = || format!("no answer within {} ms", within.as_millis());
        let (sql, want) = self.schema_version();
        let read = tokio::time::timeout(
            within,
            self.run_read(move |c| crate::db::scalar::<i64>(c, sql, &[])),
        );
        // A no-op through the write path: for SQLite a job the writer thread
        // must take, begin, run and commit.
        let write = tokio::time::timeout(
            within,
            self.run_write(None, |c| {
                crate::db::scalar::<i64>(c, "SELECT CAST(1 AS BIGINT)", &[]).map(|_| ())
            }),
        );
        let (read, write) = tokio::join!(read, write);
        let (database, migrations) = match read {
            Ok(Ok(Some(v))) if v == want => (Ok(()), Ok(())),
            Ok(Ok(v)) => (
                Ok(()),
                Err(format!(
                    "the database has schema version {}, this Roster needs {want}",
                    v.unwrap_or(0)
                )),
            ),
            Ok(Err(e)) => (
                Err(unhealthy("the database does not answer", &e)),
                Err("unknown: the database does not answer".to_owned()),
            ),
            Err(_) => (
                Err(late()),
                Err("unknown: the database does not answer".to_owned()),
            ),
        };
        let writer = match write {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unhealthy("the write path does not take work", &e)),
            Err(_) => Err(late()),
        };
        Health {
            database,
            migrations,
            writer,
        }
    }
}

#[async_trait]
impl<T: SqlStore> StoreGauges for T {
    async fn gauges(&self) -> StoreResult<crate::gauges::Gauges> {
        let webhooks = self.run_read(|c| crate::gauges::webhook_lag(c)).await?;
        Ok(crate::gauges::Gauges {
            webhooks,
            ..self.backend_gauges()
        })
    }
}

/// Why a check failed, in words for an unauthenticated probe: the kind of
/// failure, never a query or a connection string.
fn unhealthy(what: &str, e: &crate::StoreError) -> String {
    match e {
        crate::StoreError::Closed => format!("{what}: the store is closed"),
        crate::StoreError::Unavailable(_) => format!("{what}: unavailable"),
        _ => what.to_owned(),
    }
}
