//! One poll of a Google directory: read users, groups and memberships page
//! by page and apply the differences through the same service calls as SCIM
//! requests, so the app sees the same `dsync.*` events. Memory holds a page
//! and the ids seen so far, never the directory.

use std::collections::{HashMap, HashSet};

use roster_domain::google::{
    GOOGLE_USER_SCHEMA, GROUP_FIELDS, MEMBER_FIELDS, USER_FIELDS, group_to_scim, member_ref,
    user_to_scim,
};
use roster_scim::validate::normalize;
use roster_store::google::GoogleSource;
use roster_store::{Kind, Stored};
use serde_json::{Value, json};

use super::client::{DirectoryClient, GoogleError, MAX_GROUPS, MAX_MEMBERS, MAX_USERS};
use crate::service;
use crate::state::AppState;

/// Why a poll stopped; the directory keeps what earlier pages applied, and
/// nothing is deleted.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Google(#[from] GoogleError),
    #[error("writing {what} failed: {detail}")]
    Write { what: String, detail: String },
    #[error("another instance took over this directory's poll")]
    LeaseLost,
}

/// What a poll changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub memberships: usize,
}

/// Keeps the poller's lease while a poll runs; false when it was lost.
pub trait Lease {
    fn renew(&self) -> impl Future<Output = bool> + Send;
}

fn write_error(what: impl Into<String>, e: crate::error::ApiError) -> PollError {
    PollError::Write {
        what: what.into(),
        detail: e.0.detail,
    }
}

/// The scope of a listing: the domain when the directory names one, else the customer.
fn scope(source: &GoogleSource) -> (&'static str, String) {
    match &source.domain {
        Some(d) => ("domain", d.clone()),
        None => ("customer", source.customer.clone()),
    }
}

/// Whether writing `body` over `current` would change it: the body is
/// normalized as a PUT would normalize it and compared with what is stored.
fn differs(state: &AppState, kind: Kind, current: &Stored, body: &Value) -> bool {
    let Ok(rt) = state.resource_type(kind) else {
        return true;
    };
    match normalize(&state.reg, rt, body, Some(&current.doc)) {
        Ok(mut doc) => {
            if let (Some(p), Value::Object(o)) = (current.doc.get("password"), &mut doc) {
                o.insert("password".into(), p.clone());
            }
            doc != current.doc
        }
        Err(_) => true,
    }
}

struct Poll<'a, L> {
    state: &'a AppState,
    client: &'a DirectoryClient,
    source: &'a GoogleSource,
    lease: &'a L,
    summary: Summary,
    /// Google user id -> stored user id, for every user listed so far.
    users: HashMap<String, String>,
    /// Google group id -> stored group id and its body.
    groups: HashMap<String, (String, Value)>,
    /// Whether the User schema carries the Google extension (customSchemas).
    custom_schemas: bool,
}

pub async fn run<L: Lease>(
    state: &AppState,
    client: &DirectoryClient,
    source: &GoogleSource,
    lease: &L,
) -> Result<Summary, PollError> {
    let custom_schemas = state.resource_type(Kind::User).is_ok_and(|rt| {
        rt.extensions
            .iter()
            .any(|e| e.schema.eq_ignore_ascii_case(GOOGLE_USER_SCHEMA))
    });
    let mut poll = Poll {
        state,
        client,
        source,
        lease,
        summary: Summary::default(),
        users: HashMap::new(),
        groups: HashMap::new(),
        custom_schemas,
    };
    poll.users().await?;
    poll.groups().await?;
    poll.memberships().await?;
    // Only a complete listing says who is gone.
    poll.delete_unseen(Kind::Group).await?;
    poll.delete_unseen(Kind::User).await?;
    Ok(poll.summary)
}

impl<L: Lease> Poll<'_, L> {
    fn dir(&self) -> &str {
        &self.source.directory_id
    }

    async fn keep_lease(&self) -> Result<(), PollError> {
        if self.lease.renew().await {
            Ok(())
        } else {
            Err(PollError::LeaseLost)
        }
    }

    /// Creates or replaces one resource per body, keyed by its externalId;
    /// returns (externalId, stored id) of each.
    async fn upsert(
        &mut self,
        kind: Kind,
        bodies: Vec<Value>,
    ) -> Result<Vec<(String, String, Value)>, PollError> {
        let ext: Vec<String> = bodies
            .iter()
            .filter_map(|b| b.get("externalId").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        let stored: HashMap<String, Stored> = self
            .state
            .store
            .by_external_ids(self.dir(), kind, ext)
            .await
            .map_err(|e| write_error("the stored resources", e.into()))?
            .into_iter()
            .filter_map(|s| {
                let ext = s.doc.get("externalId")?.as_str()?.to_owned();
                Some((ext, s))
            })
            .collect();
        let mut out = Vec::with_capacity(bodies.len());
        for body in bodies {
            let Some(ext) = body.get("externalId").and_then(Value::as_str) else {
                continue;
            };
            let ext = ext.to_owned();
            let what = || format!("{} {ext}", kind.name());
            let id = match stored.get(&ext) {
                None => {
                    let s = service::create(self.state, self.dir(), kind, body.clone())
                        .await
                        .map_err(|e| write_error(what(), e))?;
                    self.summary.created += 1;
                    s.id
                }
                Some(current) if differs(self.state, kind, current, &body) => {
                    service::replace(
                        self.state,
                        self.dir(),
                        kind,
                        &current.id,
                        None,
                        body.clone(),
                    )
                    .await
                    .map_err(|e| write_error(what(), e))?;
                    self.summary.updated += 1;
                    current.id.clone()
                }
                Some(current) => current.id.clone(),
            };
            out.push((ext, id, body));
        }
        Ok(out)
    }

    async fn users(&mut self) -> Result<(), PollError> {
        let (scope_key, scope_value) = scope(self.source);
        let query = [
            (scope_key, scope_value),
            ("maxResults", MAX_USERS.to_string()),
            ("projection", "full".to_owned()),
            ("fields", USER_FIELDS.to_owned()),
        ];
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .page("users", &query, "users", token.as_deref())
                .await?;
            let bodies: Vec<Value> = page
                .items
                .iter()
                .filter_map(user_to_scim)
                .map(|mut b| {
                    if !self.custom_schemas
                        && let Value::Object(o) = &mut b
                    {
                        o.remove(GOOGLE_USER_SCHEMA);
                        if let Some(Value::Array(s)) = o.get_mut("schemas") {
                            s.retain(|v| v != GOOGLE_USER_SCHEMA);
                        }
                    }
                    b
                })
                .collect();
            for (ext, id, _) in self.upsert(Kind::User, bodies).await? {
                self.users.insert(ext, id);
            }
            self.keep_lease().await?;
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    async fn groups(&mut self) -> Result<(), PollError> {
        let (scope_key, scope_value) = scope(self.source);
        let query = [
            (scope_key, scope_value),
            ("maxResults", MAX_GROUPS.to_string()),
            ("fields", GROUP_FIELDS.to_owned()),
        ];
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .page("groups", &query, "groups", token.as_deref())
                .await?;
            let bodies: Vec<Value> = page.items.iter().filter_map(group_to_scim).collect();
            for (ext, id, body) in self.upsert(Kind::Group, bodies).await? {
                self.groups.insert(ext, (id, body));
            }
            self.keep_lease().await?;
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    /// Each group's members as Google lists them, set where they differ
    /// from the stored ones (one PUT with `members`, as a SCIM client would).
    async fn memberships(&mut self) -> Result<(), PollError> {
        let query = [
            ("maxResults", MAX_MEMBERS.to_string()),
            ("fields", MEMBER_FIELDS.to_owned()),
        ];
        let group_ids: Vec<String> = self.groups.keys().cloned().collect();
        for gid in group_ids {
            let mut want: HashSet<String> = HashSet::new();
            let mut token: Option<String> = None;
            let path = format!("groups/{gid}/members");
            loop {
                let page = self
                    .client
                    .page(&path, &query, "members", token.as_deref())
                    .await?;
                for (id, is_group) in page.items.iter().filter_map(member_ref) {
                    let stored = if is_group {
                        self.groups.get(&id).map(|(s, _)| s.clone())
                    } else {
                        self.users.get(&id).cloned()
                    };
                    want.extend(stored);
                }
                match page.next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            let Some((sid, body)) = self.groups.get(&gid).cloned() else {
                continue;
            };
            let have: HashSet<String> = self
                .state
                .store
                .members(self.dir(), std::slice::from_ref(&sid))
                .await
                .map_err(|e| write_error("the stored members", e.into()))?
                .remove(&sid)
                .unwrap_or_default()
                .into_iter()
                .map(|m| m.id)
                .collect();
            if have != want {
                let mut body = body;
                let mut members: Vec<&String> = want.iter().collect();
                members.sort();
                body["members"] =
                    Value::Array(members.into_iter().map(|m| json!({"value": m})).collect());
                service::replace(self.state, self.dir(), Kind::Group, &sid, None, body)
                    .await
                    .map_err(|e| write_error(format!("the members of group {gid}"), e))?;
                self.summary.memberships += 1;
            }
            self.keep_lease().await?;
        }
        Ok(())
    }

    async fn delete_unseen(&mut self, kind: Kind) -> Result<(), PollError> {
        let index = self
            .state
            .store
            .external_index(self.dir(), kind)
            .await
            .map_err(|e| write_error("the stored resources", e.into()))?;
        for (id, ext) in index {
            let seen = ext.is_some_and(|e| match kind {
                Kind::User => self.users.contains_key(&e),
                Kind::Group => self.groups.contains_key(&e),
            });
            if seen {
                continue;
            }
            match service::delete(self.state, self.dir(), kind, &id, None).await {
                Ok(()) => self.summary.deleted += 1,
                // Gone already (deleted with the directory, say): nothing to do.
                Err(e) if e.0.status == 404 => {}
                Err(e) => return Err(write_error(format!("{} {id}", kind.name()), e)),
            }
        }
        Ok(())
    }
}
