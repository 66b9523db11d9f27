//! Admin API keys: creating, listing, revoking, rotating and proving them.
//! Only digests are stored; every change is audited in its transaction.

use serde_json::json;
use subtle::ConstantTimeEq;

use super::audit::{self, Target};
use crate::db::{Db, Row};
use crate::model::{Actor, AdminKeyInfo, AdminKeyScope};
use crate::tokens::{hash_token, new_admin_key};
use crate::{StoreError, StoreResult, now_ms, vals};

const COLUMNS: &str = "id, name, created_at, revoked_at, rotated_at, read_only, directories";

fn key_row(r: &Row) -> StoreResult<AdminKeyInfo> {
    let directories: Option<String> = r.get(6)?;
    let directories = directories
        .map(|d| {
            serde_json::from_str::<Vec<String>>(&d)
                .map_err(|e| StoreError::internal(format!("admin key directories {d:?}: {e}")))
        })
        .transpose()?;
    Ok(AdminKeyInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        revoked_at: r.get(3)?,
        rotated_at: r.get(4)?,
        scope: AdminKeyScope {
            read_only: r.get::<i64>(5)? != 0,
            directories,
        },
    })
}

/// What the audit log says about a key's scope.
fn scope_details(scope: &AdminKeyScope) -> serde_json::Value {
    json!({"access": scope.access(), "directories": scope.directories})
}

/// Mints a key; a scope limited to directories must name existing ones.
pub fn create(
    c: &dyn Db,
    actor: &Actor,
    name: &str,
    scope: &AdminKeyScope,
) -> StoreResult<(AdminKeyInfo, String)> {
    if let Some(dirs) = &scope.directories {
        if dirs.is_empty() {
            return Err(StoreError::Invalid(
                "a key limited to directories needs at least one directory".into(),
            ));
        }
        for d in dirs {
            if super::admin::get_directory(c, d)?.is_none() {
                return Err(StoreError::NotFound(format!("no directory {d}")));
            }
        }
    }
    let key = new_admin_key();
    let info = AdminKeyInfo {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        created_at: now_ms(),
        revoked_at: None,
        rotated_at: None,
        scope: scope.clone(),
    };
    let directories = scope
        .directories
        .as_ref()
        .map(|d| serde_json::Value::from(d.clone()).to_string());
    c.exec(
        "INSERT INTO admin_keys (id, name, key_hash, created_at, read_only, directories)
         VALUES (?, ?, ?, ?, ?, ?)",
        vals![
            &info.id,
            &info.name,
            hash_token(&key),
            info.created_at,
            i64::from(scope.read_only),
            directories
        ],
    )?;
    let mut details = scope_details(scope);
    details["name"] = json!(name);
    audit::record(
        c,
        actor,
        "admin_key.created",
        Target::admin_key(&info.id),
        &details,
    )?;
    Ok((info, key))
}

/// Every key, revoked ones included, by id.
pub fn list(c: &dyn Db) -> StoreResult<Vec<AdminKeyInfo>> {
    c.query(
        &format!("SELECT {COLUMNS} FROM admin_keys ORDER BY id"),
        &[],
    )?
    .iter()
    .map(key_row)
    .collect()
}

/// The key with this id while it is live.
pub fn live(c: &dyn Db, id: &str) -> StoreResult<Option<AdminKeyInfo>> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM admin_keys WHERE id = ? AND revoked_at IS NULL"),
        vals![id],
    )?
    .as_ref()
    .map(key_row)
    .transpose()
}

/// Revokes a live key now; `None` when there is no such live key.
pub fn revoke(c: &dyn Db, actor: &Actor, id: &str) -> StoreResult<Option<AdminKeyInfo>> {
    let Some(mut info) = live(c, id)? else {
        return Ok(None);
    };
    let now = now_ms();
    c.exec(
        "UPDATE admin_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        vals![now, id],
    )?;
    info.revoked_at = Some(now);
    audit::record(
        c,
        actor,
        "admin_key.revoked",
        Target::admin_key(id),
        &json!({"name": info.name}),
    )?;
    Ok(Some(info))
}

/// Gives a live key a new secret; the old secret stops working at once.
/// `None` when there is no such live key.
pub fn rotate(c: &dyn Db, actor: &Actor, id: &str) -> StoreResult<Option<(AdminKeyInfo, String)>> {
    let Some(mut info) = live(c, id)? else {
        return Ok(None);
    };
    let key = new_admin_key();
    let now = now_ms();
    c.exec(
        "UPDATE admin_keys SET key_hash = ?, rotated_at = ? WHERE id = ?",
        vals![hash_token(&key), now, id],
    )?;
    info.rotated_at = Some(now);
    audit::record(
        c,
        actor,
        "admin_key.rotated",
        Target::admin_key(id),
        &json!({"name": info.name}),
    )?;
    Ok(Some((info, key)))
}

/// The live key `key` is, with its scope.
pub fn authenticate(c: &dyn Db, key: &str) -> StoreResult<Option<AdminKeyInfo>> {
    let digest = hash_token(key);
    let row = c.query_opt(
        &format!(
            "SELECT {COLUMNS}, key_hash FROM admin_keys WHERE key_hash = ? AND revoked_at IS NULL"
        ),
        vals![&digest],
    )?;
    let Some(row) = row else { return Ok(None) };
    let stored: Vec<u8> = row.get(7)?;
    // The index lookup already matched; the constant-time check keeps the
    // final comparison free of timing differences whatever the index does.
    if bool::from(stored.ct_eq(&digest)) {
        key_row(&row).map(Some)
    } else {
        Ok(None)
    }
}
