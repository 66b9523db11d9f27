//! Google Workspace directories in SQL both stores accept.

use async_trait::async_trait;

use super::admin::create_directory;
use super::google_staging as staging;
use super::read::{STORED_COLUMNS, to_stored};
use super::store::SqlStore;
use crate::db::{Db, Row, Val};
use crate::google::{
    GOOGLE_WORKSPACE, GoogleJob, GoogleSettings, GoogleSource, GoogleStore, NewGoogleDirectory,
    PollRecord, StagedMember,
};
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

/// What a page shows of a poll: the key's client id, when the newest poll
/// began, what the last one listed and changed, and what kind of failure
/// stopped it.
pub const POLL_STATE: &str = "
ALTER TABLE google_sources ADD COLUMN client_id TEXT;
ALTER TABLE google_sources ADD COLUMN last_poll_started_at BIGINT;
ALTER TABLE google_sources ADD COLUMN users_seen BIGINT;
ALTER TABLE google_sources ADD COLUMN groups_seen BIGINT;
ALTER TABLE google_sources ADD COLUMN changes_applied BIGINT;
ALTER TABLE google_sources ADD COLUMN last_error_kind TEXT;
";

const COLUMNS: &str = "directory_id, admin_email, customer, domain, interval_secs, next_poll_at, last_poll_at, last_result, last_error, client_id, last_poll_started_at, users_seen, groups_seen, changes_applied, last_error_kind";

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
        client_id: r.get(9)?,
        last_poll_started_at: r.get(10)?,
        users_seen: r.get(11)?,
        groups_seen: r.get(12)?,
        changes_applied: r.get(13)?,
        last_error_kind: r.get(14)?,
    })
}

/// The credentials are sealed with the directory id as associated data, so a
/// sealed value copied to another directory does not open.
fn seal_id(directory: &str) -> String {
    format!("google:{directory}")
}

/// Writes `directory`'s source row (its key sealed).
fn insert_source(
    c: &dyn Db,
    key: Option<&SecretKey>,
    directory: &str,
    settings: &GoogleSettings,
) -> StoreResult<GoogleSource> {
    c.exec(
        "INSERT INTO google_sources (directory_id, credentials, client_id, admin_email, customer, domain, interval_secs)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        vals![
            directory,
            secrets::seal(key, &seal_id(directory), &settings.credentials)?,
            settings.client_id.as_deref(),
            &settings.admin_email,
            &settings.customer,
            settings.domain.as_deref(),
            settings.interval_secs
        ],
    )?;
    get(c, directory)?.ok_or_else(|| StoreError::internal("google source vanished"))
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
    let source = insert_source(c, key, &d.id, &new.settings)?;
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

fn refused(message: String) -> StoreError {
    StoreError::Conflict {
        attribute: "provider".to_owned(),
        message,
    }
}

/// Turns an unused SCIM directory into a Google one, in one transaction:
/// the checks, its type, its source, its tokens revoked, one audit record.
pub fn convert(
    c: &dyn Db,
    actor: &Actor,
    key: Option<&SecretKey>,
    directory: &str,
    settings: &GoogleSettings,
) -> StoreResult<(Directory, GoogleSource)> {
    let Some(d) = super::admin::get_directory(c, directory)? else {
        return Err(StoreError::NotFound(format!("no directory {directory}")));
    };
    if get(c, directory)?.is_some() {
        return Err(refused(
            "the directory is already read from Google Workspace".to_owned(),
        ));
    }
    let resources = crate::db::scalar::<i64>(
        c,
        "SELECT COUNT(*) FROM resources WHERE directory_id = ?",
        vals![directory],
    )?
    .unwrap_or(0);
    let requests = crate::db::scalar::<i64>(
        c,
        "SELECT COUNT(*) FROM request_log WHERE directory_id = ?",
        vals![directory],
    )?
    .unwrap_or(0);
    if resources > 0 || requests > 0 {
        return Err(refused(format!(
            "the directory already receives SCIM from an identity provider ({resources} users and groups, {requests} requests); reading it from Google as well would mix two sources"
        )));
    }
    let now = now_ms();
    c.exec(
        "UPDATE directories SET provider = ?, updated_at = ? WHERE id = ?",
        vals![crate::model::GSUITE_PROVIDER, now, directory],
    )?;
    let revoked = c.exec(
        "UPDATE tokens SET revoked_at = ?1 WHERE directory_id = ?2
           AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)",
        vals![now, directory],
    )?;
    let source = insert_source(c, key, directory, settings)?;
    super::audit::record(
        c,
        actor,
        "directory.converted",
        super::audit::Target::directory(directory),
        &serde_json::json!({
            "provider": GOOGLE_WORKSPACE,
            "admin_email": source.admin_email,
            "customer": source.customer,
            "tokens_revoked": revoked,
        }),
    )?;
    let d = Directory {
        provider: Some(crate::model::GSUITE_PROVIDER.to_owned()),
        updated_at: now,
        ..d
    };
    Ok((d, source))
}

/// Replaces the key of Google directory `directory` and makes a poll due now.
pub fn replace_credentials(
    c: &dyn Db,
    actor: &Actor,
    key: Option<&SecretKey>,
    directory: &str,
    credentials: &str,
    client_id: Option<&str>,
) -> StoreResult<bool> {
    let n = c.exec(
        "UPDATE google_sources SET credentials = ?, client_id = ?, next_poll_at = 0 WHERE directory_id = ?",
        vals![
            secrets::seal(key, &seal_id(directory), credentials)?,
            client_id,
            directory
        ],
    )?;
    if n == 0 {
        return Ok(false);
    }
    super::audit::record(
        c,
        actor,
        "directory.credentials_replaced",
        super::audit::Target::directory(directory),
        &serde_json::json!({"client_id": client_id}),
    )?;
    Ok(true)
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
            "UPDATE google_sources SET lease_owner = ?, lease_until = ?, next_poll_at = ?, last_poll_started_at = ?
             WHERE directory_id = ? AND next_poll_at <= ? AND lease_until < ?",
            vals![
                owner,
                now.saturating_add(lease_ms),
                now.max(1),
                now,
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

pub fn finish(c: &dyn Db, directory: &str, owner: &str, record: &PollRecord) -> StoreResult<bool> {
    let result = if record.error.is_some() {
        "error"
    } else {
        "ok"
    };
    let (kind, message) = match &record.error {
        Some((k, m)) => (Some(k.as_str()), Some(m.as_str())),
        None => (None, None),
    };
    // A "sync now" asked for during the poll (next_poll_at = 0) is kept.
    Ok(c.exec(
        "UPDATE google_sources SET last_poll_at = ?, last_result = ?, last_error = ?, last_error_kind = ?,
             users_seen = ?, groups_seen = ?, changes_applied = ?,
             next_poll_at = CASE WHEN next_poll_at = 0 THEN CAST(0 AS BIGINT) ELSE CAST(? AS BIGINT) END,
             lease_owner = NULL, lease_until = 0
         WHERE directory_id = ? AND lease_owner = ?",
        vals![
            now_ms(),
            result,
            message,
            kind,
            record.users_seen,
            record.groups_seen,
            record.changes,
            record.next_poll_at,
            directory,
            owner
        ],
    )? > 0)
}

/// Seals again, with the current key, each credential stored in plaintext
/// while a key is set or sealed under a previous key (what rotation does for
/// webhook secrets); returns how many changed.
pub fn check_credentials(c: &dyn Db, key: Option<&SecretKey>) -> StoreResult<usize> {
    let rows = c.query(
        "SELECT directory_id, credentials FROM google_sources ORDER BY directory_id",
        &[],
    )?;
    let mut sealed = 0;
    for r in rows {
        let id: String = r.get(0)?;
        let stored: String = r.get(1)?;
        let (credentials, stale) = secrets::open_stale(key, &seal_id(&id), &stored)?;
        if stale {
            c.exec(
                "UPDATE google_sources SET credentials = ? WHERE directory_id = ? AND credentials = ?",
                vals![
                    secrets::seal(key, &seal_id(&id), &credentials)?,
                    &id,
                    &stored
                ],
            )?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

/// Sets the poll interval of a Google directory; false when `directory` is
/// not one. A next poll scheduled further than the new interval after the
/// last one moves closer. The caller audits it with the directory's other settings.
pub fn set_interval(c: &dyn Db, directory: &str, secs: i64) -> StoreResult<bool> {
    let ms = secs.saturating_mul(1000);
    Ok(c.exec(
        "UPDATE google_sources SET interval_secs = ?,
             next_poll_at = CASE WHEN last_poll_at IS NOT NULL AND last_poll_at + ? < next_poll_at
                                 THEN last_poll_at + ? ELSE next_poll_at END
         WHERE directory_id = ?",
        vals![secs, ms, ms, directory],
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
        record: PollRecord,
    ) -> StoreResult<bool> {
        let (dir, owner) = (directory.to_owned(), owner.to_owned());
        self.run_write(None, move |c| finish(c, &dir, &owner, &record))
            .await
    }

    async fn replace_google_credentials(
        &self,
        actor: &Actor,
        directory: &str,
        credentials: String,
        client_id: Option<String>,
    ) -> StoreResult<bool> {
        let (key, actor, dir) = (self.secret_key(), actor.clone(), directory.to_owned());
        self.run_write(None, move |c| {
            replace_credentials(
                c,
                &actor,
                key.as_ref(),
                &dir,
                &credentials,
                client_id.as_deref(),
            )
        })
        .await
    }

    async fn convert_to_google_directory(
        &self,
        actor: &Actor,
        directory: &str,
        settings: GoogleSettings,
    ) -> StoreResult<(Directory, GoogleSource)> {
        let (key, actor, dir) = (self.secret_key(), actor.clone(), directory.to_owned());
        // Serialized with the directory's SCIM writes, so none lands between
        // the check that it has no users and the conversion.
        self.run_write(Some(dir.clone()), move |c| {
            convert(c, &actor, key.as_ref(), &dir, &settings)
        })
        .await
    }

    async fn check_google_credentials(&self) -> StoreResult<usize> {
        let key = self.secret_key();
        self.run_write(None, move |c| check_credentials(c, key.as_ref()))
            .await
    }

    async fn begin_google_staging(&self, directory: &str) -> StoreResult<()> {
        let dir = directory.to_owned();
        self.run_write(None, move |c| staging::begin(c, &dir)).await
    }

    async fn stage_google(
        &self,
        directory: &str,
        poll: &str,
        kind: Kind,
        rows: Vec<(String, Option<String>)>,
    ) -> StoreResult<()> {
        let (dir, poll) = (directory.to_owned(), poll.to_owned());
        self.run_write(None, move |c| staging::stage(c, &dir, &poll, kind, &rows))
            .await
    }

    async fn stage_google_members(
        &self,
        directory: &str,
        poll: &str,
        group: &str,
        members: Vec<StagedMember>,
    ) -> StoreResult<()> {
        let (dir, poll, group) = (directory.to_owned(), poll.to_owned(), group.to_owned());
        self.run_write(None, move |c| {
            staging::stage_members(c, &dir, &poll, &group, &members)
        })
        .await
    }

    async fn staged_google(
        &self,
        poll: &str,
        kind: Kind,
        changed_only: bool,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        let (poll, after) = (poll.to_owned(), after.to_owned());
        self.run_read(move |c| staging::staged(c, &poll, kind, changed_only, &after, limit))
            .await
    }

    async fn staged_google_member_ids(
        &self,
        directory: &str,
        poll: &str,
        group: &str,
    ) -> StoreResult<Vec<String>> {
        let (dir, poll, group) = (directory.to_owned(), poll.to_owned(), group.to_owned());
        self.run_read(move |c| staging::member_ids(c, &dir, &poll, &group))
            .await
    }

    async fn unlisted_google(
        &self,
        directory: &str,
        poll: &str,
        kind: Kind,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let (dir, poll, after) = (directory.to_owned(), poll.to_owned(), after.to_owned());
        self.run_read(move |c| staging::unlisted(c, &dir, &poll, kind, &after, limit))
            .await
    }

    async fn end_google_staging(&self, poll: &str) -> StoreResult<()> {
        let poll = poll.to_owned();
        self.run_write(None, move |c| staging::end(c, &poll)).await
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

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use rusqlite::Connection;

    use super::*;
    use crate::sqlite::conn;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        conn::migrate(&mut c).unwrap();
        c
    }

    fn key(b: u8) -> SecretKey {
        SecretKey::from_base64(&STANDARD.encode([b; 32])).unwrap()
    }

    fn stored(c: &Connection) -> String {
        c.query_row("SELECT credentials FROM google_sources", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn rotation_reseals_credentials_under_the_current_key() {
        let c = db();
        let new = NewGoogleDirectory {
            name: "g".into(),
            settings: GoogleSettings {
                credentials: "{\"private_key\": \"secret\"}".into(),
                client_id: None,
                admin_email: "admin@example.com".into(),
                customer: "my_customer".into(),
                domain: None,
                interval_secs: 600,
            },
        };
        // Written before any key was set: plaintext, sealed once there is one.
        let (d, _) = create(&c, &Actor::Cli, None, &new).unwrap();
        assert_eq!(stored(&c), new.settings.credentials);
        assert_eq!(check_credentials(&c, Some(&key(1))).unwrap(), 1);
        let under_old = stored(&c);
        assert!(under_old.starts_with("enc:v1:") && !under_old.contains("secret"));
        assert_eq!(check_credentials(&c, Some(&key(1))).unwrap(), 0);

        // A new key with the old one as previous: sealed again, once.
        let rolled = key(2).with_previous([key(1)]);
        assert_eq!(check_credentials(&c, Some(&rolled)).unwrap(), 1);
        assert_ne!(stored(&c), under_old);
        assert_eq!(check_credentials(&c, Some(&rolled)).unwrap(), 0);

        // The new key alone opens them; the old one alone no longer does.
        let job = claim(&c, Some(&key(2)), "me", 60_000).unwrap().unwrap();
        assert_eq!(job.source.directory_id, d.id);
        assert_eq!(job.credentials, new.settings.credentials);
        let e = check_credentials(&c, Some(&key(1)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Google Workspace directory") && e.contains(&d.id),
            "{e}"
        );
    }
}
