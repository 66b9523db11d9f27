//! Operations on a Group's `members`, turned into [`MemberOp`]s for the store.

use serde_json::Value;

use super::{MemberOp, PatchOp};
use crate::error::{Result, ScimError};
use crate::filter::{CheckedFilter, CompValue, CompareOp, Filter};
use crate::members::MemberRef;
use crate::schema::AttributeDef;

/// `None` when the operation changes nothing (an empty list to add or remove).
pub(super) fn member_op(
    kind: PatchOp,
    filter: Option<(&Filter, CheckedFilter)>,
    sub: Option<&AttributeDef>,
    value: Option<&Value>,
) -> Result<Option<MemberOp>> {
    if let Some(sub) = sub {
        return Err(ScimError::mutability(format!(
            "members.{} cannot be changed; remove the member and add it again",
            sub.name
        )));
    }
    match (kind, filter) {
        (PatchOp::Remove, Some((f, checked))) => Ok(Some(remove_where(f, checked))),
        (_, Some(_)) => Err(ScimError::invalid_path(
            "members can only be removed by a filter, not added or replaced",
        )),
        (PatchOp::Add, None) => {
            let list = MemberRef::list_from_json(value.unwrap_or(&Value::Null))?;
            Ok((!list.is_empty()).then_some(MemberOp::Add(list)))
        }
        (PatchOp::Replace, None) => Ok(Some(MemberOp::ReplaceAll(MemberRef::list_from_json(
            value.unwrap_or(&Value::Null),
        )?))),
        (PatchOp::Remove, None) => remove_listed(value),
    }
}

/// Without a value every member goes; with one (Entra ID), only those listed.
fn remove_listed(value: Option<&Value>) -> Result<Option<MemberOp>> {
    match value {
        None | Some(Value::Null) => Ok(Some(MemberOp::RemoveAll)),
        Some(v) => {
            let ids: Vec<String> = MemberRef::list_from_json(v)?
                .into_iter()
                .map(|m| m.value)
                .collect();
            Ok((!ids.is_empty()).then_some(MemberOp::Remove(ids)))
        }
    }
}

/// `value eq "id"` (or an `or` of them) is by far the common case and needs no filter.
fn remove_where(f: &Filter, checked: CheckedFilter) -> MemberOp {
    let mut ids = Vec::new();
    if collect_ids(f, &mut ids) {
        MemberOp::Remove(ids)
    } else {
        MemberOp::RemoveWhere(checked)
    }
}

fn collect_ids(f: &Filter, ids: &mut Vec<String>) -> bool {
    match f {
        Filter::Or(a, b) => collect_ids(a, ids) && collect_ids(b, ids),
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::String(s),
        } if path.is("value") => {
            ids.push(s.clone());
            true
        }
        _ => false,
    }
}
