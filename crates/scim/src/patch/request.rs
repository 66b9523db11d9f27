//! Reading a PatchOp message (RFC 7644 §3.5.2) as identity providers send it.

use serde_json::{Map, Value};

use super::{PATCH_OP_SCHEMA, PatchOp, PatchOperation, PatchRequest, parse_path};
use crate::error::{Result, ScimError};

impl PatchRequest {
    pub fn from_json(body: &Value) -> Result<Self> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a PATCH body must be a JSON object"))?;
        check_schemas(obj)?;
        let ops = get_ci(obj, "Operations")
            .ok_or_else(|| ScimError::invalid_syntax("a PATCH body needs \"Operations\""))?;
        let ops = match ops {
            Value::Array(a) if !a.is_empty() => a,
            _ => {
                return Err(ScimError::invalid_syntax(
                    "\"Operations\" must be a non-empty array",
                ));
            }
        };
        let operations = ops
            .iter()
            .enumerate()
            .map(|(i, op)| parse_operation(op).map_err(|e| at_index(e, i)))
            .collect::<Result<_>>()?;
        Ok(PatchRequest { operations })
    }
}

/// A missing `schemas` is tolerated (several clients omit it); a wrong one is not.
fn check_schemas(obj: &Map<String, Value>) -> Result<()> {
    let ok = match get_ci(obj, "schemas") {
        None => true,
        Some(Value::Array(list)) => list.iter().any(|s| s.as_str().is_some_and(is_patch_schema)),
        Some(Value::String(s)) => is_patch_schema(s),
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must contain {PATCH_OP_SCHEMA:?}"
        )))
    }
}

fn is_patch_schema(s: &str) -> bool {
    s.eq_ignore_ascii_case(PATCH_OP_SCHEMA)
}

fn parse_operation(v: &Value) -> Result<PatchOperation> {
    let obj = v
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("an operation must be a JSON object"))?;
    let op = match get_ci(obj, "op") {
        Some(Value::String(s)) => PatchOp::parse(s).ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "\"op\" must be \"add\", \"remove\" or \"replace\", not {s:?}"
            ))
        })?,
        _ => return Err(ScimError::invalid_syntax("an operation needs an \"op\"")),
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        // An empty path is what some clients send for "no path".
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_path(s.trim())?),
        Some(_) => return Err(ScimError::invalid_syntax("\"path\" must be a string")),
    };
    let value = get_ci(obj, "value").cloned();
    check_shape(op, path.is_some(), value.as_ref())?;
    Ok(PatchOperation { op, path, value })
}

fn check_shape(op: PatchOp, has_path: bool, value: Option<&Value>) -> Result<()> {
    match (op, has_path, value) {
        (PatchOp::Remove, false, _) => {
            Err(ScimError::no_target("a remove operation needs a \"path\""))
        }
        (PatchOp::Remove, true, _) => Ok(()),
        (_, _, None) => Err(ScimError::invalid_syntax(format!(
            "the {} operation needs a \"value\"",
            op.as_str()
        ))),
        (_, false, Some(v)) if !v.is_object() => Err(ScimError::invalid_syntax(format!(
            "the {} operation without a \"path\" needs an object \"value\"",
            op.as_str()
        ))),
        _ => Ok(()),
    }
}

fn at_index(mut e: ScimError, i: usize) -> ScimError {
    e.detail = format!("Operations[{i}]: {}", e.detail);
    e
}

/// Message keys are matched case-insensitively: clients spell `Operations` both ways.
fn get_ci<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}
