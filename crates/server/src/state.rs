use std::sync::Arc;

use roster_scim::schema::SchemaRegistry;
use roster_store::Store;

use crate::config::ServerConfig;
use crate::rate_limit::RateLimiter;
use crate::token_cache::TokenCache;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub reg: Arc<SchemaRegistry>,
    pub config: Arc<ServerConfig>,
    pub limiter: Arc<RateLimiter>,
    pub tokens: Arc<TokenCache>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, reg: Arc<SchemaRegistry>, config: Arc<ServerConfig>) -> Self {
        let limiter = Arc::new(RateLimiter::new(&config));
        let tokens = Arc::new(TokenCache::new(config.token_cache_secs));
        AppState {
            store,
            reg,
            config,
            limiter,
            tokens,
        }
    }
}
