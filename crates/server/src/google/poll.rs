//! One poll of a Google directory, in two phases.
//!
//! 1. **List**: users, groups and each group's members, page by page, into
//!    the store's staging tables. Each listed user or group is compared with
//!    the stored one as its page arrives, and staged with its body only when
//!    it differs, so the apply phase reads back only what changes.
//! 2. **Apply**, only once every listing completed: creates and updates,
//!    then memberships, then deletions of what was not listed, through the
//!    same service calls as SCIM requests, so the app sees the same
//!    `dsync.*` events.
//!
//! A listing cut short (an error on any page) ends the poll before the
//! apply phase: the directory, its events and its memberships stay as they
//! were. Memory holds a page (or one group's member ids), never the
//! directory.

use std::collections::{HashMap, HashSet};

use roster_domain::google::{
    GOOGLE_USER_SCHEMA, GROUP_FIELDS, MEMBER_FIELDS, USER_FIELDS, group_to_scim, member_ref,
    user_to_scim,
};
use roster_scim::validate::normalize;
use roster_store::google::{GoogleSource, StagedMember};
use roster_store::{Kind, Stored};
use serde_json::Value;

use super::client::{DirectoryClient, GoogleError, MAX_GROUPS, MAX_MEMBERS, MAX_USERS};
use crate::service;
use crate::state::AppState;

/// Staged rows read back per query in the apply phase.
const APPLY_CHUNK: usize = 200;

/// Why a poll stopped. A failure while listing changes nothing; one while
/// applying leaves what was applied before it, and the next poll finishes.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Google(#[from] GoogleError),
    #[error("writing {what} failed: {detail}")]
    Write { what: String, detail: String },
    #[error("another instance took over this directory's poll")]
    LeaseLost,
}

/// What a poll saw and changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub users_listed: usize,
    pub groups_listed: usize,
    pub members_listed: usize,
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

fn store_error(what: &str, e: roster_store::StoreError) -> PollError {
    write_error(what, e.into())
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

fn external_id(body: &Value) -> Option<&str> {
    body.get("externalId").and_then(Value::as_str)
}

struct Poll<'a, L> {
    state: &'a AppState,
    client: &'a DirectoryClient,
    source: &'a GoogleSource,
    lease: &'a L,
    /// This poll's staged rows.
    id: String,
    summary: Summary,
    /// Whether the User schema carries the Google extension (customSchemas).
    custom_schemas: bool,
}

/// Polls the directory once; the summary counts what was listed and applied
/// whether or not the poll completed.
pub async fn run<L: Lease>(
    state: &AppState,
    client: &DirectoryClient,
    source: &GoogleSource,
    lease: &L,
) -> (Summary, Result<(), PollError>) {
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
        id: uuid::Uuid::now_v7().to_string(),
        summary: Summary::default(),
        custom_schemas,
    };
    if let Err(e) = state.store.begin_google_staging(&source.directory_id).await {
        return (poll.summary, Err(store_error("the poll's staging", e)));
    }
    let outcome = poll.list_and_apply().await;
    // Staged rows are scratch either way; a leftover is removed by the next poll.
    if let Err(e) = state.store.end_google_staging(&poll.id).await {
        tracing::warn!(directory = %source.directory_id, error = %e, "google: cannot remove a poll's staged rows");
    }
    (poll.summary, outcome)
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

    async fn list_and_apply(&mut self) -> Result<(), PollError> {
        self.list_users().await?;
        self.list_groups().await?;
        self.list_members().await?;
        // Every listing completed: from here on the snapshot is whole.
        self.apply_changed(Kind::User).await?;
        self.apply_changed(Kind::Group).await?;
        self.apply_memberships().await?;
        self.delete_unlisted(Kind::Group).await?;
        self.delete_unlisted(Kind::User).await?;
        Ok(())
    }

    /// Stages one page of bodies, each with its body only when it differs
    /// from the stored resource (or there is none).
    async fn stage(&mut self, kind: Kind, bodies: Vec<Value>) -> Result<(), PollError> {
        let ext: Vec<String> = bodies
            .iter()
            .filter_map(external_id)
            .map(str::to_owned)
            .collect();
        let stored: HashMap<String, Stored> = self
            .state
            .store
            .by_external_ids(self.dir(), kind, ext)
            .await
            .map_err(|e| store_error("the stored resources", e))?
            .into_iter()
            .filter_map(|s| Some((external_id(&s.doc)?.to_owned(), s)))
            .collect();
        let rows: Vec<(String, Option<String>)> = bodies
            .iter()
            .filter_map(|body| {
                let ext = external_id(body)?;
                let changed = stored
                    .get(ext)
                    .is_none_or(|current| differs(self.state, kind, current, body));
                Some((ext.to_owned(), changed.then(|| body.to_string())))
            })
            .collect();
        match kind {
            Kind::User => self.summary.users_listed += rows.len(),
            Kind::Group => self.summary.groups_listed += rows.len(),
        }
        self.state
            .store
            .stage_google(self.dir(), &self.id, kind, rows)
            .await
            .map_err(|e| store_error("the poll's staging", e))?;
        self.keep_lease().await
    }

    async fn list_users(&mut self) -> Result<(), PollError> {
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
            self.stage(Kind::User, bodies).await?;
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    async fn list_groups(&mut self) -> Result<(), PollError> {
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
            self.stage(Kind::Group, bodies).await?;
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    /// Up to [`APPLY_CHUNK`] staged resources after `after`.
    async fn staged(
        &self,
        kind: Kind,
        changed_only: bool,
        after: &str,
    ) -> Result<Vec<(String, Option<String>)>, PollError> {
        self.state
            .store
            .staged_google(&self.id, kind, changed_only, after, APPLY_CHUNK)
            .await
            .map_err(|e| store_error("the poll's staging", e))
    }

    /// Lists the members of every listed group into the staging tables.
    async fn list_members(&mut self) -> Result<(), PollError> {
        let query = [
            ("maxResults", MAX_MEMBERS.to_string()),
            ("fields", MEMBER_FIELDS.to_owned()),
        ];
        let mut after = String::new();
        loop {
            let groups = self.staged(Kind::Group, false, &after).await?;
            let Some((last, _)) = groups.last() else {
                return Ok(());
            };
            after = last.clone();
            for (gid, _) in groups {
                let path = format!("groups/{gid}/members");
                let mut token: Option<String> = None;
                loop {
                    let page = self
                        .client
                        .page(&path, &query, "members", token.as_deref())
                        .await?;
                    let members: Vec<StagedMember> = page
                        .items
                        .iter()
                        .filter_map(member_ref)
                        .map(|(google_id, is_group)| StagedMember {
                            google_id,
                            kind: if is_group { Kind::Group } else { Kind::User },
                        })
                        .collect();
                    self.summary.members_listed += members.len();
                    self.state
                        .store
                        .stage_google_members(self.dir(), &self.id, &gid, members)
                        .await
                        .map_err(|e| store_error("the poll's staging", e))?;
                    self.keep_lease().await?;
                    match page.next {
                        Some(t) => token = Some(t),
                        None => break,
                    }
                }
            }
        }
    }

    /// Creates or replaces every staged resource of `kind` that differs
    /// from the stored one.
    async fn apply_changed(&mut self, kind: Kind) -> Result<(), PollError> {
        let mut after = String::new();
        loop {
            let rows = self.staged(kind, true, &after).await?;
            let Some((last, _)) = rows.last() else {
                return Ok(());
            };
            after = last.clone();
            let ext: Vec<String> = rows.iter().map(|(g, _)| g.clone()).collect();
            let stored: HashMap<String, String> = self
                .state
                .store
                .by_external_ids(self.dir(), kind, ext)
                .await
                .map_err(|e| store_error("the stored resources", e))?
                .into_iter()
                .filter_map(|s| Some((external_id(&s.doc)?.to_owned(), s.id)))
                .collect();
            for (gid, body) in rows {
                let Some(body) = body else { continue };
                let body: Value = serde_json::from_str(&body).map_err(|e| PollError::Write {
                    what: format!("the staged {} {gid}", kind.name()),
                    detail: e.to_string(),
                })?;
                let what = || format!("{} {gid}", kind.name());
                match stored.get(&gid) {
                    None => {
                        service::create(self.state, self.dir(), kind, body)
                            .await
                            .map_err(|e| write_error(what(), e))?;
                        self.summary.created += 1;
                    }
                    Some(id) => {
                        service::replace(self.state, self.dir(), kind, id, None, body)
                            .await
                            .map_err(|e| write_error(what(), e))?;
                        self.summary.updated += 1;
                    }
                }
            }
            self.keep_lease().await?;
        }
    }

    /// Sets each listed group's members to those Google listed (users and
    /// groups the poll listed too), adding and removing only the difference.
    async fn apply_memberships(&mut self) -> Result<(), PollError> {
        let mut after = String::new();
        loop {
            let groups = self.staged(Kind::Group, false, &after).await?;
            let Some((last, _)) = groups.last() else {
                return Ok(());
            };
            after = last.clone();
            let ext: Vec<String> = groups.iter().map(|(g, _)| g.clone()).collect();
            let stored: HashMap<String, String> = self
                .state
                .store
                .by_external_ids(self.dir(), Kind::Group, ext)
                .await
                .map_err(|e| store_error("the stored groups", e))?
                .into_iter()
                .filter_map(|s| Some((external_id(&s.doc)?.to_owned(), s.id)))
                .collect();
            for (gid, _) in groups {
                let Some(sid) = stored.get(&gid) else {
                    continue;
                };
                let want: HashSet<String> = self
                    .state
                    .store
                    .staged_google_member_ids(self.dir(), &self.id, &gid)
                    .await
                    .map_err(|e| store_error("the poll's staging", e))?
                    .into_iter()
                    .collect();
                let have: HashSet<String> = self
                    .state
                    .store
                    .members(self.dir(), std::slice::from_ref(sid))
                    .await
                    .map_err(|e| store_error("the stored members", e))?
                    .remove(sid)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| m.id)
                    .collect();
                let mut add: Vec<String> = want.difference(&have).cloned().collect();
                let mut remove: Vec<String> = have.difference(&want).cloned().collect();
                if add.is_empty() && remove.is_empty() {
                    continue;
                }
                add.sort();
                remove.sort();
                service::change_members(self.state, self.dir(), sid, add, remove)
                    .await
                    .map_err(|e| write_error(format!("the members of group {gid}"), e))?;
                self.summary.memberships += 1;
            }
            self.keep_lease().await?;
        }
    }

    async fn delete_unlisted(&mut self, kind: Kind) -> Result<(), PollError> {
        let mut after = String::new();
        loop {
            let ids = self
                .state
                .store
                .unlisted_google(self.dir(), &self.id, kind, &after, APPLY_CHUNK)
                .await
                .map_err(|e| store_error("the stored resources", e))?;
            let Some(last) = ids.last() else {
                return Ok(());
            };
            after = last.clone();
            for id in ids {
                match service::delete(self.state, self.dir(), kind, &id, None).await {
                    Ok(()) => self.summary.deleted += 1,
                    // Gone already (deleted with the directory, say): nothing to do.
                    Err(e) if e.0.status == 404 => {}
                    Err(e) => return Err(write_error(format!("{} {id}", kind.name()), e)),
                }
            }
            self.keep_lease().await?;
        }
    }
}
