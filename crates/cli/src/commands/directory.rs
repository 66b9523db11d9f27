//! `roster directory`: directories, one per customer identity provider.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use roster_store::Actor;
use serde_json::json;

#[derive(Subcommand)]
pub enum DirectoryCommand {
    /// Create a directory and print its SCIM base path and a new bearer token;
    /// with `--provider google-workspace`, a directory Roster polls from
    /// Google's Directory API instead (no token).
    Create {
        name: String,
        /// The app's id for the customer that owns the directory.
        #[arg(long, value_name = "ORG_ID")]
        organization: Option<String>,
        /// The provider type, e.g. "okta scim v2.0" (detected from its requests when left out).
        #[arg(long = "type", value_name = "TYPE", value_parser = roster_store::PROVIDER_TYPES.to_vec())]
        provider_type: Option<String>,
        /// "scim" (the identity provider pushes SCIM) or "google-workspace".
        #[arg(long, default_value = "scim", value_parser = ["scim", "google-workspace"])]
        provider: String,
        /// The Google service-account key file (JSON), stored encrypted and never shown again.
        #[arg(
            long,
            value_name = "FILE",
            required_if_eq("provider", "google-workspace")
        )]
        credentials: Option<PathBuf>,
        /// The Google Workspace administrator the service account acts as.
        #[arg(
            long,
            value_name = "ADMIN",
            required_if_eq("provider", "google-workspace")
        )]
        admin_email: Option<String>,
        /// The Google customer id, or my_customer for the admin's own account.
        #[arg(long, default_value = "my_customer")]
        customer: String,
        /// The customer's domain; for a Google Workspace directory, only the
        /// users and groups of this domain.
        #[arg(long, value_name = "DOMAIN")]
        domain: Option<String>,
        /// How often a Google Workspace directory is polled, in seconds
        /// (60 to 86400) [default: 600].
        #[arg(long, value_name = "SECS")]
        poll_interval: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Poll a google-workspace directory now (the server picks it up within a second).
    Sync { id: String },
    /// List directories.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Rename a directory.
    Rename { id: String, name: String },
    /// Set how often a google-workspace directory is polled, in seconds (60 to 86400).
    SetPollInterval { id: String, secs: i64 },
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
    store: &dyn roster_store::Store,
    reg: &roster_scim::schema::SchemaRegistry,
    cmd: DirectoryCommand,
) -> Result<()> {
    match cmd {
        DirectoryCommand::Create {
            name,
            provider,
            credentials,
            admin_email,
            customer,
            domain,
            poll_interval,
            organization,
            provider_type,
            json,
        } if provider == roster_store::google::GOOGLE_WORKSPACE => {
            anyhow::ensure!(
                organization.is_none() && provider_type.is_none(),
                "--organization and --type are for SCIM directories"
            );
            let path = credentials.context("--credentials FILE is required")?;
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let new = roster_server::google::new_directory(
                &name,
                &text,
                admin_email.as_deref().unwrap_or_default(),
                &customer,
                domain.as_deref(),
                poll_interval,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let (dir, source) = store.create_google_directory(&Actor::Cli, new).await?;
            if json {
                println!(
                    "{}",
                    json!({"id": dir.id, "name": dir.name, "provider": roster_store::google::GOOGLE_WORKSPACE, "google": roster_server::google::source_json(&source)})
                );
            } else {
                println!("Created Google Workspace directory {:?}", dir.name);
                println!("  id:          {}", dir.id);
                println!("  admin email: {}", source.admin_email);
                println!("  customer:    {}", source.customer);
                println!(
                    "  polled every {} s by a running `roster serve`; `roster directory sync {}` polls now",
                    source.interval_secs, dir.id
                );
            }
        }
        DirectoryCommand::Create {
            name,
            credentials,
            admin_email,
            domain,
            poll_interval,
            organization,
            provider_type,
            json,
            ..
        } => {
            anyhow::ensure!(
                credentials.is_none() && admin_email.is_none() && poll_interval.is_none(),
                "--credentials, --admin-email and --poll-interval are for --provider google-workspace"
            );
            let nonempty =
                |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
            let attrs = roster_store::DirectoryAttrs {
                organization_id: nonempty(organization),
                domain: nonempty(domain),
                provider: provider_type,
            };
            let (dir, _, token) = store
                .create_directory_with_token(&Actor::Cli, &name, attrs)
                .await?;
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
        DirectoryCommand::Sync { id } => {
            if store.request_google_sync(&id).await? {
                println!(
                    "directory {id}: sync requested; a running `roster serve` polls it within a second"
                );
            } else if store.get_directory(&id).await?.is_some() {
                anyhow::bail!(
                    "directory {id} receives SCIM; only google-workspace directories are synced"
                );
            } else {
                anyhow::bail!("no directory {id} (see `roster directory list`)");
            }
        }
        DirectoryCommand::List { json } => {
            let dirs = store.list_directories().await?;
            let sources: std::collections::HashMap<String, roster_store::google::GoogleSource> =
                store
                    .google_sources()
                    .await?
                    .into_iter()
                    .map(|g| (g.directory_id.clone(), g))
                    .collect();
            if json {
                let items: Vec<_> = dirs
                    .iter()
                    .map(|d| {
                        let mut item = json!({"id": d.id, "name": d.name, "organization_id": d.organization_id, "domain": d.domain, "type": d.provider.as_deref().unwrap_or(roster_store::GENERIC_PROVIDER), "scim_base_path": format!("/scim/v2/{}", d.id), "created_at": d.created_at, "provider": roster_store::google::SCIM});
                        if let Some(src) = sources.get(&d.id) {
                            item["provider"] = json!(roster_store::google::GOOGLE_WORKSPACE);
                            item["google"] = roster_server::google::source_json(src);
                        }
                        item
                    })
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
            match store.rename_directory(&Actor::Cli, &id, name).await? {
                Some(d) => println!("renamed {} to {:?}", d.id, d.name),
                None => anyhow::bail!("no directory {id} (see `roster directory list`)"),
            }
        }
        DirectoryCommand::SetPollInterval { id, secs } => {
            let secs = roster_store::google::check_interval(secs).map_err(anyhow::Error::msg)?;
            let change = roster_store::SettingsChange {
                poll_interval_secs: Some(secs),
                ..Default::default()
            };
            if store
                .update_settings(&Actor::Cli, &id, change)
                .await?
                .is_none()
            {
                anyhow::bail!("no directory {id} (see `roster directory list`)");
            }
            println!("directory {id}: polled every {secs} s");
        }
        DirectoryCommand::SetDeactivation { id, mode } => {
            let mode = roster_store::Deactivation::parse(&mode)
                .with_context(|| format!("unknown mode {mode:?}; use update or delete"))?;
            if !store.set_deactivation(&Actor::Cli, &id, mode).await? {
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
            let Some(settings) = store.update_settings(&Actor::Cli, &id, change).await? else {
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
            if store.delete_directory(&Actor::Cli, &id).await? {
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
