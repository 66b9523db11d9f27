//! The real server in this process: `roster_server::serve` on 127.0.0.1:0,
//! over a store of its own (a SQLite file in a temporary folder, or a schema
//! of its own in the test PostgreSQL).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roster_scim::schema::SchemaRegistry;
use roster_server::{ServerConfig, build_registry};
use roster_store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};
use tokio::sync::oneshot;

use crate::pg::Schema;

/// Where a server's data lives; dropping it removes the data.
pub enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(Schema),
}

impl Place {
    /// A SQLite file in a new temporary folder.
    pub fn sqlite() -> Place {
        Place::Sqlite(tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary folder: {e}")))
    }

    /// A new schema in the test PostgreSQL; `None` when the PostgreSQL tests
    /// are skipped (see [`crate::pg::postgres`]).
    pub fn postgres() -> Option<Place> {
        Schema::create().map(Place::Postgres)
    }

    /// Opens (again, after a restart) the store kept here.
    pub async fn open(&self, reg: Arc<SchemaRegistry>) -> Arc<dyn Store> {
        self.open_with(reg, None).await
    }

    /// [`Place::open`] with reads limited to `statement_timeout`.
    pub async fn open_with(
        &self,
        reg: Arc<SchemaRegistry>,
        statement_timeout: Option<Duration>,
    ) -> Arc<dyn Store> {
        match self {
            Place::Sqlite(dir) => {
                let mut options = SqliteOptions::new(dir.path().join("roster.db"));
                options.statement_timeout = statement_timeout;
                Arc::new(
                    SqliteStore::open(options, reg).unwrap_or_else(|e| {
                        panic!("SQLite store in {}: {e}", dir.path().display())
                    }),
                )
            }
            Place::Postgres(schema) => {
                let mut options = PgOptions::new(schema.database_url().to_owned());
                options.schema = Some(schema.name().to_owned());
                options.statement_timeout = statement_timeout;
                // Several tests share one PostgreSQL (max_connections).
                options.pool_size = 4;
                Arc::new(
                    PgStore::connect(options, reg)
                        .await
                        .unwrap_or_else(|e| panic!("PostgreSQL store in {}: {e}", schema.name())),
                )
            }
        }
    }
}

/// A server running in this process until this is dropped.
pub struct Spawned {
    pub addr: SocketAddr,
    /// Where `/metrics` answers, when the configuration set `metrics_listen`.
    pub metrics_addr: Option<SocketAddr>,
    pub store: Arc<dyn Store>,
    _stop: oneshot::Sender<()>,
    // Last: the server and its store go before their data does.
    place: Place,
}

impl Spawned {
    /// Serves `config` (its `listen` replaced by the port taken) over a store
    /// opened at `place`.
    pub async fn start(place: Place, mut config: ServerConfig) -> Spawned {
        roster_server::install_crypto_provider();
        let reg = Arc::new(
            build_registry(&config).unwrap_or_else(|e| panic!("the schema registry: {e}")),
        );
        // As `roster serve` opens it: reads under the statement timeout.
        let limit = config
            .statement_timeout()
            .unwrap_or_else(|e| panic!("the configuration: {e}"));
        let store = place.open_with(reg.clone(), Some(limit)).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("no loopback port: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the listener's address: {e}"));
        config.listen = addr;
        // A metrics port of its own too, when the test asks for metrics.
        let metrics = match config.metrics_listen {
            Some(_) => Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .unwrap_or_else(|e| panic!("no loopback port for metrics: {e}")),
            ),
            None => None,
        };
        let metrics_addr = metrics.as_ref().and_then(|l| l.local_addr().ok());
        config.metrics_listen = metrics_addr;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(roster_server::serve_with_metrics(
            listener,
            metrics,
            store.clone(),
            reg,
            config,
            async {
                let _ = stopped.await;
            },
        ));
        Spawned {
            addr,
            metrics_addr,
            store,
            _stop: stop,
            place,
        }
    }

    /// Where this server's data lives.
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// A new directory and a bearer token for it.
    pub async fn directory(&self, name: &str) -> (String, String) {
        let id = self
            .store
            .create_directory(&roster_store::Actor::Cli, name)
            .await
            .unwrap_or_else(|e| panic!("create directory {name}: {e}"))
            .id;
        let (_, token) = self
            .store
            .issue_token(&roster_store::Actor::Cli, &id)
            .await
            .unwrap_or_else(|e| panic!("issue a token for {id}: {e}"));
        (id, token)
    }

    /// The SCIM base URL of directory `id`.
    pub fn scim_base(&self, id: &str) -> String {
        format!("http://{}/scim/v2/{id}", self.addr)
    }
}
