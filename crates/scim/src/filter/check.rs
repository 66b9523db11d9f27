//! Binding a parsed filter to the schemas: every path is resolved and every
//! comparison is checked against the type of the attribute it compares, once,
//! before any resource is looked at. The result, [`Bound`], is what the
//! evaluator runs, so checking and evaluating can never disagree.

use super::ast::{CompValue, CompareOp, Filter};
use crate::error::ScimError;
use crate::path::AttrPath;
use crate::schema::{AttrType, AttributeDef, ResourceType, SchemaRegistry};
use crate::values::{datetime_key, fold, parse_bool_text, parse_datetime};

/// Checks a filter against the schemas of a resource type without evaluating it.
///
/// Errors are `invalidFilter` and name the offending attribute: unknown paths,
/// operators the attribute's type does not support, values of the wrong type,
/// value filters on attributes that are not complex.
pub fn check_filter(reg: &SchemaRegistry, rt: &ResourceType, f: &Filter) -> Result<(), ScimError> {
    bind(&Scope::Resource(reg, rt), f).map(|_| ())
}

/// Where the paths of a filter are looked up.
pub(super) enum Scope<'a> {
    /// A whole resource: paths go through [`SchemaRegistry::resolve`].
    Resource(&'a SchemaRegistry, &'a ResourceType),
    /// One element of a complex attribute: paths name its sub-attributes.
    Element(&'a AttributeDef),
}

/// A filter with its paths resolved to JSON keys and its values converted
/// to the attribute's type.
#[derive(Debug)]
pub(super) enum Bound<'a> {
    /// A whole `and` chain: flat, so that long chains need no deep recursion.
    All(Vec<Bound<'a>>),
    /// A whole `or` chain.
    AnyOf(Vec<Bound<'a>>),
    Not(Box<Bound<'a>>),
    Present(Target<'a>),
    /// True when any value of the target passes the test.
    Any(Target<'a>, Test),
    /// True when any element of the target satisfies the inner filter.
    Element(Target<'a>, Box<Bound<'a>>),
}

/// Where an attribute's values are in the JSON: `node[container][attr][sub]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    pub container: Option<&'a str>,
    pub attr: &'a str,
    pub sub: Option<&'a str>,
}

/// `eq` and the orderings; `ne` never gets this far (it is `not eq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rel {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextOp {
    Rel(Rel),
    Co,
    Sw,
    Ew,
}

/// One comparison, with the filter value already in the attribute's terms.
#[derive(Debug)]
pub(super) enum Test {
    /// `value` is already folded when `fold` is set.
    Text {
        op: TextOp,
        value: String,
        fold: bool,
    },
    Bool(bool),
    Number(Rel, f64),
    DateTime(Rel, i128),
}

pub(super) fn bind<'a>(scope: &Scope<'a>, f: &Filter) -> Result<Bound<'a>, ScimError> {
    Ok(match f {
        Filter::And(..) => Bound::All(bind_chain(scope, f, true)?),
        Filter::Or(..) => Bound::AnyOf(bind_chain(scope, f, false)?),
        Filter::Not(a) => Bound::Not(Box::new(bind(scope, a)?)),
        Filter::Present(path) => Bound::Present(resolve(scope, path)?.0),
        Filter::Compare { path, op, value } => compare(scope, path, *op, value)?,
        Filter::ValuePath { path, filter } => {
            let (target, def) = resolve(scope, path)?;
            if matches!(scope, Scope::Element(_)) {
                return Err(bad(path, "value filters do not nest"));
            }
            if target.sub.is_some() || !def.is_complex() {
                return Err(bad(
                    path,
                    "a value filter \"[...]\" needs a complex attribute",
                ));
            }
            Bound::Element(target, Box::new(bind(&Scope::Element(def), filter)?))
        }
    })
}

/// Binds the operands of a chain of `and`s (or of `or`s), left to right,
/// without recursing along the chain itself.
fn bind_chain<'a>(scope: &Scope<'a>, f: &Filter, and: bool) -> Result<Vec<Bound<'a>>, ScimError> {
    let mut out = Vec::new();
    let mut todo = vec![f];
    while let Some(g) = todo.pop() {
        match (g, and) {
            (Filter::And(a, b), true) | (Filter::Or(a, b), false) => {
                todo.push(b);
                todo.push(a);
            }
            _ => out.push(bind(scope, g)?),
        }
    }
    Ok(out)
}

fn bad(path: &AttrPath, why: &str) -> ScimError {
    ScimError::invalid_filter(format!("attribute \"{path}\" in the filter: {why}"))
}

/// The JSON location of a path and the definition it ends at.
fn resolve<'a>(
    scope: &Scope<'a>,
    path: &AttrPath,
) -> Result<(Target<'a>, &'a AttributeDef), ScimError> {
    match scope {
        Scope::Resource(reg, rt) => {
            let r = reg.resolve(rt, path).ok_or_else(|| {
                bad(
                    path,
                    &format!("no such attribute in resource type {}", rt.name),
                )
            })?;
            let target = Target {
                container: r.container(),
                attr: &r.attr.name,
                sub: r.sub.map(|s| s.name.as_str()),
            };
            Ok((target, r.leaf()))
        }
        Scope::Element(parent) => {
            let def = match (&path.uri, &path.sub_attr) {
                (None, None) => parent.sub_attribute(&path.attr),
                _ => None,
            }
            .ok_or_else(|| {
                bad(
                    path,
                    &format!("\"{}\" has no such sub-attribute", parent.name),
                )
            })?;
            let target = Target {
                container: None,
                attr: &def.name,
                sub: None,
            };
            Ok((target, def))
        }
    }
}

fn compare<'a>(
    scope: &Scope<'a>,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<Bound<'a>, ScimError> {
    let (mut target, mut leaf) = resolve(scope, path)?;
    if *value == CompValue::Null {
        // `eq null` asks whether the attribute as written is absent, so a
        // complex attribute is not narrowed to its `value` here.
        return match op {
            CompareOp::Eq => Ok(Bound::Not(Box::new(Bound::Present(target)))),
            CompareOp::Ne => Ok(Bound::Present(target)),
            _ => Err(bad(
                path,
                &format!("null only works with eq and ne, not {}", op.as_str()),
            )),
        };
    }
    if leaf.is_complex() && target.sub.is_none() {
        let Some(v) = leaf.sub_attribute("value") else {
            return Err(bad(
                path,
                "a complex attribute without a \"value\" sub-attribute cannot be compared",
            ));
        };
        target.sub = Some(&v.name);
        leaf = v;
    }
    let test = test(path, leaf, op, value)?;
    let any = Bound::Any(target, test);
    // `ne` holds when no value is equal, absent attributes included.
    Ok(if op == CompareOp::Ne {
        Bound::Not(Box::new(any))
    } else {
        any
    })
}

fn test(
    path: &AttrPath,
    leaf: &AttributeDef,
    op: CompareOp,
    value: &CompValue,
) -> Result<Test, ScimError> {
    let wrong_value = || {
        bad(
            path,
            &format!(
                "{value} cannot be compared with an attribute of type {}",
                leaf.ty.as_str()
            ),
        )
    };
    let unsupported = || {
        bad(
            path,
            &format!(
                "{} does not apply to attributes of type {}",
                op.as_str(),
                leaf.ty.as_str()
            ),
        )
    };
    let rel = match op {
        CompareOp::Eq | CompareOp::Ne => Some(Rel::Eq),
        CompareOp::Gt => Some(Rel::Gt),
        CompareOp::Ge => Some(Rel::Ge),
        CompareOp::Lt => Some(Rel::Lt),
        CompareOp::Le => Some(Rel::Le),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => None,
    };
    match leaf.ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            let CompValue::String(s) = value else {
                return Err(wrong_value());
            };
            let text_op = match (op, rel) {
                (_, Some(r)) => TextOp::Rel(r),
                (CompareOp::Co, None) => TextOp::Co,
                (CompareOp::Sw, None) => TextOp::Sw,
                _ => TextOp::Ew,
            };
            let fold_it = !leaf.case_exact;
            Ok(Test::Text {
                op: text_op,
                value: if fold_it { fold(s) } else { s.clone() },
                fold: fold_it,
            })
        }
        AttrType::Boolean => {
            if rel != Some(Rel::Eq) {
                return Err(unsupported());
            }
            match value {
                CompValue::Bool(b) => Ok(Test::Bool(*b)),
                CompValue::String(s) => parse_bool_text(s).map(Test::Bool).ok_or_else(wrong_value),
                _ => Err(wrong_value()),
            }
        }
        AttrType::Integer | AttrType::Decimal => {
            let rel = rel.ok_or_else(unsupported)?;
            match value {
                CompValue::Number(n) => n
                    .as_f64()
                    .map(|x| Test::Number(rel, x))
                    .ok_or_else(wrong_value),
                _ => Err(wrong_value()),
            }
        }
        AttrType::DateTime => {
            let rel = rel.ok_or_else(unsupported)?;
            match value {
                CompValue::String(s) => parse_datetime(s)
                    .map(|t| Test::DateTime(rel, datetime_key(t)))
                    .ok_or_else(|| bad(path, &format!("{value} is not a dateTime"))),
                _ => Err(wrong_value()),
            }
        }
        AttrType::Complex => Err(bad(path, "a complex attribute cannot be compared")),
    }
}
