use std::sync::Arc;

use roster_scim::ScimError;
use roster_scim::schema::{ResourceType, SchemaRegistry};
use roster_store::{Kind, Store};

use crate::config::ServerConfig;
use crate::error::ApiResult;
use crate::health::Liveness;
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
    /// The background loops' heartbeats, read by `/health/ready`.
    pub liveness: Arc<Liveness>,
    /// Directories whose provider type this process has already looked for.
    pub providers: Arc<crate::provider::Detected>,
    /// Where the providers' SCIM requests are recorded.
    pub request_log: crate::request_log::RequestLog,
}

impl AppState {
    /// The schema of a resource kind (both are always registered).
    pub fn resource_type(&self, kind: Kind) -> ApiResult<&ResourceType> {
        self.reg
            .resource_type(kind.name())
            .ok_or_else(|| ScimError::internal(format!("no {} resource type", kind.name())).into())
    }

    /// `liveness` holds the heartbeats the background loops beat.
    pub fn new(
        store: Arc<dyn Store>,
        reg: Arc<SchemaRegistry>,
        config: Arc<ServerConfig>,
        liveness: Arc<Liveness>,
    ) -> Self {
        let limiter = Arc::new(RateLimiter::new(&config));
        let tokens = Arc::new(TokenCache::new(config.token_cache_secs));
        let request_log = crate::request_log::RequestLog::start(store.clone(), &config);
        AppState {
            store,
            reg,
            config,
            limiter,
            tokens,
            liveness,
            providers: Arc::default(),
            request_log,
        }
    }
}
