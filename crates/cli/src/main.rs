//! `roster`: the directory-sync server and its administration commands.

mod config;
mod memory;
mod sync;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use roster_server::{ServerConfig, build_registry};
use roster_store::secrets::SecretKey;
use roster_store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};
use serde_json::json;

use crate::config::{Database, FileConfig};

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "Roster: a SCIM 2.0 directory-sync server"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// A TOML file with settings (flags and ROSTER_* variables override it).
    #[arg(long, global = true, env = "ROSTER_CONFIG")]
    config: Option<PathBuf>,
    /// Where the data lives: sqlite://PATH [default: sqlite://roster.db], or
    /// postgres://user[:password]@host[:port]/database for several instances.
    #[arg(long, global = true, env = "ROSTER_DATABASE_URL")]
    database: Option<String>,
    /// PostgreSQL connections this process keeps open [default: 16].
    #[arg(long, global = true, env = "ROSTER_DATABASE_POOL_SIZE")]
    database_pool_size: Option<u32>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SCIM server.
    Serve(ServeArgs),
    /// Manage directories (one per customer identity provider).
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Manage a directory's SCIM bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage admin API keys (for /api/v1).
    #[command(subcommand, name = "admin-key")]
    AdminKey(AdminKeyCommand),
    /// Read the directory-sync event stream.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Manage webhook endpoints.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Push users and groups from a SCIM service or an HR export into a SCIM service.
    Sync(Box<sync::SyncArgs>),
    /// Manage the key that encrypts webhook secrets at rest (secret_key).
    #[command(subcommand, name = "secret-key")]
    SecretKey(SecretKeyCommand),
}

#[derive(Subcommand)]
enum SecretKeyCommand {
    /// Re-encrypt every stored webhook secret with secret_key, in one
    /// transaction; secrets under an old key need it in previous_secret_keys
    /// (or ROSTER_PREVIOUS_SECRET_KEYS). Prints how many changed; running it
    /// again changes none.
    Rotate {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Add an endpoint; prints its id and signing secret (shown once).
    Add {
        url: String,
        /// Event types to deliver, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// Only events of this directory (default: all directories).
        #[arg(long)]
        directory: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List endpoints.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint.
    Remove { id: String },
}

#[derive(Subcommand)]
enum AdminKeyCommand {
    /// Create an admin API key (shown once).
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print events, one JSON object per line, oldest first.
    Tail {
        /// Start after this event id (default: from the beginning).
        #[arg(long)]
        after: Option<String>,
        /// Keep waiting for new events.
        #[arg(long)]
        follow: bool,
        /// Only events of this directory.
        #[arg(long)]
        directory: Option<String>,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ROSTER_LISTEN")]
    listen: Option<SocketAddr>,
    /// The URL clients reach Roster at, when it differs from http://HOST (behind a proxy).
    #[arg(long, env = "ROSTER_PUBLIC_URL")]
    public_url: Option<String>,
    /// Answer group PATCH with 204 No Content instead of the group (saves echoing large groups).
    #[arg(long, env = "ROSTER_GROUP_PATCH_NO_CONTENT")]
    group_patch_no_content: bool,
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Create a directory and print its SCIM base path and a new bearer token.
    Create {
        name: String,
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

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue another bearer token for a directory (the token is shown once).
    Issue {
        directory: String,
        #[arg(long)]
        json: bool,
    },
    /// List a directory's tokens (ids and dates, never the tokens themselves).
    List {
        directory: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id.
    Revoke { token_id: String },
    /// Issue a successor to a token; the old one keeps working for the overlap window.
    Rotate {
        token_id: String,
        /// Seconds the old token keeps working.
        #[arg(long, default_value_t = 3600)]
        overlap: i64,
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROSTER_LOG")
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Escape codes belong on a terminal, not in journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    memory::disable_transparent_huge_pages();
    memory::route_sqlite_to_mimalloc();
    roster_server::install_crypto_provider();
    let mut cli = Cli::parse();
    // A sync client has no database of its own: dispatch before opening one.
    cli.command = match cli.command {
        Command::Sync(args) => {
            let code = sync::run(*args).await?;
            std::process::exit(code);
        }
        other => other,
    };
    let file = FileConfig::load(cli.global.config.as_deref())?;
    let url = cli
        .global
        .database
        .clone()
        .or_else(|| file.database.clone())
        .unwrap_or_else(|| "sqlite://roster.db".into());
    let mut server_cfg = file.server_config();
    if let Command::Serve(args) = &cli.command {
        apply_serve_args(&mut server_cfg, args);
    }
    let reg = Arc::new(build_registry(&server_cfg)?);
    let secret_key = secret_key(&file)?;
    let store: Arc<dyn Store> = match Database::parse(&url)? {
        Database::Sqlite(path) => {
            let mut opts = SqliteOptions::new(&path);
            opts.list.cursor_timeout_secs = server_cfg.cursor_timeout_secs;
            opts.secret_key = secret_key.clone();
            Arc::new(
                SqliteStore::open(opts, reg.clone()).with_context(|| format!("opening {url}"))?,
            )
        }
        Database::Postgres(pg) => {
            let mut opts = PgOptions::new(pg);
            opts.list.cursor_timeout_secs = server_cfg.cursor_timeout_secs;
            opts.secret_key = secret_key.clone();
            if let Some(n) = cli.global.database_pool_size.or(file.database_pool_size) {
                opts.pool_size = n;
            }
            Arc::new(
                PgStore::connect(opts, reg.clone())
                    .await
                    .context("opening the PostgreSQL database")?,
            )
        }
    };
    match cli.command {
        Command::Serve(_) => serve(store, reg, server_cfg).await,
        Command::Directory(cmd) => directory(store.as_ref(), &reg, cmd).await,
        Command::Token(cmd) => token(store.as_ref(), cmd).await,
        Command::AdminKey(cmd) => admin_key(store.as_ref(), cmd).await,
        Command::Events(cmd) => events(store.as_ref(), cmd).await,
        Command::Webhook(cmd) => webhook(store.as_ref(), cmd).await,
        Command::SecretKey(cmd) => {
            secret_key_command(store.as_ref(), secret_key.as_ref(), cmd).await
        }
        Command::Sync(_) => Ok(()),
    }
}

/// `secret_key` with its `previous_secret_keys`; the variables
/// (`ROSTER_SECRET_KEY`, `ROSTER_PREVIOUS_SECRET_KEYS`, comma-separated) win
/// over the file, as for every other setting.
fn secret_key(file: &FileConfig) -> Result<Option<SecretKey>> {
    let current = std::env::var("ROSTER_SECRET_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .or_else(|| file.secret_key.clone());
    let previous: Vec<String> = match std::env::var("ROSTER_PREVIOUS_SECRET_KEYS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => file.previous_secret_keys.clone(),
    };
    let Some(current) = current else {
        // Previous keys only ever decrypt: without a current key, secrets
        // would be read with the old key and stored back in plaintext.
        anyhow::ensure!(
            previous.is_empty(),
            "previous_secret_keys is set but secret_key is not; set secret_key to the new key"
        );
        return Ok(None);
    };
    let previous = previous
        .iter()
        .enumerate()
        .map(|(i, k)| {
            // Never echo the key text: only its position.
            SecretKey::from_base64(k).map_err(|e| {
                anyhow::anyhow!(
                    "previous_secret_keys[{i}]: {}",
                    e.to_string().trim_start_matches("secret_key ")
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let key = SecretKey::from_base64(&current).map_err(anyhow::Error::msg)?;
    Ok(Some(key.with_previous(previous)))
}

async fn secret_key_command(
    store: &dyn Store,
    key: Option<&SecretKey>,
    cmd: SecretKeyCommand,
) -> Result<()> {
    match cmd {
        SecretKeyCommand::Rotate { json } => {
            if key.is_none() {
                anyhow::bail!(
                    "no secret_key is configured: set secret_key (or ROSTER_SECRET_KEY) to the key to encrypt with, and previous_secret_keys (or ROSTER_PREVIOUS_SECRET_KEYS) to the old ones"
                );
            }
            let changed = store
                .check_webhook_secrets()
                .await
                .context("nothing was changed")?;
            if json {
                println!("{}", json!({"reencrypted": changed}));
            } else {
                println!("re-encrypted {changed} webhook secret(s) with the current secret_key");
            }
        }
    }
    Ok(())
}

fn apply_serve_args(cfg: &mut ServerConfig, args: &ServeArgs) {
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(u) = &args.public_url {
        cfg.public_url = Some(u.clone());
    }
    if args.group_patch_no_content {
        cfg.group_patch_no_content = true;
    }
}

async fn serve(
    store: Arc<dyn Store>,
    reg: Arc<roster_scim::schema::SchemaRegistry>,
    cfg: ServerConfig,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server using it? try --listen)",
                cfg.listen
            )
        })?;
    let addr = listener.local_addr()?;
    // A wrong or missing secret_key stops the start, rather than every delivery.
    let sealed = store
        .check_webhook_secrets()
        .await
        .context("cannot read the webhook secrets")?;
    if sealed > 0 {
        tracing::info!(
            endpoints = sealed,
            "encrypted webhook secrets stored in plaintext or under a previous key with the current secret_key"
        );
    }
    let public = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    if let Some((dir, _, token)) = store.create_first_directory("default").await? {
        println!(
            "Roster created the directory \"default\". Paste these into your identity provider:"
        );
        println!(
            "  SCIM base URL: {}/scim/v2/{}",
            public.trim_end_matches('/'),
            dir.id
        );
        println!("  Bearer token:  {token}");
        println!(
            "The token is shown only this once; `roster token issue {}` makes another.",
            dir.id
        );
    }
    tracing::info!(%addr, "Roster is serving SCIM at {public}/scim/v2/{{directory_id}}");
    roster_server::serve(listener, store, reg, cfg, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
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

async fn directory(
    store: &dyn Store,
    reg: &roster_scim::schema::SchemaRegistry,
    cmd: DirectoryCommand,
) -> Result<()> {
    match cmd {
        DirectoryCommand::Create { name, json } => {
            let (dir, _, token) = store.create_directory_with_token(&name).await?;
            let path = format!("/scim/v2/{}", dir.id);
            if json {
                println!(
                    "{}",
                    json!({"id": dir.id, "name": dir.name, "scim_base_path": path, "token": token})
                );
            } else {
                println!("Created directory {:?}", dir.name);
                println!("  id:             {}", dir.id);
                println!("  SCIM base path: {path}");
                println!("  bearer token:   {token}  (shown once)");
            }
        }
        DirectoryCommand::List { json } => {
            let dirs = store.list_directories().await?;
            if json {
                let items: Vec<_> = dirs
                    .iter()
                    .map(|d| json!({"id": d.id, "name": d.name, "scim_base_path": format!("/scim/v2/{}", d.id), "created_at": d.created_at}))
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

async fn token(store: &dyn Store, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Issue { directory, json } => {
            let (info, token) = store.issue_token(&directory).await.map_err(|e| match e {
                roster_store::StoreError::Scim(s) => {
                    anyhow::anyhow!("{} (see `roster directory list`)", s.detail)
                }
                other => other.into(),
            })?;
            if json {
                println!(
                    "{}",
                    json!({"id": info.id, "directory_id": info.directory_id, "token": token})
                );
            } else {
                println!("token id: {}\nbearer token: {token}  (shown once)", info.id);
            }
        }
        TokenCommand::List { directory, json } => {
            let tokens = store.list_tokens(&directory).await?;
            if json {
                let items: Vec<_> = tokens
                    .iter()
                    .map(|t| json!({"id": t.id, "directory_id": t.directory_id, "created_at": t.created_at, "revoked_at": t.revoked_at, "expires_at": t.expires_at}))
                    .collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                for t in tokens {
                    let state = match (t.revoked_at, t.expires_at) {
                        (Some(_), _) => "revoked".to_owned(),
                        (None, Some(e)) if e <= now => "expired".to_owned(),
                        (None, Some(e)) => format!("expires in {}s", (e - now) / 1000),
                        (None, None) => "live".to_owned(),
                    };
                    println!("{}  {state}", t.id);
                }
            }
        }
        TokenCommand::Rotate {
            token_id,
            overlap,
            json,
        } => {
            anyhow::ensure!(overlap >= 0, "--overlap must be 0 or more seconds");
            let Some(r) = store.rotate_token(None, &token_id, overlap).await? else {
                anyhow::bail!("no live token {token_id} (see `roster token list DIRECTORY`)");
            };
            if json {
                println!(
                    "{}",
                    json!({"id": r.new.id, "directory_id": r.new.directory_id, "token": r.token,
                           "previous": {"id": r.old.id, "expires_at": r.old.expires_at}})
                );
            } else {
                println!(
                    "token id: {}\nbearer token: {}  (shown once)\nthe old token {} stops working in {overlap}s",
                    r.new.id, r.token, r.old.id
                );
            }
        }
        TokenCommand::Revoke { token_id } => {
            if store.revoke_token(&token_id).await? {
                println!("revoked {token_id}");
            } else {
                anyhow::bail!("no live token {token_id} (see `roster token list DIRECTORY`)");
            }
        }
    }
    Ok(())
}

async fn admin_key(store: &dyn Store, cmd: AdminKeyCommand) -> Result<()> {
    match cmd {
        AdminKeyCommand::Create { name, json } => {
            let (info, key) = store.create_admin_key(&name).await?;
            if json {
                println!("{}", json!({"id": info.id, "key": key}));
            } else {
                println!(
                    "admin key id: {}\nkey: {key}  (shown once; send it as Authorization: Bearer)",
                    info.id
                );
            }
        }
    }
    Ok(())
}

async fn events(store: &dyn Store, cmd: EventsCommand) -> Result<()> {
    let EventsCommand::Tail {
        after,
        follow,
        directory,
    } = cmd;
    let mut cursor = match after {
        Some(id) => roster_store::events::parse_event_id(&id)
            .with_context(|| format!("{id:?} is not an event id (evt_…)"))?,
        None => 0,
    };
    loop {
        let batch = store
            .list_events(cursor, 1000, &[], directory.as_deref())
            .await?;
        for e in &batch {
            println!("{}", e.to_json());
        }
        if let Some(last) = batch.last() {
            cursor = last.seq;
        }
        if batch.len() == 1000 {
            continue;
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn webhook(store: &dyn Store, cmd: WebhookCommand) -> Result<()> {
    match cmd {
        WebhookCommand::Add {
            url,
            events,
            directory,
            json,
        } => {
            roster_server::api::webhooks::validate(&url, &events)
                .map_err(|e| anyhow::anyhow!(e.message))?;
            if let Some(d) = &directory
                && store.get_directory(d).await?.is_none()
            {
                anyhow::bail!("no directory {d} (see `roster directory list`)");
            }
            let (endpoint, secret) = store
                .create_webhook(&url, &events, directory.as_deref())
                .await?;
            if json {
                println!("{}", json!({"id": endpoint.id, "secret": secret}));
            } else {
                println!(
                    "webhook id: {}\nsigning secret: {secret}  (shown once)",
                    endpoint.id
                );
            }
        }
        WebhookCommand::List { json } => {
            let all = store.list_webhooks().await?;
            if json {
                let items: Vec<_> = all.iter().map(|e| e.to_json()).collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                for e in all {
                    let on = if e.enabled { "enabled" } else { "disabled" };
                    println!("{}  {}  {on}  {}", e.id, e.url, e.state);
                }
            }
        }
        WebhookCommand::Remove { id } => {
            if !store.delete_webhook(&id).await? {
                anyhow::bail!("no webhook endpoint {id} (see `roster webhook list`)");
            }
            println!("removed {id}");
        }
    }
    Ok(())
}
