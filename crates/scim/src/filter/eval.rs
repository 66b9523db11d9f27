//! The in-memory filter evaluator. The SQL stores implement the same rules,
//! and a property test holds the two together, so these are exact:
//!
//! - **Checking.** Only a [`CheckedFilter`] is evaluated (see
//!   [`super::check_filter`]); a filter that fails the check is an error
//!   whatever the resource holds, never a silent `false`.
//! - **Where values are.** Resources are canonical JSON: attributes under the
//!   exact name the schema gives them, extension attributes inside the object
//!   under the extension URN. The values of `attr` are its array elements (a
//!   non-array counts as one element); the values of `attr.sub` are the `sub`
//!   of every element, so a multi-valued path matches when *any* value does.
//!   Missing and `null` contribute no value; an element that is not an object
//!   has no sub-attributes.
//! - **Complex attributes** compared without a sub-attribute (`emails co "x"`,
//!   `manager eq "id"`) compare their `value` sub-attribute. `pr`, `eq null`
//!   and `ne null` look at the attribute itself.
//! - **Text** (string, reference, binary): when the compared attribute has
//!   `caseExact: false` both sides go through [`crate::values::fold`]. `eq` is
//!   string equality, `co`/`sw`/`ew` are contains/starts-with/ends-with, and
//!   `gt`/`ge`/`lt`/`le` are Rust `str` (byte) order. A value that is not a
//!   JSON string never matches.
//! - **boolean**: `eq` only (and `ne`); the stored value must be a JSON bool.
//! - **integer, decimal**: compared as `f64`; the stored value must be a JSON number.
//! - **dateTime**: both sides read with [`crate::values::parse_datetime`] and
//!   compared as instants; a stored value that does not parse never matches.
//! - **`pr`**: some value is not `null`, `""`, `[]` or `{}`.
//! - **`ne`** on a singular attribute is `not eq`: true when the attribute is
//!   absent. On a multi-valued attribute it is like every other operator:
//!   true when *any* value is not equal (false without values).
//! - **`eq null`** is `not pr`; **`ne null`** is `pr`.
//! - Every other operator is true when *any* value passes (false when absent).
//! - **`attr[filter]`** is true when one element of `attr` (multi-valued, or
//!   the single object of a single-valued complex attribute) satisfies the
//!   whole inner filter; elements that are not objects never do.
//! - `and`, `or` and `not` are plain boolean logic over the above.

use std::cmp::Ordering;

use serde_json::Value;

use super::ast::Filter;
use super::check::{AttrRef, CheckedFilter, FilterScope, Node, Rel, Test, TextOp};
use crate::error::ScimError;
use crate::schema::{Resolved, ResourceType, SchemaRegistry};
use crate::values::{datetime_key, fold, parse_datetime};

/// True when `resource` satisfies `f`. Errors when `f` does not fit the schemas.
pub fn matches(
    reg: &SchemaRegistry,
    rt: &ResourceType,
    f: &Filter,
    resource: &Value,
) -> Result<bool, ScimError> {
    Ok(CheckedFilter::check(reg, rt, f)?.matches(resource))
}

/// True when `element`, one element of the complex attribute `parent`,
/// satisfies the value filter `f`, whose paths name sub-attributes of
/// `parent.attr` (`parent.sub`, if any, plays no part).
pub fn matches_element(parent: &Resolved, f: &Filter, element: &Value) -> Result<bool, ScimError> {
    Ok(CheckedFilter::check_element(parent, f)?.matches(element))
}

impl CheckedFilter {
    /// True when `node` satisfies the filter: a resource, or for a filter
    /// checked with [`CheckedFilter::check_element`], one element.
    pub fn matches(&self, node: &Value) -> bool {
        eval(self.root(), self.scope(), node)
    }
}

fn eval(n: &Node, scope: FilterScope, node: &Value) -> bool {
    match n {
        Node::All(xs) => xs.iter().all(|x| eval(x, scope, node)),
        Node::AnyOf(xs) => xs.iter().any(|x| eval(x, scope, node)),
        Node::Not(x) => !eval(x, scope, node),
        Node::Present(t) => any_value(t, scope, node, is_present),
        Node::Test(t, test) => any_value(t, scope, node, |v| passes(test, v)),
        Node::Element(t, inner) => any_value(t, scope, node, |e| {
            e.is_object() && eval(inner, FilterScope::Element, e)
        }),
    }
}

/// An attribute's values: array elements, or the value itself; never `null`.
fn spread(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    let items: &[Value] = match v {
        Some(Value::Array(a)) => a,
        Some(v) => std::slice::from_ref(v),
        None => &[],
    };
    items.iter().filter(|v| !v.is_null())
}

/// True when `pred` holds for some value of the target in `node`.
fn any_value(
    t: &AttrRef,
    scope: FilterScope,
    node: &Value,
    mut pred: impl FnMut(&Value) -> bool,
) -> bool {
    if scope == FilterScope::Element {
        // In an element, a path names one of its sub-attributes.
        let key = t.sub.as_deref().unwrap_or(&t.attr);
        return spread(node.get(key)).any(pred);
    }
    let base = match &t.extension {
        Some(c) => node.get(c),
        None => Some(node),
    };
    let mut top = spread(base.and_then(|b| b.get(&t.attr)));
    match &t.sub {
        None => top.any(pred),
        Some(sub) => top.any(|e| spread(e.get(sub)).any(&mut pred)),
    }
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn holds(rel: Rel, ord: Ordering) -> bool {
    match rel {
        Rel::Eq => ord == Ordering::Equal,
        Rel::Ne => ord != Ordering::Equal,
        Rel::Gt => ord == Ordering::Greater,
        Rel::Ge => ord != Ordering::Less,
        Rel::Lt => ord == Ordering::Less,
        Rel::Le => ord != Ordering::Greater,
    }
}

fn passes(test: &Test, v: &Value) -> bool {
    match test {
        Test::Text { op, value, fold: f } => {
            let Some(s) = v.as_str() else {
                return false;
            };
            let folded;
            let s = if *f {
                folded = fold(s);
                folded.as_str()
            } else {
                s
            };
            match op {
                TextOp::Rel(rel) => holds(*rel, s.cmp(value.as_str())),
                TextOp::Co => s.contains(value.as_str()),
                TextOp::Sw => s.starts_with(value.as_str()),
                TextOp::Ew => s.ends_with(value.as_str()),
            }
        }
        Test::Bool(b) => v.as_bool() == Some(*b),
        Test::Number(rel, x) => {
            let Some(y) = v.as_number().and_then(|n| n.as_f64()) else {
                return false;
            };
            y.partial_cmp(x).is_some_and(|o| holds(*rel, o))
        }
        Test::DateTime(rel, key) => v
            .as_str()
            .and_then(parse_datetime)
            .is_some_and(|t| holds(*rel, datetime_key(t).cmp(key))),
    }
}
