//! `roster`: the directory-sync server and its administration commands.
//! This file parses the command line and hands each command to its module.

mod commands;
mod config;
mod memory;
mod sync;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use roster_server::build_registry;
use roster_store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};

use crate::commands::admin_key::AdminKeyCommand;
use crate::commands::directory::DirectoryCommand;
use crate::commands::events::EventsCommand;
use crate::commands::secret_key::SecretKeyCommand;
use crate::commands::serve::ServeArgs;
use crate::commands::token::TokenCommand;
use crate::commands::webhook::WebhookCommand;
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
    let cli = Cli::parse();
    // A sync client has no database of its own: dispatch before opening one.
    let command = match cli.command {
        Command::Sync(args) => return commands::sync::run(args).await,
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
    if let Command::Serve(args) = &command {
        commands::serve::apply_args(&mut server_cfg, args);
    }
    let reg = Arc::new(build_registry(&server_cfg).map_err(anyhow::Error::msg)?);
    let secret_key = config::secret_key(&file)?;
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
    match command {
        Command::Serve(_) => commands::serve::run(store, reg, server_cfg).await,
        Command::Directory(cmd) => commands::directory::run(store.as_ref(), &reg, cmd).await,
        Command::Token(cmd) => commands::token::run(store.as_ref(), cmd).await,
        Command::AdminKey(cmd) => commands::admin_key::run(store.as_ref(), cmd).await,
        Command::Events(cmd) => commands::events::run(store.as_ref(), cmd).await,
        Command::Webhook(cmd) => commands::webhook::run(store.as_ref(), cmd).await,
        Command::SecretKey(cmd) => {
            commands::secret_key::run(store.as_ref(), secret_key.as_ref(), cmd).await
        }
        Command::Sync(_) => Ok(()),
    }
}
