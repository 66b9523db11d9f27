//! Whole-document steps after all operations: dropping what became empty,
//! the immutable check, and keeping `schemas` in step with the extensions.

use serde_json::{Map, Value};

use crate::error::{Result, ScimError};
use crate::schema::{AttributeDef, Mutability, ResourceType, SchemaRegistry};

type Doc = Map<String, Value>;

/// Nulls, empty lists and empty objects mean "unassigned" (RFC 7643 §2.5),
/// so they are not kept: removing the last email removes `emails`.
pub(super) fn tidy(obj: &mut Doc) {
    for v in obj.values_mut() {
        tidy_value(v);
    }
    obj.retain(|_, v| !is_empty(v));
}

fn tidy_value(v: &mut Value) {
    match v {
        Value::Object(m) => tidy(m),
        Value::Array(a) => {
            a.iter_mut().for_each(tidy_value);
            a.retain(|x| !is_empty(x));
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// immutable attributes may be set when absent but never changed or removed.
pub(super) fn check_immutable(
    reg: &SchemaRegistry,
    rt: &ResourceType,
    before: &Doc,
    after: &Doc,
) -> Result<()> {
    let core = reg
        .core_schema(rt)
        .attributes
        .iter()
        .chain(reg.common_attributes());
    for def in core {
        check_attr(def, before.get(&def.name), after.get(&def.name))?;
    }
    for ext in reg.extensions(rt) {
        let b = before.get(&ext.id);
        let a = after.get(&ext.id);
        for def in &ext.attributes {
            check_attr(
                def,
                b.and_then(|b| b.get(&def.name)),
                a.and_then(|a| a.get(&def.name)),
            )?;
        }
    }
    Ok(())
}

fn check_attr(def: &AttributeDef, before: Option<&Value>, after: Option<&Value>) -> Result<()> {
    let Some(b) = before else {
        return Ok(());
    };
    if def.mutability == Mutability::Immutable && Some(b) != after {
        return Err(immutable(&def.name));
    }
    if def.is_complex() && !def.multi_valued {
        for sub in &def.sub_attributes {
            let was = b.get(&sub.name);
            let now = after.and_then(|a| a.get(&sub.name));
            if sub.mutability == Mutability::Immutable && was.is_some() && was != now {
                return Err(immutable(&format!("{}.{}", def.name, sub.name)));
            }
        }
    }
    Ok(())
}

fn immutable(name: &str) -> ScimError {
    ScimError::mutability(format!("{name} is immutable and already has a value"))
}

/// When the document lists its schemas, an extension appears there exactly
/// when the document holds some of its attributes.
pub(super) fn sync_schemas(reg: &SchemaRegistry, rt: &ResourceType, doc: &mut Doc) {
    let present: Vec<(String, bool)> = reg
        .extensions(rt)
        .map(|e| (e.id.clone(), doc.contains_key(&e.id)))
        .collect();
    let Some(Value::Array(schemas)) = doc.get_mut("schemas") else {
        return;
    };
    for (urn, here) in present {
        let listed = |s: &Value| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(&urn));
        if here && !schemas.iter().any(listed) {
            schemas.push(Value::String(urn));
        } else if !here {
            schemas.retain(|s| !listed(s));
        }
    }
}
