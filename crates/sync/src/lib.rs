//! The `roster sync` engine: pushes users and groups from a SCIM service or
//! an HR export into any SCIM 2.0 service, moving only what changed.
//! See docs/sync.md.
//!
//! A run is a pipeline of steps, each in its own module:
//! fetch (read the source, filtering on `meta.lastModified` after the
//! checkpoint where it can) → plan (compare with the state, match unknown
//! resources in the target) → apply (chunked /Bulk or single calls, with
//! retries of exactly what failed) → checkpoint (save the state) → report.
//!
//! ```no_run
//! # async fn example() -> Result<(), roster_sync::SyncError> {
//! use roster_sync::{NoProgress, Source, SyncOptions};
//!
//! let options = SyncOptions::new(
//!     Source::File("hr.csv".into()),
//!     "https://app.example.com/scim/v2",
//!     "sync-state.json",
//! );
//! let report = roster_sync::run(&options, &NoProgress, std::future::pending()).await?;
//! eprint!("{}", report.summary());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod apply;
mod checkpoint;
mod engine;
mod error;
mod fetch;
mod options;
mod plan;
mod progress;
mod report;
mod source;
mod state;
mod work;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use roster_client::retry::Backoff;

pub use error::SyncError;
pub use options::{DeleteMode, MatchAttr, Source, SyncOptions};
pub use progress::{Meter, NoProgress, Phase, Progress};
pub use report::{Report, Status};

use engine::{Engine, Opts};
use source::format_time;
use state::State;

/// Runs one sync as `options` say, reporting progress to `progress`.
///
/// `interrupt` is awaited while changes are applied: when it completes, no
/// new request is sent, what is in flight finishes, the state keeps what the
/// target acknowledged, and the report's status is
/// [`Status::Interrupted`]. Pass [`std::future::pending`] for none.
///
/// Items that fail do not make this an error: they are in the report
/// ([`Status::Incomplete`]). An error means the run stopped early: the
/// source or target could not be read, the state file is not usable, or a
/// reconcile would remove too much ([`SyncError::MassDelete`]).
pub async fn run(
    options: &SyncOptions,
    progress: &dyn Progress,
    interrupt: impl Future<Output = ()>,
) -> Result<Report, SyncError> {
    let started = Instant::now();
    let started_at = format_time(now_millis());
    let ends = fetch::connect(options).await?;
    let source_id = options.source.id();
    let state = State::load(&options.state, source_id, ends.target.base())?;
    let now_secs = i64::try_from(now_millis() / 1000).unwrap_or(0);
    let reconcile = reconcile_due(options, &state, now_secs);

    let fetch::Fetched {
        mut listing,
        vanished,
    } = fetch::fetch(options, &ends, &state, reconcile, progress).await?;
    let records = std::mem::take(&mut listing.records);
    let max_seen = records.iter().filter_map(|r| r.last_modified).max();
    let listed = records.len();
    let checkpoint_before = state.checkpoint.clone();
    let known = state.users.len() + state.groups.len();

    let opts = engine_opts(options, &ends.target_cfg);
    let stop = AtomicBool::new(false);
    let mut engine = Engine::new(&ends.target, &ends.target_cfg, &opts, state, &stop);

    let meter = progress.begin(Phase::Plan, Some(listed as u64));
    let (mut items, unchanged) = engine.plan(records, vanished, meter.as_ref()).await?;
    meter.finish();
    let deletes = plan::removal_count(&items);
    if !options.dry_run && !options.allow_mass_delete && plan::mass_delete(deletes, known) {
        return Err(SyncError::MassDelete { deletes, known });
    }

    if !options.dry_run {
        apply::apply(&engine, &mut items, progress, interrupt).await?;
    }
    let interrupted = stop.load(Ordering::Relaxed);

    let mut state = engine.state.into_inner().unwrap_or_else(|e| e.into_inner());
    let applied = !options.dry_run && !interrupted;
    if applied && ends.source.scim().is_some() {
        let old = state.checkpoint.as_deref().and_then(source::parse_time);
        state.checkpoint = checkpoint::next(&items, max_seen, old).map(format_time);
    }
    if reconcile && applied && checkpoint::removals_done(&items) {
        state.last_reconcile = Some(now_secs);
    }
    if !options.dry_run {
        state.save(&options.state)?;
    }

    let tally = engine.tally.into_inner().unwrap_or_else(|e| e.into_inner());
    let facts = report::Facts {
        started_at,
        elapsed: started.elapsed(),
        dry_run: options.dry_run,
        interrupted,
        source_id,
        ends: &ends,
        listing: &listing,
        listed,
        reconcile,
        use_bulk: opts.use_bulk,
        checkpoint_before,
        checkpoint_after: state.checkpoint,
        unchanged,
    };
    Ok(report::build(&facts, &items, &tally))
}

/// An explicit reconcile, or one due because the last is older than `reconcile_every`.
fn reconcile_due(options: &SyncOptions, state: &State, now_secs: i64) -> bool {
    options.reconcile
        || options.reconcile_every.is_some_and(|every| {
            state.last_reconcile.is_none_or(|last| {
                now_secs - last >= i64::try_from(every.as_secs()).unwrap_or(i64::MAX)
            })
        })
}

/// The engine's settings: the options within what the target supports.
fn engine_opts(options: &SyncOptions, target: &roster_client::ServiceProviderConfig) -> Opts {
    let bulk_max_operations = match target.bulk.max_operations {
        0 => options.bulk_max_operations,
        n => n.min(options.bulk_max_operations),
    }
    .max(1);
    Opts {
        dry_run: options.dry_run,
        use_bulk: target.bulk.supported && options.bulk,
        bulk_max_operations,
        bulk_max_payload: target.bulk.max_payload_size,
        concurrency: options.concurrency.max(1),
        max_retries: options.max_retries,
        backoff: Backoff {
            base: options.backoff,
            max: Duration::from_secs(30),
            max_retry_after: options.max_retry_after,
        },
        match_by: options.match_by.clone(),
        delete_mode: options.delete_mode,
        state_path: options.state.clone(),
        lookup_threshold: 50,
    }
}

fn now_millis() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i128)
}
