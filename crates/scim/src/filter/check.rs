//! Binding a parsed filter to the schemas: every path is resolved and every
//! comparison is checked against the type of the attribute it compares, once,
//! before any resource is looked at. The result, [`CheckedFilter`], is the
//! only filter the in-memory evaluator and the SQL compilers accept, so a
//! path means the same thing to all of them and no value is parsed twice.

use std::fmt;

use super::ast::{CompValue, CompareOp, Filter};
use crate::error::ScimError;
use crate::path::AttrPath;
use crate::schema::{AttrType, AttributeDef, Resolved, ResourceType, Returned, SchemaRegistry};
use crate::values::{datetime_key, fold, parse_bool_text, parse_datetime};

/// Checks a filter against the schemas of a resource type and resolves it.
///
/// Errors are `invalidFilter` and name the offending attribute: unknown paths,
/// operators the attribute's type does not support, values of the wrong type,
/// value filters on attributes that are not complex.
pub fn check_filter(
    reg: &SchemaRegistry,
    rt: &ResourceType,
    f: &Filter,
) -> Result<CheckedFilter, ScimError> {
    CheckedFilter::check(reg, rt, f)
}

/// A filter whose paths are resolved to attributes and whose values are
/// converted to those attributes' types. Built only by checking a parsed
/// [`Filter`], so holding one proves the filter fits the schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedFilter {
    root: Node,
    scope: FilterScope,
    /// The parsed filter printed back (it parses to the same tree): what a
    /// cursor is bound to, and what logs show.
    text: String,
}

/// What the paths of a checked filter are relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterScope {
    /// A whole resource (a list request's `filter`).
    Resource,
    /// One element of a complex attribute (a PATCH path's `attr[filter]`):
    /// every leaf names a sub-attribute of that attribute.
    Element,
}

impl CheckedFilter {
    /// Resolves `f` against the schemas of `rt`.
    pub fn check(reg: &SchemaRegistry, rt: &ResourceType, f: &Filter) -> Result<Self, ScimError> {
        Ok(CheckedFilter {
            root: bind(&Scope::Resource(reg, rt), f)?,
            scope: FilterScope::Resource,
            text: f.to_string(),
        })
    }

    /// Resolves `f`, a value filter such as PATCH's `emails[type eq "work"]`,
    /// against the sub-attributes of `parent` (its `sub`, if any, plays no part).
    pub fn check_element(parent: &Resolved<'_>, f: &Filter) -> Result<Self, ScimError> {
        let def = parent.attr;
        if !def.is_complex() {
            return Err(ScimError::invalid_filter(format!(
                "a value filter needs a complex attribute, and \"{}\" is not one",
                def.name
            )));
        }
        let parent = Resolved {
            sub: None,
            ..*parent
        };
        Ok(CheckedFilter {
            root: bind(&Scope::Element(&parent), f)?,
            scope: FilterScope::Element,
            text: f.to_string(),
        })
    }

    pub fn root(&self) -> &Node {
        &self.root
    }

    pub fn scope(&self) -> FilterScope {
        self.scope
    }

    /// The filter as text, in the parser's canonical form.
    pub fn as_text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for CheckedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A node of a checked filter. `eq null` is `Not(Present)` and `ne null` is
/// `Present`; `ne` is `Not(eq)` on a singular attribute (true when it is
/// absent) and a `Rel::Ne` test on a multi-valued one (true when some value
/// is not equal, RFC 7644 §3.4.2.2), so consumers see only these forms.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A whole `and` chain: flat, so that long chains need no deep recursion.
    All(Vec<Node>),
    /// A whole `or` chain.
    AnyOf(Vec<Node>),
    Not(Box<Node>),
    /// Some value of the attribute is present (not null, `""`, `[]` or `{}`).
    Present(AttrRef),
    /// Some value of the attribute passes the test.
    Test(AttrRef, Test),
    /// Some element of the complex attribute satisfies the inner node, whose
    /// leaves name sub-attributes of it (their `sub`).
    Element(AttrRef, Box<Node>),
}

/// An attribute path resolved against the schemas: where its values are in a
/// stored resource, and the facts about the attribute that filtering needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrRef {
    /// The URN of the extension schema holding the attribute; in a stored
    /// resource its attributes live in the object under this key.
    pub extension: Option<String>,
    /// The attribute's name as the schema spells it.
    pub attr: String,
    /// The sub-attribute's name as the schema spells it, if the path has one.
    pub sub: Option<String>,
    /// The (top-level) attribute is multi-valued: any value may match.
    pub multi_valued: bool,
    /// Neither the attribute nor the sub-attribute is multi-valued: a
    /// stored resource has at most one value here (the validator refuses
    /// arrays for singular attributes).
    pub one_value: bool,
    /// The type of the attribute the path ends at.
    pub ty: AttrType,
    /// The attribute the path ends at compares case-sensitively.
    pub case_exact: bool,
    /// The attribute or sub-attribute is `returned: never` (password): no
    /// client ever sees it, so filters find it absent.
    pub never_returned: bool,
}

impl AttrRef {
    /// The path through `r`, ending at `leaf` (`r.sub`, `r.attr`, or a
    /// sub-attribute of `r.attr`).
    fn new(r: &Resolved<'_>, sub: Option<&AttributeDef>) -> Self {
        let leaf = sub.unwrap_or(r.attr);
        AttrRef {
            extension: r.container().map(str::to_owned),
            attr: r.attr.name.clone(),
            sub: sub.map(|s| s.name.clone()),
            multi_valued: r.attr.multi_valued,
            one_value: !r.attr.multi_valued && !sub.is_some_and(|s| s.multi_valued),
            ty: leaf.ty,
            case_exact: leaf.case_exact,
            never_returned: r.attr.returned == Returned::Never
                || sub.is_some_and(|s| s.returned == Returned::Never),
        }
    }

    /// The path `r` names.
    pub fn of(r: &Resolved<'_>) -> Self {
        AttrRef::new(r, r.sub)
    }

    /// A core (or common) attribute, not one of an extension.
    pub fn is_core(&self) -> bool {
        self.extension.is_none()
    }

    pub fn is_complex(&self) -> bool {
        self.ty == AttrType::Complex
    }
}

/// `eq`, `ne` and the orderings. `ne` appears only on multi-valued paths
/// ("some value is not equal"); elsewhere it is `not eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rel {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Rel(Rel),
    Co,
    Sw,
    Ew,
}

/// One comparison, with the filter value already in the attribute's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `value` is already folded when `fold` is set (the attribute is not
    /// `caseExact`): the stored side must be folded the same way.
    Text {
        op: TextOp,
        value: String,
        fold: bool,
    },
    Bool(bool),
    Number(Rel, f64),
    /// An instant as [`datetime_key`] gives it: nanoseconds since the epoch.
    DateTime(Rel, i128),
}

/// Where the paths of a filter are looked up.
enum Scope<'a> {
    /// A whole resource: paths go through [`SchemaRegistry::resolve`].
    Resource(&'a SchemaRegistry, &'a ResourceType),
    /// One element of a complex attribute: paths name its sub-attributes.
    Element(&'a Resolved<'a>),
}

fn bind(scope: &Scope<'_>, f: &Filter) -> Result<Node, ScimError> {
    Ok(match f {
        Filter::And(..) => Node::All(bind_chain(scope, f, true)?),
        Filter::Or(..) => Node::AnyOf(bind_chain(scope, f, false)?),
        Filter::Not(a) => Node::Not(Box::new(bind(scope, a)?)),
        Filter::Present(path) => Node::Present(resolve(scope, path)?.0),
        Filter::Compare { path, op, value } => compare(scope, path, *op, value)?,
        Filter::ValuePath { path, filter } => {
            let (target, resolved) = resolve(scope, path)?;
            let Scope::Resource(..) = scope else {
                return Err(bad(path, "value filters do not nest"));
            };
            let Some(parent) = resolved.filter(|r| r.sub.is_none() && r.attr.is_complex()) else {
                return Err(bad(
                    path,
                    "a value filter \"[...]\" needs a complex attribute",
                ));
            };
            Node::Element(target, Box::new(bind(&Scope::Element(&parent), filter)?))
        }
    })
}

/// Binds the operands of a chain of `and`s (or of `or`s), left to right,
/// without recursing along the chain itself.
fn bind_chain(scope: &Scope<'_>, f: &Filter, and: bool) -> Result<Vec<Node>, ScimError> {
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

/// The resolved path, and in resource scope the resolution it came from.
fn resolve<'a>(
    scope: &Scope<'a>,
    path: &AttrPath,
) -> Result<(AttrRef, Option<Resolved<'a>>), ScimError> {
    match scope {
        Scope::Resource(..) if is_schemas(path) => Ok((schemas_attr(), None)),
        Scope::Resource(reg, rt) => {
            let r = reg.resolve(rt, path).ok_or_else(|| {
                bad(
                    path,
                    &format!("no such attribute in resource type {}", rt.name),
                )
            })?;
            Ok((AttrRef::of(&r), Some(r)))
        }
        Scope::Element(parent) => {
            let def = match (&path.uri, &path.sub_attr) {
                (None, None) => parent.attr.sub_attribute(&path.attr),
                _ => None,
            }
            .ok_or_else(|| {
                bad(
                    path,
                    &format!("\"{}\" has no such sub-attribute", parent.attr.name),
                )
            })?;
            Ok((AttrRef::new(parent, Some(def)), None))
        }
    }
}

/// `schemas`: an attribute of every resource (RFC 7643 §3) that no schema
/// defines, so the registry does not resolve it.
fn is_schemas(path: &AttrPath) -> bool {
    path.uri.is_none() && path.sub_attr.is_none() && path.attr.eq_ignore_ascii_case("schemas")
}

/// `schemas` as filters see it: multi-valued URIs, compared without case
/// (schema URIs are case-insensitive), at the top of every resource.
fn schemas_attr() -> AttrRef {
    AttrRef {
        extension: None,
        attr: "schemas".to_owned(),
        sub: None,
        multi_valued: true,
        one_value: false,
        ty: AttrType::Reference,
        case_exact: false,
        never_returned: false,
    }
}

fn compare(
    scope: &Scope<'_>,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<Node, ScimError> {
    let (mut target, resolved) = resolve(scope, path)?;
    if *value == CompValue::Null {
        // `eq null` asks whether the attribute as written is absent, so a
        // complex attribute is not narrowed to its `value` here.
        return match op {
            CompareOp::Eq => Ok(Node::Not(Box::new(Node::Present(target)))),
            CompareOp::Ne => Ok(Node::Present(target)),
            _ => Err(bad(
                path,
                &format!("null only works with eq and ne, not {}", op.as_str()),
            )),
        };
    }
    if target.is_complex() && target.sub.is_none() {
        // Only a resource-scope path can end at a complex attribute: a
        // sub-attribute is never complex.
        let value_def = resolved
            .as_ref()
            .and_then(|r| r.attr.sub_attribute("value").map(|v| (r, v)));
        let Some((r, v)) = value_def else {
            return Err(bad(
                path,
                "a complex attribute without a \"value\" sub-attribute cannot be compared",
            ));
        };
        target = AttrRef::new(r, Some(v));
    }
    let test = test(path, &target, op, value)?;
    if op != CompareOp::Ne {
        return Ok(Node::Test(target, test));
    }
    // A filter on a multi-valued attribute matches when any value matches
    // (RFC 7644 §3.4.2.2), `ne` included: `emails.type ne "work"` finds a
    // user with some email that is not a work one. A singular attribute's
    // `ne` holds when its value is not equal, absent included. Inside a value
    // filter every path is one element's own (singular) sub-attribute.
    let multi = matches!(scope, Scope::Resource(..)) && target.multi_valued;
    Ok(if multi {
        Node::Test(target, not_equal(test))
    } else {
        Node::Not(Box::new(Node::Test(target, test)))
    })
}

/// The `ne` form of an `eq` test.
fn not_equal(eq: Test) -> Test {
    match eq {
        Test::Text { value, fold, .. } => Test::Text {
            op: TextOp::Rel(Rel::Ne),
            value,
            fold,
        },
        // A boolean has two values: not `b` is `!b` (other JSON never matches).
        Test::Bool(b) => Test::Bool(!b),
        Test::Number(_, x) => Test::Number(Rel::Ne, x),
        Test::DateTime(_, t) => Test::DateTime(Rel::Ne, t),
    }
}

fn test(
    path: &AttrPath,
    leaf: &AttrRef,
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
