//! `roster`: the directory-sync server and its administration commands.
//! This file parses the command line and hands each command to its module.

mod commands;
mod config;
mod memory;
mod startup;
mod sync;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::commands::admin_key::AdminKeyCommand;
use crate::commands::audit::AuditCommand;
use crate::commands::backup::BackupArgs;
use crate::commands::config::ConfigCommand;
use crate::commands::directory::DirectoryCommand;
use crate::commands::events::EventsCommand;
use crate::commands::healthcheck::HealthcheckArgs;
use crate::commands::portal::PortalCommand;
use crate::commands::restore::RestoreArgs;
use crate::commands::secret_key::SecretKeyCommand;
use crate::commands::serve::ServeArgs;
use crate::commands::token::TokenCommand;
use crate::commands::webhook::WebhookCommand;
use crate::config::{Flags, Settings};

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "Roster: a SCIM 2.0 directory-sync server",
    after_help = "Every setting also has a key in the --config file and a ROSTER_* \
                  variable; `roster config show` prints them all."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// A TOML file with settings (ROSTER_* variables and flags override it).
    #[arg(long, global = true, env = "ROSTER_CONFIG")]
    config: Option<PathBuf>,
    /// Where the data lives: sqlite://PATH [default: sqlite://roster.db], or
    /// postgres://user[:password]@host[:port]/database for several instances
    /// [env: ROSTER_DATABASE_URL].
    #[arg(long, global = true)]
    database: Option<String>,
    /// PostgreSQL connections this process keeps open [default: 16]
    /// [env: ROSTER_DATABASE_POOL_SIZE].
    #[arg(long, global = true)]
    database_pool_size: Option<u32>,
}

impl Global {
    fn flags(&self, serve: Option<&ServeArgs>) -> Flags {
        Flags {
            database: self.database.clone(),
            database_pool_size: self.database_pool_size,
            listen: serve.and_then(|s| s.listen),
            public_url: serve.and_then(|s| s.public_url.clone()),
            group_patch_no_content: serve.is_some_and(|s| s.group_patch_no_content),
            statement_timeout_ms: serve.and_then(|s| s.statement_timeout_ms),
        }
    }
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
    /// Admin Portal links for a customer's IT admin.
    #[command(subcommand)]
    Portal(PortalCommand),
    /// Read the directory-sync event stream.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Read the audit log of administrative changes.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage webhook endpoints.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Push users and groups from a SCIM service or an HR export into a SCIM service.
    Sync(Box<sync::SyncArgs>),
    /// Manage the key that encrypts webhook secrets at rest (secret_key).
    #[command(subcommand, name = "secret-key")]
    SecretKey(SecretKeyCommand),
    /// Copy the SQLite database while the server runs (SQLite's online backup).
    Backup(BackupArgs),
    /// Check a backup and install it as the SQLite database (server stopped).
    Restore(RestoreArgs),
    /// Ask a running server whether it is ready (exit 0) or not (exit 1).
    Healthcheck(HealthcheckArgs),
    /// Inspect the settings (defaults, config file, ROSTER_* variables, flags).
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let config = cli.global.config.as_deref();
    // A sync client has no database of its own and reads only `log`.
    let command = match cli.command {
        Command::Sync(args) => {
            startup::start(&Settings::load_log(config)?)?;
            return commands::sync::run(args).await;
        }
        // Asks the server over HTTP; never opens the database.
        Command::Healthcheck(args) => {
            let url = match args.url {
                Some(url) => url,
                None => {
                    let settings = Settings::load(config, &cli.global.flags(None))?;
                    commands::healthcheck::default_url(settings.server.listen)
                }
            };
            std::process::exit(commands::healthcheck::run(&url).await?);
        }
        other => other,
    };
    let serve = match &command {
        Command::Serve(args) | Command::Config(ConfigCommand::Show { serve: args, .. }) => {
            Some(args)
        }
        _ => None,
    };
    let settings = Settings::load(config, &cli.global.flags(serve))?;
    let command = match command {
        Command::Config(cmd) => return commands::config::run(&settings, cmd),
        // These copy the database file and must not open (or migrate) it as a store.
        Command::Backup(args) => {
            startup::start(&settings.log())?;
            return commands::backup::run(&settings, args);
        }
        Command::Restore(args) => {
            startup::start(&settings.log())?;
            return commands::restore::run(&settings, args);
        }
        other => other,
    };
    startup::start(&settings.log())?;
    let serving = matches!(command, Command::Serve(_));
    let opened = commands::open(&settings, serving).await?;
    let store = opened.store.as_ref();
    match command {
        Command::Serve(_) => {
            commands::serve::run(opened.store.clone(), opened.reg, settings.server).await
        }
        Command::Directory(cmd) => commands::directory::run(store, &opened.reg, cmd).await,
        Command::Token(cmd) => commands::token::run(store, cmd).await,
        Command::AdminKey(cmd) => commands::admin_key::run(store, cmd).await,
        Command::Portal(cmd) => commands::portal::run(store, &settings.server, cmd).await,
        Command::Events(cmd) => commands::events::run(store, cmd).await,
        Command::Audit(cmd) => commands::audit::run(store, cmd).await,
        Command::Webhook(cmd) => commands::webhook::run(store, cmd).await,
        Command::SecretKey(cmd) => {
            commands::secret_key::run(store, opened.secret_key.as_ref(), cmd).await
        }
        Command::Sync(_)
        | Command::Config(_)
        | Command::Backup(_)
        | Command::Restore(_)
        | Command::Healthcheck(_) => Ok(()),
    }
}
