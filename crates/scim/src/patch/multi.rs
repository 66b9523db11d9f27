//! Multi-valued attributes: whole lists, elements chosen by a value filter,
//! and the "at most one primary" rule of RFC 7643 §2.4.

use serde_json::{Map, Value};

use super::PatchOp;
use super::apply::Target;
use super::canon::{canon_element, canon_list, designates, element_from_filter, is_true};
use super::element_matcher;
use crate::error::{Result, ScimError};
use crate::filter::{CheckedFilter, Filter};
use crate::schema::AttributeDef;

type Doc = Map<String, Value>;

/// add appends the values not already present; replace swaps the whole list.
pub(super) fn write_all(c: &mut Doc, kind: PatchOp, attr: &AttributeDef, v: &Value) -> Result<()> {
    let new = canon_list(attr, v)?;
    let old = take_list(c, &attr.name);
    let (mut list, touched) = match kind {
        PatchOp::Add => append_unique(old, new),
        _ => {
            let n = new.len();
            (new, vec![true; n])
        }
    };
    enforce_primary(attr, &mut list, &touched);
    put_list(c, &attr.name, list);
    Ok(())
}

fn append_unique(mut list: Vec<Value>, new: Vec<Value>) -> (Vec<Value>, Vec<bool>) {
    let mut touched = vec![false; list.len()];
    for v in new {
        if !list.contains(&v) {
            list.push(v);
            touched.push(true);
        }
    }
    (list, touched)
}

/// add/replace on `attr[filter]` or `attr[filter].sub` (or `attr.sub`, every element).
/// When nothing matches, the element the filter describes is created: Entra ID
/// adds a work email with `emails[type eq "work"].value` and nothing else.
pub(super) fn write_elements(
    c: &mut Doc,
    kind: PatchOp,
    t: &Target,
    f: Option<&Filter>,
    sub: Option<&AttributeDef>,
    v: &Value,
) -> Result<()> {
    let attr = t.res.attr;
    if !attr.is_complex() {
        return Err(ScimError::invalid_path(format!(
            "{} has no sub-attributes to filter on",
            attr.name
        )));
    }
    let mut list = take_list(c, &attr.name);
    let matched = matches(t, f, &list)?;
    let touched = if matched.contains(&true) {
        update_matched(&mut list, &matched, kind, attr, sub, v)?;
        matched
    } else {
        list.push(Value::Object(new_element(attr, kind, f, sub, v)?));
        let mut touched = vec![false; list.len() - 1];
        touched.push(true);
        touched
    };
    enforce_primary(attr, &mut list, &touched);
    put_list(c, &attr.name, list);
    Ok(())
}

fn update_matched(
    list: &mut [Value],
    matched: &[bool],
    kind: PatchOp,
    attr: &AttributeDef,
    sub: Option<&AttributeDef>,
    v: &Value,
) -> Result<()> {
    let whole = match sub {
        Some(_) => None,
        None => Some(canon_element(attr, v)?),
    };
    for (el, _) in list.iter_mut().zip(matched).filter(|(_, m)| **m) {
        match (kind, sub, &whole) {
            (_, Some(s), _) => {
                if let Value::Object(o) = el {
                    o.insert(s.name.clone(), v.clone());
                }
            }
            (PatchOp::Replace, None, Some(w)) => *el = Value::Object(w.clone()),
            (_, None, Some(w)) => {
                if let Value::Object(o) = el {
                    merge(o, w);
                }
            }
            (_, None, None) => {}
        }
    }
    Ok(())
}

fn new_element(
    attr: &AttributeDef,
    kind: PatchOp,
    f: Option<&Filter>,
    sub: Option<&AttributeDef>,
    v: &Value,
) -> Result<Map<String, Value>> {
    let no_target = || {
        ScimError::no_target(format!(
            "no value of {} matches the filter of the path",
            attr.name
        ))
    };
    if kind == PatchOp::Replace && sub.is_none() {
        return Err(no_target());
    }
    let mut el = match f {
        Some(f) => element_from_filter(attr, f).ok_or_else(no_target)?,
        None => Map::new(),
    };
    match sub {
        Some(s) => {
            el.insert(s.name.clone(), v.clone());
        }
        None => merge(&mut el, &canon_element(attr, v)?),
    }
    Ok(el)
}

fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        into.insert(k.clone(), v.clone());
    }
}

/// remove with a value on a multi-valued attribute: only the listed values go.
pub(super) fn remove_listed(c: &mut Doc, attr: &AttributeDef, v: &Value) -> Result<()> {
    let given = canon_list(attr, v)?;
    if let Some(Value::Array(list)) = c.get_mut(&attr.name) {
        list.retain(|el| !given.iter().any(|g| designates(attr, g, el)));
    }
    Ok(())
}

/// remove on `attr[filter]` (the elements) or `attr[filter].sub` (their
/// sub-attribute; removing `value` removes the elements).
pub(super) fn remove_elements(
    c: &mut Doc,
    t: &Target,
    f: Option<&Filter>,
    sub: Option<&AttributeDef>,
) -> Result<()> {
    // Checked before looking at the document, so a bad filter is an error whatever it holds.
    let matcher = f.map(|f| element_matcher(&t.res, f)).transpose()?;
    let Some(Value::Array(list)) = c.get_mut(&t.res.attr.name) else {
        return Ok(());
    };
    let matched = match_all(matcher.as_ref(), list);
    match sub {
        // `value` is what an element is (RFC 7643 §2.4); without it only labels
        // like `type` and `primary` would be left. Entra ID clears a user's mail
        // with `emails[type eq "work"].value` set to "", which must leave no
        // address-less work email behind.
        Some(s) if s.name != "value" => {
            for (el, _) in list.iter_mut().zip(&matched).filter(|(_, m)| **m) {
                if let Value::Object(o) = el {
                    o.remove(&s.name);
                }
            }
        }
        _ => {
            let mut keep = matched.iter().map(|m| !m);
            list.retain(|_| keep.next().unwrap_or(true));
        }
    }
    Ok(())
}

fn matches(t: &Target, f: Option<&Filter>, list: &[Value]) -> Result<Vec<bool>> {
    let matcher = f.map(|f| element_matcher(&t.res, f)).transpose()?;
    Ok(match_all(matcher.as_ref(), list))
}

/// Without a filter (`emails.value`) every element is concerned.
fn match_all(matcher: Option<&CheckedFilter>, list: &[Value]) -> Vec<bool> {
    match matcher {
        Some(m) => list.iter().map(|el| m.matches(el)).collect(),
        None => vec![true; list.len()],
    }
}

fn take_list(c: &mut Doc, name: &str) -> Vec<Value> {
    match c.remove(name) {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => vec![other],
    }
}

fn put_list(c: &mut Doc, name: &str, list: Vec<Value>) {
    if !list.is_empty() {
        c.insert(name.to_owned(), Value::Array(list));
    }
}

/// The element this operation made primary wins; every other loses `primary`.
fn enforce_primary(attr: &AttributeDef, list: &mut [Value], touched: &[bool]) {
    let Some(p) = attr.sub_attribute("primary") else {
        return;
    };
    let is_primary = |v: &Value| is_true(v.get(&p.name));
    let winner = (0..list.len())
        .rev()
        .find(|&i| touched.get(i) == Some(&true) && is_primary(&list[i]));
    let Some(winner) = winner else {
        return;
    };
    for (i, el) in list.iter_mut().enumerate() {
        if i != winner
            && is_primary(el)
            && let Value::Object(o) = el
        {
            o.insert(p.name.clone(), Value::Bool(false));
        }
    }
}
