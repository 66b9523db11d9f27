//! PATCH (RFC 7644 §3.5.2): parsing a PatchOp message and applying it to a
//! canonical resource document.
//!
//! Group members are stored as rows, not inside the document, so operations on
//! `members` come back as [`MemberOp`]s for the store to apply instead of being
//! written into the document.
//!
//! Decisions beyond the RFC, all for the sake of real identity providers:
//! - Removing something that is absent (attribute, sub-attribute, or a filter
//!   that matches nothing) succeeds without change: clients retry removals and
//!   the end state is what they asked for.
//! - `null` or `""` as the value of add/replace clears the target (Entra ID).
//! - In a pathless add/replace, `id` and `meta` are ignored (the server owns
//!   them and Okta echoes them), and any other readOnly attribute is ignored
//!   when its value equals the stored one.
//! - readOnly sub-attributes inside a complex value (`manager.displayName`)
//!   are dropped silently, as RFC 7643 §2.2 asks of readOnly input.
//! - A scalar written where a complex value is expected is taken as its
//!   `value` sub-attribute (Entra sends `manager` as a bare id).
//! - immutable is checked by comparing the document before and after the whole
//!   request, for top-level attributes and sub-attributes of single-valued
//!   complex attributes; elements of multi-valued attributes have no identity
//!   to compare by, so their immutable sub-attributes are not checked here.
//! - `emails.display` (a sub-attribute of a multi-valued attribute, no
//!   filter) concerns every element, as if filtered by a filter matching all.
//! - add/replace through a filter that matches nothing create the element the
//!   filter describes when it is a conjunction of `eq` tests and the path has a
//!   sub-attribute (or the op is add); otherwise 400 noTarget.
//! - A value filter that does not fit the attribute is 400 invalidPath.
//! - `members`: a filter only serves remove (add/replace through one is
//!   invalidPath); `members.<sub>` paths are mutability errors; adding or
//!   removing an empty list yields no [`MemberOp`].

mod apply;
mod canon;
mod member_ops;
mod multi;
mod request;
mod tidy;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::error::{Result, ScimError, ScimType};
use crate::filter::{CheckedFilter, Filter, PatchPath};
use crate::schema::{Resolved, ResourceType, SchemaRegistry};

pub use crate::members::MemberOp;

pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
}

impl PatchOp {
    /// Case-insensitive: Entra ID sends `Add`, OneLogin and JumpCloud `add`.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("add") {
            Some(PatchOp::Add)
        } else if s.eq_ignore_ascii_case("remove") {
            Some(PatchOp::Remove)
        } else if s.eq_ignore_ascii_case("replace") {
            Some(PatchOp::Replace)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PatchOp::Add => "add",
            PatchOp::Remove => "remove",
            PatchOp::Replace => "replace",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOp,
    pub path: Option<PatchPath>,
    /// `Some(Value::Null)` when the client sent `"value": null`, `None` when it sent no value.
    pub value: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

/// What a PATCH asks of the store beyond the new document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatchOutcome {
    /// Membership changes of a Group, in request order.
    pub members: Vec<MemberOp>,
}

/// Applies `req` to `doc`, a canonical document of resource type `rt`.
/// All or nothing: on error `doc` is left as it was.
pub fn apply_patch(
    reg: &SchemaRegistry,
    rt: &ResourceType,
    doc: &mut Value,
    req: &PatchRequest,
) -> Result<PatchOutcome> {
    let mut work = doc.clone();
    let obj = work
        .as_object_mut()
        .ok_or_else(|| ScimError::internal("a resource document must be a JSON object"))?;
    let before = obj.clone();
    let mut patcher = apply::Patcher::new(reg, rt);
    for op in &req.operations {
        patcher.apply(obj, op)?;
    }
    tidy::tidy(obj);
    tidy::check_immutable(reg, rt, &before, obj)?;
    tidy::sync_schemas(reg, rt, obj);
    *doc = work;
    Ok(PatchOutcome {
        members: patcher.into_members(),
    })
}

fn parse_path(text: &str) -> Result<PatchPath> {
    crate::filter::parse_patch_path(text)
}

/// A value filter checked against the elements of `parent`. A filter that
/// does not fit the attribute makes the path invalid, so its error is
/// `invalidPath`.
fn element_matcher(parent: &Resolved<'_>, f: &Filter) -> Result<CheckedFilter> {
    CheckedFilter::check_element(parent, f).map_err(|e| match e.scim_type {
        Some(ScimType::InvalidFilter) => ScimError::invalid_path(e.detail),
        _ => e,
    })
}
