//! Portal links and the provider request log, in SQL both stores accept.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use super::audit::{self, Target};
use super::store::SqlStore;
use crate::db::{Db, Dialect, Row, Val};
use crate::model::Actor;
use crate::portal::{
    LoggedRequest, PortalLink, PortalStore, RequestLogBounds, RequestQuery, RequestRecord,
    RequestSummary,
};
use crate::tokens::{hash_token, new_portal_secret};
use crate::{StoreError, StoreResult, now_ms, vals};

const HOUR_MS: i64 = 3_600_000;

/// The tables of the request log and of portal links. `seq` never repeats
/// (AUTOINCREMENT, a sequence), so a page cursor stays right while the log
/// is cut beneath it.
pub fn migration(d: Dialect) -> String {
    let (seq, text, bytes) = match d {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "BLOB"),
        Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "TEXT COLLATE \"C\"", "BYTEA"),
    };
    format!(
        "CREATE TABLE request_log (
            seq            {seq},
            directory_id   {text} NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
            at             BIGINT NOT NULL,
            method         TEXT NOT NULL,
            path           TEXT NOT NULL,
            status         BIGINT NOT NULL,
            latency_ms     BIGINT NOT NULL,
            authenticated  BIGINT NOT NULL,
            error          TEXT,
            user_agent     TEXT,
            provider       TEXT,
            request_body   TEXT,
            response_body  TEXT
        );
        CREATE INDEX request_log_directory ON request_log(directory_id, seq);
        CREATE INDEX request_log_at ON request_log(at);
        CREATE TABLE request_stats (
            directory_id   {text} NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
            hour           BIGINT NOT NULL,
            requests       BIGINT NOT NULL,
            errors         BIGINT NOT NULL,
            last_at        BIGINT NOT NULL,
            PRIMARY KEY (directory_id, hour)
        );
        CREATE INDEX request_stats_hour ON request_stats(hour);
        CREATE TABLE portal_links (
            id             {text} PRIMARY KEY,
            directory_id   {text} NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
            secret_hash    {bytes} NOT NULL UNIQUE,
            return_url     TEXT,
            created_at     BIGINT NOT NULL,
            expires_at     BIGINT NOT NULL,
            opened_at      BIGINT,
            created_by     TEXT NOT NULL,
            session_id     {text}
        );
        CREATE INDEX portal_links_directory ON portal_links(directory_id);
        CREATE INDEX portal_links_session ON portal_links(session_id);"
    )
}

const LINK_COLUMNS: &str = "id, directory_id, return_url, created_at, expires_at, opened_at";

fn link_row(r: &Row) -> StoreResult<PortalLink> {
    Ok(PortalLink {
        id: r.get(0)?,
        directory_id: r.get(1)?,
        return_url: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        opened_at: r.get(5)?,
    })
}

pub fn create_link(
    c: &dyn Db,
    actor: &Actor,
    directory: &str,
    return_url: Option<&str>,
    expires_at: i64,
) -> StoreResult<(PortalLink, String)> {
    if super::admin::get_directory(c, directory)?.is_none() {
        return Err(StoreError::NotFound(format!("no directory {directory}")));
    }
    let secret = new_portal_secret();
    let link = PortalLink {
        id: uuid::Uuid::now_v7().to_string(),
        directory_id: directory.to_owned(),
        return_url: return_url.map(str::to_owned),
        created_at: now_ms(),
        expires_at,
        opened_at: None,
    };
    c.exec(
        "INSERT INTO portal_links (id, directory_id, secret_hash, return_url, created_at, expires_at, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        vals![
            &link.id,
            &link.directory_id,
            hash_token(&secret),
            link.return_url.as_deref(),
            link.created_at,
            link.expires_at,
            actor.to_string()
        ],
    )?;
    audit::record(
        c,
        actor,
        "portal_link.created",
        Target {
            kind: "portal_link",
            id: &link.id,
            directory: Some(directory),
        },
        &serde_json::json!({
            "expires_at": roster_scim::values::format_unix_millis(expires_at),
            "return_url": link.return_url,
        }),
    )?;
    Ok((link, secret))
}

/// The UPDATE is the check: of two openings at once, one changes the row
/// (PostgreSQL re-reads `opened_at` after the other's commit) and one does not.
pub fn open_link(c: &dyn Db, secret: &str) -> StoreResult<Option<PortalLink>> {
    let now = now_ms();
    let hash = hash_token(secret);
    let opened = c.exec(
        "UPDATE portal_links SET opened_at = ?
         WHERE secret_hash = ? AND opened_at IS NULL AND expires_at > ?",
        vals![now, &hash, now],
    )?;
    if opened == 0 {
        return Ok(None);
    }
    let link = c
        .query_opt(
            &format!("SELECT {LINK_COLUMNS} FROM portal_links WHERE secret_hash = ?"),
            vals![&hash],
        )?
        .as_ref()
        .map(link_row)
        .transpose()?;
    if let Some(l) = &link {
        audit::record(
            c,
            &Actor::Portal(l.id.clone()),
            "portal_link.opened",
            Target {
                kind: "portal_link",
                id: &l.id,
                directory: Some(&l.directory_id),
            },
            &serde_json::json!({}),
        )?;
    }
    Ok(link)
}

pub fn attach_session(c: &dyn Db, link: &str, session: &str) -> StoreResult<bool> {
    Ok(c.exec(
        "UPDATE portal_links SET session_id = ? WHERE id = ? AND opened_at IS NOT NULL",
        vals![session, link],
    )? > 0)
}

pub fn link_of_session(c: &dyn Db, session: &str) -> StoreResult<Option<PortalLink>> {
    c.query_opt(
        &format!("SELECT {LINK_COLUMNS} FROM portal_links WHERE session_id = ?"),
        vals![session],
    )?
    .as_ref()
    .map(link_row)
    .transpose()
}

/// The directories among `ids` that exist.
fn existing(c: &dyn Db, ids: &BTreeSet<&str>) -> StoreResult<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for id in ids {
        if c.query_opt("SELECT id FROM directories WHERE id = ?", vals![*id])?
            .is_some()
        {
            out.insert((*id).to_owned());
        }
    }
    Ok(out)
}

pub fn record(
    c: &dyn Db,
    records: &[RequestRecord],
    trim: &[String],
    bounds: RequestLogBounds,
) -> StoreResult<()> {
    let wanted: BTreeSet<&str> = records.iter().map(|r| r.directory_id.as_str()).collect();
    let known = existing(c, &wanted)?;
    // (directory, hour) -> (requests, errors, newest)
    let mut hours: BTreeMap<(&str, i64), (i64, i64, i64)> = BTreeMap::new();
    for r in records.iter().filter(|r| known.contains(&r.directory_id)) {
        c.exec(
            "INSERT INTO request_log (directory_id, at, method, path, status, latency_ms, authenticated,
                 error, user_agent, provider, request_body, response_body)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vals![
                &r.directory_id,
                r.at,
                &r.method,
                &r.path,
                i64::from(r.status),
                r.latency_ms,
                r.authenticated,
                r.error.as_deref(),
                r.user_agent.as_deref(),
                r.provider.as_deref(),
                r.request_body.as_deref(),
                r.response_body.as_deref()
            ],
        )?;
        let h = hours
            .entry((r.directory_id.as_str(), r.at.div_euclid(HOUR_MS)))
            .or_default();
        h.0 += 1;
        h.1 += i64::from(r.failed());
        h.2 = h.2.max(r.at);
    }
    let greatest = match c.dialect() {
        Dialect::Sqlite => "max",
        Dialect::Postgres => "GREATEST",
    };
    for ((dir, hour), (requests, errors, last)) in &hours {
        c.exec(
            &format!(
                "INSERT INTO request_stats (directory_id, hour, requests, errors, last_at)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (directory_id, hour) DO UPDATE SET
                     requests = request_stats.requests + excluded.requests,
                     errors = request_stats.errors + excluded.errors,
                     last_at = {greatest}(request_stats.last_at, excluded.last_at)"
            ),
            vals![*dir, *hour, *requests, *errors, *last],
        )?;
    }
    for dir in trim {
        cut(c, dir, bounds.max_per_directory)?;
    }
    Ok(())
}

/// Keeps a directory's newest `keep` requests: two index range reads, the
/// first walking `keep` entries, which is why the writer asks for it only
/// once a directory has gained a slice of its bound.
fn cut(c: &dyn Db, directory: &str, keep: i64) -> StoreResult<()> {
    let oldest_dropped: Option<i64> = crate::db::scalar(
        c,
        "SELECT seq FROM request_log WHERE directory_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
        vals![directory, keep.max(0)],
    )?;
    if let Some(seq) = oldest_dropped {
        c.exec(
            "DELETE FROM request_log WHERE directory_id = ? AND seq <= ?",
            vals![directory, seq],
        )?;
    }
    Ok(())
}

pub fn prune(c: &dyn Db, cutoff_ms: i64) -> StoreResult<u64> {
    let n = c.exec("DELETE FROM request_log WHERE at < ?", vals![cutoff_ms])?;
    c.exec(
        "DELETE FROM request_stats WHERE hour < ?",
        vals![cutoff_ms.div_euclid(HOUR_MS)],
    )?;
    Ok(n)
}

const REQUEST_COLUMNS: &str = "seq, directory_id, at, method, path, status, latency_ms, authenticated, error, user_agent, provider, request_body, response_body";

fn request_row(r: &Row) -> StoreResult<LoggedRequest> {
    let status: i64 = r.get(5)?;
    Ok(LoggedRequest {
        seq: r.get(0)?,
        record: RequestRecord {
            directory_id: r.get(1)?,
            at: r.get(2)?,
            method: r.get(3)?,
            path: r.get(4)?,
            status: u16::try_from(status).unwrap_or(0),
            latency_ms: r.get(6)?,
            authenticated: r.get(7)?,
            error: r.get(8)?,
            user_agent: r.get(9)?,
            provider: r.get(10)?,
            request_body: r.get(11)?,
            response_body: r.get(12)?,
        },
    })
}

pub fn list(c: &dyn Db, directory: &str, q: &RequestQuery) -> StoreResult<Vec<LoggedRequest>> {
    let mut sql = format!("SELECT {REQUEST_COLUMNS} FROM request_log WHERE directory_id = ?");
    let mut params: Vec<Val> = vec![directory.into()];
    if let Some(before) = q.before {
        sql.push_str(" AND seq < ?");
        params.push(before.into());
    }
    if q.failed_only {
        sql.push_str(" AND status >= 400");
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    params.push(i64::try_from(q.limit).unwrap_or(i64::MAX).into());
    c.query(&sql, &params)?.iter().map(request_row).collect()
}

pub fn summary(c: &dyn Db, directory: &str) -> StoreResult<RequestSummary> {
    let since = (now_ms() - 24 * HOUR_MS).div_euclid(HOUR_MS);
    let row = c.query_opt(
        "SELECT (SELECT max(last_at) FROM request_stats WHERE directory_id = ?),
                CAST(COALESCE(SUM(requests), 0) AS BIGINT), CAST(COALESCE(SUM(errors), 0) AS BIGINT)
         FROM request_stats WHERE directory_id = ? AND hour >= ?",
        vals![directory, directory, since],
    )?;
    let Some(row) = row else {
        return Ok(RequestSummary::default());
    };
    Ok(RequestSummary {
        last_request_at: row.get(0)?,
        requests_24h: row.get(1)?,
        errors_24h: row.get(2)?,
    })
}

/// [`summary`] of several directories in one query; a directory with no
/// request is left out.
pub fn summaries(c: &dyn Db, ids: &[String]) -> StoreResult<BTreeMap<String, RequestSummary>> {
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let since = (now_ms() - 24 * HOUR_MS).div_euclid(HOUR_MS);
    let mut values: Vec<Val> = vec![since.into()];
    let mut sql = String::from(
        "SELECT directory_id, max(last_at),
                CAST(COALESCE(SUM(CASE WHEN hour >= ?1 THEN requests ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN hour >= ?1 THEN errors ELSE 0 END), 0) AS BIGINT)
         FROM request_stats WHERE 1 = 1",
    );
    super::directory_api::push_in(&mut sql, &mut values, "directory_id", ids);
    sql.push_str(" GROUP BY directory_id");
    for row in c.query(&sql, &values)? {
        out.insert(
            row.get(0)?,
            RequestSummary {
                last_request_at: row.get(1)?,
                requests_24h: row.get(2)?,
                errors_24h: row.get(3)?,
            },
        );
    }
    Ok(out)
}

#[async_trait]
impl<T: SqlStore> PortalStore for T {
    async fn create_portal_link(
        &self,
        actor: &Actor,
        directory: &str,
        return_url: Option<&str>,
        expires_at: i64,
    ) -> StoreResult<(PortalLink, String)> {
        let (actor, dir) = (actor.clone(), directory.to_owned());
        let ret = return_url.map(str::to_owned);
        self.run_write(None, move |c| {
            create_link(c, &actor, &dir, ret.as_deref(), expires_at)
        })
        .await
    }

    async fn open_portal_link(&self, secret: &str) -> StoreResult<Option<PortalLink>> {
        let secret = secret.to_owned();
        self.run_write(None, move |c| open_link(c, &secret)).await
    }

    async fn attach_portal_session(&self, link: &str, session: &str) -> StoreResult<bool> {
        let (link, session) = (link.to_owned(), session.to_owned());
        self.run_write(None, move |c| attach_session(c, &link, &session))
            .await
    }

    async fn portal_link_of_session(&self, session: &str) -> StoreResult<Option<PortalLink>> {
        let session = session.to_owned();
        self.run_read(move |c| link_of_session(c, &session)).await
    }

    async fn record_requests(
        &self,
        records: Vec<RequestRecord>,
        trim: Vec<String>,
        bounds: RequestLogBounds,
    ) -> StoreResult<()> {
        self.run_write(None, move |c| record(c, &records, &trim, bounds))
            .await
    }

    async fn prune_requests(&self, cutoff_ms: i64) -> StoreResult<u64> {
        self.run_write(None, move |c| prune(c, cutoff_ms)).await
    }

    async fn requests(
        &self,
        directory: &str,
        query: RequestQuery,
    ) -> StoreResult<Vec<LoggedRequest>> {
        let dir = directory.to_owned();
        self.run_read(move |c| list(c, &dir, &query)).await
    }

    async fn request_summary(&self, directory: &str) -> StoreResult<RequestSummary> {
        let dir = directory.to_owned();
        self.run_read(move |c| summary(c, &dir)).await
    }

    async fn request_summaries(
        &self,
        directories: &[String],
    ) -> StoreResult<BTreeMap<String, RequestSummary>> {
        let ids = directories.to_vec();
        self.run_read(move |c| summaries(c, &ids)).await
    }
}
