//! Directories and tokens.

use rusqlite::{Connection, OptionalExtension, params};
use subtle::ConstantTimeEq;

use crate::StoreResult;
use crate::model::{AdminKeyInfo, Directory, TokenInfo};
use crate::tokens::{hash_token, new_admin_key, new_token};

pub use crate::now_ms;

pub fn create_directory(c: &Connection, name: &str) -> StoreResult<Directory> {
    let d = Directory {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        created_at: now_ms(),
    };
    c.prepare_cached("INSERT INTO directories (id, name, created_at) VALUES (?, ?, ?)")?
        .execute(params![d.id, d.name, d.created_at])?;
    super::outbox::emit(
        c,
        &d.id,
        crate::events::DIRECTORY_ACTIVATED,
        &crate::events::directory_data(&d),
    )?;
    Ok(d)
}

fn directory_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Directory> {
    Ok(Directory {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
    })
}

pub fn list_directories(c: &Connection) -> StoreResult<Vec<Directory>> {
    let mut stmt = c.prepare_cached("SELECT id, name, created_at FROM directories ORDER BY id")?;
    let rows = stmt.query_map([], directory_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get_directory(c: &Connection, id: &str) -> StoreResult<Option<Directory>> {
    Ok(
        c.prepare_cached("SELECT id, name, created_at FROM directories WHERE id = ?")?
            .query_row([id], directory_row)
            .optional()?,
    )
}

pub fn issue_token(c: &Connection, directory_id: &str) -> StoreResult<(TokenInfo, String)> {
    if get_directory(c, directory_id)?.is_none() {
        return Err(
            roster_scim::ScimError::not_found(format!("no directory {directory_id}")).into(),
        );
    }
    let token = new_token();
    let info = TokenInfo {
        id: uuid::Uuid::now_v7().to_string(),
        directory_id: directory_id.to_owned(),
        created_at: now_ms(),
        revoked_at: None,
        expires_at: None,
    };
    c.prepare_cached(
        "INSERT INTO tokens (id, directory_id, token_hash, created_at) VALUES (?, ?, ?, ?)",
    )?
    .execute(params![
        info.id,
        info.directory_id,
        hash_token(&token),
        info.created_at
    ])?;
    Ok((info, token))
}

pub fn list_tokens(c: &Connection, directory_id: &str) -> StoreResult<Vec<TokenInfo>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, directory_id, created_at, revoked_at, expires_at FROM tokens WHERE directory_id = ? ORDER BY id",
    )?;
    let rows = stmt.query_map([directory_id], token_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        directory_id: r.get(1)?,
        created_at: r.get(2)?,
        revoked_at: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

pub fn revoke_token(c: &Connection, token_id: &str) -> StoreResult<bool> {
    let n = c
        .prepare_cached("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")?
        .execute(params![now_ms(), token_id])?;
    Ok(n > 0)
}

pub fn authenticate(c: &Connection, token: &str) -> StoreResult<Option<String>> {
    let digest = hash_token(token);
    let row: Option<(String, Vec<u8>)> = c
        .prepare_cached(
            "SELECT directory_id, token_hash FROM tokens
             WHERE token_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        )?
        .query_row(params![&digest, now_ms()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    // The index lookup already matched; the constant-time check keeps the
    // final comparison free of timing differences whatever the index does.
    Ok(row.and_then(|(dir, stored)| bool::from(stored.ct_eq(&digest)).then_some(dir)))
}

pub fn create_admin_key(c: &Connection, name: &str) -> StoreResult<(AdminKeyInfo, String)> {
    let key = new_admin_key();
    let info = AdminKeyInfo {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        created_at: now_ms(),
    };
    c.prepare_cached(
        "INSERT INTO admin_keys (id, name, key_hash, created_at) VALUES (?, ?, ?, ?)",
    )?
    .execute(params![
        info.id,
        info.name,
        hash_token(&key),
        info.created_at
    ])?;
    Ok((info, key))
}

pub fn authenticate_admin(c: &Connection, key: &str) -> StoreResult<Option<String>> {
    let digest = hash_token(key);
    let row: Option<(String, Vec<u8>)> = c
        .prepare_cached(
            "SELECT id, key_hash FROM admin_keys WHERE key_hash = ? AND revoked_at IS NULL",
        )?
        .query_row([&digest], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(id, stored)| bool::from(stored.ct_eq(&digest)).then_some(id)))
}

pub fn deactivation(c: &Connection, id: &str) -> StoreResult<Option<crate::model::Deactivation>> {
    let mode: Option<String> = c
        .prepare_cached("SELECT deactivation FROM directories WHERE id = ?")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(mode.map(|m| {
        crate::model::Deactivation::parse(&m).unwrap_or(crate::model::Deactivation::Update)
    }))
}

pub fn set_deactivation(
    c: &Connection,
    id: &str,
    mode: crate::model::Deactivation,
) -> StoreResult<bool> {
    Ok(
        c.prepare_cached("UPDATE directories SET deactivation = ? WHERE id = ?")?
            .execute(params![mode.as_str(), id])?
            > 0,
    )
}
