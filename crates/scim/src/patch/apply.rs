//! Binding each operation to its target and dispatching on the target's shape.

use serde_json::{Map, Value};

use super::canon::{canon_one, is_clear};
use super::{MemberOp, PatchOp, PatchOperation, element_matcher, member_ops, multi, parse_path};
use crate::error::{Result, ScimError};
use crate::filter::{Filter, PatchPath};
use crate::schema::{AttributeDef, Mutability, Resolved, ResourceType, Schema, SchemaRegistry};

/// Where an operation came from: readOnly attributes are tolerated inside a
/// pathless value (clients echo whole resources) but not named by a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Path,
    Pathless,
}

/// An attribute path bound to its definitions, with its value filter.
pub(super) struct Target<'a, 'f> {
    pub res: Resolved<'a>,
    pub filter: Option<&'f Filter>,
}

pub(super) struct Patcher<'a> {
    pub reg: &'a SchemaRegistry,
    pub rt: &'a ResourceType,
    members: Vec<MemberOp>,
}

type Doc = Map<String, Value>;

impl<'a> Patcher<'a> {
    pub fn new(reg: &'a SchemaRegistry, rt: &'a ResourceType) -> Self {
        Patcher {
            reg,
            rt,
            members: Vec::new(),
        }
    }

    pub fn into_members(self) -> Vec<MemberOp> {
        self.members
    }

    pub fn apply(&mut self, doc: &mut Doc, op: &PatchOperation) -> Result<()> {
        match (&op.path, op.op, &op.value) {
            (Some(p), _, v) => self.apply_path(doc, op.op, p, v.as_ref()),
            (None, PatchOp::Remove, _) => {
                Err(ScimError::no_target("a remove operation needs a \"path\""))
            }
            (None, _, Some(v)) => self.apply_object(doc, op.op, None, v),
            (None, _, None) => Err(ScimError::invalid_syntax(format!(
                "the {} operation needs a \"value\"",
                op.op.as_str()
            ))),
        }
    }

    fn apply_path(
        &mut self,
        doc: &mut Doc,
        kind: PatchOp,
        p: &PatchPath,
        value: Option<&Value>,
    ) -> Result<()> {
        let text = p.path.to_string();
        if p.filter.is_none()
            && let Some(ext) = self.reg.extension(self.rt, &text)
        {
            return self.apply_extension(doc, kind, ext, value);
        }
        let res = self
            .reg
            .resolve(self.rt, &p.path)
            .ok_or_else(|| ScimError::invalid_path(format!("no attribute at path {text:?}")))?;
        let target = Target {
            res,
            filter: p.filter.as_ref(),
        };
        self.apply_target(doc, kind, &target, value, Origin::Path)
    }

    /// A pathless value, or the object under an extension URN: each key is a
    /// path of its own, so Entra's `"name.givenName"` and URN-qualified keys work.
    fn apply_object(
        &mut self,
        doc: &mut Doc,
        kind: PatchOp,
        ext: Option<&Schema>,
        value: &Value,
    ) -> Result<()> {
        let obj = value.as_object().ok_or_else(|| {
            ScimError::invalid_syntax("the value of a pathless operation must be an object")
        })?;
        for (key, v) in obj {
            self.apply_key(doc, kind, ext, key, v)?;
        }
        Ok(())
    }

    fn apply_key(
        &mut self,
        doc: &mut Doc,
        kind: PatchOp,
        ext: Option<&Schema>,
        key: &str,
        v: &Value,
    ) -> Result<()> {
        if ext.is_none() {
            if key.eq_ignore_ascii_case("schemas") {
                return Ok(());
            }
            if let Some(e) = self.reg.extension(self.rt, key) {
                return self.apply_extension(doc, kind, e, Some(v));
            }
            if key.eq_ignore_ascii_case(&self.rt.schema) {
                return self.apply_object(doc, kind, None, v);
            }
        }
        if let Some(e) = ext
            && crate::validate::is_own_schemas(e, key, v)?
        {
            return Ok(());
        }
        let text = match ext {
            Some(e) => format!("{}:{key}", e.id),
            None => key.to_owned(),
        };
        let unknown = || ScimError::invalid_syntax(format!("unknown attribute {key:?}"));
        let p = parse_path(&text).map_err(|_| unknown())?;
        let res = self.reg.resolve(self.rt, &p.path).ok_or_else(unknown)?;
        let target = Target {
            res,
            filter: p.filter.as_ref(),
        };
        self.apply_target(doc, kind, &target, Some(v), Origin::Pathless)
    }

    fn apply_extension(
        &mut self,
        doc: &mut Doc,
        kind: PatchOp,
        ext: &Schema,
        value: Option<&Value>,
    ) -> Result<()> {
        match value {
            Some(v) if kind != PatchOp::Remove && !is_clear(v) => {
                self.apply_object(doc, kind, Some(ext), v)
            }
            _ => {
                doc.remove(&ext.id);
                Ok(())
            }
        }
    }

    fn apply_target(
        &mut self,
        doc: &mut Doc,
        kind: PatchOp,
        t: &Target,
        value: Option<&Value>,
        origin: Origin,
    ) -> Result<()> {
        if self.is_members(&t.res) {
            let filter = match t.filter {
                Some(f) => Some((f, element_matcher(&t.res, f)?)),
                None => None,
            };
            let op = member_ops::member_op(kind, filter, t.res.sub, value)?;
            self.members.extend(op);
            return Ok(());
        }
        if !writable(doc, kind, t, value, origin)? {
            return Ok(());
        }
        let container = match t.res.container() {
            None => doc,
            Some(urn) if kind == PatchOp::Remove && !doc.contains_key(urn) => return Ok(()),
            Some(urn) => extension_object(doc, urn),
        };
        match (kind, value) {
            (PatchOp::Remove, v) => self.remove(container, t, v.filter(|v| !v.is_null())),
            (_, Some(v)) if is_clear(v) => self.remove(container, t, None),
            (_, Some(v)) => self.write(container, kind, t, v),
            (_, None) => Err(ScimError::invalid_syntax(format!(
                "the {} operation needs a \"value\"",
                kind.as_str()
            ))),
        }
    }

    /// Members are rows, so only a Group's core `members` is special.
    fn is_members(&self, res: &Resolved) -> bool {
        self.rt.name.eq_ignore_ascii_case("Group")
            && res.extension.is_none()
            && res.attr.name == "members"
    }

    fn write(&self, c: &mut Doc, kind: PatchOp, t: &Target, v: &Value) -> Result<()> {
        let attr = t.res.attr;
        match (t.filter, t.res.sub, attr.multi_valued) {
            (Some(_), _, false) => Err(not_multi(attr)),
            (None, None, true) => multi::write_all(c, kind, attr, v),
            (None, None, false) => write_single(c, attr, v),
            (None, Some(sub), false) => {
                write_sub(c, attr, sub, v);
                Ok(())
            }
            (f, sub, true) => multi::write_elements(c, kind, t, f, sub, v),
        }
    }

    fn remove(&self, c: &mut Doc, t: &Target, value: Option<&Value>) -> Result<()> {
        let attr = t.res.attr;
        match (t.filter, t.res.sub, attr.multi_valued, value) {
            (Some(_), _, false, _) => Err(not_multi(attr)),
            // Removing listed values rather than all of them is a tolerance for clients
            // that send `{"op":"remove","path":"emails","value":[…]}`.
            (None, None, true, Some(v)) => multi::remove_listed(c, attr, v),
            (None, None, _, _) => {
                c.remove(&attr.name);
                Ok(())
            }
            (None, Some(sub), false, _) => {
                if let Some(Value::Object(o)) = c.get_mut(&attr.name) {
                    o.remove(&sub.name);
                }
                Ok(())
            }
            (f, sub, true, _) => multi::remove_elements(c, t, f, sub),
        }
    }
}

fn not_multi(attr: &AttributeDef) -> ScimError {
    ScimError::invalid_path(format!(
        "a value filter needs a multi-valued attribute, and {} is not one",
        attr.name
    ))
}

/// A simple value is replaced; a complex one is merged sub-attribute by
/// sub-attribute, as RFC 7644 §3.5.2.1 and §3.5.2.3 both ask.
fn write_single(c: &mut Doc, attr: &AttributeDef, v: &Value) -> Result<()> {
    let v = canon_one(attr, v, false)?;
    match v {
        Value::Object(new) if attr.is_complex() => {
            let slot = object_slot(c, &attr.name);
            for (k, sv) in new {
                if is_clear(&sv) {
                    slot.remove(&k);
                } else {
                    slot.insert(k, sv);
                }
            }
        }
        other => {
            c.insert(attr.name.clone(), other);
        }
    }
    Ok(())
}

fn write_sub(c: &mut Doc, attr: &AttributeDef, sub: &AttributeDef, v: &Value) {
    object_slot(c, &attr.name).insert(sub.name.clone(), v.clone());
}

/// The object stored under `key`, created (or replacing a non-object) if need be.
pub(super) fn object_slot<'d>(c: &'d mut Doc, key: &str) -> &'d mut Doc {
    let slot = c
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("slot was just made an object"),
    }
}

fn extension_object<'d>(doc: &'d mut Doc, urn: &str) -> &'d mut Doc {
    object_slot(doc, urn)
}

/// Whether the operation may go ahead: `Ok(false)` skips a tolerated
/// readOnly attribute of a pathless value.
fn writable(
    doc: &Doc,
    kind: PatchOp,
    t: &Target,
    value: Option<&Value>,
    origin: Origin,
) -> Result<bool> {
    let read_only = t.res.attr.mutability == Mutability::ReadOnly
        || t.res.leaf().mutability == Mutability::ReadOnly;
    if !read_only {
        return Ok(true);
    }
    let tolerated = origin == Origin::Pathless
        && kind != PatchOp::Remove
        && (is_server_owned(&t.res) || value.is_some_and(|v| unchanged(doc, t, v)));
    if tolerated {
        Ok(false)
    } else {
        Err(ScimError::mutability(format!(
            "{} is readOnly",
            t.res.leaf().name
        )))
    }
}

/// `id` and `meta` are not in the stored document at all, so an echoed value
/// cannot be compared; they can never be changed by a client either.
fn is_server_owned(res: &Resolved) -> bool {
    res.extension.is_none() && (res.attr.name == "id" || res.attr.name == "meta")
}

fn unchanged(doc: &Doc, t: &Target, v: &Value) -> bool {
    let container = match t.res.container() {
        None => Some(doc),
        Some(urn) => doc.get(urn).and_then(Value::as_object),
    };
    let mut current = container.and_then(|c| c.get(&t.res.attr.name));
    if let Some(sub) = t.res.sub {
        current = current.and_then(|c| c.get(&sub.name));
    }
    let empty = is_clear(v) || v.as_array().is_some_and(Vec::is_empty);
    if empty || t.filter.is_some() {
        return empty && current.is_none();
    }
    let leaf = t.res.leaf();
    let given = match v {
        Value::Array(items) if leaf.multi_valued => items
            .iter()
            .map(|x| canon_one(leaf, x, true))
            .collect::<Result<Vec<_>>>()
            .ok()
            .map(Value::Array),
        one if leaf.multi_valued => canon_one(leaf, one, true)
            .ok()
            .map(|x| Value::Array(vec![x])),
        one => canon_one(leaf, one, true).ok(),
    };
    given.is_some() && given.as_ref() == current
}
