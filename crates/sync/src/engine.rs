//! The engine: the target's side of planning (finding what the state does
//! not know in the target) and pushing items (chunked /Bulk or single
//! requests), with retries of exactly the items that failed, keeping the
//! state as the target acknowledges them.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use roster_client::bulk::BulkOpResult;
use roster_client::retry::Backoff;
use roster_client::{
    ChunkBuilder, Error as ClientError, ListQuery, ScimClient, ScimErrorBody,
    ServiceProviderConfig, schemas,
};
use roster_scim::ResourceKind;
use serde_json::{Value, json};

use crate::error::{SyncError, chain};
use crate::options::{DeleteMode, MatchAttr};
use crate::plan::{self, Keys};
use crate::progress::Meter;
use crate::source::{Record, manager};
use crate::state::{Entry, State};
use crate::work::{Action, Item, Outcome, Tally, Verify};

/// The engine's settings, derived from the options and the target's features.
pub struct Opts {
    pub dry_run: bool,
    pub use_bulk: bool,
    pub bulk_max_operations: usize,
    pub bulk_max_payload: usize,
    pub concurrency: usize,
    pub max_retries: u32,
    pub backoff: Backoff,
    pub match_by: Vec<MatchAttr>,
    pub delete_mode: DeleteMode,
    pub state_path: PathBuf,
    /// For a target that does not report totalResults: above this many
    /// unmatched resources of a kind, list the target once instead of one
    /// lookup per resource.
    pub lookup_threshold: usize,
}

/// What happened to one item's request.
enum Sent {
    Ok {
        id: Option<String>,
        version: Option<String>,
    },
    Err {
        err: ScimErrorBody,
        maybe_applied: bool,
    },
    /// The request was not sent (interrupted) or the server did not report on
    /// the operation; `maybe_applied` as for errors.
    Unknown { maybe_applied: bool },
}

enum Next {
    Done,
    /// Send again after the backoff.
    Retry(Option<Duration>),
    /// Send again at once (the item changed form: create became update…).
    Again,
    Failed,
}

/// One operation ready to send, in the words of a /Bulk operation.
struct Op {
    method: &'static str,
    path: String,
    data: Option<Value>,
    /// Source keys of references applied in `data` (groups: members).
    applied_members: Option<Vec<String>>,
    missing: Vec<String>,
    if_match: Option<String>,
}

pub struct Engine<'a> {
    pub target: &'a ScimClient,
    pub cfg: &'a ServiceProviderConfig,
    pub opts: &'a Opts,
    pub state: Mutex<State>,
    pub stop: &'a AtomicBool,
    pub tally: Mutex<Tally>,
    /// Keys planned in this run, by kind: a reference to one of them that has
    /// no target id yet is "missing" (retry later), any other is dangling.
    /// Holds the target id when the plan already knows it (updates), so
    /// that a reference to a resource updated in the same request resolves.
    planned: Mutex<HashMap<(ResourceKind, String), Option<String>>>,
    last_save: Mutex<Instant>,
    /// The payload limit in force; halves when the target answers 413
    /// although the chunk respected the advertised limit.
    bulk_max_payload: AtomicUsize,
    /// Target listing by match attribute, built when many resources need
    /// matching or when the target cannot filter.
    index: tokio::sync::Mutex<HashMap<ResourceKind, TargetIndex>>,
    /// No request before this instant: a 429/503 with Retry-After pauses
    /// every request to the target, not only the one that was refused.
    not_before: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct TargetIndex {
    by: HashMap<(&'static str, String), Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A SCIM filter string literal.
fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

impl<'a> Engine<'a> {
    pub fn new(
        target: &'a ScimClient,
        cfg: &'a ServiceProviderConfig,
        opts: &'a Opts,
        state: State,
        stop: &'a AtomicBool,
    ) -> Self {
        let payload = if opts.bulk_max_payload > 0 {
            opts.bulk_max_payload
        } else {
            1 << 20
        };
        Engine {
            target,
            cfg,
            opts,
            state: Mutex::new(state),
            stop,
            tally: Mutex::new(Tally::default()),
            planned: Mutex::new(HashMap::new()),
            last_save: Mutex::new(Instant::now()),
            bulk_max_payload: AtomicUsize::new(payload),
            index: tokio::sync::Mutex::new(HashMap::new()),
            not_before: Mutex::new(None),
        }
    }

    /// The target id the state holds for an item's resource.
    pub fn target_id_of(&self, item: &Item) -> Option<String> {
        lock(&self.state)
            .entries(item.kind)
            .get(&item.key)
            .map(|e| e.id.clone())
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Saves the state if the last save is older than two seconds (or `force`).
    pub fn save_state(&self, force: bool) -> Result<(), SyncError> {
        if self.opts.dry_run {
            return Ok(());
        }
        let mut last = lock(&self.last_save);
        if !force && last.elapsed() < Duration::from_secs(2) {
            return Ok(());
        }
        lock(&self.state).save(&self.opts.state_path)?;
        *last = Instant::now();
        Ok(())
    }

    /// Remembers a throttling answer's Retry-After for every later request.
    fn throttled(&self, err: &ScimErrorBody) {
        if matches!(err.status, 429 | 503)
            && let Some(after) = err.retry_after
        {
            let until = Instant::now() + after.min(self.opts.backoff.max_retry_after);
            let mut nb = lock(&self.not_before);
            *nb = Some(nb.map_or(until, |t| t.max(until)));
        }
    }

    /// Waits out a Retry-After in force (in slices, so Ctrl-C is noticed).
    async fn wait_throttle(&self) {
        loop {
            let until = *lock(&self.not_before);
            match until {
                Some(t) if t > Instant::now() && !self.stopped() => {
                    tokio::time::sleep((t - Instant::now()).min(Duration::from_millis(100))).await;
                }
                _ => return,
            }
        }
    }

    // ---------------------------------------------------------------- plan

    /// Turns source records into items: unchanged ones (same digest as last
    /// applied) are dropped, known ones become updates, the rest are matched
    /// in the target (never a blind create: a re-run must not duplicate).
    /// With `vanished`, what the state knows that the source no longer has
    /// is removed. Returns the items and how many records were unchanged.
    pub async fn plan(
        &mut self,
        records: Vec<Record>,
        vanished: Option<Keys>,
        progress: &dyn Meter,
    ) -> Result<(Vec<Item>, u64), SyncError> {
        progress.set_total(records.len() as u64);
        let mut draft = plan::classify(records, &lock(&self.state), self.cfg.etag, progress);
        for (kind, idxs) in std::mem::take(&mut draft.unmatched) {
            self.match_in_target(kind, &mut draft.items, idxs).await?;
        }
        let mut items = draft.items;
        {
            let planned = self.planned.get_mut().unwrap_or_else(|e| e.into_inner());
            for i in &items {
                let id = match &i.action {
                    Action::Update { id, .. } => Some(id.clone()),
                    _ => None,
                };
                planned.insert((i.kind, i.key.clone()), id);
            }
        }
        if let Some(present) = vanished {
            let state = lock(&self.state);
            items.extend(plan::removals(&state, &present, self.opts.delete_mode));
        }
        Ok((items, draft.unchanged))
    }

    /// Looks up creates of one kind in the target: a match becomes an update.
    async fn match_in_target(
        &self,
        kind: ResourceKind,
        items: &mut [Item],
        idxs: Vec<usize>,
    ) -> Result<(), ClientError> {
        if !self.cfg.filter || self.index_is_cheaper(kind, idxs.len()).await? {
            self.build_index(kind).await?;
        }
        for i in idxs {
            if let Some(id) = self.lookup(kind, &items[i].doc.value()).await? {
                items[i].action = Action::Update {
                    id,
                    members_before: None,
                };
            }
        }
        Ok(())
    }

    /// Whether listing the target once costs fewer requests than one lookup
    /// per unmatched resource. `count=0` asks only for totalResults; an empty
    /// target needs no listing at all (a first run into a new directory).
    async fn index_is_cheaper(
        &self,
        kind: ResourceKind,
        unmatched: usize,
    ) -> Result<bool, ClientError> {
        let q = ListQuery {
            filter: None,
            attributes: Some("id".into()),
            count: 0,
        };
        let page = self
            .target
            .list_page(
                kind.endpoint(),
                &q,
                &roster_client::Paging::Index { start_index: 1 },
            )
            .await?;
        let Some(total) = page.total_results else {
            return Ok(unmatched > self.opts.lookup_threshold);
        };
        if total == 0 {
            self.index.lock().await.insert(kind, TargetIndex::default());
            return Ok(false);
        }
        let pages = total.div_ceil(self.cfg.page_size(1000));
        Ok(pages <= unmatched as u64)
    }

    /// Lists the target's resources of `kind` by the match attributes.
    async fn build_index(&self, kind: ResourceKind) -> Result<(), ClientError> {
        // Both attributes, whatever --match-by says: a 409 is resolved by name.
        let both = [MatchAttr::ExternalId, MatchAttr::UserName];
        let attrs: Vec<&str> = both.iter().map(|m| m.attr(kind)).collect();
        let q = ListQuery {
            filter: None,
            attributes: Some(attrs.join(",")),
            count: self.cfg.page_size(1000),
        };
        let all = self
            .target
            .list_all(kind.endpoint(), &q, self.cfg.pagination.cursor, |_, _| {})
            .await?;
        let mut idx = TargetIndex::default();
        for r in all {
            let Some(id) = r.get("id").and_then(Value::as_str) else {
                continue;
            };
            for m in &both {
                let attr = m.attr(kind);
                if let Some(v) = r.get(attr).and_then(Value::as_str) {
                    idx.by
                        .entry((attr, fold(*m, v)))
                        .or_default()
                        .push(id.to_owned());
                }
            }
        }
        self.index.lock().await.insert(kind, idx);
        Ok(())
    }

    /// Finds the target resource for a source document by the match
    /// attributes in order; `None` when none matches. Two target resources
    /// matching one attribute is an error: guessing would update the wrong one.
    async fn lookup(&self, kind: ResourceKind, doc: &Value) -> Result<Option<String>, ClientError> {
        self.lookup_by(kind, doc, &self.opts.match_by).await
    }

    async fn lookup_by(
        &self,
        kind: ResourceKind,
        doc: &Value,
        match_by: &[MatchAttr],
    ) -> Result<Option<String>, ClientError> {
        if !self.cfg.filter && !self.index.lock().await.contains_key(&kind) {
            self.build_index(kind).await?;
        }
        let index = self.index.lock().await;
        for m in match_by {
            let attr = m.attr(kind);
            let Some(value) = doc.get(attr).and_then(Value::as_str) else {
                continue;
            };
            let ids: Vec<String> = if let Some(idx) = index.get(&kind) {
                idx.by
                    .get(&(attr, fold(*m, value)))
                    .cloned()
                    .unwrap_or_default()
            } else {
                let q = ListQuery {
                    filter: Some(format!("{attr} eq {}", quote(value))),
                    attributes: Some("id".into()),
                    count: 2,
                };
                let page = self
                    .target
                    .list_page(
                        kind.endpoint(),
                        &q,
                        &roster_client::Paging::Index { start_index: 1 },
                    )
                    .await?;
                page.resources
                    .iter()
                    .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            };
            match ids.len() {
                0 => continue,
                1 => return Ok(ids.into_iter().next()),
                n => {
                    return Err(ClientError::Config(format!(
                        "{n} target {} have {attr} {value:?}; cannot tell which one to update",
                        kind.endpoint()
                    )));
                }
            }
        }
        Ok(None)
    }

    // ---------------------------------------------------------------- build

    /// The target id for a source key, from the state (which holds every
    /// resource acknowledged so far, this run included).
    fn target_id(
        &self,
        state: &State,
        key: &str,
        hint: Option<&str>,
    ) -> Option<(ResourceKind, String)> {
        let order = if hint.is_some_and(|t| t.eq_ignore_ascii_case("Group")) {
            [ResourceKind::Group, ResourceKind::User]
        } else {
            [ResourceKind::User, ResourceKind::Group]
        };
        order
            .into_iter()
            .find_map(|k| state.entries(k).get(key).map(|e| (k, e.id.clone())))
    }

    /// Resolves references and builds the operation for an item. `in_chunk`
    /// maps source keys of creates in the same /Bulk request to their bulkId.
    fn build(&self, item: &Item, in_chunk: &HashMap<(ResourceKind, String), String>) -> Op {
        let path = |id: &str| format!("{}/{id}", item.kind.endpoint());
        let state = lock(&self.state);
        let planned = lock(&self.planned);
        let mut missing = Vec::new();
        let mut dangling = Vec::new();
        let mut resolve = |key: &str, hint: Option<&str>| -> Option<(String, &'static str)> {
            if let Some((k, id)) = self.target_id(&state, key, hint) {
                return Some((id, k.name()));
            }
            let kinds = [ResourceKind::User, ResourceKind::Group];
            for k in kinds {
                if let Some(Some(id)) = planned.get(&(k, key.to_owned())) {
                    return Some((id.clone(), k.name()));
                }
            }
            for k in kinds {
                if let Some(b) = in_chunk.get(&(k, key.to_owned())) {
                    return Some((format!("bulkId:{b}"), k.name()));
                }
            }
            if kinds
                .iter()
                .any(|k| planned.contains_key(&(*k, key.to_owned())))
            {
                missing.push(key.to_owned());
            } else {
                dangling.push(key.to_owned());
            }
            None
        };
        let mut doc = item.doc.value();
        let manager_key = manager(&doc).map(str::to_owned);
        let mut applied = None;
        if let Some(ms) = doc.get_mut("members").and_then(Value::as_array_mut) {
            let mut out = Vec::new();
            let mut keys = Vec::new();
            for m in ms.iter() {
                let Some(key) = m.get("value").and_then(Value::as_str) else {
                    continue;
                };
                if let Some((id, t)) = resolve(key, m.get("type").and_then(Value::as_str)) {
                    out.push(json!({"value": id, "type": t}));
                    keys.push(key.to_owned());
                }
            }
            *ms = out;
            applied = Some(keys);
        }
        if let Some(m) = manager_key {
            let resolved = resolve(&m, Some("User"));
            if let Some(ext) = doc
                .get_mut(schemas::ENTERPRISE_USER)
                .and_then(Value::as_object_mut)
            {
                match resolved {
                    Some((id, _)) => {
                        ext.insert("manager".into(), json!({"value": id}));
                    }
                    None => {
                        ext.remove("manager");
                    }
                }
            }
        }
        drop(state);
        drop(planned);
        if !dangling.is_empty() {
            lock(&self.tally).dangling_refs.extend(dangling);
        }
        match &item.action {
            Action::Create => Op {
                method: "POST",
                path: item.kind.endpoint().to_owned(),
                data: Some(doc),
                applied_members: applied,
                missing,
                if_match: None,
            },
            Action::Update {
                id,
                members_before: Some(before),
            } if item.kind == ResourceKind::Group && self.cfg.patch => {
                let now: Vec<String> = applied.clone().unwrap_or_default();
                let mut ops = Vec::new();
                let mut rest = doc.as_object().cloned().unwrap_or_default();
                rest.remove("members");
                rest.remove("schemas");
                if !rest.is_empty() {
                    ops.push(json!({"op": "replace", "value": rest}));
                }
                let added: Vec<Value> = doc
                    .get("members")
                    .and_then(Value::as_array)
                    .map(|ms| {
                        ms.iter()
                            .zip(&now)
                            .filter(|(_, k)| !before.contains(k))
                            .map(|(m, _)| m.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                if !added.is_empty() {
                    ops.push(json!({"op": "add", "path": "members", "value": added}));
                }
                let state = lock(&self.state);
                for gone in before
                    .iter()
                    .filter(|k| !now.contains(k) && !missing.contains(k))
                {
                    if let Some((_, gid)) = self.target_id(&state, gone, None) {
                        ops.push(json!({"op": "remove", "path": format!("members[value eq {}]", quote(&gid))}));
                    }
                }
                Op {
                    method: "PATCH",
                    path: path(id),
                    data: Some(json!({"schemas": [schemas::PATCH_OP], "Operations": ops})),
                    applied_members: applied,
                    missing,
                    if_match: item.if_match.clone(),
                }
            }
            Action::Update { id, .. } => Op {
                method: "PUT",
                path: path(id),
                data: Some(doc),
                applied_members: applied,
                missing,
                if_match: item.if_match.clone(),
            },
            Action::Delete { id } => Op {
                method: "DELETE",
                path: path(id),
                data: None,
                applied_members: None,
                missing,
                if_match: None,
            },
            Action::Deactivate { id } => Op {
                method: "PATCH",
                path: path(id),
                data: Some(json!({
                    "schemas": [schemas::PATCH_OP],
                    "Operations": [{"op": "replace", "value": {"active": false}}],
                })),
                applied_members: None,
                missing,
                if_match: None,
            },
        }
    }

    // ---------------------------------------------------------------- settle

    /// Records one result: the state on success, the next step otherwise.
    fn settle(&self, item: &mut Item, applied: Option<Vec<String>>, sent: Sent) -> Next {
        let maybe = match &sent {
            Sent::Ok { .. } => false,
            Sent::Err { maybe_applied, .. } | Sent::Unknown { maybe_applied } => *maybe_applied,
        };
        match sent {
            Sent::Ok { id, version } => {
                let mut state = lock(&self.state);
                let entries = state.entries_mut(item.kind);
                let mut tally = lock(&self.tally);
                match &item.action {
                    Action::Create | Action::Update { .. } => {
                        let id = match (&item.action, id) {
                            (Action::Update { id, .. }, _) => id.clone(),
                            (_, Some(id)) => id,
                            (_, None) => {
                                drop(tally);
                                drop(state);
                                item.error = Some(ScimErrorBody {
                                    status: 0,
                                    scim_type: None,
                                    detail:
                                        "the target created the resource but did not say its id"
                                            .into(),
                                    retry_after: None,
                                });
                                item.verify = Some(Verify::Ambiguous);
                                return Next::Again;
                            }
                        };
                        if item.action == Action::Create {
                            tally.created += 1;
                        } else {
                            tally.updated += 1;
                        }
                        entries.insert(
                            item.key.clone(),
                            Entry {
                                id,
                                hash: if item.missing.is_empty() {
                                    item.hash.clone()
                                } else {
                                    String::new()
                                },
                                members: applied,
                                version,
                                deactivated: false,
                            },
                        );
                    }
                    Action::Delete { .. } => {
                        tally.deleted += 1;
                        entries.remove(&item.key);
                    }
                    Action::Deactivate { .. } => {
                        tally.deactivated += 1;
                        if let Some(e) = entries.get_mut(&item.key) {
                            e.deactivated = true;
                            e.hash.clear();
                        }
                    }
                }
                item.outcome = Outcome::Done;
                item.error = None;
                Next::Done
            }
            Sent::Unknown { .. } => {
                if item.action == Action::Create && maybe {
                    item.verify = Some(Verify::Ambiguous);
                }
                if matches!(item.action, Action::Update { .. }) {
                    // A PATCH of memberships may have been half applied; a PUT is idempotent.
                    item.action = demote_patch(&item.action);
                }
                Next::Retry(None)
            }
            Sent::Err { err, .. } => {
                item.error = Some(err.clone());
                let gone = err.status == 404;
                match &item.action {
                    Action::Create if err.is_uniqueness() => {
                        item.verify = Some(Verify::Uniqueness(err));
                        Next::Again
                    }
                    Action::Create if err.is_retriable() || err.status == 0 => {
                        if maybe && !matches!(err.status, 429 | 503) {
                            item.verify = Some(Verify::Ambiguous);
                        }
                        Next::Retry(err.retry_after)
                    }
                    Action::Update { .. } if err.status == 412 && item.if_match.is_some() => {
                        // Edited in the target since our last write: the source
                        // wins, but the operator hears of it (target_drift).
                        lock(&self.tally).target_drift += 1;
                        item.if_match = None;
                        item.action = demote_patch(&item.action);
                        Next::Again
                    }
                    Action::Update { .. } if gone => {
                        // Deleted in the target behind our back: create it again.
                        lock(&self.state).entries_mut(item.kind).remove(&item.key);
                        lock(&self.planned).insert((item.kind, item.key.clone()), None);
                        item.action = Action::Create;
                        item.if_match = None;
                        Next::Again
                    }
                    Action::Delete { .. } | Action::Deactivate { .. } if gone => {
                        lock(&self.state).entries_mut(item.kind).remove(&item.key);
                        lock(&self.tally).deleted +=
                            u64::from(matches!(item.action, Action::Delete { .. }));
                        item.outcome = Outcome::Done;
                        item.error = None;
                        Next::Done
                    }
                    Action::Update { .. } | Action::Delete { .. } | Action::Deactivate { .. }
                        if err.is_retriable() || err.status == 0 =>
                    {
                        item.action = demote_patch(&item.action);
                        Next::Retry(err.retry_after)
                    }
                    _ => Next::Failed,
                }
            }
        }
    }

    /// Before an item is sent again after an ambiguous failure or a 409:
    /// look in the target; found means update, never a second create.
    async fn verify(&self, item: &mut Item) -> Result<(), ClientError> {
        let Some(reason) = item.verify.take() else {
            return Ok(());
        };
        // A 409 names a unique attribute; for users and groups that is the
        // name, so look by it even when --match-by leaves it out.
        let mut by = self.opts.match_by.clone();
        if matches!(reason, Verify::Uniqueness(_)) && !by.contains(&MatchAttr::UserName) {
            by.push(MatchAttr::UserName);
        }
        match self.lookup_by(item.kind, &item.doc.value(), &by).await {
            Ok(Some(id)) => {
                let mut t = lock(&self.tally);
                match reason {
                    Verify::Uniqueness(_) => t.conflicts_resolved += 1,
                    Verify::Ambiguous => t.verified_after_ambiguity += 1,
                }
                item.action = Action::Update {
                    id,
                    members_before: None,
                };
                Ok(())
            }
            Ok(None) => {
                if let Verify::Uniqueness(err) = reason {
                    // Unique on something we do not match by: report the target's words.
                    item.error = Some(err);
                    item.outcome = Outcome::Failed;
                }
                Ok(())
            }
            Err(e) => {
                item.verify = Some(reason);
                Err(e)
            }
        }
    }

    // ---------------------------------------------------------------- execute

    /// Applies `idxs` (in order) until each is done or failed, retrying only
    /// the items whose requests failed in a retriable way.
    pub async fn execute(
        &self,
        items: &mut [Item],
        idxs: Vec<usize>,
        progress: &dyn Meter,
    ) -> Result<(), SyncError> {
        let mut pending = idxs;
        let mut round = 0u32;
        while !pending.is_empty() && !self.stopped() {
            // A listing of the target is only good until our own writes:
            // lookups after them must see the target as it is now.
            self.index.lock().await.clear();
            // Lookups for items whose last try may have been applied, or hit a 409.
            let mut lookup_failed = Vec::new();
            for &i in &pending {
                if items[i].verify.is_some() {
                    match self.verify(&mut items[i]).await {
                        Ok(()) => {}
                        Err(e) if e.is_retriable() => lookup_failed.push((i, e)),
                        Err(e) => {
                            items[i].verify = None;
                            items[i].error = Some(e.to_body());
                            items[i].outcome = Outcome::Failed;
                        }
                    }
                    if items[i].outcome == Outcome::Failed {
                        progress.inc(1);
                    }
                }
            }
            let lookup_failed_idx: BTreeSet<usize> =
                lookup_failed.iter().map(|(i, _)| *i).collect();
            let send: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|i| items[*i].outcome == Outcome::Pending && !lookup_failed_idx.contains(i))
                .collect();
            let results = if self.opts.use_bulk {
                self.run_bulk(items, &send, progress).await
            } else {
                self.run_single(items, &send, progress).await
            };
            let mut retry = Vec::new();
            let mut again = Vec::new();
            let mut wait: Option<Duration> = None;
            for (i, e) in lookup_failed {
                items[i].error = Some(e.to_body());
                wait = wait.max(e.retry_after());
                retry.push(i);
            }
            for (i, next) in results {
                match next {
                    // Counted on the progress bar as they were settled.
                    Next::Done => {}
                    Next::Failed => items[i].outcome = Outcome::Failed,
                    Next::Again => again.push(i),
                    Next::Retry(after) => {
                        wait = wait.max(after);
                        retry.push(i);
                    }
                }
            }
            self.save_state(false)?;
            for &i in &retry {
                items[i].attempts += 1;
                if items[i].attempts > self.opts.max_retries {
                    items[i].outcome = Outcome::Failed;
                    progress.inc(1);
                }
            }
            // A change of form (create → update → create …) counts as an
            // attempt too, with two to spare, so that a target answering in
            // circles cannot keep a run going forever.
            for &i in &again {
                items[i].attempts += 1;
                if items[i].attempts > self.opts.max_retries + 2 {
                    items[i].outcome = Outcome::Failed;
                    progress.inc(1);
                }
            }
            retry.retain(|&i| items[i].outcome == Outcome::Pending);
            again.retain(|&i| items[i].outcome == Outcome::Pending);
            if !retry.is_empty() {
                lock(&self.tally).retried_items += retry.len() as u64;
                let delay = self.opts.backoff.delay(round, wait);
                round += 1;
                tracing::debug!(items = retry.len(), ?delay, "retrying failed items");
                let until = Instant::now() + delay;
                while Instant::now() < until && !self.stopped() {
                    tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100)))
                        .await;
                }
            }
            let mut next: Vec<usize> = retry.into_iter().chain(again).collect();
            // Keep the original order: users before the groups that name them.
            next.sort_unstable();
            next.dedup();
            pending = next;
        }
        Ok(())
    }

    async fn run_single(
        &self,
        items: &mut [Item],
        send: &[usize],
        progress: &dyn Meter,
    ) -> Vec<(usize, Next)> {
        let mut out = Vec::with_capacity(send.len());
        // Built a thousand at a time: the documents of a whole run never sit
        // in memory as requests at once.
        for batch in send.chunks(1000) {
            out.extend(self.run_single_batch(items, batch, progress).await);
        }
        out
    }

    async fn run_single_batch(
        &self,
        items: &mut [Item],
        send: &[usize],
        progress: &dyn Meter,
    ) -> Vec<(usize, Next)> {
        let empty = HashMap::new();
        let mut ops = Vec::with_capacity(send.len());
        for &i in send {
            let op = self.build(&items[i], &empty);
            items[i].missing = op.missing.clone();
            ops.push((i, op));
        }
        let target = self.target;
        let stop = self.stop;
        let mut stream = futures_util::stream::iter(ops)
            .map(|(i, op)| async move {
                self.wait_throttle().await;
                if stop.load(Ordering::Relaxed) {
                    return (
                        i,
                        op.applied_members,
                        Sent::Unknown {
                            maybe_applied: false,
                        },
                    );
                }
                let kind_path = op.path.clone();
                let r = match op.method {
                    "POST" => target
                        .create(
                            kind_path.trim_start_matches('/'),
                            op.data.as_ref().unwrap_or(&Value::Null),
                        )
                        .await
                        .map(|r| (r.id().map(str::to_owned), r.version())),
                    "PUT" => {
                        let (t, id) = split_path(&kind_path);
                        target
                            .replace(
                                t,
                                id,
                                op.data.as_ref().unwrap_or(&Value::Null),
                                op.if_match.as_deref(),
                            )
                            .await
                            .map(|r| (None, r.version()))
                    }
                    "PATCH" => {
                        let (t, id) = split_path(&kind_path);
                        let ops = op
                            .data
                            .as_ref()
                            .and_then(|d| d.get("Operations"))
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        target
                            .patch(t, id, &ops, op.if_match.as_deref())
                            .await
                            .map(|r| (None, r.version()))
                    }
                    _ => {
                        let (t, id) = split_path(&kind_path);
                        target.delete(t, id, None).await.map(|_| (None, None))
                    }
                };
                if let Err(ClientError::Scim { body, .. }) = &r {
                    self.throttled(body);
                }
                let sent = match r {
                    Ok((id, version)) => Sent::Ok { id, version },
                    Err(e) => Sent::Err {
                        maybe_applied: match &e {
                            ClientError::Transport { maybe_applied, .. } => *maybe_applied,
                            ClientError::Scim { body, .. } => body.status >= 500,
                            _ => true,
                        },
                        err: e.to_body(),
                    },
                };
                (i, op.applied_members, sent)
            })
            .buffer_unordered(self.opts.concurrency.max(1));
        let mut out = Vec::with_capacity(send.len());
        while let Some((i, applied, sent)) = stream.next().await {
            let next = self.settle(&mut items[i], applied, sent);
            tick(progress, &next);
            out.push((i, next));
            if let Err(e) = self.save_state(false) {
                tracing::warn!("{}", chain(&e));
            }
        }
        out
    }

    async fn run_bulk(
        &self,
        items: &mut [Item],
        send: &[usize],
        progress: &dyn Meter,
    ) -> Vec<(usize, Next)> {
        let max_ops = self.opts.bulk_max_operations;
        let mut out = Vec::with_capacity(send.len());
        let mut pos = 0;
        while pos < send.len() {
            if self.stopped() {
                out.extend(send[pos..].iter().map(|&i| (i, Next::Retry(None))));
                break;
            }
            let max_bytes = self.bulk_max_payload.load(Ordering::Relaxed);
            let mut chunk = ChunkBuilder::new(max_ops, max_bytes);
            let mut members: Vec<(usize, Option<Vec<String>>)> = Vec::new();
            let mut in_chunk: HashMap<(ResourceKind, String), String> = HashMap::new();
            while pos < send.len() {
                let i = send[pos];
                let op = self.build(&items[i], &in_chunk);
                let mut o = serde_json::Map::new();
                o.insert("method".into(), json!(op.method));
                o.insert("path".into(), json!(op.path));
                o.insert("bulkId".into(), json!(format!("b{i}")));
                if let Some(v) = &op.if_match {
                    o.insert("version".into(), json!(v));
                }
                if let Some(d) = op.data {
                    o.insert("data".into(), d);
                }
                let s = Value::Object(o).to_string();
                if !chunk.fits_alone(s.len()) {
                    items[i].error = Some(ScimErrorBody {
                        status: 413,
                        scim_type: None,
                        detail: format!(
                            "the operation is {} bytes, more than the target's maxPayloadSize ({max_bytes}) allows",
                            s.len()
                        ),
                        retry_after: None,
                    });
                    progress.inc(1);
                    out.push((i, Next::Failed));
                    pos += 1;
                    continue;
                }
                if !chunk.fits(s.len()) {
                    break;
                }
                items[i].missing = op.missing;
                if items[i].action == Action::Create {
                    in_chunk.insert((items[i].kind, items[i].key.clone()), format!("b{i}"));
                }
                chunk.push(s);
                members.push((i, op.applied_members));
                pos += 1;
            }
            if chunk.is_empty() {
                continue;
            }
            let bytes = chunk.bytes();
            let body = chunk.take();
            self.wait_throttle().await;
            match self.target.bulk(body).await {
                Ok(resp) => {
                    let mut by_id: HashMap<String, BulkOpResult> = HashMap::new();
                    let mut unlabelled = Vec::new();
                    for r in resp.operations {
                        match r.bulk_id.clone() {
                            Some(b) => {
                                by_id.insert(b, r);
                            }
                            None => unlabelled.push(r),
                        }
                    }
                    // Servers that echo bulkId only for POST answer the rest in order.
                    let mut unlabelled = unlabelled.into_iter();
                    for (i, applied) in members {
                        let r = by_id.remove(&format!("b{i}")).or_else(|| {
                            if items[i].action == Action::Create {
                                None
                            } else {
                                unlabelled.next()
                            }
                        });
                        let sent = match r {
                            Some(r) if r.is_success() => Sent::Ok {
                                id: r.id(),
                                version: r.version.clone().or_else(|| {
                                    r.response
                                        .as_ref()
                                        .and_then(|b| b.pointer("/meta/version"))
                                        .and_then(Value::as_str)
                                        .map(str::to_owned)
                                }),
                            },
                            Some(r) => Sent::Err {
                                maybe_applied: r.status >= 500,
                                err: r.error(),
                            },
                            // Not reported: not run (failOnErrors) or lost; a create may have happened.
                            None => Sent::Unknown {
                                maybe_applied: true,
                            },
                        };
                        let next = self.settle(&mut items[i], applied, sent);
                        tick(progress, &next);
                        out.push((i, next));
                    }
                }
                Err(e) => {
                    let body = e.to_body();
                    self.throttled(&body);
                    if body.status == 413 {
                        // The target's real limit is below what it advertised: halve and resend.
                        let smaller = (bytes / 2).max(1024);
                        self.bulk_max_payload.fetch_min(smaller, Ordering::Relaxed);
                        tracing::warn!(
                            "the target refused {bytes} bytes of /Bulk; sending at most {smaller}"
                        );
                        for (i, _) in members {
                            items[i].error = Some(body.clone());
                            out.push((i, Next::Again));
                        }
                        continue;
                    }
                    let maybe_applied = match &e {
                        ClientError::Transport { maybe_applied, .. } => *maybe_applied,
                        ClientError::Scim { body, .. } => {
                            body.status >= 500 && !matches!(body.status, 503)
                        }
                        _ => true,
                    };
                    for (i, applied) in members {
                        let next = self.settle(
                            &mut items[i],
                            applied,
                            Sent::Err {
                                err: body.clone(),
                                maybe_applied,
                            },
                        );
                        tick(progress, &next);
                        out.push((i, next));
                    }
                }
            }
            if let Err(e) = self.save_state(false) {
                tracing::warn!("{}", chain(&e));
            }
        }
        out
    }
}

/// Advances the progress bar for an item that reached its end.
fn tick(progress: &dyn Meter, next: &Next) {
    if matches!(next, Next::Done | Next::Failed) {
        progress.inc(1);
    }
}

/// A membership PATCH retried after an unclear failure becomes a PUT: the PATCH
/// may have been half applied, and a full replace is idempotent.
fn demote_patch(a: &Action) -> Action {
    match a {
        Action::Update { id, .. } => Action::Update {
            id: id.clone(),
            members_before: None,
        },
        other => other.clone(),
    }
}

fn split_path(p: &str) -> (&str, &str) {
    let p = p.trim_start_matches('/');
    p.split_once('/').unwrap_or((p, ""))
}

/// Match values: externalId is case-exact (RFC 7643 §3.1), names are not.
fn fold(m: MatchAttr, v: &str) -> String {
    match m {
        MatchAttr::ExternalId => v.to_owned(),
        MatchAttr::UserName => v.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::source::digest;

    #[test]
    fn digest_ignores_key_order_but_not_values() {
        let a = json!({"userName": "a", "name": {"givenName": "A", "familyName": "B"}});
        let b = json!({"name": {"familyName": "B", "givenName": "A"}, "userName": "a"});
        let c = json!({"name": {"familyName": "B", "givenName": "A"}, "userName": "b"});
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&c));
        assert_eq!(digest(&a).len(), 24);
    }

    #[test]
    fn filter_literals_are_escaped() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(split_path("/Users/123"), ("Users", "123"));
    }
}
