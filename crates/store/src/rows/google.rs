//! Google Workspace directories in SQL both stores accept.

use async_trait::async_trait;

use super::admin::create_directory;
use super::read::{STORED_COLUMNS, to_stored};
use super::store::SqlStore;
use crate::db::{Db, Row, Val};
use crate::google::{GOOGLE_WORKSPACE, GoogleJob, GoogleSource, GoogleStore, NewGoogleDirectory};
use crate::model::{Actor, Directory, Kind, Stored};
use crate::secrets::{self, SecretKey};
use crate::{StoreError, StoreResult, now_ms, vals};

/// The tables of Google directories, for both dialects (SQLite accepts BIGINT).
pub const MIGRATION: &str = "
CREATE TABLE google_sources (
    directory_id   TEXT PRIMARY KEY REFERENCES directories(id) ON DELETE CASCADE,
    credentials    TEXT NOT NULL,
    admin_email    TEXT NOT NULL,
    customer       TEXT NOT NULL,
    domain         TEXT,
    interval_secs  BIGINT NOT NULL,
    next_poll_at   BIGINT NOT NULL DEFAULT 0,
    last_poll_at   BIGINT,
    last_result    TEXT,
    last_error     TEXT,
    lease_owner    TEXT,
    lease_until    BIGINT NOT NULL DEFAULT 0
);
";

const COLUMNS: &str = "directory_id, admin_email, customer, domain, interval_secs, next_poll_at, last_poll_at, last_result, last_error";

fn source_row(r: &Row) -> StoreResult<GoogleSource> {
    Ok(GoogleSource {
        directory_id: r.get(0)?,
        admin_email: r.get(1)?,
        customer: r.get(2)?,
        domain: r.get(3)?,
        interval_secs: r.get(4)?,
        next_poll_at: r.get(5)?,
        last_poll_at: r.get(6)?,
        last_result: r.get(7)?,
        last_error: r.get(8)?,
    })
}

/// The credentials are sealed with the directory id as associated data, so a
/// sealed value copied to another directory does not open.
fn seal_id(directory: &str) -> String {
    format!("google:{directory}")
}

/// A Google Workspace directory and its source, audited as one change (no
/// credentials in the record).
pub fn create(
    c: &dyn Db,
    actor: &Actor,
    key: Option<&SecretKey>,
    new: &NewGoogleDirectory,
) -> StoreResult<(Directory, GoogleSource)> {
    let attrs = crate::model::DirectoryAttrs {
        provider: Some(crate::model::GSUITE_PROVIDER.to_owned()),
        ..Default::default()
    };
    let d = create_directory(c, &new.name, &attrs)?;
    c.exec(
        "INSERT INTO google_sources (directory_id, credentials, admin_email, customer, domain, interval_secs)
         VALUES (?, ?, ?, ?, ?, ?)",
        vals![
            &d.id,
            secrets::seal(key, &seal_id(&d.id), &new.credentials)?,
            &new.admin_email,
            &new.customer,
            new.domain.as_deref(),
            new.interval_secs
        ],
    )?;
    let source = get(c, &d.id)?.ok_or_else(|| StoreError::internal("google source vanished"))?;
    super::audit::record(
        c,
        actor,
        "directory.created",
        super::audit::Target::directory(&d.id),
        &serde_json::json!({
            "name": d.name,
            "provider": GOOGLE_WORKSPACE,
            "admin_email": source.admin_email,
            "customer": source.customer,
        }),
    )?;
    Ok((d, source))
}

pub fn get(c: &dyn Db, directory: &str) -> StoreResult<Option<GoogleSource>> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM google_sources WHERE directory_id = ?"),
        vals![directory],
    )?
    .as_ref()
    .map(source_row)
    .transpose()
}

pub fn list(c: &dyn Db) -> StoreResult<Vec<GoogleSource>> {
    c.query(
        &format!("SELECT {COLUMNS} FROM google_sources ORDER BY directory_id"),
        &[],
    )?
    .iter()
    .map(source_row)
    .collect()
}

pub fn request_sync(c: &dyn Db, directory: &str) -> StoreResult<bool> {
    Ok(c.exec(
        "UPDATE google_sources SET next_poll_at = 0 WHERE directory_id = ?",
        vals![directory],
    )? > 0)
}

/// Takes the first due directory whose lease has run out. The UPDATE
/// re-checks the lease, so of two instances racing for one row (PostgreSQL
/// re-evaluates the condition after the other's commit) only one wins.
pub fn claim(
    c: &dyn Db,
    key: Option<&SecretKey>,
    owner: &str,
    lease_ms: i64,
) -> StoreResult<Option<GoogleJob>> {
    let now = now_ms();
    let due = c.query(
        "SELECT directory_id FROM google_sources WHERE next_poll_at <= ? AND lease_until < ? ORDER BY next_poll_at, directory_id LIMIT 8",
        vals![now, now],
    )?;
    for row in due {
        let id: String = row.get(0)?;
        let won = c.exec(
            // next_poll_at moves off 0, so a "sync now" asked for during
            // this poll is seen (and kept) when it finishes.
            "UPDATE google_sources SET lease_owner = ?, lease_until = ?, next_poll_at = ?
             WHERE directory_id = ? AND next_poll_at <= ? AND lease_until < ?",
            vals![
                owner,
                now.saturating_add(lease_ms),
                now.max(1),
                &id,
                now,
                now
            ],
        )?;
        if won == 0 {
            continue;
        }
        let sealed = crate::db::scalar::<String>(
            c,
            "SELECT credentials FROM google_sources WHERE directory_id = ?",
            vals![&id],
        )?
        .ok_or_else(|| StoreError::internal("google source vanished"))?;
        let source = get(c, &id)?.ok_or_else(|| StoreError::internal("google source vanished"))?;
        return Ok(Some(GoogleJob {
            source,
            credentials: secrets::open(key, &seal_id(&id), &sealed)?,
        }));
    }
    Ok(None)
}

pub fn renew(c: &dyn Db, directory: &str, owner: &str, lease_ms: i64) -> StoreResult<bool> {
    let now = now_ms();
    Ok(c.exec(
        "UPDATE google_sources SET lease_until = ? WHERE directory_id = ? AND lease_owner = ? AND lease_until >= ?",
        vals![now.saturating_add(lease_ms), directory, owner, now],
    )? > 0)
}

pub fn finish(
    c: &dyn Db,
    directory: &str,
    owner: &str,
    error: Option<&str>,
    next_poll_at: i64,
) -> StoreResult<bool> {
    let result = if error.is_some() { "error" } else { "ok" };
    // A "sync now" asked for during the poll (next_poll_at = 0) is kept.
    Ok(c.exec(
        "UPDATE google_sources SET last_poll_at = ?, last_result = ?, last_error = ?,
             next_poll_at = CASE WHEN next_poll_at = 0 THEN CAST(0 AS BIGINT) ELSE CAST(? AS BIGINT) END,
             lease_owner = NULL, lease_until = 0
         WHERE directory_id = ? AND lease_owner = ?",
        vals![now_ms(), result, error, next_poll_at, directory, owner],
    )? > 0)
}

pub fn by_external_ids(
    c: &dyn Db,
    directory: &str,
    kind: Kind,
    external_ids: &[String],
) -> StoreResult<Vec<Stored>> {
    let mut out = Vec::with_capacity(external_ids.len());
    for chunk in external_ids.chunks(200) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut params: Vec<Val> = vec![Val::from(directory), Val::from(kind.code())];
        params.extend(chunk.iter().map(Val::from));
        let rows = c.query(
            &format!(
                "SELECT {STORED_COLUMNS} FROM resources r WHERE r.directory_id = ? AND r.rtype = ? AND r.external_id IN ({marks})"
            ),
            &params,
        )?;
        for r in rows {
            out.push(to_stored(r)?);
        }
    }
    Ok(out)
}

pub fn external_index(
    c: &dyn Db,
    directory: &str,
    kind: Kind,
) -> StoreResult<Vec<(String, Option<String>)>> {
    c.query(
        "SELECT id, external_id FROM resources WHERE directory_id = ? AND rtype = ?",
        vals![directory, kind.code()],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

#[async_trait]
impl<T: SqlStore> GoogleStore for T {
    async fn create_google_directory(
        &self,
        actor: &Actor,
        new: NewGoogleDirectory,
    ) -> StoreResult<(Directory, GoogleSource)> {
        let (key, actor) = (self.secret_key(), actor.clone());
        self.run_write(None, move |c| create(c, &actor, key.as_ref(), &new))
            .await
    }

    async fn google_source(&self, directory: &str) -> StoreResult<Option<GoogleSource>> {
        let dir = directory.to_owned();
        self.run_read(move |c| get(c, &dir)).await
    }

    async fn google_sources(&self) -> StoreResult<Vec<GoogleSource>> {
        self.run_read(|c| list(c)).await
    }

    async fn request_google_sync(&self, directory: &str) -> StoreResult<bool> {
        let dir = directory.to_owned();
        self.run_write(None, move |c| request_sync(c, &dir)).await
    }

    async fn claim_google_poll(
        &self,
        owner: &str,
        lease_ms: i64,
    ) -> StoreResult<Option<GoogleJob>> {
        let owner = owner.to_owned();
        let key = self.secret_key();
        self.run_write(None, move |c| claim(c, key.as_ref(), &owner, lease_ms))
            .await
    }

    async fn renew_google_lease(
        &self,
        directory: &str,
        owner: &str,
        lease_ms: i64,
    ) -> StoreResult<bool> {
        let (dir, owner) = (directory.to_owned(), owner.to_owned());
        self.run_write(None, move |c| renew(c, &dir, &owner, lease_ms))
            .await
    }

    async fn finish_google_poll(
        &self,
        directory: &str,
        owner: &str,
        error: Option<String>,
        next_poll_at: i64,
    ) -> StoreResult<bool> {
        let (dir, owner) = (directory.to_owned(), owner.to_owned());
        self.run_write(None, move |c| {
            finish(c, &dir, &owner, error.as_deref(), next_poll_at)
        })
        .await
    }

    async fn by_external_ids(
        &self,
        directory: &str,
        kind: Kind,
        external_ids: Vec<String>,
    ) -> StoreResult<Vec<Stored>> {
        let dir = directory.to_owned();
        self.run_read(move |c| by_external_ids(c, &dir, kind, &external_ids))
            .await
    }

    async fn external_index(
        &self,
        directory: &str,
        kind: Kind,
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        let dir = directory.to_owned();
        self.run_read(move |c| external_index(c, &dir, kind)).await
    }
}
