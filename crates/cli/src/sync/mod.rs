//! `roster sync`: push users and groups from a SCIM service or an HR export
//! into any SCIM 2.0 service, moving only what changed. See docs/sync.md.

mod engine;
mod source;
mod state;

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use roster_client::retry::Backoff;
use roster_client::{ClientOptions, ScimClient, ServiceProviderConfig};
use serde_json::{Value, json};

use engine::{Action, DeleteMode, Engine, Item, MatchAttr, Opts, Outcome};
use source::{Listing, format_time};
use state::State;

/// The resource types roster sync moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn path(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
        }
    }
    /// The value of `members[].type`.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
    /// The human-readable unique name: userName or displayName.
    pub fn name_attr(self) -> &'static str {
        match self {
            Kind::User => "userName",
            Kind::Group => "displayName",
        }
    }
}

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
    // Progress goes to stderr and only to a terminal: logs and pipes stay clean.
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

/// Gives a spinner its total once the server has told it (totalResults).
fn set_total(pb: &ProgressBar, total: u64) {
    if pb.length() != Some(total) {
        pb.set_length(total);
        if let Some(s) = style(true) {
            pb.set_style(s);
        }
    }
}

/// Runs a sync; returns the process exit code (0: every item applied).
pub async fn run(args: SyncArgs) -> Result<i32> {
    let started = Instant::now();
    let started_at = format_time(now_millis());
    let client_opts = ClientOptions {
        timeout: Duration::from_secs(args.timeout.max(1)),
        log_requests: args.verbose,
    };
    let target = ScimClient::new(&args.target, args.target_token.clone(), &client_opts)?;
    let target_cfg = target.discover().await.with_context(|| {
        format!(
            "reading the target's /ServiceProviderConfig at {}",
            args.target
        )
    })?;
    let (source_client, source_cfg) = match &args.source {
        Some(url) => {
            let c = ScimClient::new(url, args.source_token.clone(), &client_opts)?;
            let cfg = c
                .discover()
                .await
                .with_context(|| format!("reading the source's /ServiceProviderConfig at {url}"))?;
            (Some(c), Some(cfg))
        }
        None => (None, None),
    };
    // A file source is one lineage of exports whatever the file is called today.
    let source_id = args.source.clone().unwrap_or_else(|| "file".to_owned());
    let state = State::load(&args.state, &source_id, target.base())?;
    let now_secs = i64::try_from(now_millis() / 1000).unwrap_or(0);
    let reconcile = args.reconcile
        || args.reconcile_every.is_some_and(|every| {
            state
                .last_reconcile
                .is_none_or(|last| now_secs - last >= i64::try_from(every).unwrap_or(i64::MAX))
        });

    // Read the source.
    let pb = bar("source", None);
    let listing = match (&source_client, &source_cfg, &args.source_file) {
        (Some(c), Some(cfg), _) => {
            let since = if args.full {
                None
            } else {
                state
                    .checkpoint
                    .as_deref()
                    .and_then(source::parse_time)
                    .map(|cp| format_time(cp - i128::from(args.overlap_secs) * 1000))
            };
            // Users and groups are listed one after the other; the bar's
            // total is the sum of what each listing announced.
            let mut totals = std::collections::BTreeMap::new();
            source::read_scim(c, cfg, since, |kind, n, total| {
                if let Some(t) = total {
                    totals.insert(kind, t);
                    set_total(&pb, totals.values().sum());
                }
                pb.inc(n as u64);
            })
            .await?
        }
        (_, _, Some(path)) => source::read_file(path)?,
        _ => anyhow::bail!("give --source URL or --source-file PATH"),
    };
    pb.finish_and_clear();
    if let Some(why) = &listing.fallback_reason {
        tracing::warn!("listing the whole source: {why}");
    }
    let vanished = if reconcile {
        Some(if listing.complete {
            keys_of(&listing)
        } else {
            match (&source_client, &source_cfg) {
                (Some(c), Some(cfg)) => source::read_scim_keys(c, cfg).await?,
                _ => keys_of(&listing),
            }
        })
    } else {
        None
    };
    let max_seen = listing.records.iter().filter_map(|r| r.last_modified).max();
    let listed_count = listing.records.len();

    let use_bulk = target_cfg.bulk.supported && !args.no_bulk;
    let bulk_max_operations = match target_cfg.bulk.max_operations {
        0 => args.bulk_max_operations,
        n => n.min(args.bulk_max_operations),
    }
    .max(1);
    let checkpoint_before = state.checkpoint.clone();
    let known = state.users.len() + state.groups.len();
    let opts = Opts {
        dry_run: args.dry_run,
        use_bulk,
        bulk_max_operations,
        bulk_max_payload: target_cfg.bulk.max_payload_size,
        concurrency: args.concurrency.max(1),
        max_retries: args.max_retries,
        backoff: Backoff {
            base: Duration::from_millis(args.backoff_ms),
            max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(args.max_retry_after),
        },
        match_by: args
            .match_by
            .iter()
            .map(|m| match m {
                MatchArg::ExternalId => MatchAttr::ExternalId,
                MatchArg::UserName => MatchAttr::UserName,
            })
            .collect(),
        delete_mode: match args.delete_mode {
            DeleteModeArg::Delete => DeleteMode::Delete,
            DeleteModeArg::Deactivate => DeleteMode::Deactivate,
        },
        state_path: args.state.clone(),
        lookup_threshold: 50,
    };
    let stop = AtomicBool::new(false);
    let mut engine = Engine::new(&target, &target_cfg, &opts, state, &stop);

    let pb = bar("plan", Some(listed_count as u64));
    let (mut items, unchanged) = engine.plan(listing.records, vanished, &pb).await?;
    pb.finish_and_clear();
    let deletes = items
        .iter()
        .filter(|i| matches!(i.action, Action::Delete { .. } | Action::Deactivate { .. }))
        .count();
    if !args.dry_run && !args.allow_mass_delete && mass_delete(deletes, known) {
        anyhow::bail!(
            "refusing to delete or deactivate {deletes} of the {known} resources this state knows \
             (an empty or wrong export looks exactly like this); check with --dry-run, then \
             pass --allow-mass-delete"
        );
    }

    if args.dry_run {
        print_plan(&items, unchanged);
    } else {
        // Ctrl-C: stop sending, keep what the target acknowledged, save, exit.
        let stop_flag = &stop;
        let work = async {
            let upserts: Vec<usize> = (0..items.len())
                .filter(|&i| matches!(items[i].action, Action::Create | Action::Update { .. }))
                .collect();
            let deletes: Vec<usize> = (0..items.len())
                .filter(|&i| !upserts.contains(&i))
                .collect();
            let pb = bar("apply", Some(upserts.len() as u64));
            if use_bulk {
                // One stream of chunks: a group can name users created in the same request.
                engine.execute(&mut items, upserts.clone(), &pb).await?;
            } else {
                // Users, then groups that name no group created in this run,
                // then the rest; what still misses a reference gets a second pass.
                let (users, groups): (Vec<usize>, Vec<usize>) =
                    upserts.iter().partition(|&&i| items[i].kind == Kind::User);
                let new_groups: BTreeSet<&str> = groups
                    .iter()
                    .filter(|&&i| items[i].action == Action::Create)
                    .map(|&i| items[i].key.as_str())
                    .collect();
                let (later, first): (Vec<usize>, Vec<usize>) = groups.iter().partition(|&&i| {
                    items[i].doc.value()["members"]
                        .as_array()
                        .is_some_and(|ms| {
                            ms.iter().any(|m| {
                                m["value"].as_str().is_some_and(|k| new_groups.contains(k))
                            })
                        })
                });
                engine.execute(&mut items, users, &pb).await?;
                engine.execute(&mut items, first, &pb).await?;
                engine.execute(&mut items, later, &pb).await?;
            }
            pb.finish_and_clear();
            // Second pass: items sent before a resource they name existed.
            let followups: Vec<usize> = upserts
                .iter()
                .copied()
                .filter(|&i| items[i].outcome == Outcome::Done && !items[i].missing.is_empty())
                .collect();
            if !followups.is_empty() {
                let pb = bar("refs", Some(followups.len() as u64));
                for &i in &followups {
                    let id = lock_id(&engine, &items[i]);
                    if let Some(id) = id {
                        let item = &mut items[i];
                        item.action = Action::Update {
                            id,
                            members_before: None,
                        };
                        item.outcome = Outcome::Pending;
                        item.attempts = 0;
                        // Written moments ago by this run: nothing to guard.
                        item.if_match = None;
                    }
                }
                engine.execute(&mut items, followups, &pb).await?;
                pb.finish_and_clear();
            }
            let pb = bar("delete", Some(deletes.len() as u64));
            engine.execute(&mut items, deletes, &pb).await?;
            pb.finish_and_clear();
            anyhow::Ok(())
        };
        tokio::pin!(work);
        let mut interrupted = false;
        loop {
            tokio::select! {
                r = &mut work => { r?; break; }
                _ = tokio::signal::ctrl_c(), if !interrupted => {
                    interrupted = true;
                    eprintln!("interrupted: finishing requests in flight, then saving the state (Ctrl-C again to abort)");
                    stop_flag.store(true, Ordering::Relaxed);
                    tokio::spawn(async {
                        let _ = tokio::signal::ctrl_c().await;
                        std::process::exit(130);
                    });
                }
            }
        }
    }

    let interrupted = stop.load(Ordering::Relaxed);
    let failed: Vec<&Item> = items
        .iter()
        .filter(|i| i.outcome == Outcome::Failed)
        .collect();
    let not_done: Vec<&Item> = items
        .iter()
        .filter(|i| i.outcome == Outcome::Pending)
        .collect();
    let incomplete: Vec<&Item> = items
        .iter()
        .filter(|i| i.outcome == Outcome::Done && !i.missing.is_empty())
        .collect();

    // The checkpoint: past everything listed when every item is in the target;
    // otherwise just before the oldest change that is not, so the next run
    // lists it again (what was applied meanwhile is skipped by its digest).
    let mut state = engine.state.into_inner().unwrap_or_else(|e| e.into_inner());
    if !args.dry_run && !interrupted && source_client.is_some() {
        let held_back = items
            .iter()
            .filter(|i| i.outcome != Outcome::Done || !i.missing.is_empty())
            .filter(|i| matches!(i.action, Action::Create | Action::Update { .. }))
            .map(|i| i.last_modified)
            .min();
        let old = state.checkpoint.as_deref().and_then(source::parse_time);
        let new = match held_back {
            None => max_seen.max(old),
            // A record without lastModified cannot be bracketed: keep the old checkpoint.
            Some(None) => old,
            Some(Some(lm)) => Some(lm - 1).max(old),
        };
        state.checkpoint = new.map(format_time);
    }
    let reconcile_failed = items.iter().any(|i| {
        matches!(i.action, Action::Delete { .. } | Action::Deactivate { .. })
            && i.outcome != Outcome::Done
    });
    if reconcile && !args.dry_run && !interrupted && !reconcile_failed {
        state.last_reconcile = Some(now_secs);
    }
    if !args.dry_run {
        state.save(&args.state)?;
    }

    let tally = engine.tally.into_inner().unwrap_or_else(|e| e.into_inner());
    let src_stats = source_client.as_ref().map(|c| c.stats().clone());
    let t = target.stats();
    let elapsed = started.elapsed();
    let failures: Vec<Value> = failed
        .iter()
        .map(|i| {
            let e = i.error.clone().unwrap_or_else(|| roster_client::ScimErrorBody {
                status: 0,
                scim_type: None,
                detail: "failed".into(),
                retry_after: None,
            });
            json!({"type": i.kind.type_name(), "key": i.key, "name": display_name(i), "operation": i.action.name(),
                   "status": e.status, "scimType": e.scim_type, "detail": e.detail, "attempts": i.attempts + 1})
        })
        .collect();
    let report = json!({
        "started_at": started_at,
        "duration_ms": elapsed.as_millis() as u64,
        "dry_run": args.dry_run,
        "interrupted": interrupted,
        "source": source_id,
        "target": target.base(),
        "listing": {"mode": listing.mode, "since": listing.since, "fallback_reason": listing.fallback_reason, "resources": listed_count},
        "reconcile": reconcile,
        "target_features": features(&target_cfg),
        "source_features": source_cfg.as_ref().map(features),
        "mode": if use_bulk { "bulk" } else { "single" },
        "checkpoint": {"before": checkpoint_before, "after": state.checkpoint},
        "counts": {
            "planned": items.len(),
            "unchanged": unchanged,
            "created": tally.created,
            "updated": tally.updated,
            "deleted": tally.deleted,
            "deactivated": tally.deactivated,
            "failed": failed.len(),
            "not_attempted": not_done.len(),
            "incomplete": incomplete.len(),
            "retried": tally.retried_items,
            "conflicts_resolved": tally.conflicts_resolved,
            "target_drift": tally.target_drift,
            "verified_after_ambiguity": tally.verified_after_ambiguity,
        },
        "dangling_references": tally.dangling_refs.iter().collect::<Vec<_>>(),
        "requests": {
            "target": t.requests(),
            "source": src_stats.as_ref().map_or(0, |s| s.requests()),
        },
        "bytes": {
            "target_sent": t.bytes_sent(),
            "target_received": t.bytes_received(),
            "source_received": src_stats.as_ref().map_or(0, |s| s.bytes_received()),
        },
        "failures": failures,
    });
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing the report {}", path.display()))?;
    }

    let verb = if args.dry_run {
        "would apply"
    } else {
        "applied"
    };
    eprintln!(
        "roster sync: {} listed ({}), {} unchanged; {verb}: {} created, {} updated, {} deleted, {} deactivated; {} failed{}{} in {:.1}s ({} target requests, {} bytes sent)",
        listed_count,
        listing.mode,
        unchanged,
        if args.dry_run {
            count(&items, "create")
        } else {
            tally.created
        },
        if args.dry_run {
            count(&items, "update")
        } else {
            tally.updated
        },
        if args.dry_run {
            count(&items, "delete")
        } else {
            tally.deleted
        },
        if args.dry_run {
            count(&items, "deactivate")
        } else {
            tally.deactivated
        },
        failed.len(),
        if incomplete.is_empty() {
            String::new()
        } else {
            format!(", {} with unresolved references", incomplete.len())
        },
        if interrupted {
            format!(", interrupted with {} not attempted", not_done.len())
        } else {
            String::new()
        },
        elapsed.as_secs_f64(),
        t.requests(),
        t.bytes_sent(),
    );
    for f in failed.iter().take(20) {
        if let Some(e) = &f.error {
            eprintln!(
                "  failed: {} {} {} (source {}): {e}",
                f.action.name(),
                f.kind.name(),
                display_name(f),
                f.key
            );
        }
    }
    if failed.len() > 20 {
        eprintln!("  … and {} more (see --report)", failed.len() - 20);
    }
    if !tally.dangling_refs.is_empty() {
        eprintln!(
            "  {} references to resources the source does not have were left out",
            tally.dangling_refs.len()
        );
    }
    Ok(if interrupted {
        130
    } else if args.dry_run || failed.is_empty() && incomplete.is_empty() && not_done.is_empty() {
        0
    } else {
        2
    })
}

/// userName / displayName, or the key when the item has no document (deletes).
fn display_name(i: &Item) -> String {
    i.doc
        .value()
        .get(i.kind.name_attr())
        .and_then(Value::as_str)
        .unwrap_or(&i.key)
        .to_owned()
}

fn lock_id(engine: &Engine<'_>, item: &Item) -> Option<String> {
    let state = engine.state.lock().unwrap_or_else(|e| e.into_inner());
    state
        .entries(item.kind)
        .get(&item.key)
        .map(|e| e.id.clone())
}

/// A reconcile that would remove more than half of the resources synced so
/// far (and more than 10) is more likely a broken source than a real change.
fn mass_delete(deletes: usize, known: usize) -> bool {
    deletes > 10 && deletes * 2 > known
}

fn count(items: &[Item], action: &str) -> u64 {
    items.iter().filter(|i| i.action.name() == action).count() as u64
}

fn keys_of(l: &Listing) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut users = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for r in &l.records {
        match r.kind {
            Kind::User => users.insert(r.key.clone()),
            Kind::Group => groups.insert(r.key.clone()),
        };
    }
    (users, groups)
}

fn features(c: &ServiceProviderConfig) -> Value {
    json!({
        "bulk": c.bulk.supported,
        "bulk_max_operations": c.bulk.max_operations,
        "bulk_max_payload_size": c.bulk.max_payload_size,
        "filter": c.filter,
        "patch": c.patch,
        "etag": c.etag,
        "cursor": c.pagination.cursor,
    })
}

/// The plan, one line per change, on stdout.
fn print_plan(items: &[Item], unchanged: u64) {
    let name = display_name;
    let (mut add, mut remove) = (0usize, 0usize);
    for i in items {
        match &i.action {
            Action::Create => println!("create {} {} (source {})", i.kind.name(), name(i), i.key),
            Action::Update { id, members_before } => {
                println!("update {} {} (target {id})", i.kind.name(), name(i));
                if i.kind == Kind::Group {
                    let now: BTreeSet<String> = i
                        .doc
                        .value()
                        .get("members")
                        .and_then(Value::as_array)
                        .map(|ms| {
                            ms.iter()
                                .filter_map(|m| m["value"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Some(before) = members_before {
                        let before: BTreeSet<String> = before.iter().cloned().collect();
                        for k in now.difference(&before) {
                            add += 1;
                            println!("  + member {k}");
                        }
                        for k in before.difference(&now) {
                            remove += 1;
                            println!("  - member {k}");
                        }
                    } else {
                        println!(
                            "  members set to {} (previous membership unknown)",
                            now.len()
                        );
                    }
                }
            }
            Action::Delete { id } => println!("delete {} {} (target {id})", i.kind.name(), i.key),
            Action::Deactivate { id } => {
                println!("deactivate {} {} (target {id})", i.kind.name(), i.key)
            }
        }
        if matches!(i.action, Action::Create) && i.kind == Kind::Group {
            let n = i
                .doc
                .value()
                .get("members")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            add += n;
            if n > 0 {
                println!("  + {n} members");
            }
        }
    }
    println!(
        "plan: {} creates, {} updates, {} deletes, {} deactivations, {add} members added, {remove} removed; {unchanged} unchanged",
        count(items, "create"),
        count(items, "update"),
        count(items, "delete"),
        count(items, "deactivate"),
    );
}

fn now_millis() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i128)
}

#[cfg(test)]
mod tests {
    use super::mass_delete;

    #[test]
    fn mass_delete_guard_needs_both_many_and_most() {
        assert!(!mass_delete(10, 10));
        assert!(mass_delete(11, 20));
        assert!(!mass_delete(11, 22));
        assert!(!mass_delete(5000, 100_000));
    }
}
