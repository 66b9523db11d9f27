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

/// How a directory is read from Google: the service-account key file as
/// text (stored sealed), the admin it acts as, what it lists, how often.
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub credentials: String,
    /// The key's `client_id`: what domain-wide delegation is granted to,
    /// kept apart from the sealed key so that a page can name it.
    pub client_id: Option<String>,
    pub admin_email: String,
    pub customer: String,
    pub domain: Option<String>,
    pub interval_secs: i64,
}

/// What creating a Google Workspace directory needs.
#[derive(Debug, Clone)]
pub struct NewGoogleDirectory {
    pub name: String,
    pub settings: GoogleSettings,
}

/// What kind of failure stopped a poll, so that a page can say what fixes it.
pub mod failure {
    /// Google refused access (403, `unauthorized_client`): delegation, scopes or the admin.
    pub const FORBIDDEN: &str = "forbidden";
    /// Google refused the key (401, `invalid_grant`): wrong, deleted or revoked.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// Google kept answering 429 or 5xx, or could not be reached.
    pub const UNAVAILABLE: &str = "unavailable";
    /// Anything else: a refused request, an unexpected answer, a refused write.
    pub const OTHER: &str = "other";
}

/// The outcome of one poll, as recorded on its directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollRecord {
    /// `(kind, message)` of the failure (a [`failure`] constant); `None`: success.
    pub error: Option<(String, String)>,
    pub users_seen: i64,
    pub groups_seen: i64,
    /// Users, groups and memberships created, changed or deleted.
    pub changes: i64,
    /// When the next poll is due (Unix ms).
    pub next_poll_at: i64,
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
    /// The service account's client id (from the key file), when it has one.
    pub client_id: Option<String>,
    /// When the newest poll began (Unix ms); after `last_poll_at` while one runs.
    pub last_poll_started_at: Option<i64>,
    /// What the last finished poll listed and changed.
    pub users_seen: Option<i64>,
    pub groups_seen: Option<i64>,
    pub changes_applied: Option<i64>,
    /// A [`failure`] constant when the last poll failed.
    pub last_error_kind: Option<String>,
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
    /// Records a poll's outcome, schedules the next one and releases the
    /// lease; false when `owner` no longer held it.
    async fn finish_google_poll(
        &self,
        directory: &str,
        owner: &str,
        record: PollRecord,
    ) -> StoreResult<bool>;
    /// Replaces a Google directory's key (sealed, audited without it) and
    /// makes its next poll due now; false when `directory` is not one.
    async fn replace_google_credentials(
        &self,
        actor: &crate::model::Actor,
        directory: &str,
        credentials: String,
        client_id: Option<String>,
    ) -> StoreResult<bool>;
    /// Turns a SCIM directory that has received nothing yet (no user, no
    /// group, no provider request) into a Google directory: its tokens are
    /// revoked, since it takes no SCIM. `Conflict` says why one that has is
    /// refused; `NotFound` when there is no such directory.
    async fn convert_to_google_directory(
        &self,
        actor: &crate::model::Actor,
        directory: &str,
        settings: GoogleSettings,
    ) -> StoreResult<(Directory, GoogleSource)>;
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
