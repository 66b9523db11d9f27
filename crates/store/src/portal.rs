//! What the Admin Portal and the provider request log keep: one-time portal
//! links (only their digests) and the requests each directory's provider made.

use async_trait::async_trait;

use crate::StoreResult;
use crate::model::Actor;
pub use roster_domain::requests::{LoggedRequest, RequestQuery, RequestRecord, RequestSummary};

/// A portal link as stored (never its secret, which is shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalLink {
    pub id: String,
    pub directory_id: String,
    pub return_url: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it was opened; a link opens once.
    pub opened_at: Option<i64>,
}

/// How the request log is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLogBounds {
    /// Requests kept per directory, newest first.
    pub max_per_directory: i64,
    /// Requests (and hourly counts) older than this many ms are dropped.
    pub max_age_ms: i64,
}

/// Portal links and the provider request log.
#[async_trait]
pub trait PortalStore: Send + Sync {
    /// Creates a link to `directory` that opens once before `expires_at`;
    /// returns it with its secret, in plaintext, once. Audited as
    /// `portal_link.created`. Not found for an unknown directory.
    async fn create_portal_link(
        &self,
        actor: &Actor,
        directory: &str,
        return_url: Option<&str>,
        expires_at: i64,
    ) -> StoreResult<(PortalLink, String)>;
    /// Marks the link of `secret` opened and returns it, if it exists, has
    /// not expired and was never opened; two openings at once get one link.
    async fn open_portal_link(&self, secret: &str) -> StoreResult<Option<PortalLink>>;
    /// Records the portal session an opened link started (its id), so the
    /// session finds its link (return URL, audit actor); false when the
    /// link was never opened.
    async fn attach_portal_session(&self, link: &str, session: &str) -> StoreResult<bool>;
    /// The link that started a portal session.
    async fn portal_link_of_session(&self, session: &str) -> StoreResult<Option<PortalLink>>;

    /// Appends requests to the log in one transaction (those of unknown
    /// directories are dropped), counts them by directory and hour, and cuts
    /// each directory of `trim` to `bounds`.
    async fn record_requests(
        &self,
        records: Vec<RequestRecord>,
        trim: Vec<String>,
        bounds: RequestLogBounds,
    ) -> StoreResult<()>;
    /// Drops requests and hourly counts older than `cutoff_ms`; how many requests went.
    async fn prune_requests(&self, cutoff_ms: i64) -> StoreResult<u64>;
    /// A page of a directory's requests, newest first.
    async fn requests(
        &self,
        directory: &str,
        query: RequestQuery,
    ) -> StoreResult<Vec<LoggedRequest>>;
    /// The directory's newest request and its counts of the last 24 hours.
    async fn request_summary(&self, directory: &str) -> StoreResult<RequestSummary>;
    /// [`PortalStore::request_summary`] of several directories in one
    /// query; a directory with no request is left out.
    async fn request_summaries(
        &self,
        directories: &[String],
    ) -> StoreResult<std::collections::BTreeMap<String, RequestSummary>>;
}
