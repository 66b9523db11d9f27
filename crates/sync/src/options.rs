//! What a run is told: where to read, where to write, and how.

use std::path::PathBuf;
use std::time::Duration;

use roster_scim::ResourceKind;

/// Where the users and groups come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A SCIM service: its base URL and bearer token. Listed incrementally
    /// (`meta.lastModified` after the checkpoint) when it can filter.
    Scim {
        /// The base URL, e.g. https://idp.example.com/scim/v2.
        url: String,
        /// The bearer token.
        token: Option<String>,
    },
    /// An HR export: `.jsonl` (SCIM resources, one a line) or `.csv` (the
    /// columns in docs/sync.md). Always read whole.
    File(PathBuf),
}

impl Source {
    /// What the state file records as the source: the URL, or "file" (a
    /// file source is one lineage of exports whatever the file is called today).
    pub fn id(&self) -> &str {
        match self {
            Source::Scim { url, .. } => url,
            Source::File(_) => "file",
        }
    }
}

/// One `roster sync` run. [`SyncOptions::new`] gives the defaults of the
/// command line; the fields are the flags of docs/sync.md.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Where the users and groups come from.
    pub source: Source,
    /// The target's SCIM base URL.
    pub target: String,
    /// The target's bearer token.
    pub target_token: Option<String>,
    /// The state file (created if missing): what earlier runs applied.
    pub state: PathBuf,
    /// Compare complete id sets and remove what vanished from the source.
    pub reconcile: bool,
    /// Reconcile when the last reconcile is older than this.
    pub reconcile_every: Option<Duration>,
    /// Let a reconcile remove more than half of what the state knows (more than 10).
    pub allow_mass_delete: bool,
    /// What a reconcile does to users that vanished (groups are always deleted).
    pub delete_mode: DeleteMode,
    /// Plan only: write nothing to the target or the state; the report holds the plan.
    pub dry_run: bool,
    /// Log every request (method, URL, status, bytes, time).
    pub log_requests: bool,
    /// How a source resource is found in the target when the state does not
    /// know it: attributes tried in order.
    pub match_by: Vec<MatchAttr>,
    /// Requests in flight at once without /Bulk (at least 1).
    pub concurrency: usize,
    /// Use /Bulk when the target supports it.
    pub bulk: bool,
    /// At most this many operations per /Bulk request (the target's maxOperations caps it).
    pub bulk_max_operations: usize,
    /// Subtracted from the checkpoint when asking for changes, against clock
    /// skew and changes committed out of timestamp order.
    pub overlap: Duration,
    /// List the whole source even when an incremental listing is possible.
    pub full: bool,
    /// Retries per failed item before it is reported as failed.
    pub max_retries: u32,
    /// First backoff delay (doubles per retry, with jitter).
    pub backoff: Duration,
    /// Longest wait honoured from a Retry-After header.
    pub max_retry_after: Duration,
    /// Time allowed for one request (at least a second).
    pub timeout: Duration,
}

impl SyncOptions {
    /// A run from `source` into the SCIM service at `target`, remembering
    /// what it applied in `state`, with the command line's defaults.
    pub fn new(source: Source, target: impl Into<String>, state: impl Into<PathBuf>) -> Self {
        SyncOptions {
            source,
            target: target.into(),
            target_token: None,
            state: state.into(),
            reconcile: false,
            reconcile_every: None,
            allow_mass_delete: false,
            delete_mode: DeleteMode::Delete,
            dry_run: false,
            log_requests: false,
            match_by: vec![MatchAttr::ExternalId, MatchAttr::UserName],
            concurrency: 8,
            bulk: true,
            bulk_max_operations: 1000,
            overlap: Duration::from_secs(60),
            full: false,
            max_retries: 6,
            backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
        }
    }
}

/// What a reconcile does to a user that vanished from the source (groups
/// are always deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteMode {
    /// DELETE the user in the target.
    #[default]
    Delete,
    /// PATCH `active` to false, once.
    Deactivate,
}

/// Which attribute identifies a source resource in the target when the state
/// does not know it yet. `UserName` means `displayName` for groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchAttr {
    /// `externalId`, compared case-exactly.
    ExternalId,
    /// `userName` (users) or `displayName` (groups), compared ignoring case.
    UserName,
}

impl MatchAttr {
    pub(crate) fn attr(self, kind: ResourceKind) -> &'static str {
        match self {
            MatchAttr::ExternalId => "externalId",
            MatchAttr::UserName => kind.name_attr(),
        }
    }
}
