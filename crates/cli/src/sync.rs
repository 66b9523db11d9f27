//! `roster sync`: the command line of the sync engine (crates/sync), with
//! progress bars on a terminal. See docs/sync.md.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use roster_sync::{DeleteMode, MatchAttr, Meter, Phase, Progress, Source, Status, SyncOptions};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeleteModeArg {
    Delete,
    Deactivate,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MatchArg {
    #[value(name = "externalId")]
    ExternalId,
    #[value(name = "userName")]
    UserName,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Source SCIM base URL (e.g. https://idp.example.com/scim/v2).
    #[arg(
        long,
        required_unless_present = "source_file",
        conflicts_with = "source_file"
    )]
    source: Option<String>,
    /// Source bearer token.
    #[arg(long, env = "ROSTER_SOURCE_TOKEN", hide_env_values = true)]
    source_token: Option<String>,
    /// Read the source from a file instead: .jsonl (SCIM resources) or .csv (see docs/sync.md).
    #[arg(long)]
    source_file: Option<PathBuf>,
    /// Target SCIM base URL.
    #[arg(long)]
    target: String,
    /// Target bearer token.
    #[arg(long, env = "ROSTER_TARGET_TOKEN", hide_env_values = true)]
    target_token: Option<String>,
    /// The state file (created if missing): what earlier runs applied.
    #[arg(long)]
    state: PathBuf,
    /// Compare complete id sets and delete (or deactivate) what vanished from the source.
    #[arg(long)]
    reconcile: bool,
    /// Reconcile automatically when the last reconcile is older than this many seconds.
    #[arg(long, value_name = "SECS")]
    reconcile_every: Option<u64>,
    /// Let a reconcile delete more than half of what the state knows (more than 10 resources).
    #[arg(long)]
    allow_mass_delete: bool,
    /// What a reconcile does to users that vanished (groups are always deleted).
    #[arg(long, value_enum, default_value = "delete")]
    delete_mode: DeleteModeArg,
    /// Print the plan (creates, updates, deletes, membership changes) without writing.
    #[arg(long)]
    dry_run: bool,
    /// Write a JSON report of the run to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Log every request (method, URL, status, bytes, time) to stderr.
    #[arg(long, short)]
    verbose: bool,
    /// How a source resource is found in the target when the state does not
    /// know it: attributes tried in order (userName means displayName for groups).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "externalId,userName"
    )]
    match_by: Vec<MatchArg>,
    /// Requests in flight at once without /Bulk.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Never use /Bulk, even when the target supports it.
    #[arg(long)]
    no_bulk: bool,
    /// At most this many operations per /Bulk request (the target's maxOperations caps it).
    #[arg(long, default_value_t = 1000)]
    bulk_max_operations: usize,
    /// Seconds subtracted from the checkpoint when asking for changes, against clock skew
    /// and changes committed out of timestamp order.
    #[arg(long, default_value_t = 60)]
    overlap_secs: u64,
    /// List the whole source even when an incremental listing is possible.
    #[arg(long)]
    full: bool,
    /// Retries per failed item before it is reported as failed.
    #[arg(long, default_value_t = 6)]
    max_retries: u32,
    /// First backoff delay in milliseconds (doubles per retry, with jitter).
    #[arg(long, default_value_t = 500)]
    backoff_ms: u64,
    /// Longest wait honoured from a Retry-After header, in seconds.
    #[arg(long, default_value_t = 300)]
    max_retry_after: u64,
    /// Time allowed for one request, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

impl SyncArgs {
    fn options(self) -> Result<SyncOptions> {
        let source = match (self.source, self.source_file) {
            (Some(url), _) => Source::Scim {
                url,
                token: self.source_token,
            },
            (None, Some(path)) => Source::File(path),
            (None, None) => anyhow::bail!("give --source URL or --source-file PATH"),
        };
        let mut o = SyncOptions::new(source, self.target, self.state);
        o.target_token = self.target_token;
        o.reconcile = self.reconcile;
        o.reconcile_every = self.reconcile_every.map(Duration::from_secs);
        o.allow_mass_delete = self.allow_mass_delete;
        o.delete_mode = match self.delete_mode {
            DeleteModeArg::Delete => DeleteMode::Delete,
            DeleteModeArg::Deactivate => DeleteMode::Deactivate,
        };
        o.dry_run = self.dry_run;
        o.log_requests = self.verbose;
        o.match_by = self
            .match_by
            .iter()
            .map(|m| match m {
                MatchArg::ExternalId => MatchAttr::ExternalId,
                MatchArg::UserName => MatchAttr::UserName,
            })
            .collect();
        o.concurrency = self.concurrency;
        o.bulk = !self.no_bulk;
        o.bulk_max_operations = self.bulk_max_operations;
        o.overlap = Duration::from_secs(self.overlap_secs);
        o.full = self.full;
        o.max_retries = self.max_retries;
        o.backoff = Duration::from_millis(self.backoff_ms);
        o.max_retry_after = Duration::from_secs(self.max_retry_after);
        o.timeout = Duration::from_secs(self.timeout);
        Ok(o)
    }
}

/// Runs a sync; returns the process exit code (0: every item applied, 2: some
/// were not, 130: interrupted).
pub async fn run(args: SyncArgs) -> Result<i32> {
    let report_path = args.report.clone();
    let options = args.options()?;
    let report = roster_sync::run(&options, &Bars, interrupted()).await?;
    if let Some(plan) = report.plan() {
        print!("{plan}");
    }
    if let Some(path) = &report_path {
        std::fs::write(path, serde_json::to_string_pretty(report.json())?)
            .with_context(|| format!("writing the report {}", path.display()))?;
    }
    eprint!("{}", report.summary());
    Ok(match report.status() {
        Status::Complete => 0,
        Status::Incomplete => 2,
        Status::Interrupted => 130,
    })
}

/// Ctrl-C while changes are applied: stop sending, keep what the target
/// acknowledged, save, exit. A second Ctrl-C exits at once.
async fn interrupted() {
    let _ = tokio::signal::ctrl_c().await;
    eprintln!(
        "interrupted: finishing requests in flight, then saving the state (Ctrl-C again to abort)"
    );
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}

/// Progress bars on stderr, drawn only on a terminal: logs and pipes stay clean.
struct Bars;

impl Progress for Bars {
    fn begin(&self, phase: Phase, total: Option<u64>) -> Box<dyn Meter> {
        Box::new(Bar(bar(phase.label(), total)))
    }
}

struct Bar(ProgressBar);

impl Meter for Bar {
    /// Gives a spinner its total once the server has told it (totalResults).
    fn set_total(&self, total: u64) {
        if self.0.length() != Some(total) {
            self.0.set_length(total);
            if let Some(s) = style(true) {
                self.0.set_style(s);
            }
        }
    }

    fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn style(with_total: bool) -> Option<ProgressStyle> {
    let template = if with_total {
        "{prefix:>10} [{bar:30}] {pos}/{len} {rate} ETA {eta}"
    } else {
        "{prefix:>10} {spinner} {pos} {rate}"
    };
    let s = ProgressStyle::with_template(template).ok()?;
    Some(s.progress_chars("=> ").with_key(
        "rate",
        |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", st.per_sec());
        },
    ))
}

fn bar(prefix: &str, len: Option<u64>) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(len, target);
    if let Some(s) = style(len.is_some()) {
        pb.set_style(s);
    }
    pb.set_prefix(prefix.to_owned());
    pb
}
