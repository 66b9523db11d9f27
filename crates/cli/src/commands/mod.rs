//! One module per `roster` command; [`open`] gives the commands that need
//! one their database.

pub mod admin_key;
pub mod audit;
pub mod backup;
pub mod config;
pub mod directory;
pub mod events;
pub mod healthcheck;
pub mod portal;
pub mod restore;
pub mod secret_key;
pub mod serve;
pub mod sync;
pub mod token;
pub mod webhook;

use std::sync::Arc;

use anyhow::{Context, Result};
use roster_scim::schema::SchemaRegistry;
use roster_server::build_registry;
use roster_store::secrets::SecretKey;
use roster_store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};

use crate::config::{Database, Settings};

/// The database and the schemas, as the settings say.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub reg: Arc<SchemaRegistry>,
    pub secret_key: Option<SecretKey>,
}

/// `serving`: whether this process is the server, the one that rebuilds the
/// attribute index when the configured schemas changed. Other commands may
/// run without the server's configuration (its extensions) and leave the
/// index as the server built it.
pub async fn open(settings: &Settings, serving: bool) -> Result<Opened> {
    let server = &settings.server;
    let reg = Arc::new(build_registry(server)?);
    let secret_key = settings.secret_key()?;
    // Checked when the settings were read.
    let statement_timeout = server.statement_timeout().map_err(anyhow::Error::msg)?;
    let store: Arc<dyn Store> = match settings.database()? {
        Database::Sqlite(path) => {
            let mut opts = SqliteOptions::new(&path);
            opts.list.cursor_timeout_secs = server.cursor_timeout_secs;
            opts.secret_key = secret_key.clone();
            opts.statement_timeout = Some(statement_timeout);
            opts.ensure_index = serving;
            Arc::new(
                SqliteStore::open(opts, reg.clone())
                    .with_context(|| format!("opening {}", settings.database_url()))?,
            )
        }
        Database::Postgres(pg) => {
            let mut opts = PgOptions::new(pg);
            opts.list.cursor_timeout_secs = server.cursor_timeout_secs;
            opts.secret_key = secret_key.clone();
            opts.pool_size = settings.database_pool_size();
            opts.statement_timeout = Some(statement_timeout);
            opts.ensure_index = serving;
            Arc::new(
                PgStore::connect(opts, reg.clone())
                    .await
                    .context("opening the PostgreSQL database")?,
            )
        }
    };
    Ok(Opened {
        store,
        reg,
        secret_key,
    })
}
