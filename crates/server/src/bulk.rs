//! The /Bulk executor (RFC 7644 §3.7).
//!
//! Everything that does not depend on other operations (parsing, validation,
//! password hashing) happens before the transaction; the writer then runs the
//! operations in dependency order inside ONE transaction, each in its own
//! savepoint, so a failing operation rolls back alone and the request commits
//! once. Idempotency-Key replies are checked and stored in that same
//! transaction, so a retried request is applied exactly once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use roster_scim::ScimError;
use roster_scim::bulk::{
    BULK_ID_PREFIX, BULK_RESPONSE, BulkOperation, BulkRequest, Method, Step, plan, references_in,
    strip_references, substitute,
};
use roster_scim::schema::SchemaRegistry;
use roster_store::{IdempotentReply, Kind, NewResource, StoreError, Tx, in_transaction};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::limits::{WriteLimits, patch_request};
use crate::request::{etag, parse_version};
use crate::service::{hash_passwords, patch_fn, prepare_create, replace_fn};
use crate::state::AppState;

/// What can be done for an operation before the transaction opens.
enum Prepared {
    /// A create with no references: validated already.
    Create(NewResource),
    /// A create whose data holds bulkId references: validated once they resolve.
    CreateLater(Value),
    Replace(Value),
    Patch(Value),
    Delete,
}

struct Op {
    bulk_id: Option<String>,
    method: Method,
    kind: Kind,
    /// The target id, possibly `bulkId:x`.
    target: Option<String>,
    /// The target id once its reference resolves, for the result's location.
    resolved: Option<String>,
    version: Option<i64>,
    prepared: Prepared,
    refs: BTreeSet<String>,
}

/// Runs a BulkRequest and returns the BulkResponse, or the stored one for a replayed key.
pub async fn execute(
    state: &AppState,
    dir: &str,
    base: &str,
    body: Value,
    idempotency: Option<(String, Vec<u8>)>,
) -> ApiResult<Value> {
    let request = BulkRequest::from_json(body, state.config.bulk_max_operations)?;
    let fail_on_errors = request.fail_on_errors;
    let mut raws = request.operations;
    let mut ops: Vec<Result<Op, ScimError>> = Vec::with_capacity(raws.len());
    for raw in &mut raws {
        ops.push(prepare(state, dir, raw).await);
    }
    let refs: Vec<BTreeSet<String>> = ops
        .iter()
        .map(|o| o.as_ref().map(|o| o.refs.clone()).unwrap_or_default())
        .collect();
    // A POST that is invalid before it runs still defines its bulkId: its users
    // are ordered after it and fail naming it, not as if it did not exist.
    let defines: Vec<Option<String>> = raws
        .iter()
        .map(|raw| match Method::parse(&raw.method_text) {
            Some(Method::Post) => raw.bulk_id.clone(),
            _ => None,
        })
        .collect();
    let failed_early: HashSet<String> = raws
        .iter()
        .zip(&ops)
        .filter(|(_, op)| op.is_err())
        .filter_map(|(raw, _)| raw.bulk_id.clone())
        .collect();
    let steps = plan(&refs, &defines);
    // The names the creates will take, checked by the store in one go.
    let expected: Vec<(Kind, String)> = ops
        .iter()
        .filter_map(|op| op.as_ref().ok())
        .filter_map(|op| match &op.prepared {
            Prepared::Create(new) => {
                let attr = if new.kind == Kind::User {
                    "userName"
                } else {
                    "displayName"
                };
                let name = new.doc.get(attr)?.as_str()?;
                Some((new.kind, roster_scim::values::fold(name)))
            }
            _ => None,
        })
        .collect();
    let reg = state.reg.clone();
    let write_limits = WriteLimits::from(state.config.as_ref());
    let base = base.to_owned();
    let window_ms = state.config.idempotency_window_secs.saturating_mul(1000);
    // Any error out of this closure rolls the whole request back: a reply that
    // cannot be remembered must not leave its changes applied.
    let outcome = in_transaction(state.store.as_ref(), dir, move |tx| {
        let run_request = || -> Result<Value, ScimError> {
            if let Some((key, hash)) = &idempotency {
                match tx.idempotent_reply(key, window_ms) {
                    Ok(Some(prev)) if &prev.request_hash == hash => return Ok(prev.response),
                    Ok(Some(_)) => return Err(crate::idempotency::conflict()),
                    Ok(None) => {}
                    Err(e) => return Err(ApiError::from(e).0),
                }
            }
            tx.expect_creates(&expected)
                .map_err(|e| ApiError::from(e).0)?;
            let mut run = Run {
                tx,
                reg: &reg,
                limits: write_limits,
                ids: HashMap::new(),
                failed: failed_early,
                created: HashMap::new(),
            };
            let mut results: Vec<Value> = Vec::new();
            let mut errors = 0u64;
            let mut ops = ops;
            let mut cycle: Option<Cycle> = None;
            for step in steps {
                // A reference cycle is one unit, so failOnErrors never stops inside one.
                if cycle.is_none() && fail_on_errors.is_some_and(|limit| errors >= limit) {
                    break;
                }
                let first_half = matches!(step, Step::CreateWithout(..));
                let second_half = matches!(step, Step::Complete(..));
                if first_half && cycle.is_none() {
                    run.tx.begin_group().map_err(scim_error)?;
                    cycle = Some(Cycle::default());
                }
                let (i, result) = run.step(&mut ops, step);
                let done = if let Some(c) = cycle.as_mut() {
                    c.members += usize::from(first_half);
                    c.completed += usize::from(second_half);
                    c.results.extend(result.map(|r| (i, r)));
                    if c.completed < c.members {
                        continue;
                    }
                    let c = cycle.take().unwrap_or_default();
                    run.close_cycle(c, &ops)?
                } else {
                    match result {
                        Some(r) => vec![(i, r)],
                        None => continue,
                    }
                };
                for (i, result) in done {
                    if result.is_err() {
                        errors += 1;
                    }
                    results.push(render_result(&base, &raws[i], &ops[i], result));
                }
            }
            let response = json!({"schemas": [BULK_RESPONSE], "Operations": results});
            if let Some((key, hash)) = &idempotency {
                let reply = IdempotentReply {
                    request_hash: hash.clone(),
                    response: response.clone(),
                };
                if let Err(e) = run.tx.remember_reply(key, &reply) {
                    return Err(ApiError::from(e).0);
                }
            }
            Ok(response)
        };
        run_request().map_err(StoreError::from)
    })
    .await?;
    Ok(outcome)
}

/// Takes the operation's data (what stays of `raw` is what its result names).
async fn prepare(state: &AppState, dir: &str, raw: &mut BulkOperation) -> Result<Op, ScimError> {
    let limits = WriteLimits::from(state.config.as_ref());
    let (method, target) = raw.parsed.clone()?;
    let kind = match target.endpoint.to_ascii_lowercase().as_str() {
        "users" => Kind::User,
        "groups" => Kind::Group,
        _ => {
            return Err(ScimError::not_found(format!(
                "no endpoint /{}; bulk operations address /Users and /Groups",
                target.endpoint
            )));
        }
    };
    let mut data = raw.data.take().unwrap_or(Value::Null);
    let mut refs = BTreeSet::new();
    references_in(&data, &mut refs);
    if let Some(id) = &target.id {
        references_in(&Value::String(id.clone()), &mut refs);
    }
    if method != Method::Delete {
        // A target named by bulkId does not exist yet, so it has no password to keep.
        let existing = target
            .id
            .as_deref()
            .filter(|id| !id.starts_with(BULK_ID_PREFIX));
        hash_passwords(state, dir, kind, existing, &mut data)
            .await
            .map_err(|e| e.0)?;
    }
    let prepared = match method {
        Method::Post if refs.is_empty() => {
            Prepared::Create(prepare_create(&state.reg, kind, &data, limits)?)
        }
        Method::Post => Prepared::CreateLater(data),
        Method::Put => Prepared::Replace(data),
        Method::Patch => {
            if refs.is_empty() {
                // Fail malformed PATCH bodies early; references are parsed after they resolve.
                patch_request(&data, limits)?;
            }
            Prepared::Patch(data)
        }
        Method::Delete => Prepared::Delete,
    };
    Ok(Op {
        version: raw
            .version
            .as_deref()
            .map(|v| parse_version(v).unwrap_or(-1)),
        bulk_id: raw.bulk_id.clone(),
        method,
        kind,
        target: target.id,
        resolved: None,
        prepared,
        refs,
    })
}

/// One executed operation: its id and version on success.
type OpResult = Result<(String, i64), ScimError>;

/// The creates of one reference cycle, run as a unit.
#[derive(Default)]
struct Cycle {
    members: usize,
    completed: usize,
    results: Vec<(usize, OpResult)>,
}

struct Run<'a> {
    tx: &'a mut dyn Tx,
    reg: &'a Arc<SchemaRegistry>,
    limits: WriteLimits,
    /// bulkId → created id.
    ids: HashMap<String, String>,
    /// bulkIds whose operation failed.
    failed: HashSet<String>,
    /// Creates of a reference cycle waiting to be completed: index → (id, version).
    created: HashMap<usize, (String, i64)>,
}

impl Run<'_> {
    /// Executes one step; `None` when the step produces no result of its own yet.
    fn step(&mut self, ops: &mut [Result<Op, ScimError>], step: Step) -> (usize, Option<OpResult>) {
        let i = match &step {
            Step::Run(i) | Step::CreateWithout(i, _) | Step::Complete(i) => *i,
        };
        let op = match &mut ops[i] {
            Ok(op) => op,
            Err(e) => return (i, Some(Err(e.clone()))),
        };
        if op.method != Method::Post {
            op.resolved = self.target(op).ok();
        }
        let result = match step {
            Step::Run(_) => self.run(op),
            Step::CreateWithout(_, unresolved) => {
                let r = self.create_without(op, &unresolved);
                match r {
                    Ok(done) => {
                        self.created.insert(i, done);
                        return (i, None);
                    }
                    Err(e) => Err(e),
                }
            }
            Step::Complete(_) => {
                if !self.created.contains_key(&i) {
                    // Its first half failed and was reported then.
                    return (i, None);
                }
                self.complete(i, op)
            }
        };
        if let Some(b) = &op.bulk_id {
            match &result {
                Ok((id, _)) if op.method == Method::Post => {
                    self.ids.insert(b.clone(), id.clone());
                }
                Err(_) => {
                    self.failed.insert(b.clone());
                }
                _ => {}
            }
        }
        (i, Some(result))
    }

    fn resolve(&self, v: &mut Value) -> Result<(), ScimError> {
        substitute(v, &self.ids).map_err(|missing| self.unresolved(&missing))
    }

    fn unresolved(&self, name: &str) -> ScimError {
        let why = if self.failed.contains(name) {
            "whose operation failed"
        } else {
            "which no earlier operation in this request created"
        };
        ScimError::new(
            409,
            None,
            format!("the operation references bulkId:{name}, {why}"),
        )
    }

    fn target(&self, op: &Op) -> Result<String, ScimError> {
        let mut t = Value::String(op.target.clone().unwrap_or_default());
        self.resolve(&mut t)?;
        Ok(t.as_str().unwrap_or_default().to_owned())
    }

    fn run(&mut self, op: &mut Op) -> OpResult {
        let prepared = std::mem::replace(&mut op.prepared, Prepared::Delete);
        let stored = match prepared {
            Prepared::Create(new) => self.tx.create(new),
            Prepared::CreateLater(mut data) => {
                self.resolve(&mut data)?;
                let new = prepare_create(self.reg, op.kind, &data, self.limits)?;
                self.tx.create(new)
            }
            Prepared::Replace(mut data) => {
                self.resolve(&mut data)?;
                let id = self.target(op)?;
                let f = replace_fn(self.reg.clone(), op.kind, data, self.limits);
                self.tx.update(op.kind, &id, op.version, f)
            }
            Prepared::Patch(mut data) => {
                self.resolve(&mut data)?;
                let id = self.target(op)?;
                let request = patch_request(&data, self.limits)?;
                let f = patch_fn(self.reg.clone(), op.kind, request, self.limits);
                self.tx.update(op.kind, &id, op.version, f)
            }
            Prepared::Delete => {
                let id = self.target(op)?;
                return self
                    .tx
                    .delete(op.kind, &id, op.version)
                    .map(|()| (id, 0))
                    .map_err(scim_error);
            }
        };
        stored.map(|s| (s.id, s.version)).map_err(scim_error)
    }

    /// First half of a create in a reference cycle: without the references into the cycle.
    fn create_without(&mut self, op: &Op, unresolved: &BTreeSet<String>) -> OpResult {
        let mut data = match &op.prepared {
            Prepared::CreateLater(d) => d.clone(),
            _ => return Err(ScimError::internal("a cycle member is not a create")),
        };
        strip_references(&mut data, unresolved);
        self.resolve(&mut data)?;
        let new = prepare_create(self.reg, op.kind, &data, self.limits)?;
        let stored = self.tx.create(new).map_err(scim_error)?;
        if let Some(b) = &op.bulk_id {
            self.ids.insert(b.clone(), stored.id.clone());
        }
        Ok((stored.id, stored.version))
    }

    /// Second half: replace with the full data.
    fn complete(&mut self, i: usize, op: &Op) -> OpResult {
        let Some((id, _)) = self.created.remove(&i) else {
            return Err(ScimError::internal("completing a create that was not made"));
        };
        let mut data = match &op.prepared {
            Prepared::CreateLater(d) => d.clone(),
            _ => return Err(ScimError::internal("a cycle member is not a create")),
        };
        self.resolve(&mut data)?;
        let f = replace_fn(self.reg.clone(), op.kind, data, self.limits);
        self.tx
            .update(op.kind, &id, None, f)
            .map(|s| (s.id, s.version))
            .map_err(scim_error)
    }

    /// Keeps a cycle whose members all succeeded. Otherwise undoes all of it:
    /// every member reaches the failed one through references, so none can be
    /// complete, and a half-made member must leave no resource and no event.
    fn close_cycle(
        &mut self,
        mut cycle: Cycle,
        ops: &[Result<Op, ScimError>],
    ) -> Result<Vec<(usize, OpResult)>, ScimError> {
        let culprit = cycle
            .results
            .iter()
            .find(|(_, r)| r.is_err())
            .map(|(i, _)| *i);
        self.tx.end_group(culprit.is_none()).map_err(scim_error)?;
        if let Some(culprit) = culprit {
            self.created.clear();
            let bulk_id = |i: usize| ops[i].as_ref().ok().and_then(|o| o.bulk_id.clone());
            let name = bulk_id(culprit).unwrap_or_default();
            for (i, result) in &mut cycle.results {
                if let Some(b) = bulk_id(*i) {
                    self.ids.remove(&b);
                    self.failed.insert(b);
                }
                if result.is_ok() {
                    *result = Err(ScimError::new(
                        409,
                        None,
                        format!(
                            "the operation is in a reference cycle with bulkId:{name}, whose operation failed; nothing of the cycle was kept"
                        ),
                    ));
                }
            }
        }
        cycle.results.sort_by_key(|(i, _)| *i);
        Ok(cycle.results)
    }
}

fn scim_error(e: StoreError) -> ScimError {
    ApiError::from(e).0
}

fn render_result(
    base: &str,
    raw: &BulkOperation,
    op: &Result<Op, ScimError>,
    result: OpResult,
) -> Value {
    let mut out = Map::new();
    out.insert("method".into(), Value::String(raw.method_text.clone()));
    if let Some(b) = &raw.bulk_id {
        out.insert("bulkId".into(), Value::String(b.clone()));
    }
    let location = |op: &Op, id: &str| {
        let endpoint = if op.kind == Kind::User {
            "Users"
        } else {
            "Groups"
        };
        Value::String(format!("{base}/{endpoint}/{id}"))
    };
    let outcome = match op {
        Ok(op) => result.map(|done| (op, done)).map_err(|e| (Some(op), e)),
        Err(e) => Err((None, e.clone())),
    };
    crate::metrics::bulk_operation(&raw.method_text, outcome.is_ok());
    match outcome {
        Ok((op, (id, version))) => {
            // RFC 7644 §3.7.3: location is required in every result but a failed POST.
            out.insert("location".into(), location(op, &id));
            if op.method != Method::Delete {
                out.insert("version".into(), Value::String(etag(version)));
            }
            let status = match op.method {
                Method::Post => "201",
                Method::Delete => "204",
                _ => "200",
            };
            out.insert("status".into(), Value::String(status.into()));
        }
        Err((op, e)) => {
            if let Some(op) = op
                && let Some(id) = &op.resolved
            {
                out.insert("location".into(), location(op, id));
            }
            out.insert("status".into(), Value::String(e.status.to_string()));
            out.insert("response".into(), e.to_json());
        }
    }
    Value::Object(out)
}
