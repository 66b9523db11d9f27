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
/// The shortest poll interval: a full listing of a large directory takes
/// minutes and a share of Google's per-minute quota.
pub const MIN_INTERVAL_SECS: i64 = 60;
/// The longest poll interval (a day).
pub const MAX_INTERVAL_SECS: i64 = 86_400;

/// Checks a poll interval against [`MIN_INTERVAL_SECS`] and [`MAX_INTERVAL_SECS`].
pub fn check_interval(secs: i64) -> Result<i64, String> {
    if (MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!(
            "poll_interval_secs must be {MIN_INTERVAL_SECS} to {MAX_INTERVAL_SECS} seconds (default {DEFAULT_INTERVAL_SECS}), not {secs}"
        ))
    }
}

/// A member Google listed for a group: its Google id and whether it is a
/// user or a (nested) group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedMember {
    pub google_id: String,
    pub kind: Kind,
}

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
    /// Seals every Google credential that is plaintext while a key is set,
    /// or that only a previous key opens, with the current `secret_key`, in
    /// one transaction; returns how many changed.
    async fn check_google_credentials(&self) -> StoreResult<usize>;
    /// Removes what earlier polls of `directory` left staged (one that
    /// stopped on an error or lost its lease), before a poll stages its own.
    async fn begin_google_staging(&self, directory: &str) -> StoreResult<()>;
    /// Stages listed resources: (Google id, SCIM body to write, or `None`
    /// when the stored resource already equals it).
    async fn stage_google(
        &self,
        directory: &str,
        poll: &str,
        kind: Kind,
        rows: Vec<(String, Option<String>)>,
    ) -> StoreResult<()>;
    /// Stages members Google listed for group `group` (its Google id).
    async fn stage_google_members(
        &self,
        directory: &str,
        poll: &str,
        group: &str,
        members: Vec<StagedMember>,
    ) -> StoreResult<()>;
    /// Up to `limit` staged resources of `kind` after Google id `after` (in
    /// Google id order); with `changed_only`, only those with a body to write.
    async fn staged_google(
        &self,
        poll: &str,
        kind: Kind,
        changed_only: bool,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<(String, Option<String>)>>;
    /// The stored ids of the members staged for group `group` (Google id)
    /// that the poll listed as users or groups too.
    async fn staged_google_member_ids(
        &self,
        directory: &str,
        poll: &str,
        group: &str,
    ) -> StoreResult<Vec<String>>;
    /// Up to `limit` stored ids of `kind`, after `after`, that poll `poll` did not list.
    async fn unlisted_google(
        &self,
        directory: &str,
        poll: &str,
        kind: Kind,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>>;
    /// Removes poll `poll`'s staged rows.
    async fn end_google_staging(&self, poll: &str) -> StoreResult<()>;
    /// Every (id, externalId) of the directory's resources of `kind`.
    async fn external_index(
        &self,
        directory: &str,
        kind: Kind,
    ) -> StoreResult<Vec<(String, Option<String>)>>;
}
