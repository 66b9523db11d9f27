//! Directories pulled from Google Workspace's Directory API: their settings,
//! poll state and lease. The poller itself lives in the server.

use async_trait::async_trait;

use crate::StoreResult;
use crate::model::{Directory, Kind, Stored};

/// The provider of a directory whose users come from Google's Directory API.
pub const GOOGLE_WORKSPACE: &str = "google-workspace";
/// The provider of a directory an identity provider pushes to over SCIM.
pub const SCIM: &str = "scim";
/// How often a Google directory is polled unless configured otherwise.
pub const DEFAULT_INTERVAL_SECS: i64 = 600;

/// What creating a Google Workspace directory needs. `credentials` is the
/// service-account key file as text; it is stored sealed.
#[derive(Debug, Clone)]
pub struct NewGoogleDirectory {
    pub name: String,
    pub credentials: String,
    pub admin_email: String,
    pub customer: String,
    pub domain: Option<String>,
    pub interval_secs: i64,
}

/// A Google directory's settings and the outcome of its last poll (never its credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleSource {
    pub directory_id: String,
    pub admin_email: String,
    pub customer: String,
    pub domain: Option<String>,
    pub interval_secs: i64,
    /// When the next poll is due (Unix ms); 0 after "sync now".
    pub next_poll_at: i64,
    pub last_poll_at: Option<i64>,
    /// "ok" or "error".
    pub last_result: Option<String>,
    pub last_error: Option<String>,
}

/// A due directory leased to one poller, with its opened credentials.
#[derive(Debug, Clone)]
pub struct GoogleJob {
    pub source: GoogleSource,
    pub credentials: String,
}

/// The storage of Google Workspace directories.
#[async_trait]
pub trait GoogleStore: Send + Sync {
    /// Creates the directory (provider `google-workspace`, no SCIM token) and its source.
    async fn create_google_directory(
        &self,
        actor: &crate::model::Actor,
        new: NewGoogleDirectory,
    ) -> StoreResult<(Directory, GoogleSource)>;
    async fn google_source(&self, directory: &str) -> StoreResult<Option<GoogleSource>>;
    async fn google_sources(&self) -> StoreResult<Vec<GoogleSource>>;
    /// Makes the directory due now; false when it is not a Google directory.
    async fn request_google_sync(&self, directory: &str) -> StoreResult<bool>;
    /// Leases one due directory to `owner` for `lease_ms`, if any is due and free.
    async fn claim_google_poll(&self, owner: &str, lease_ms: i64)
    -> StoreResult<Option<GoogleJob>>;
    /// Extends `owner`'s lease; false when `owner` no longer holds it.
    async fn renew_google_lease(
        &self,
        directory: &str,
        owner: &str,
        lease_ms: i64,
    ) -> StoreResult<bool>;
    /// Records a poll's outcome (`error` None: success), schedules the next
    /// one and releases the lease; false when `owner` no longer held it.
    async fn finish_google_poll(
        &self,
        directory: &str,
        owner: &str,
        error: Option<String>,
        next_poll_at: i64,
    ) -> StoreResult<bool>;
    /// The directory's resources of `kind` whose externalId is one of `external_ids`.
    async fn by_external_ids(
        &self,
        directory: &str,
        kind: Kind,
        external_ids: Vec<String>,
    ) -> StoreResult<Vec<Stored>>;
    /// Every (id, externalId) of the directory's resources of `kind`.
    async fn external_index(
        &self,
        directory: &str,
        kind: Kind,
    ) -> StoreResult<Vec<(String, Option<String>)>>;
}
