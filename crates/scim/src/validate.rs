//! Validation and normalisation of resource bodies (RFC 7643 §2 and §7,
//! RFC 7644 §3.3 and §3.5.1): whatever spelling and shape a client sends, the
//! store only ever sees one canonical document.
//!
//! The rules lean towards accepting what identity providers really send —
//! `"False"` for booleans, `""` or `null` to clear, a single value where an
//! array belongs — and reject only what cannot be read unambiguously.
//!
//! Decisions beyond the RFCs:
//! - An extension attribute may be written at top level fully qualified, or by
//!   bare name when only one extension defines it (as `resolve` allows in
//!   filters); either way it is moved into its extension object. Dotted keys
//!   (`"name.givenName": …`) are not attribute names and are rejected.
//! - Two spellings of one attribute in one body must carry the same value.
//! - A complex attribute with a `value` sub-attribute may be given as a bare
//!   string (Entra ID's `manager`), read as `{"value": …}`.
//! - `canonicalValues` are not enforced: IdPs send their own `type` labels.
//! - Group members are deduplicated by id; a type given once is kept.
//! - Type errors name the kind of JSON given, never the value.
//! - Output order is fixed: `schemas`, common, core, then extension attributes,
//!   each in definition order, so equal resources serialise equally.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Display};
use std::slice;

use serde_json::map::Entry;
use serde_json::{Map, Number, Value, json};

use crate::error::{Result, ScimError};
use crate::keys::{Key, classify, stored};
use crate::members::MemberRef;
use crate::path::has_urn_prefix;
use crate::schema::{
    AttrType, AttributeDef, GROUP_SCHEMA, Mutability, ResourceType, Schema, SchemaRegistry,
};
use crate::values::{fold, format_datetime, is_blank, parse_bool_text, parse_datetime};

/// The longest string value accepted, in bytes.
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// The most values a multi-valued attribute may hold. Group `members` is
/// exempt: large groups are expected, and the store keeps members as rows.
pub const MAX_VALUES: usize = 10_000;

/// Up to this many values, an attribute's duplicates are found by comparing
/// each value with those kept (see `multi_value`).
const FEW_VALUES: usize = 16;

/// Turns a client body (POST, PUT, or a document after PATCH) into the
/// canonical stored document.
///
/// `existing` is the stored document being replaced, if any: immutable
/// attributes it holds may not change. An immutable attribute the input
/// leaves out keeps its stored value, since a PUT that omits it is not
/// asking to change it.
pub fn normalize(
    reg: &SchemaRegistry,
    rt: &ResourceType,
    input: &Value,
    existing: Option<&Value>,
) -> Result<Value> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a resource must be a JSON object"))?;
    let mut doc = Doc::new(reg, rt);
    for (key, value) in obj {
        match classify(reg, rt, key) {
            Key::Schemas => check_schemas(value)?,
            Key::Top(def) => doc.put(None, def, value)?,
            Key::InExtension(ext, def) => doc.put(Some(ext), def, value)?,
            Key::Extension(ext) => doc.put_extension(ext, value)?,
            Key::Unknown => return Err(unknown_key(key, value)),
        }
    }
    if let Some(old) = existing {
        doc.keep_immutables(old)?;
    }
    doc.check_required()?;
    Ok(doc.into_json())
}

/// Removes `members` from a normalized Group document and returns them, for
/// the store to keep as rows.
pub fn take_members(doc: &mut Value) -> Result<Vec<MemberRef>> {
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| ScimError::invalid_syntax("a resource must be a JSON object"))?;
    match obj.remove("members") {
        Some(v) => MemberRef::list_from_json(&v),
        None => Ok(Vec::new()),
    }
}

/// The document under construction: core and common attributes, then one
/// map per extension of the resource type, all keyed by canonical names.
struct Doc<'a> {
    reg: &'a SchemaRegistry,
    rt: &'a ResourceType,
    top: Map<String, Value>,
    extensions: Vec<(&'a Schema, Map<String, Value>)>,
}

impl<'a> Doc<'a> {
    fn new(reg: &'a SchemaRegistry, rt: &'a ResourceType) -> Self {
        Doc {
            reg,
            rt,
            top: Map::new(),
            extensions: reg.extensions(rt).map(|s| (s, Map::new())).collect(),
        }
    }

    fn container(&mut self, ext: Option<&Schema>) -> &mut Map<String, Value> {
        // `ext` always comes from this resource type's extensions, so the
        // lookup finds it; falling back to the top level keeps this total.
        let slot = ext.and_then(|s| self.extensions.iter_mut().find(|(e, _)| e.id == s.id));
        match slot {
            Some((_, map)) => map,
            None => &mut self.top,
        }
    }

    fn put(&mut self, ext: Option<&Schema>, def: &AttributeDef, value: &Value) -> Result<()> {
        if def.mutability == Mutability::ReadOnly {
            return Ok(());
        }
        let normalized = if ext.is_none() && self.is_group_members(def) {
            members_value(value)?
        } else {
            attr_value(def, &def.name, value)?
        };
        match normalized {
            Some(v) => insert_once(self.container(ext), &def.name, v),
            None => Ok(()),
        }
    }

    fn put_extension(&mut self, ext: &Schema, value: &Value) -> Result<()> {
        for (name, v) in extension_object(ext, value)? {
            if is_own_schemas(ext, name, v)? {
                continue;
            }
            let def = ext.attribute(name).ok_or_else(|| {
                ScimError::invalid_syntax(format!("schema {} has no attribute {name:?}", ext.id))
            })?;
            self.put(Some(ext), def, v)?;
        }
        Ok(())
    }

    fn is_group_members(&self, def: &AttributeDef) -> bool {
        self.rt.schema.eq_ignore_ascii_case(GROUP_SCHEMA) && def.name == "members"
    }

    /// Every top-level definition that can hold a value, with its extension.
    fn definitions(&self) -> Vec<(Option<&'a Schema>, &'a AttributeDef)> {
        let core = self.reg.core_schema(self.rt);
        let top = self
            .reg
            .common_attributes()
            .iter()
            .chain(&core.attributes)
            .map(|d| (None, d));
        let ext = self
            .extensions
            .iter()
            .flat_map(|&(s, _)| s.attributes.iter().map(move |d| (Some(s), d)));
        top.chain(ext).collect()
    }

    fn keep_immutables(&mut self, old: &Value) -> Result<()> {
        for (ext, def) in self.definitions() {
            let Some(old_value) = stored(old, ext, def) else {
                continue;
            };
            let map = self.container(ext);
            let new_value = map.remove(&def.name);
            if let Some(v) = guard_immutable(def, &def.name, new_value, old_value)? {
                map.insert(def.name.clone(), v);
            }
        }
        Ok(())
    }

    fn check_required(&self) -> Result<()> {
        let core = self.reg.core_schema(self.rt);
        check_required_in(&core.attributes, &self.top, &"")?;
        for (ext, map) in &self.extensions {
            let required = self
                .rt
                .extensions
                .iter()
                .any(|e| e.required && e.schema.eq_ignore_ascii_case(&ext.id));
            if map.is_empty() && !required {
                continue;
            }
            if map.is_empty() {
                return Err(ScimError::invalid_value(format!(
                    "the extension {} is required",
                    ext.id
                )));
            }
            check_required_in(&ext.attributes, map, &format!("{}:", ext.id))?;
        }
        Ok(())
    }

    /// `schemas` first, then attributes in definition order, then extensions with content.
    fn into_json(mut self) -> Value {
        let core = self.reg.core_schema(self.rt);
        let mut schemas = vec![Value::String(core.id.clone())];
        let mut out = Map::new();
        out.insert("schemas".to_owned(), Value::Null);
        let defs = self.reg.common_attributes().iter().chain(&core.attributes);
        out.extend(in_definition_order(defs, std::mem::take(&mut self.top)));
        for (ext, map) in self.extensions {
            if map.is_empty() {
                continue;
            }
            schemas.push(Value::String(ext.id.clone()));
            let attrs = in_definition_order(&ext.attributes, map);
            out.insert(ext.id.clone(), Value::Object(attrs));
        }
        out.insert("schemas".to_owned(), Value::Array(schemas));
        Value::Object(out)
    }
}

fn check_schemas(value: &Value) -> Result<()> {
    match value {
        Value::Null => Ok(()),
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
        _ => Err(ScimError::invalid_syntax(
            "\"schemas\" must be an array of schema URNs",
        )),
    }
}

/// Whether `key` is the `schemas` member of an extension object, which is then
/// skipped: RFC 7643 §3 lets any SCIM JSON structure say which schemas define
/// its attributes, and clients built on typed models (scim2-models) send it
/// inside an extension value. It must name that extension, so that a
/// misplaced object is not taken for this one.
pub(crate) fn is_own_schemas(ext: &Schema, key: &str, value: &Value) -> Result<bool> {
    if !key.eq_ignore_ascii_case("schemas") {
        return Ok(false);
    }
    let names_ext = value.as_array().is_some_and(|items| {
        items.iter().all(Value::is_string)
            && items
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(&ext.id)))
    });
    if names_ext {
        Ok(true)
    } else {
        Err(ScimError::invalid_syntax(format!(
            "\"schemas\" inside {} must be an array naming that extension",
            ext.id
        )))
    }
}

fn extension_object<'v>(ext: &Schema, value: &'v Value) -> Result<Vec<(&'v str, &'v Value)>> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(obj) => Ok(obj.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        _ => Err(ScimError::invalid_syntax(format!(
            "{} must be an object holding the extension's attributes",
            ext.id
        ))),
    }
}

fn unknown_key(key: &str, value: &Value) -> ScimError {
    if has_urn_prefix(key) && value.is_object() {
        ScimError::invalid_syntax(format!(
            "{key} is not a schema extension of this resource type"
        ))
    } else {
        ScimError::invalid_syntax(format!("unknown attribute {key:?}"))
    }
}

/// Stores a value under its canonical name. Two spellings of one attribute
/// (`userName` and `USERNAME`, or an extension attribute both nested and
/// flattened) are accepted only when they agree.
fn insert_once(map: &mut Map<String, Value>, name: &str, value: Value) -> Result<()> {
    match map.entry(name) {
        Entry::Occupied(prev) if *prev.get() != value => Err(ScimError::invalid_syntax(format!(
            "{name} is given more than once with different values"
        ))),
        Entry::Occupied(_) => Ok(()),
        Entry::Vacant(slot) => {
            slot.insert(value);
            Ok(())
        }
    }
}

/// `values`, whose keys are names of `defs`, in definition order; a key
/// that names no definition is dropped. A document holds a few of its
/// definitions (a user about 8 of 24), so what is there is sorted by
/// position: taking each definition's name out of the map hashed every
/// name (SipHash, in serde_json's map), present or not.
fn in_definition_order<'d>(
    defs: impl IntoIterator<Item = &'d AttributeDef>,
    values: Map<String, Value>,
) -> Map<String, Value> {
    let defs: Vec<&AttributeDef> = defs.into_iter().collect();
    let mut placed: Vec<(usize, String, Value)> = values
        .into_iter()
        .filter_map(|(name, v)| {
            let at = defs.iter().position(|d| d.name == name)?;
            Some((at, name, v))
        })
        .collect();
    placed.sort_unstable_by_key(|(at, ..)| *at);
    placed.into_iter().map(|(_, name, v)| (name, v)).collect()
}

fn check_required_in(
    defs: &[AttributeDef],
    values: &Map<String, Value>,
    prefix: &dyn Display,
) -> Result<()> {
    // A readOnly attribute is dropped from input, so requiring it would reject every body.
    match defs.iter().find(|d| {
        d.required && d.mutability != Mutability::ReadOnly && !values.contains_key(&d.name)
    }) {
        Some(d) => Err(ScimError::invalid_value(format!(
            "{prefix}{} is required",
            d.name
        ))),
        None => Ok(()),
    }
}

/// The elements of a multi-valued input; a lone value counts as a one-element array.
fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(a) => a,
        other => slice::from_ref(other),
    }
}

/// `parent.name`, the label of a sub-attribute in error messages: written
/// only when an error is, since a body's every complex value has one.
struct SubLabel<'a>(&'a dyn Display, &'a str);

impl Display for SubLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Normalises the value of one attribute; `None` means it has no value.
/// `label` is the attribute's path, for error messages.
fn attr_value(def: &AttributeDef, label: &dyn Display, value: &Value) -> Result<Option<Value>> {
    if def.multi_valued {
        multi_value(def, label, value)
    } else {
        single_value(def, label, value)
    }
}

fn single_value(def: &AttributeDef, label: &dyn Display, value: &Value) -> Result<Option<Value>> {
    match value {
        Value::Array(a) => match a.as_slice() {
            [] => Ok(None),
            [one] => element_value(def, label, one),
            _ => Err(ScimError::invalid_value(format!(
                "{label} is single-valued but an array was given"
            ))),
        },
        other => element_value(def, label, other),
    }
}

fn multi_value(def: &AttributeDef, label: &dyn Display, value: &Value) -> Result<Option<Value>> {
    let input = items(value);
    if input.len() > MAX_VALUES {
        return Err(too_many_values(label));
    }
    // A few values (two emails, a user's schemas) are compared with those
    // kept: printing and hashing each cost a `POST /Users` about 12,000
    // instructions of 950,000. Many (a group's members) go through a set of
    // their printed forms, which compares each once: elements are built in
    // definition order, so equal values print equally.
    let mut printed = (input.len() > FEW_VALUES).then(HashSet::new);
    let mut out = Vec::new();
    for item in input {
        let Some(v) = element_value(def, label, item)? else {
            continue;
        };
        let fresh = match printed.as_mut() {
            Some(set) => set.insert(v.to_string()),
            None => !out.contains(&v),
        };
        if fresh {
            out.push(v);
        }
    }
    if def.is_complex() {
        check_one_primary(label, &out)?;
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

fn too_many_values(label: &dyn Display) -> ScimError {
    ScimError::invalid_value(format!(
        "{label} has more than {MAX_VALUES} values (the limit)"
    ))
}

/// RFC 7643 §2.4: the "primary" attribute value may be true for one value at most.
fn check_one_primary(label: &dyn Display, values: &[Value]) -> Result<()> {
    let primaries = values
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "{label} has {primaries} values marked primary; at most one may be"
        )));
    }
    Ok(())
}

/// One value (an array element for a multi-valued attribute) checked against its type.
fn element_value(def: &AttributeDef, label: &dyn Display, value: &Value) -> Result<Option<Value>> {
    if is_blank(value) {
        return Ok(None);
    }
    let v = match def.ty {
        AttrType::String | AttrType::Reference => Value::String(text(label, value)?.to_owned()),
        AttrType::Binary => binary_value(label, value)?,
        AttrType::Boolean => Value::Bool(bool_value(label, value)?),
        AttrType::Integer => Value::Number(integer_value(label, value)?),
        AttrType::Decimal => decimal_value(label, value)?,
        AttrType::DateTime => datetime_value(label, value)?,
        AttrType::Complex => return complex_value(def, label, value),
    };
    Ok(Some(v))
}

/// Names the kind of JSON given rather than echoing it: the value may be a
/// password, or megabytes long.
fn type_error(label: &dyn Display, expected: &str, value: &Value) -> ScimError {
    let given = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ScimError::invalid_value(format!("{label} must be {expected}, not {given}"))
}

fn text<'v>(label: &dyn Display, value: &'v Value) -> Result<&'v str> {
    let s = value
        .as_str()
        .ok_or_else(|| type_error(label, "a string", value))?;
    check_length(label, s)?;
    Ok(s)
}

fn check_length(label: &dyn Display, s: &str) -> Result<()> {
    if s.len() > MAX_STRING_BYTES {
        return Err(ScimError::invalid_value(format!(
            "{label} is longer than {MAX_STRING_BYTES} bytes (the limit)"
        )));
    }
    Ok(())
}

fn binary_value(label: &dyn Display, value: &Value) -> Result<Value> {
    let s = text(label, value)?;
    if !is_base64(s) {
        return Err(ScimError::invalid_value(format!(
            "{label} must be base64-encoded binary"
        )));
    }
    Ok(Value::String(s.to_owned()))
}

/// Standard base64 (RFC 4648 §4). Line breaks, as in PEM bodies, and missing
/// padding are tolerated because certificate exports vary on both.
fn is_base64(s: &str) -> bool {
    let chars: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let body_len = chars.len() - chars.iter().rev().take_while(|b| **b == b'=').count();
    let (body, padding) = chars.split_at(body_len);
    let padded_ok = padding.is_empty() || (padding.len() <= 2 && chars.len().is_multiple_of(4));
    !body.is_empty()
        && padded_ok
        && body.len() % 4 != 1
        && body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn bool_value(label: &dyn Display, value: &Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => parse_bool_text(s)
            .ok_or_else(|| type_error(label, "a boolean (or \"true\"/\"false\")", value)),
        _ => Err(type_error(label, "a boolean", value)),
    }
}

fn integer_value(label: &dyn Display, value: &Value) -> Result<Number> {
    let Value::Number(n) = value else {
        return Err(type_error(label, "an integer", value));
    };
    if n.is_i64() || n.is_u64() {
        return Ok(n.clone());
    }
    // Some clients serialise every number as a float; 3.0 is still the integer 3.
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Number::from(f as i64)),
        _ => Err(type_error(label, "an integer", value)),
    }
}

fn decimal_value(label: &dyn Display, value: &Value) -> Result<Value> {
    match value {
        Value::Number(_) => Ok(value.clone()),
        _ => Err(type_error(label, "a number", value)),
    }
}

fn datetime_value(label: &dyn Display, value: &Value) -> Result<Value> {
    let t = value
        .as_str()
        .and_then(parse_datetime)
        .ok_or_else(|| type_error(label, "an RFC 3339 dateTime", value))?;
    Ok(Value::String(format_datetime(t)))
}

fn complex_value(def: &AttributeDef, label: &dyn Display, value: &Value) -> Result<Option<Value>> {
    let obj = match value {
        Value::Object(obj) => obj,
        // Entra ID sets `manager` to the manager's id alone; read it as `{"value": id}`.
        Value::String(_) if def.sub_attribute("value").is_some() => {
            return complex_value(def, label, &json!({ "value": value }));
        }
        _ => return Err(type_error(label, "an object", value)),
    };
    let mut subs = Map::new();
    for (key, v) in obj {
        let sub = def.sub_attribute(key).ok_or_else(|| {
            ScimError::invalid_syntax(format!("{label} has no sub-attribute {key:?}"))
        })?;
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = attr_value(sub, &SubLabel(label, &sub.name), v)? {
            insert_once(&mut subs, &sub.name, v)?;
        }
    }
    if subs.is_empty() {
        return Ok(None);
    }
    check_required_in(&def.sub_attributes, &subs, &SubLabel(label, ""))?;
    Ok(Some(Value::Object(in_definition_order(
        &def.sub_attributes,
        subs,
    ))))
}

/// Group members in the canonical `{"value", "type"?}` form, one entry per id.
fn members_value(value: &Value) -> Result<Option<Value>> {
    let mut members: Vec<MemberRef> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for item in items(value).iter().filter(|v| !is_blank(v)) {
        let m = MemberRef::from_json(item)?;
        check_length(&"members.value", &m.value)?;
        match index.get(&m.value) {
            Some(&i) => merge_member(&mut members[i], m)?,
            None => {
                index.insert(m.value.clone(), members.len());
                members.push(m);
            }
        }
    }
    let out: Vec<Value> = members.iter().map(member_json).collect();
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// The same id listed twice is one member; its type, if given, must agree.
fn merge_member(kept: &mut MemberRef, dup: MemberRef) -> Result<()> {
    match (kept.ty, dup.ty) {
        (Some(a), Some(b)) if a != b => Err(ScimError::invalid_value(format!(
            "member {} is listed both as {} and as {}",
            kept.value,
            a.as_str(),
            b.as_str()
        ))),
        (None, Some(b)) => {
            kept.ty = Some(b);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn member_json(m: &MemberRef) -> Value {
    match m.ty {
        Some(t) => json!({ "value": m.value, "type": t.as_str() }),
        None => json!({ "value": m.value }),
    }
}

/// The value to store for `def` given its new value and its stored one.
/// Immutable values may be set once and then only repeated (RFC 7643 §2.2);
/// immutable sub-attributes of a single-valued complex attribute likewise.
fn guard_immutable(
    def: &AttributeDef,
    label: &dyn Display,
    new: Option<Value>,
    old: &Value,
) -> Result<Option<Value>> {
    if def.mutability == Mutability::Immutable {
        return match new {
            None => Ok(Some(old.clone())),
            Some(n) if same_value(def, &n, old) => Ok(Some(n)),
            Some(_) => Err(ScimError::mutability(format!(
                "{label} is immutable and already has a value"
            ))),
        };
    }
    // Elements of multi-valued attributes have no identity to compare across
    // versions, so immutability is enforced only in single-valued complex ones.
    let guards_subs = def.is_complex()
        && !def.multi_valued
        && def
            .sub_attributes
            .iter()
            .any(|s| s.mutability == Mutability::Immutable);
    if !guards_subs {
        return Ok(new);
    }
    let mut obj = match new {
        Some(Value::Object(o)) => o,
        Some(other) => return Ok(Some(other)),
        None => Map::new(),
    };
    for sub in &def.sub_attributes {
        let Some(old_sub) = old.get(&sub.name) else {
            continue;
        };
        if let Some(v) = guard_immutable(
            sub,
            &SubLabel(label, &sub.name),
            obj.remove(&sub.name),
            old_sub,
        )? {
            obj.insert(sub.name.clone(), v);
        }
    }
    let obj = in_definition_order(&def.sub_attributes, obj);
    Ok((!obj.is_empty()).then_some(Value::Object(obj)))
}

fn same_value(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if !def.case_exact => fold(x) == fold(y),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests;
