//! Client values in the document's canonical form: sub-attribute names spelt
//! as the schema spells them. Types are left alone; validation coerces them
//! after the whole patch is applied.

use serde_json::{Map, Number, Value};

use crate::error::{Result, ScimError};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::schema::{AttributeDef, Mutability};
use crate::values::{fold, parse_bool_text};

/// `null` and `""` clear a target (Entra ID clears attributes that way).
pub(super) fn is_clear(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

/// The values to store for a multi-valued attribute; a single value counts as a list of one.
pub(super) fn canon_list(def: &AttributeDef, v: &Value) -> Result<Vec<Value>> {
    let items = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .filter(|x| !x.is_null())
        .map(|x| canon_one(def, x, false))
        .collect()
}

/// One value of `def` (an element, for a multi-valued attribute).
/// `keep_read_only` keeps readOnly sub-attributes, for comparing with stored values.
pub(super) fn canon_one(def: &AttributeDef, v: &Value, keep_read_only: bool) -> Result<Value> {
    if !def.is_complex() {
        return Ok(v.clone());
    }
    match v {
        Value::Object(obj) => canon_object(def, obj, keep_read_only).map(Value::Object),
        Value::Null => Ok(Value::Null),
        Value::Array(_) => Err(ScimError::invalid_syntax(format!(
            "{} takes an object of sub-attributes, not an array",
            def.name
        ))),
        scalar => match def.sub_attribute("value") {
            Some(sub) => Ok(Value::Object(Map::from_iter([(
                sub.name.clone(),
                scalar.clone(),
            )]))),
            None => Err(ScimError::invalid_syntax(format!(
                "{} takes an object of sub-attributes",
                def.name
            ))),
        },
    }
}

/// A complex value as an object, accepting an array holding exactly one.
pub(super) fn canon_element(def: &AttributeDef, v: &Value) -> Result<Map<String, Value>> {
    let v = match v {
        Value::Array(a) if a.len() == 1 => &a[0],
        other => other,
    };
    match canon_one(def, v, false)? {
        Value::Object(m) => Ok(m),
        _ => Err(ScimError::invalid_syntax(format!(
            "{} takes one object of sub-attributes",
            def.name
        ))),
    }
}

fn canon_object(
    def: &AttributeDef,
    obj: &Map<String, Value>,
    keep_read_only: bool,
) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in obj {
        let sub = def.sub_attribute(k).ok_or_else(|| {
            ScimError::invalid_syntax(format!("{} has no sub-attribute {k:?}", def.name))
        })?;
        if keep_read_only || sub.mutability != Mutability::ReadOnly {
            out.insert(sub.name.clone(), v.clone());
        }
    }
    Ok(out)
}

/// Whether `given` (a value listed in a remove) designates the stored element:
/// every sub-attribute it names must be equal, so `{"value": "x"}` finds the
/// element with value "x" whatever its type.
pub(super) fn designates(def: &AttributeDef, given: &Value, stored: &Value) -> bool {
    match (given, stored) {
        (Value::Object(g), Value::Object(s)) => {
            let mut named = g.iter().filter(|(_, v)| !v.is_null()).peekable();
            named.peek().is_some()
                && named.all(|(k, gv)| {
                    let exact = def.sub_attribute(k).is_some_and(|d| d.case_exact);
                    s.get(k).is_some_and(|sv| same(exact, gv, sv))
                })
        }
        _ => same(def.case_exact, given, stored),
    }
}

fn same(case_exact: bool, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if !case_exact => fold(x) == fold(y),
        _ => a == b,
    }
}

/// `true`, or Entra's `"True"`: coercion happens later, but primary must be seen now.
pub(super) fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => parse_bool_text(s) == Some(true),
        _ => false,
    }
}

/// The element a value filter describes, when it is a conjunction of `eq`
/// comparisons (`type eq "work"`): what add/replace create when nothing matches.
pub(super) fn element_from_filter(def: &AttributeDef, f: &Filter) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    collect_eq(def, f, &mut out)?;
    Some(out)
}

fn collect_eq(def: &AttributeDef, f: &Filter, out: &mut Map<String, Value>) -> Option<()> {
    match f {
        Filter::And(a, b) => {
            collect_eq(def, a, out)?;
            collect_eq(def, b, out)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.uri.is_none() && path.sub_attr.is_none() => {
            let sub = def.sub_attribute(&path.attr)?;
            out.insert(sub.name.clone(), comp_json(value)?);
            Some(())
        }
        _ => None,
    }
}

fn comp_json(v: &CompValue) -> Option<Value> {
    match v {
        CompValue::Null => None,
        CompValue::Bool(b) => Some(Value::Bool(*b)),
        CompValue::Number(n) => Some(Value::Number(Number::clone(n))),
        CompValue::String(s) => Some(Value::String(s.clone())),
    }
}
