//! Webhook endpoints, leases and the delivery log in SQLite.

use rusqlite::{Connection, OptionalExtension, params};

use super::admin::now_ms;
use crate::tokens::new_webhook_secret;
use crate::webhooks::{DeliveryRecord, Leased, Progress, WebhookEndpoint};
use crate::{StoreError, StoreResult};

const COLUMNS: &str = "id, url, event_types, directory_id, enabled, state, cursor, attempts, first_failure, retry_at, created_at";

fn endpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(WebhookEndpoint, String)> {
    let types: String = r.get(2)?;
    Ok((
        WebhookEndpoint {
            id: r.get(0)?,
            url: r.get(1)?,
            event_types: Vec::new(),
            directory_id: r.get(3)?,
            enabled: r.get::<_, i64>(4)? != 0,
            state: r.get(5)?,
            cursor: r.get(6)?,
            attempts: r.get(7)?,
            first_failure: r.get(8)?,
            retry_at: r.get(9)?,
            created_at: r.get(10)?,
        },
        types,
    ))
}

fn finish(row: (WebhookEndpoint, String)) -> StoreResult<WebhookEndpoint> {
    let (mut e, types) = row;
    e.event_types = serde_json::from_str(&types)?;
    Ok(e)
}

pub fn create(
    c: &Connection,
    url: &str,
    types: &[String],
    directory: Option<&str>,
) -> StoreResult<(WebhookEndpoint, String)> {
    let id = uuid::Uuid::now_v7().to_string();
    let secret = new_webhook_secret();
    // A new endpoint receives events from now on, not the whole history.
    let cursor: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    c.prepare_cached(
        "INSERT INTO webhook_endpoints (id, url, secret, event_types, directory_id, cursor, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![id, url, secret, serde_json::to_string(types)?, directory, cursor, now_ms()])?;
    let endpoint = get(c, &id)?.ok_or_else(|| StoreError::Database("webhook vanished".into()))?;
    Ok((endpoint, secret))
}

pub fn get(c: &Connection, id: &str) -> StoreResult<Option<WebhookEndpoint>> {
    c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = ?"
    ))?
    .query_row([id], endpoint_row)
    .optional()?
    .map(finish)
    .transpose()
}

pub fn list(c: &Connection) -> StoreResult<Vec<WebhookEndpoint>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints ORDER BY id"
    ))?;
    let rows = stmt.query_map([], endpoint_row)?;
    rows.map(|r| finish(r?)).collect()
}

/// Enables or disables an endpoint; enabling also clears a failing state and any backoff.
pub fn set_enabled(c: &Connection, id: &str, enabled: bool) -> StoreResult<bool> {
    let n = if enabled {
        c.prepare_cached(
            "UPDATE webhook_endpoints SET enabled = 1, state = 'healthy', attempts = 0, first_failure = NULL, retry_at = 0 WHERE id = ?",
        )?
        .execute([id])?
    } else {
        c.prepare_cached("UPDATE webhook_endpoints SET enabled = 0 WHERE id = ?")?
            .execute([id])?
    };
    Ok(n > 0)
}

pub fn rotate_secret(c: &Connection, id: &str) -> StoreResult<Option<String>> {
    let secret = new_webhook_secret();
    let n = c
        .prepare_cached("UPDATE webhook_endpoints SET secret = ? WHERE id = ?")?
        .execute(params![secret, id])?;
    Ok((n > 0).then_some(secret))
}

pub fn delete(c: &Connection, id: &str) -> StoreResult<bool> {
    Ok(
        c.prepare_cached("DELETE FROM webhook_endpoints WHERE id = ?")?
            .execute([id])?
            > 0,
    )
}

/// Leases the endpoints that have work and are due, for `lease_ms`.
pub fn claim(c: &Connection, owner: &str, lease_ms: i64, limit: usize) -> StoreResult<Vec<Leased>> {
    let now = now_ms();
    let head: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    let ids: Vec<String> = c
        .prepare_cached(
            "SELECT id FROM webhook_endpoints w
             WHERE enabled = 1 AND retry_at <= ?1 AND (lease_until < ?1 OR lease_owner = ?2)
               AND (cursor < ?3 OR EXISTS (SELECT 1 FROM webhook_redeliveries r WHERE r.endpoint_id = w.id))
             ORDER BY retry_at, id LIMIT ?4",
        )?
        .query_map(params![now, owner, head, limit as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let taken = c
            .prepare_cached(
                "UPDATE webhook_endpoints SET lease_owner = ?1, lease_until = ?2
                 WHERE id = ?3 AND (lease_until < ?4 OR lease_owner = ?1)",
            )?
            .execute(params![owner, now + lease_ms, id, now])?;
        if taken == 0 {
            continue;
        }
        let (endpoint, secret) = c
            .prepare_cached(&format!(
                "SELECT {COLUMNS}, secret FROM webhook_endpoints WHERE id = ?"
            ))?
            .query_row([&id], |r| Ok((endpoint_row(r)?, r.get::<_, String>(11)?)))?;
        let redeliveries = c
            .prepare_cached("SELECT event_seq FROM webhook_redeliveries WHERE endpoint_id = ? ORDER BY event_seq")?
            .query_map([&id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        out.push(Leased {
            endpoint: finish(endpoint)?,
            secret,
            redeliveries,
            head,
        });
    }
    Ok(out)
}

/// Records attempts and moves the endpoint on, if `owner` still holds the lease.
pub fn progress(
    c: &Connection,
    id: &str,
    owner: &str,
    lease_ms: i64,
    p: &Progress,
) -> StoreResult<bool> {
    let now = now_ms();
    let n = c
        .prepare_cached(
            "UPDATE webhook_endpoints SET cursor = MAX(cursor, ?1), attempts = ?2, first_failure = ?3, retry_at = ?4,
               state = ?5, enabled = ?6, lease_until = ?7
             WHERE id = ?8 AND lease_owner = ?9",
        )?
        .execute(params![
            p.cursor,
            p.attempts,
            p.first_failure,
            p.retry_at,
            p.state,
            i64::from(p.enabled),
            now + lease_ms,
            id,
            owner
        ])?;
    if n == 0 {
        return Ok(false);
    }
    let mut insert = c.prepare_cached(
        "INSERT INTO webhook_deliveries (endpoint_id, event_seq, attempt, status, response_code, latency_ms, error, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    let mut done = c.prepare_cached(
        "DELETE FROM webhook_redeliveries WHERE endpoint_id = ? AND event_seq = ?",
    )?;
    for d in &p.deliveries {
        insert.execute(params![
            id,
            d.event_seq,
            d.attempt,
            d.status.as_str(),
            d.response_code,
            d.latency_ms,
            d.error,
            now
        ])?;
        if d.redelivery {
            done.execute(params![id, d.event_seq])?;
        }
    }
    // The log is for operators: the last thousand attempts per endpoint are enough.
    c.prepare_cached(
        "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1 AND id <= (
           SELECT id FROM webhook_deliveries WHERE endpoint_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET 1000)",
    )?
    .execute([id])?;
    Ok(true)
}

pub fn release(c: &Connection, id: &str, owner: &str) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE webhook_endpoints SET lease_until = 0 WHERE id = ? AND lease_owner = ?",
    )?
    .execute(params![id, owner])?;
    Ok(())
}

pub fn deliveries(c: &Connection, id: &str, limit: u64) -> StoreResult<Vec<DeliveryRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, event_seq, attempt, status, response_code, latency_ms, error, created_at
         FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY id DESC LIMIT ?",
    )?;
    let rows = stmt.query_map(params![id, limit as i64], |r| {
        Ok(DeliveryRecord {
            id: r.get(0)?,
            event_seq: r.get(1)?,
            attempt: r.get(2)?,
            status: r.get(3)?,
            response_code: r.get(4)?,
            latency_ms: r.get(5)?,
            error: r.get(6)?,
            created_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn redeliver(c: &Connection, id: &str, event_seq: i64) -> StoreResult<bool> {
    let exists: bool = c.query_row(
        "SELECT EXISTS(SELECT 1 FROM events WHERE seq = ?)",
        [event_seq],
        |r| r.get(0),
    )?;
    if !exists || get(c, id)?.is_none() {
        return Ok(false);
    }
    c.prepare_cached(
        "INSERT OR IGNORE INTO webhook_redeliveries (endpoint_id, event_seq) VALUES (?, ?)",
    )?
    .execute(params![id, event_seq])?;
    Ok(true)
}

/// One event by sequence number (for redeliveries).
pub fn event(c: &Connection, seq: i64) -> StoreResult<Option<crate::events::Event>> {
    Ok(super::outbox::list(c, seq - 1, 1, &[], None)?
        .into_iter()
        .find(|e| e.seq == seq))
}
