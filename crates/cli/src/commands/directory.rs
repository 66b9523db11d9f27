//! `roster directory`: directories, one per customer identity provider.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use roster_store::DirectoryStore;
use serde_json::json;

#[derive(Subcommand)]
pub enum DirectoryCommand {
    /// Create a directory and print its SCIM base path and a new bearer token.
    Create {
        name: String,
        /// The app's id for the customer that owns the directory.
        #[arg(long, value_name = "ORG_ID")]
        organization: Option<String>,
        /// The customer's domain.
        #[arg(long, value_name = "DOMAIN")]
        domain: Option<String>,
        /// The provider that feeds it, e.g. "okta scim v2.0" (detected from its requests when left out).
        #[arg(long = "type", value_name = "TYPE", value_parser = roster_store::PROVIDER_TYPES.to_vec())]
        provider: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List directories.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Rename a directory.
    Rename { id: String, name: String },
    /// Choose how deactivated users reach the app: "update" (dsync.user.updated,
    /// state inactive) or "delete" (dsync.user.deleted; reactivation is dsync.user.created).
    SetDeactivation {
        id: String,
        #[arg(value_parser = ["update", "delete"])]
        mode: String,
    },
    /// Fill `custom_attributes` of user events and of the users API from
    /// SCIM attributes: `--map cost_center=urn:…:enterprise:2.0:User:costCenter`
    /// (repeat it), or `--file mapping.json` (`{"key": "path", …}`), or
    /// `--reset` for the default (the Enterprise User attributes). Events
    /// already written keep their data.
    SetCustomAttributes {
        id: String,
        /// One mapping, KEY=PATH (an attribute path of the User schema or an extension).
        #[arg(long = "map", value_name = "KEY=PATH")]
        map: Vec<String>,
        /// A JSON object of KEY to PATH.
        #[arg(long, conflicts_with_all = ["map", "reset"])]
        file: Option<PathBuf>,
        /// Remove the mapping: custom_attributes holds the Enterprise User attributes again.
        #[arg(long, conflicts_with = "map")]
        reset: bool,
    },
    /// Delete a directory with all its users, groups and tokens (its events stay).
    Delete {
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// The mapping `roster directory set-custom-attributes` was given; `None` for `--reset`.
fn custom_mapping(
    reg: &roster_scim::schema::SchemaRegistry,
    map: &[String],
    file: Option<&std::path::Path>,
    reset: bool,
) -> Result<Option<roster_store::events::CustomAttributes>> {
    let mapping = if reset {
        return Ok(None);
    } else if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str::<serde_json::Value>(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?
    } else if !map.is_empty() {
        let mut obj = serde_json::Map::new();
        for m in map {
            let (key, path) = m
                .split_once('=')
                .with_context(|| format!("--map {m:?}: write KEY=PATH, e.g. department=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"))?;
            anyhow::ensure!(
                obj.insert(key.trim().to_owned(), json!(path.trim()))
                    .is_none(),
                "--map: the key {key:?} is given twice"
            );
        }
        serde_json::Value::Object(obj)
    } else {
        anyhow::bail!("give --map KEY=PATH (repeatable), --file mapping.json, or --reset");
    };
    let parsed = roster_store::events::CustomAttributes::parse(reg, &mapping)
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    Ok(Some(parsed))
}

pub async fn run(
    store: &dyn DirectoryStore,
    reg: &roster_scim::schema::SchemaRegistry,
    cmd: DirectoryCommand,
) -> Result<()> {
    match cmd {
        DirectoryCommand::Create {
            name,
            organization,
            domain,
            provider,
            json,
        } => {
            let nonempty =
                |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
            let attrs = roster_store::DirectoryAttrs {
                organization_id: nonempty(organization),
                domain: nonempty(domain),
                provider,
            };
            let (dir, _, token) = store.create_directory_with_token(&name, attrs).await?;
            let path = format!("/scim/v2/{}", dir.id);
            if json {
                println!(
                    "{}",
                    json!({"id": dir.id, "name": dir.name, "organization_id": dir.organization_id,
                           "domain": dir.domain, "type": dir.provider.as_deref().unwrap_or(roster_store::GENERIC_PROVIDER),
                           "scim_base_path": path, "token": token})
                );
            } else {
                println!("Created directory {:?}", dir.name);
                println!("  id:             {}", dir.id);
                if let Some(org) = &dir.organization_id {
                    println!("  organization:   {org}");
                }
                println!("  SCIM base path: {path}");
                println!("  bearer token:   {token}  (shown once)");
            }
        }
        DirectoryCommand::List { json } => {
            let dirs = store.list_directories().await?;
            if json {
                let items: Vec<_> = dirs
                    .iter()
                    .map(|d| json!({"id": d.id, "name": d.name, "organization_id": d.organization_id, "domain": d.domain, "type": d.provider.as_deref().unwrap_or(roster_store::GENERIC_PROVIDER), "scim_base_path": format!("/scim/v2/{}", d.id), "created_at": d.created_at}))
                    .collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                for d in dirs {
                    println!("{}  {}  /scim/v2/{}", d.id, d.name, d.id);
                }
            }
        }
        DirectoryCommand::Rename { id, name } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "the new name is empty");
            match store.rename_directory(&id, name).await? {
                Some(d) => println!("renamed {} to {:?}", d.id, d.name),
                None => anyhow::bail!("no directory {id} (see `roster directory list`)"),
            }
        }
        DirectoryCommand::SetDeactivation { id, mode } => {
            let mode = roster_store::Deactivation::parse(&mode)
                .with_context(|| format!("unknown mode {mode:?}; use update or delete"))?;
            if !store.set_deactivation(&id, mode).await? {
                anyhow::bail!("no directory {id} (see `roster directory list`)");
            }
            println!(
                "directory {id}: deactivation is reported as {}",
                mode.as_str()
            );
        }
        DirectoryCommand::SetCustomAttributes {
            id,
            map,
            file,
            reset,
        } => {
            let mapping = custom_mapping(reg, &map, file.as_deref(), reset)?;
            let change = roster_store::SettingsChange {
                custom_attributes: Some(mapping),
                ..Default::default()
            };
            let Some(settings) = store.update_settings(&id, change).await? else {
                anyhow::bail!("no directory {id} (see `roster directory list`)");
            };
            match settings.custom_attributes {
                Some(m) => println!("directory {id}: custom_attributes = {}", m.to_json()),
                None => println!(
                    "directory {id}: custom_attributes holds the Enterprise User attributes (no mapping)"
                ),
            }
        }
        DirectoryCommand::Delete { id, yes } => {
            let Some(d) = store.get_directory(&id).await? else {
                anyhow::bail!("no directory {id} (see `roster directory list`)");
            };
            if !yes
                && !confirm(&format!(
                    "Delete directory {:?} ({}) with all its users, groups and tokens? [y/N] ",
                    d.name, d.id
                ))?
            {
                anyhow::bail!("not deleted");
            }
            if store.delete_directory(&id).await? {
                println!("deleted directory {id}");
            } else {
                anyhow::bail!("no directory {id} (deleted meanwhile?)");
            }
        }
    }
    Ok(())
}

/// Asks on the terminal; without one there is nobody to ask, so --yes is required.
fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("refusing to delete without confirmation; pass --yes");
    }
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
