//! The fetch step: reaching the target and the source, and reading the
//! source (only what changed since the checkpoint where it can filter).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use roster_client::{ClientOptions, ScimClient, ServiceProviderConfig};
use roster_scim::ResourceKind;

use crate::SyncError;
use crate::options::{Source, SyncOptions};
use crate::plan::Keys;
use crate::progress::{Phase, Progress};
use crate::source::{self, Listing, format_time};
use crate::state::State;

/// The target and the source, with what the SCIM services support.
pub struct Endpoints {
    pub target: ScimClient,
    pub target_cfg: ServiceProviderConfig,
    pub source: SourceEnd,
}

/// The source, ready to be read.
pub enum SourceEnd {
    Scim(ScimClient, ServiceProviderConfig),
    File(PathBuf),
}

impl SourceEnd {
    /// The client and features of a SCIM source.
    pub fn scim(&self) -> Option<(&ScimClient, &ServiceProviderConfig)> {
        match self {
            SourceEnd::Scim(c, cfg) => Some((c, cfg)),
            SourceEnd::File(_) => None,
        }
    }
}

/// Builds the clients and reads both `/ServiceProviderConfig`s, the target's first.
pub async fn connect(options: &SyncOptions) -> Result<Endpoints, SyncError> {
    let client_opts = ClientOptions {
        timeout: options.timeout.max(Duration::from_secs(1)),
        log_requests: options.log_requests,
    };
    let target = ScimClient::new(&options.target, options.target_token.clone(), &client_opts)?;
    let target_cfg = target.discover().await.map_err(|e| SyncError::Discover {
        side: "target",
        url: options.target.clone(),
        source: Box::new(e),
    })?;
    let source = match &options.source {
        Source::Scim { url, token } => {
            let c = ScimClient::new(url, token.clone(), &client_opts)?;
            let cfg = c.discover().await.map_err(|e| SyncError::Discover {
                side: "source",
                url: url.clone(),
                source: Box::new(e),
            })?;
            SourceEnd::Scim(c, cfg)
        }
        Source::File(path) => SourceEnd::File(path.clone()),
    };
    Ok(Endpoints {
        target,
        target_cfg,
        source,
    })
}

/// What the fetch step read.
pub struct Fetched {
    pub listing: Listing,
    /// For a reconcile: every key the source holds now.
    pub vanished: Option<Keys>,
}

/// Reads the source: a SCIM source from the state's checkpoint (less the
/// overlap) unless a full listing is asked for, a file whole. For a
/// reconcile, also every key the source holds (listed again, ids only, when
/// the listing was incremental).
pub async fn fetch(
    options: &SyncOptions,
    ends: &Endpoints,
    state: &State,
    reconcile: bool,
    progress: &dyn Progress,
) -> Result<Fetched, SyncError> {
    let meter = progress.begin(Phase::Source, None);
    let listing = match &ends.source {
        SourceEnd::Scim(client, cfg) => {
            let since = if options.full {
                None
            } else {
                let overlap = i128::try_from(options.overlap.as_millis()).unwrap_or(i128::MAX);
                state
                    .checkpoint
                    .as_deref()
                    .and_then(source::parse_time)
                    .map(|cp| format_time(cp.saturating_sub(overlap)))
            };
            // Users and groups are listed one after the other; the meter's
            // total is the sum of what each listing announced.
            let mut totals: BTreeMap<ResourceKind, u64> = BTreeMap::new();
            source::read_scim(client, cfg, since, |kind, n, total| {
                if let Some(t) = total {
                    totals.insert(kind, t);
                    meter.set_total(totals.values().sum());
                }
                meter.inc(n as u64);
            })
            .await?
        }
        SourceEnd::File(path) => source::read_file(path)?,
    };
    meter.finish();
    if let Some(why) = &listing.fallback_reason {
        tracing::warn!("listing the whole source: {why}");
    }
    let vanished = if !reconcile {
        None
    } else if listing.complete {
        Some(keys_of(&listing))
    } else {
        match &ends.source {
            SourceEnd::Scim(client, cfg) => Some(source::read_scim_keys(client, cfg).await?),
            SourceEnd::File(_) => Some(keys_of(&listing)),
        }
    };
    Ok(Fetched { listing, vanished })
}

fn keys_of(l: &Listing) -> Keys {
    let mut users = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for r in &l.records {
        match r.kind {
            ResourceKind::User => users.insert(r.key.clone()),
            ResourceKind::Group => groups.insert(r.key.clone()),
        };
    }
    (users, groups)
}
