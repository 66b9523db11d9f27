use std::sync::Arc;

use roster_scim::schema::SchemaRegistry;
use roster_store::Store;

use crate::config::ServerConfig;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub reg: Arc<SchemaRegistry>,
    pub config: Arc<ServerConfig>,
}
