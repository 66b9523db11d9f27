//! What a run tells: the JSON report (`--report`), the summary lines, and
//! for a dry run the plan, one line per change.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use roster_client::{ScimErrorBody, ServiceProviderConfig};
use roster_scim::ResourceKind;
use serde_json::{Value, json};

use crate::fetch::Endpoints;
use crate::source::Listing;
use crate::work::{Action, Item, Outcome, Tally};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every item is in the target (or, for a dry run, the plan is made).
    Complete,
    /// Some items failed, were not attempted, or still miss a reference.
    Incomplete,
    /// Interrupted: what the target acknowledged is saved, the rest is not attempted.
    Interrupted,
}

/// The outcome of a run that went to the end.
#[derive(Debug, Clone)]
pub struct Report {
    status: Status,
    json: Value,
    summary: String,
    plan: Option<String>,
}

impl Report {
    /// How the run ended.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The report document (docs/sync.md describes its fields).
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// The summary for the operator, one or more lines, each ending in a newline:
    /// counts, time and requests, then the first failures.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// For a dry run, the plan: one line per change, then the totals.
    pub fn plan(&self) -> Option<&str> {
        self.plan.as_deref()
    }
}

/// What the report says besides the items.
pub struct Facts<'a> {
    pub started_at: String,
    pub elapsed: Duration,
    pub dry_run: bool,
    pub interrupted: bool,
    pub source_id: &'a str,
    pub ends: &'a Endpoints,
    pub listing: &'a Listing,
    pub listed: usize,
    pub reconcile: bool,
    pub use_bulk: bool,
    pub checkpoint_before: Option<String>,
    pub checkpoint_after: Option<String>,
    pub unchanged: u64,
}

/// Builds the report of a run from its items and tally.
pub fn build(f: &Facts<'_>, items: &[Item], tally: &Tally) -> Report {
    let failed: Vec<&Item> = items
        .iter()
        .filter(|i| i.outcome == Outcome::Failed)
        .collect();
    let not_done = items
        .iter()
        .filter(|i| i.outcome == Outcome::Pending)
        .count();
    let incomplete = items
        .iter()
        .filter(|i| i.outcome == Outcome::Done && !i.missing.is_empty())
        .count();
    let status = if f.interrupted {
        Status::Interrupted
    } else if f.dry_run || failed.is_empty() && incomplete == 0 && not_done == 0 {
        Status::Complete
    } else {
        Status::Incomplete
    };
    let source_cfg = f.ends.source.scim().map(|(_, cfg)| cfg);
    let src_stats = f.ends.source.scim().map(|(c, _)| c.stats().clone());
    let t = f.ends.target.stats();
    let failures: Vec<Value> = failed
        .iter()
        .map(|i| {
            let e = i.error.clone().unwrap_or_else(|| ScimErrorBody {
                status: 0,
                scim_type: None,
                detail: "failed".into(),
                retry_after: None,
            });
            json!({"type": i.kind.name(), "key": i.key, "name": display_name(i), "operation": i.action.name(),
                   "status": e.status, "scimType": e.scim_type, "detail": e.detail, "attempts": i.attempts + 1})
        })
        .collect();
    let listing = f.listing;
    let json = json!({
        "started_at": f.started_at,
        "duration_ms": f.elapsed.as_millis() as u64,
        "dry_run": f.dry_run,
        "interrupted": f.interrupted,
        "source": f.source_id,
        "target": f.ends.target.base(),
        "listing": {"mode": listing.mode, "since": listing.since, "fallback_reason": listing.fallback_reason, "resources": f.listed},
        "reconcile": f.reconcile,
        "target_features": features(&f.ends.target_cfg),
        "source_features": source_cfg.map(features),
        "mode": if f.use_bulk { "bulk" } else { "single" },
        "checkpoint": {"before": f.checkpoint_before, "after": f.checkpoint_after},
        "counts": {
            "planned": items.len(),
            "unchanged": f.unchanged,
            "created": tally.created,
            "updated": tally.updated,
            "deleted": tally.deleted,
            "deactivated": tally.deactivated,
            "failed": failed.len(),
            "not_attempted": not_done,
            "incomplete": incomplete,
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

    let (verb, created, updated, deleted, deactivated) = if f.dry_run {
        (
            "would apply",
            count(items, "create"),
            count(items, "update"),
            count(items, "delete"),
            count(items, "deactivate"),
        )
    } else {
        (
            "applied",
            tally.created,
            tally.updated,
            tally.deleted,
            tally.deactivated,
        )
    };
    let mut summary = format!(
        "roster sync: {} listed ({}), {} unchanged; {verb}: {created} created, {updated} updated, {deleted} deleted, {deactivated} deactivated; {} failed{}{} in {:.1}s ({} target requests, {} bytes sent)\n",
        f.listed,
        listing.mode,
        f.unchanged,
        failed.len(),
        if incomplete == 0 {
            String::new()
        } else {
            format!(", {incomplete} with unresolved references")
        },
        if f.interrupted {
            format!(", interrupted with {not_done} not attempted")
        } else {
            String::new()
        },
        f.elapsed.as_secs_f64(),
        t.requests(),
        t.bytes_sent(),
    );
    for i in failed.iter().take(20) {
        if let Some(e) = &i.error {
            let _ = writeln!(
                summary,
                "  failed: {} {} {} (source {}): {e}",
                i.action.name(),
                i.kind.noun(),
                display_name(i),
                i.key
            );
        }
    }
    if failed.len() > 20 {
        let _ = writeln!(summary, "  … and {} more (see --report)", failed.len() - 20);
    }
    if !tally.dangling_refs.is_empty() {
        let _ = writeln!(
            summary,
            "  {} references to resources the source does not have were left out",
            tally.dangling_refs.len()
        );
    }
    Report {
        status,
        json,
        summary,
        plan: f.dry_run.then(|| plan_text(items, f.unchanged)),
    }
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

fn count(items: &[Item], action: &str) -> u64 {
    items.iter().filter(|i| i.action.name() == action).count() as u64
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

/// The plan, one line per change.
fn plan_text(items: &[Item], unchanged: u64) -> String {
    let name = display_name;
    let mut out = String::new();
    let (mut add, mut remove) = (0usize, 0usize);
    for i in items {
        let kind = i.kind.noun();
        match &i.action {
            Action::Create => {
                let _ = writeln!(out, "create {kind} {} (source {})", name(i), i.key);
            }
            Action::Update { id, members_before } => {
                let _ = writeln!(out, "update {kind} {} (target {id})", name(i));
                if i.kind == ResourceKind::Group {
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
                            let _ = writeln!(out, "  + member {k}");
                        }
                        for k in before.difference(&now) {
                            remove += 1;
                            let _ = writeln!(out, "  - member {k}");
                        }
                    } else {
                        let _ = writeln!(
                            out,
                            "  members set to {} (previous membership unknown)",
                            now.len()
                        );
                    }
                }
            }
            Action::Delete { id } => {
                let _ = writeln!(out, "delete {kind} {} (target {id})", i.key);
            }
            Action::Deactivate { id } => {
                let _ = writeln!(out, "deactivate {kind} {} (target {id})", i.key);
            }
        }
        if matches!(i.action, Action::Create) && i.kind == ResourceKind::Group {
            let n = i
                .doc
                .value()
                .get("members")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            add += n;
            if n > 0 {
                let _ = writeln!(out, "  + {n} members");
            }
        }
    }
    let _ = writeln!(
        out,
        "plan: {} creates, {} updates, {} deletes, {} deactivations, {add} members added, {remove} removed; {unchanged} unchanged",
        count(items, "create"),
        count(items, "update"),
        count(items, "delete"),
        count(items, "deactivate"),
    );
    out
}
