//! The work of a run: one item per resource to change, what to do to it
//! (the plan's decision) and how it went (the engine's record), and the
//! tally the report is made from. Shared by the plan, the engine and the
//! report, so none of them reaches into another for its types.

use std::collections::BTreeSet;

use roster_client::ScimErrorBody;
use roster_scim::ResourceKind;

use crate::source::Doc;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create,
    /// PUT, or a membership PATCH when `members_before` (source keys last
    /// applied) is known and the target supports PATCH.
    Update {
        id: String,
        members_before: Option<Vec<String>>,
    },
    Delete {
        id: String,
    },
    Deactivate {
        id: String,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update { .. } => "update",
            Action::Delete { .. } => "delete",
            Action::Deactivate { .. } => "deactivate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Done,
    Failed,
}

/// Why a create must look in the target before it is sent again.
#[derive(Debug, Clone)]
pub(crate) enum Verify {
    /// The request may have been applied (a broken connection, a 5xx): look
    /// first so that a retry never creates a duplicate.
    Ambiguous,
    /// 409 uniqueness: the resource exists; find it and update it instead.
    Uniqueness(ScimErrorBody),
}

#[derive(Debug, Clone)]
pub struct Item {
    pub kind: ResourceKind,
    pub key: String,
    pub doc: Doc,
    pub hash: String,
    pub last_modified: Option<i128>,
    pub action: Action,
    pub outcome: Outcome,
    pub error: Option<ScimErrorBody>,
    pub attempts: u32,
    /// References (source keys) that could not be resolved when the item was
    /// last sent; a follow-up pass sends it again once they are.
    pub missing: Vec<String>,
    /// `If-Match` for an update: the version our last write left.
    pub if_match: Option<String>,
    pub(crate) verify: Option<Verify>,
}

impl Item {
    pub fn new(
        kind: ResourceKind,
        key: String,
        doc: Doc,
        hash: String,
        lm: Option<i128>,
        action: Action,
    ) -> Self {
        Item {
            kind,
            key,
            doc,
            hash,
            last_modified: lm,
            action,
            outcome: Outcome::Pending,
            error: None,
            attempts: 0,
            missing: Vec::new(),
            if_match: None,
            verify: None,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub deactivated: u64,
    pub retried_items: u64,
    pub conflicts_resolved: u64,
    /// Updates refused with 412: the target was edited since our last write.
    pub target_drift: u64,
    pub verified_after_ambiguity: u64,
    pub dangling_refs: BTreeSet<String>,
}
