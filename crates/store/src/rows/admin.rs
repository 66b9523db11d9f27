//! Directories and tokens.

use subtle::ConstantTimeEq;

use crate::db::{Db, Row, scalar};
use crate::model::{AdminKeyInfo, Deactivation, Directory, DirectoryAttrs, TokenInfo};
use crate::tokens::{hash_token, new_admin_key, new_token};
use crate::{StoreResult, vals};

use crate::now_ms;

/// The columns [`directory_row`] reads, in its order.
pub const DIRECTORY_COLUMNS: &str =
    "id, name, created_at, updated_at, organization_id, domain, provider";

pub fn create_directory(c: &dyn Db, name: &str, attrs: &DirectoryAttrs) -> StoreResult<Directory> {
    let now = now_ms();
    let d = Directory {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        created_at: now,
        updated_at: now,
        organization_id: attrs.organization_id.clone(),
        domain: attrs.domain.clone(),
        provider: attrs.provider.clone(),
    };
    c.exec(
        "INSERT INTO directories (id, name, created_at, updated_at, organization_id, domain, provider)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        vals![
            &d.id,
            &d.name,
            d.created_at,
            d.updated_at,
            d.organization_id.as_deref(),
            d.domain.as_deref(),
            d.provider.as_deref()
        ],
    )?;
    remember_organization(c, &d.id, d.organization_id.as_deref())?;
    super::outbox::emit(
        c,
        &d.id,
        crate::events::DIRECTORY_ACTIVATED,
        &crate::events::directory_data(&d),
    )?;
    Ok(d)
}

/// Notes which organization a directory belongs to in a table that outlives
/// the directory, so that events can be filtered by organization after the
/// directory is deleted (its `dsync.deleted` included).
pub fn remember_organization(c: &dyn Db, dir: &str, org: Option<&str>) -> StoreResult<()> {
    match org {
        Some(org) => c.exec(
            "INSERT INTO directory_organizations (directory_id, organization_id) VALUES (?1, ?2)
             ON CONFLICT (directory_id) DO UPDATE SET organization_id = excluded.organization_id",
            vals![dir, org],
        )?,
        None => c.exec(
            "DELETE FROM directory_organizations WHERE directory_id = ?",
            vals![dir],
        )?,
    };
    Ok(())
}

pub(crate) fn directory_row(r: &Row) -> StoreResult<Directory> {
    Ok(Directory {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        organization_id: r.get(4)?,
        domain: r.get(5)?,
        provider: r.get(6)?,
    })
}

pub fn list_directories(c: &dyn Db) -> StoreResult<Vec<Directory>> {
    c.query(
        &format!("SELECT {DIRECTORY_COLUMNS} FROM directories ORDER BY id"),
        &[],
    )?
    .iter()
    .map(directory_row)
    .collect()
}

pub fn get_directory(c: &dyn Db, id: &str) -> StoreResult<Option<Directory>> {
    c.query_opt(
        &format!("SELECT {DIRECTORY_COLUMNS} FROM directories WHERE id = ?"),
        vals![id],
    )?
    .as_ref()
    .map(directory_row)
    .transpose()
}

pub fn issue_token(c: &dyn Db, directory_id: &str) -> StoreResult<(TokenInfo, String)> {
    if get_directory(c, directory_id)?.is_none() {
        return Err(crate::StoreError::NotFound(format!(
            "no directory {directory_id}"
        )));
    }
    let token = new_token();
    let info = TokenInfo {
        id: uuid::Uuid::now_v7().to_string(),
        directory_id: directory_id.to_owned(),
        created_at: now_ms(),
        revoked_at: None,
        expires_at: None,
    };
    c.exec(
        "INSERT INTO tokens (id, directory_id, token_hash, created_at) VALUES (?, ?, ?, ?)",
        vals![
            &info.id,
            &info.directory_id,
            hash_token(&token),
            info.created_at
        ],
    )?;
    Ok((info, token))
}

pub fn list_tokens(c: &dyn Db, directory_id: &str) -> StoreResult<Vec<TokenInfo>> {
    c.query(
        "SELECT id, directory_id, created_at, revoked_at, expires_at FROM tokens WHERE directory_id = ? ORDER BY id",
        vals![directory_id],
    )?
    .iter()
    .map(token_row)
    .collect()
}

pub(crate) fn token_row(r: &Row) -> StoreResult<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        directory_id: r.get(1)?,
        created_at: r.get(2)?,
        revoked_at: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

pub fn revoke_token(c: &dyn Db, token_id: &str) -> StoreResult<bool> {
    let n = c.exec(
        "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        vals![now_ms(), token_id],
    )?;
    Ok(n > 0)
}

pub fn authenticate(c: &dyn Db, token: &str) -> StoreResult<Option<String>> {
    let digest = hash_token(token);
    let row = c.query_opt(
        "SELECT directory_id, token_hash FROM tokens
         WHERE token_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        vals![&digest, now_ms()],
    )?;
    let Some(row) = row else { return Ok(None) };
    let (dir, stored): (String, Vec<u8>) = (row.get(0)?, row.get(1)?);
    // The index lookup already matched; the constant-time check keeps the
    // final comparison free of timing differences whatever the index does.
    Ok(bool::from(stored.ct_eq(&digest)).then_some(dir))
}

pub fn create_admin_key(c: &dyn Db, name: &str) -> StoreResult<(AdminKeyInfo, String)> {
    let key = new_admin_key();
    let info = AdminKeyInfo {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        created_at: now_ms(),
    };
    c.exec(
        "INSERT INTO admin_keys (id, name, key_hash, created_at) VALUES (?, ?, ?, ?)",
        vals![&info.id, &info.name, hash_token(&key), info.created_at],
    )?;
    Ok((info, key))
}

pub fn authenticate_admin(c: &dyn Db, key: &str) -> StoreResult<Option<String>> {
    let digest = hash_token(key);
    let row = c.query_opt(
        "SELECT id, key_hash FROM admin_keys WHERE key_hash = ? AND revoked_at IS NULL",
        vals![&digest],
    )?;
    let Some(row) = row else { return Ok(None) };
    let (id, stored): (String, Vec<u8>) = (row.get(0)?, row.get(1)?);
    Ok(bool::from(stored.ct_eq(&digest)).then_some(id))
}

pub fn deactivation(c: &dyn Db, id: &str) -> StoreResult<Option<Deactivation>> {
    let mode: Option<String> = scalar(
        c,
        "SELECT deactivation FROM directories WHERE id = ?",
        vals![id],
    )?;
    Ok(mode.map(|m| Deactivation::parse(&m).unwrap_or(Deactivation::Update)))
}

pub fn set_deactivation(c: &dyn Db, id: &str, mode: Deactivation) -> StoreResult<bool> {
    Ok(c.exec(
        "UPDATE directories SET deactivation = ? WHERE id = ?",
        vals![mode.as_str(), id],
    )? > 0)
}
