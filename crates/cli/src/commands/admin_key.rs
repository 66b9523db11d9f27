//! `roster admin-key`: keys for the admin API under `/api/v1`, with their
//! lifecycle (create, list, rotate, revoke) and scopes (read-only, limited
//! to directories). Changes made here are audited with the actor `cli`.

use anyhow::Result;
use clap::Subcommand;
use roster_store::{Actor, AdminKeyInfo, AdminKeyScope, StoreError, TokenStore};

#[derive(Subcommand)]
pub enum AdminKeyCommand {
    /// Create an admin API key (shown once).
    Create {
        name: String,
        /// The key only reads (events, users, groups, directories).
        #[arg(long)]
        read_only: bool,
        /// Limit the key to this directory (repeatable); it sees no other.
        #[arg(long = "directory", value_name = "ID")]
        directories: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List admin keys (ids, names, scopes and dates, never the keys).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an admin key by its id: it stops working at once.
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Give an admin key a new secret (shown once); the old one stops working at once.
    Rotate {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// `full`, `read_only`, and the directories when limited.
fn scope_text(k: &AdminKeyInfo) -> String {
    match &k.scope.directories {
        None => k.scope.access().to_owned(),
        Some(dirs) => format!("{} in {}", k.scope.access(), dirs.join(",")),
    }
}

pub async fn run(store: &dyn TokenStore, cmd: AdminKeyCommand) -> Result<()> {
    match cmd {
        AdminKeyCommand::Create {
            name,
            read_only,
            directories,
            json,
        } => {
            anyhow::ensure!(!name.trim().is_empty(), "the key needs a name");
            let mut directories = directories;
            directories.sort();
            directories.dedup();
            let scope = AdminKeyScope {
                read_only,
                directories: (!directories.is_empty()).then_some(directories),
            };
            let (info, key) = store
                .create_admin_key(&Actor::Cli, name.trim(), &scope)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(m) => anyhow::anyhow!("{m} (see `roster directory list`)"),
                    other => other.into(),
                })?;
            if json {
                let mut out = info.to_json();
                out["key"] = key.into();
                println!("{out}");
            } else {
                println!(
                    "admin key id: {} ({})\nkey: {key}  (shown once; send it as Authorization: Bearer)",
                    info.id,
                    scope_text(&info)
                );
            }
        }
        AdminKeyCommand::List { json } => {
            let keys = store.list_admin_keys().await?;
            if json {
                let items: Vec<_> = keys.iter().map(AdminKeyInfo::to_json).collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                for k in keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "live"
                    };
                    println!("{}  {state}  {}  {}", k.id, scope_text(&k), k.name);
                }
            }
        }
        AdminKeyCommand::Revoke { id, json } => {
            let Some(info) = store.revoke_admin_key(&Actor::Cli, &id).await? else {
                anyhow::bail!("no live admin key {id} (see `roster admin-key list`)");
            };
            if json {
                println!("{}", info.to_json());
            } else {
                println!("revoked {id}");
            }
        }
        AdminKeyCommand::Rotate { id, json } => {
            let Some((info, key)) = store.rotate_admin_key(&Actor::Cli, &id).await? else {
                anyhow::bail!("no live admin key {id} (see `roster admin-key list`)");
            };
            if json {
                let mut out = info.to_json();
                out["key"] = key.into();
                println!("{out}");
            } else {
                println!(
                    "admin key id: {id}\nkey: {key}  (shown once; the old key no longer works)"
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_they_were_given() {
        let mut k = AdminKeyInfo {
            id: "k".into(),
            name: "n".into(),
            created_at: 0,
            revoked_at: None,
            rotated_at: None,
            scope: AdminKeyScope::default(),
        };
        assert_eq!(scope_text(&k), "full");
        k.scope.read_only = true;
        k.scope.directories = Some(vec!["a".into(), "b".into()]);
        assert_eq!(scope_text(&k), "read_only in a,b");
    }
}
