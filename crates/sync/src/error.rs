//! The one error type of the crate: why a run stopped before it finished.
//!
//! A run that reaches the end is not an error even when items failed: those
//! are in the [`Report`](crate::Report). Each variant keeps its cause as the
//! error source, so a caller printing the chain shows what went wrong and why.

use std::path::PathBuf;

use roster_client::Error as ClientError;

/// Why a sync run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A request to the source or the target failed where the run cannot go
    /// on without its answer (building a client, matching resources in the target).
    #[error(transparent)]
    Client(Box<ClientError>),

    /// The source's or the target's `/ServiceProviderConfig` could not be read.
    #[error("reading the {side}'s /ServiceProviderConfig at {url}")]
    Discover {
        /// "source" or "target".
        side: &'static str,
        /// The base URL asked.
        url: String,
        /// Why it could not be read.
        #[source]
        source: Box<ClientError>,
    },

    /// Listing the source's resources failed.
    #[error("listing the source")]
    ListSource(#[source] Box<ClientError>),

    /// Listing the source's ids, the set a reconcile compares against, failed.
    #[error("listing the source's ids for a reconcile")]
    ListSourceIds(#[source] Box<ClientError>),

    /// A file (the source file or the state file) could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },

    /// The source file is not what `--source-file` takes: `location` is the
    /// file, with the line for JSON Lines.
    #[error("{location}: {detail}")]
    SourceFile {
        /// The file, or file:line.
        location: String,
        /// What is wrong there.
        detail: String,
        /// The parser's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The CSV reader failed without saying where.
    #[error(transparent)]
    Csv(#[from] csv::Error),

    /// The state file is not JSON of the state's shape.
    #[error("{} is not a roster sync state file", path.display())]
    StateFormat {
        /// The state file.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },

    /// The state file was written by a Roster with another state format.
    #[error("{} has state version {found}; this roster understands {expected}", path.display())]
    StateVersion {
        /// The state file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },

    /// The state file was made for another source or target.
    #[error(
        "{} belongs to another pair (source {state_source}, target {state_target}); use another --state file",
        path.display()
    )]
    StateOtherPair {
        /// The state file.
        path: PathBuf,
        /// The source the state was made for.
        state_source: String,
        /// The target the state was made for.
        state_target: String,
    },

    /// The state file could not be written.
    #[error("writing the state file {}", path.display())]
    StateWrite {
        /// The state file.
        path: PathBuf,
        /// Why it could not be written.
        #[source]
        source: std::io::Error,
    },

    /// A reconcile would remove most of what the state knows: refused unless
    /// [`SyncOptions::allow_mass_delete`](crate::SyncOptions::allow_mass_delete).
    #[error(
        "refusing to delete or deactivate {deletes} of the {known} resources this state knows \
         (an empty or wrong export looks exactly like this); check with --dry-run, then \
         pass --allow-mass-delete"
    )]
    MassDelete {
        /// How many resources the reconcile would remove.
        deletes: usize,
        /// How many resources the state knows.
        known: usize,
    },
}

impl From<ClientError> for SyncError {
    fn from(e: ClientError) -> Self {
        SyncError::Client(Box::new(e))
    }
}

impl SyncError {
    pub(crate) fn list_source(e: ClientError) -> Self {
        SyncError::ListSource(Box::new(e))
    }

    pub(crate) fn list_source_ids(e: ClientError) -> Self {
        SyncError::ListSourceIds(Box::new(e))
    }
}

/// The error and its sources on one line, "outer: inner: …", for log lines.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
