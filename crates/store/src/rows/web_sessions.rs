//! Browser sessions (`web_sessions`): opened by a sign-in or a portal link,
//! found by the digest of their cookie, ended by sign-out or expiry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::json;

use super::audit::{self, Target};
use crate::db::{Db, Row};
use crate::model::Actor;
use crate::tokens::hash_token;
use crate::web_sessions::{SessionLifetime, SessionScope, WebSession};
use crate::{StoreError, StoreResult, now_ms, vals};

/// A session's last use is written at most this often: a page view is a
/// read, and a write per view would make every page cost a transaction.
const TOUCH_EVERY_MS: i64 = 60_000;

const COLUMNS: &str = "id, scope, subject, csrf, created_at, last_seen_at, expires_at, idle_secs";

fn random(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn digest(cookie: &str) -> String {
    hex::encode(hash_token(cookie))
}

fn session_row(r: &Row) -> StoreResult<WebSession> {
    let kind: String = r.get(1)?;
    let scope = SessionScope::from_columns(&kind, r.get(2)?)
        .ok_or_else(|| StoreError::internal(format!("web session of scope {kind:?}")))?;
    Ok(WebSession {
        id: r.get(0)?,
        scope,
        csrf: r.get(3)?,
        created_at: r.get(4)?,
        last_seen_at: r.get(5)?,
        expires_at: r.get(6)?,
        idle_secs: r.get(7)?,
    })
}

/// Opens a session; returns it and the cookie's secret (never stored).
/// Sessions already over are removed on the way, so the table holds live
/// ones and the recently ended only.
pub fn create(
    c: &dyn Db,
    actor: &Actor,
    scope: &SessionScope,
    lifetime: SessionLifetime,
) -> StoreResult<(WebSession, String)> {
    let now = now_ms();
    prune(c, now)?;
    let cookie = random(32);
    let session = WebSession {
        id: digest(&cookie),
        scope: scope.clone(),
        csrf: random(24),
        created_at: now,
        last_seen_at: now,
        expires_at: now.saturating_add(lifetime.max_secs.max(1).saturating_mul(1000)),
        idle_secs: lifetime.idle_secs,
    };
    c.exec(
        &format!("INSERT INTO web_sessions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        vals![
            &session.id,
            scope.kind(),
            scope.subject(),
            &session.csrf,
            now,
            now,
            session.expires_at,
            lifetime.idle_secs
        ],
    )?;
    let target = match scope {
        SessionScope::Admin(key) => Target::admin_key(key),
        SessionScope::Portal(dir) => Target::directory(dir),
    };
    audit::record(
        c,
        actor,
        "web_session.created",
        target,
        &json!({"scope": scope.kind(), "expires_at": session.expires_at}),
    )?;
    Ok((session, cookie))
}

fn over(s: &WebSession, now: i64) -> bool {
    let idle_over = s
        .idle_secs
        .is_some_and(|idle| now > s.last_seen_at.saturating_add(idle.saturating_mul(1000)));
    now >= s.expires_at || idle_over
}

/// The live session the cookie opens, if any. A read; [`touch`] records use.
pub fn find(c: &dyn Db, cookie: &str) -> StoreResult<Option<WebSession>> {
    let row = c.query_opt(
        &format!("SELECT {COLUMNS} FROM web_sessions WHERE id = ?"),
        vals![digest(cookie)],
    )?;
    let Some(session) = row.as_ref().map(session_row).transpose()? else {
        return Ok(None);
    };
    Ok((!over(&session, now_ms())).then_some(session))
}

/// Whether the session's last use should be written now.
pub fn needs_touch(s: &WebSession) -> bool {
    now_ms() - s.last_seen_at >= TOUCH_EVERY_MS
}

/// Records that the session was used now (its idle clock restarts).
pub fn touch(c: &dyn Db, id: &str) -> StoreResult<()> {
    c.exec(
        "UPDATE web_sessions SET last_seen_at = ? WHERE id = ?",
        vals![now_ms(), id],
    )?;
    Ok(())
}

/// Ends the session the cookie opens (sign-out); false when there was none.
pub fn delete(c: &dyn Db, cookie: &str) -> StoreResult<bool> {
    Ok(c.exec(
        "DELETE FROM web_sessions WHERE id = ?",
        vals![digest(cookie)],
    )? > 0)
}

/// Removes sessions past their absolute end. Idle ones are refused by
/// [`find`] and go when their absolute end passes.
fn prune(c: &dyn Db, now: i64) -> StoreResult<()> {
    c.exec("DELETE FROM web_sessions WHERE expires_at < ?", vals![now])?;
    Ok(())
}

/// The table, for both stores (integers as BIGINT are what both accept).
pub const MIGRATION: &str = "
CREATE TABLE web_sessions (
    id            TEXT PRIMARY KEY,
    scope         TEXT NOT NULL,
    subject       TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    idle_secs     BIGINT
);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
";
