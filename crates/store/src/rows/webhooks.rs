//! Webhook endpoints, leases and the delivery log, in SQL both stores accept.

use serde_json::json;

use super::audit::{self, Target};
use super::visible_events;
use crate::db::{self, Db, Dialect, Row};
use crate::events::Event;
use crate::model::Actor;
use crate::now_ms;
use crate::secrets::{self, SecretKey};
use crate::tokens::new_webhook_secret;
use crate::webhooks::{
    DeliveryOptions, DeliveryRecord, Leased, Progress, WebhookEndpoint, WebhookFormat,
    WebhookUpdate,
};
use crate::{StoreError, StoreResult, vals};

const COLUMNS: &str = "id, url, event_types, directory_id, enabled, state, cursor, attempts, first_failure, retry_at, created_at, max_in_flight, batch_max_events, batch_max_wait_ms, sent_through, format, updated_at";
/// The column after [`COLUMNS`].
const AFTER_COLUMNS: usize = 17;

fn endpoint_row(r: &Row) -> StoreResult<WebhookEndpoint> {
    let types: String = r.get(2)?;
    let format: String = r.get(15)?;
    let created_at: i64 = r.get(10)?;
    Ok(WebhookEndpoint {
        id: r.get(0)?,
        url: r.get(1)?,
        event_types: serde_json::from_str(&types)?,
        directory_id: r.get(3)?,
        enabled: r.get::<i64>(4)? != 0,
        state: r.get(5)?,
        cursor: r.get(6)?,
        attempts: r.get(7)?,
        first_failure: r.get(8)?,
        retry_at: r.get(9)?,
        created_at,
        format: WebhookFormat::parse(&format).ok_or_else(|| {
            StoreError::internal(format!("webhook endpoint with unknown format {format:?}"))
        })?,
        updated_at: r.get::<Option<i64>>(16)?.unwrap_or(created_at),
        options: DeliveryOptions {
            max_in_flight: r
                .get::<Option<i64>>(11)?
                .and_then(|n| u32::try_from(n).ok()),
            batch_max_events: u32::try_from(r.get::<i64>(12)?).unwrap_or(1).max(1),
            batch_max_wait_ms: u32::try_from(r.get::<i64>(13)?).unwrap_or(0),
        },
        sent_through: r.get(14)?,
    })
}

/// The newest visible event (0 when there is none).
fn head(c: &dyn Db) -> StoreResult<i64> {
    let sql = format!(
        "SELECT COALESCE(MAX(seq), 0) FROM events WHERE 1 = 1{}",
        visible_events(c.dialect())
    );
    Ok(db::scalar(c, &sql, &[])?.unwrap_or(0))
}

/// What a new endpoint is: where it delivers, in which format, which events
/// of which directory (all when `None`), and how.
pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub format: WebhookFormat,
    pub types: &'a [String],
    pub directory: Option<&'a str>,
    pub options: &'a DeliveryOptions,
}

pub fn create(
    c: &dyn Db,
    actor: &Actor,
    key: Option<&SecretKey>,
    new: &NewEndpoint<'_>,
) -> StoreResult<(WebhookEndpoint, String)> {
    let NewEndpoint {
        url,
        format,
        types,
        directory,
        options,
    } = *new;
    if let Some(why) = options.problem() {
        return Err(StoreError::internal(why));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let secret = new_webhook_secret();
    // A new endpoint receives events from now on, not the whole history.
    let cursor = head(c)?;
    let now = now_ms();
    c.exec(
        "INSERT INTO webhook_endpoints (id, url, format, secret, event_types, directory_id, cursor, created_at,
           updated_at, max_in_flight, batch_max_events, batch_max_wait_ms, sent_through)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vals![
            &id,
            url,
            format.as_str(),
            secrets::seal(key, &id, &secret)?,
            serde_json::to_string(types)?,
            directory,
            cursor,
            now,
            now,
            options.max_in_flight.map(i64::from),
            i64::from(options.batch_max_events),
            i64::from(options.batch_max_wait_ms),
            cursor
        ],
    )?;
    let endpoint = get(c, &id)?.ok_or_else(|| StoreError::internal("webhook vanished"))?;
    audit::record(
        c,
        actor,
        "webhook.created",
        Target::webhook(&id, directory),
        &json!({"url": audit_url(url), "events": types}),
    )?;
    Ok((endpoint, secret))
}

/// A webhook URL as the audit log shows it: without user information and
/// query, where a receiver's credentials would be.
fn audit_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Records a change to an existing endpoint, naming its directory.
fn audit_change(
    c: &dyn Db,
    actor: &Actor,
    id: &str,
    details: &serde_json::Value,
) -> StoreResult<()> {
    let directory: Option<String> = db::scalar(
        c,
        "SELECT directory_id FROM webhook_endpoints WHERE id = ?",
        vals![id],
    )?
    .flatten();
    audit::record(
        c,
        actor,
        "webhook.updated",
        Target::webhook(id, directory.as_deref()),
        details,
    )
}

pub fn get(c: &dyn Db, id: &str) -> StoreResult<Option<WebhookEndpoint>> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE id = ?"),
        vals![id],
    )?
    .map(|r| endpoint_row(&r))
    .transpose()
}

pub fn list(c: &dyn Db) -> StoreResult<Vec<WebhookEndpoint>> {
    c.query(
        &format!("SELECT {COLUMNS} FROM webhook_endpoints ORDER BY id"),
        &[],
    )?
    .iter()
    .map(endpoint_row)
    .collect()
}

/// Enables or disables an endpoint; enabling also clears a failing state and any backoff.
pub fn set_enabled(c: &dyn Db, actor: &Actor, id: &str, enabled: bool) -> StoreResult<bool> {
    if apply_enabled(c, id, enabled)? == 0 {
        return Ok(false);
    }
    audit_change(c, actor, id, &json!({"enabled": enabled}))?;
    Ok(true)
}

/// The enabled flag's change without its audit record; how many rows changed.
fn apply_enabled(c: &dyn Db, id: &str, enabled: bool) -> StoreResult<u64> {
    let n = if enabled {
        c.exec(
            "UPDATE webhook_endpoints SET enabled = 1, state = 'healthy', attempts = 0, first_failure = NULL, retry_at = 0, updated_at = ? WHERE id = ?",
            vals![now_ms(), id],
        )?
    } else {
        c.exec(
            "UPDATE webhook_endpoints SET enabled = 0, updated_at = ? WHERE id = ?",
            vals![now_ms(), id],
        )?
    };
    Ok(n)
}

/// Changes an endpoint's URL, event types and enabled flag, each when given,
/// in one transaction with one audit record; returns the endpoint as it now
/// is, `None` when there is no such endpoint.
pub fn update(
    c: &dyn Db,
    actor: &Actor,
    id: &str,
    u: &WebhookUpdate,
) -> StoreResult<Option<WebhookEndpoint>> {
    if get(c, id)?.is_none() {
        return Ok(None);
    }
    let mut details = serde_json::Map::new();
    if let Some(url) = &u.url {
        c.exec(
            "UPDATE webhook_endpoints SET url = ? WHERE id = ?",
            vals![url, id],
        )?;
        details.insert("url".to_owned(), json!(audit_url(url)));
    }
    if let Some(types) = &u.event_types {
        c.exec(
            "UPDATE webhook_endpoints SET event_types = ? WHERE id = ?",
            vals![serde_json::to_string(types)?, id],
        )?;
        details.insert("events".to_owned(), json!(types));
    }
    if let Some(enabled) = u.enabled {
        apply_enabled(c, id, enabled)?;
        details.insert("enabled".to_owned(), json!(enabled));
    }
    c.exec(
        "UPDATE webhook_endpoints SET updated_at = ? WHERE id = ?",
        vals![now_ms(), id],
    )?;
    audit_change(c, actor, id, &serde_json::Value::Object(details))?;
    get(c, id)
}

/// An endpoint's signing secret, in plaintext; `None` when there is no such endpoint.
pub fn secret(c: &dyn Db, key: Option<&SecretKey>, id: &str) -> StoreResult<Option<String>> {
    c.query_opt(
        "SELECT secret FROM webhook_endpoints WHERE id = ?",
        vals![id],
    )?
    .map(|r| secrets::open(key, id, &r.get::<String>(0)?))
    .transpose()
}

pub fn rotate_secret(
    c: &dyn Db,
    actor: &Actor,
    key: Option<&SecretKey>,
    id: &str,
) -> StoreResult<Option<String>> {
    let secret = new_webhook_secret();
    let n = c.exec(
        "UPDATE webhook_endpoints SET secret = ?, updated_at = ? WHERE id = ?",
        vals![secrets::seal(key, id, &secret)?, now_ms(), id],
    )?;
    if n == 0 {
        return Ok(None);
    }
    audit_change(c, actor, id, &json!({"secret": "rotated"}))?;
    Ok(Some(secret))
}

/// Checks at startup that every stored secret can be read with `key` (a
/// wrong or missing key fails here, naming the endpoint, rather than at the
/// first delivery), and encrypts with the current key the ones stored in
/// plaintext or under a previous key. Returns how many it encrypted; called
/// in one transaction, a failure on any endpoint leaves every row as it was.
pub fn check_secrets(c: &dyn Db, key: Option<&SecretKey>) -> StoreResult<usize> {
    let rows = c.query("SELECT id, secret FROM webhook_endpoints ORDER BY id", &[])?;
    let mut sealed = 0;
    for r in rows {
        let id: String = r.get(0)?;
        let stored: String = r.get(1)?;
        let (secret, stale) = secrets::open_stale(key, &id, &stored)?;
        if stale {
            c.exec(
                "UPDATE webhook_endpoints SET secret = ? WHERE id = ? AND secret = ?",
                vals![secrets::seal(key, &id, &secret)?, &id, &stored],
            )?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

pub fn delete(c: &dyn Db, actor: &Actor, id: &str) -> StoreResult<bool> {
    let Some(e) = get(c, id)? else {
        return Ok(false);
    };
    c.exec("DELETE FROM webhook_endpoints WHERE id = ?", vals![id])?;
    audit::record(
        c,
        actor,
        "webhook.deleted",
        Target::webhook(id, e.directory_id.as_deref()),
        &json!({"url": audit_url(&e.url)}),
    )?;
    Ok(true)
}

/// Leases the endpoints that have work and are due, for `lease_ms`.
pub fn claim(
    c: &dyn Db,
    key: Option<&SecretKey>,
    owner: &str,
    lease_ms: i64,
    limit: usize,
) -> StoreResult<Vec<Leased>> {
    let now = now_ms();
    let head = head(c)?;
    let ids = c
        .query(
            "SELECT id FROM webhook_endpoints w
             WHERE enabled = 1 AND retry_at <= ?1 AND lease_until < ?1
               AND (cursor < ?2 OR EXISTS (SELECT 1 FROM webhook_redeliveries r WHERE r.endpoint_id = w.id))
             ORDER BY retry_at, id LIMIT ?3",
            vals![now, head, i64::try_from(limit).unwrap_or(i64::MAX)],
        )?
        .iter()
        .map(|r| r.get::<String>(0))
        .collect::<StoreResult<Vec<_>>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let taken = c.exec(
            "UPDATE webhook_endpoints SET lease_owner = ?1, lease_until = ?2
             WHERE id = ?3 AND lease_until < ?4",
            vals![owner, now + lease_ms, &id, now],
        )?;
        if taken == 0 {
            continue;
        }
        let row = c
            .query_opt(
                &format!("SELECT {COLUMNS}, secret FROM webhook_endpoints WHERE id = ?"),
                vals![&id],
            )?
            .ok_or_else(|| StoreError::internal(format!("webhook {id} vanished")))?;
        let redeliveries = c
            .query(
                "SELECT event_seq FROM webhook_redeliveries WHERE endpoint_id = ? ORDER BY event_seq",
                vals![&id],
            )?
            .iter()
            .map(|r| r.get::<i64>(0))
            .collect::<StoreResult<_>>()?;
        let stored: String = row.get(AFTER_COLUMNS)?;
        out.push(Leased {
            endpoint: endpoint_row(&row)?,
            secret: secrets::open(key, &id, &stored)?,
            redeliveries,
            head,
        });
    }
    Ok(out)
}

/// Records attempts and moves the endpoint on, if `owner` still holds the lease.
pub fn progress(
    c: &dyn Db,
    id: &str,
    owner: &str,
    lease_ms: i64,
    p: &Progress,
) -> StoreResult<bool> {
    let now = now_ms();
    let sql = match c.dialect() {
        Dialect::Sqlite => {
            "UPDATE webhook_endpoints SET cursor = MAX(cursor, ?1), attempts = ?2, first_failure = ?3, retry_at = ?4,
               state = ?5, enabled = ?6, lease_until = ?7, sent_through = MAX(sent_through, ?10)
             WHERE id = ?8 AND lease_owner = ?9"
        }
        Dialect::Postgres => {
            "UPDATE webhook_endpoints SET cursor = GREATEST(cursor, ?1), attempts = ?2, first_failure = ?3, retry_at = ?4,
               state = ?5, enabled = ?6, lease_until = ?7, sent_through = GREATEST(sent_through, ?10)
             WHERE id = ?8 AND lease_owner = ?9"
        }
    };
    let n = c.exec(
        sql,
        vals![
            p.cursor,
            p.attempts,
            p.first_failure,
            p.retry_at,
            &p.state,
            p.enabled,
            now + lease_ms,
            id,
            owner,
            p.sent_through
        ],
    )?;
    if n == 0 {
        return Ok(false);
    }
    for d in &p.deliveries {
        c.exec(
            "INSERT INTO webhook_deliveries (endpoint_id, event_seq, attempt, status, response_code, latency_ms, error, response_excerpt, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vals![
                id,
                d.event_seq,
                d.attempt,
                d.status.as_str(),
                d.response_code.map(i64::from),
                d.latency_ms,
                d.error.as_deref(),
                d.response_excerpt.as_deref(),
                now
            ],
        )?;
        if d.redelivery {
            c.exec(
                "DELETE FROM webhook_redeliveries WHERE endpoint_id = ? AND event_seq = ?",
                vals![id, d.event_seq],
            )?;
        }
    }
    // The log is for operators: the last thousand attempts per endpoint are enough.
    c.exec(
        "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1 AND id <= (
           SELECT id FROM webhook_deliveries WHERE endpoint_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET 1000)",
        vals![id],
    )?;
    Ok(true)
}

pub fn release(c: &dyn Db, id: &str, owner: &str) -> StoreResult<()> {
    c.exec(
        "UPDATE webhook_endpoints SET lease_until = 0 WHERE id = ? AND lease_owner = ?",
        vals![id, owner],
    )?;
    Ok(())
}

pub fn deliveries(c: &dyn Db, id: &str, limit: u64) -> StoreResult<Vec<DeliveryRecord>> {
    c.query(
        "SELECT id, event_seq, attempt, status, response_code, latency_ms, error, created_at, response_excerpt
         FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY id DESC LIMIT ?",
        vals![id, limit as i64],
    )?
    .iter()
    .map(|r| {
        Ok(DeliveryRecord {
            id: r.get(0)?,
            event_seq: r.get(1)?,
            attempt: r.get(2)?,
            status: r.get(3)?,
            response_code: r.get(4)?,
            latency_ms: r.get(5)?,
            error: r.get(6)?,
            created_at: r.get(7)?,
            response_excerpt: r.get(8)?,
        })
    })
    .collect()
}

pub fn redeliver(c: &dyn Db, id: &str, event_seq: i64) -> StoreResult<bool> {
    let exists = c
        .query_opt(
            &format!(
                "SELECT seq FROM events WHERE seq = ?1{}",
                visible_events(c.dialect())
            ),
            vals![event_seq],
        )?
        .is_some();
    if !exists || get(c, id)?.is_none() {
        return Ok(false);
    }
    c.exec(
        "INSERT INTO webhook_redeliveries (endpoint_id, event_seq) VALUES (?, ?)
         ON CONFLICT (endpoint_id, event_seq) DO NOTHING",
        vals![id, event_seq],
    )?;
    Ok(true)
}

const PRUNED_THROUGH: &str = "events_pruned_through";

/// One event by sequence number (for redeliveries). As reading the events
/// after `seq - 1` would, refuses a sequence number that pruning has passed.
pub fn event(c: &dyn Db, seq: i64) -> StoreResult<Option<Event>> {
    let after = seq - 1;
    let floor: i64 = db::scalar(
        c,
        "SELECT value FROM store_meta WHERE key = ?1",
        vals![PRUNED_THROUGH],
    )?
    .unwrap_or(0);
    if after > 0 && after < floor {
        return Err(StoreError::CursorExpired { floor });
    }
    let sql = format!(
        "SELECT seq, directory_id, type, data, created_at FROM events WHERE seq = ?1{}",
        visible_events(c.dialect())
    );
    let Some(mut r) = c.query_opt(&sql, vals![seq])? else {
        return Ok(None);
    };
    let data = r.take_text(3)?;
    Ok(Some(Event {
        seq,
        directory_id: r.get(1)?,
        event: r.get(2)?,
        created_at: r.get(4)?,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::internal_from(format!("event {seq} is unreadable"), e))?,
    }))
}

/// The start of a receiver's answer to an attempt, kept to tell an
/// operator why it failed (bounded and secret-free: see `Attempt`).
pub const RESPONSE_EXCERPT: &str =
    "ALTER TABLE webhook_deliveries ADD COLUMN response_excerpt TEXT;";

#[cfg(test)]
mod tests {
    use super::audit_url;

    #[test]
    fn the_audit_log_shows_no_credentials_of_a_webhook_url() {
        assert_eq!(
            audit_url("https://user:pw@hooks.example.com/in?token=abc#x"),
            "https://hooks.example.com/in"
        );
        assert_eq!(audit_url("http://127.0.0.1:9/x"), "http://127.0.0.1:9/x");
        assert_eq!(audit_url("https://a@b.example"), "https://b.example");
    }
}
