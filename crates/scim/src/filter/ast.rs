//! The filter syntax tree (RFC 7644 §3.4.2.2).

use std::fmt;

use serde_json::Number;

use crate::path::AttrPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A comparison value: `compValue = false / null / true / number / string`.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
        }
    }
}

/// A filter expression.
///
/// Paths inside [`Filter::ValuePath`]'s inner filter are relative to the
/// complex attribute: their `attr` is a sub-attribute name.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    /// `emails[type eq "work" and value co "@example.com"]`: one element of the
    /// multi-valued (or complex) attribute `path` must satisfy `filter` as a whole.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

impl Filter {
    /// The operands of a left-leaning chain of one operator, without the
    /// parentheses the left operands would otherwise get: `and`/`or` associate
    /// to the left, so `(a and b and c)` is the same tree as
    /// `((a and b) and c)` but stays within the parser's nesting limit.
    fn fmt_chain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, word) = match self {
            Filter::And(a, b) => (a, b, "and"),
            Filter::Or(a, b) => (a, b, "or"),
            _ => return write!(f, "{self}"),
        };
        if std::mem::discriminant(&**a) == std::mem::discriminant(self) {
            a.fmt_chain(f)?;
        } else {
            write!(f, "{a}")?;
        }
        write!(f, " {word} {b}")
    }
}

impl fmt::Display for Filter {
    /// Prints a filter that parses back to the same tree: every `and`/`or`
    /// chain and every `not` operand is parenthesised.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(..) | Filter::Or(..) => {
                f.write_str("(")?;
                self.fmt_chain(f)?;
                f.write_str(")")
            }
            Filter::Not(a) => write!(f, "not ({a})"),
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

/// A PATCH operation path (RFC 7644 §3.5.2):
/// `attrPath / valuePath [subAttr]`.
///
/// `emails[type eq "work"].value` is `path = emails.value`, `filter = Some(type eq "work")`;
/// `name.givenName` is `path = name.givenName`, `filter = None`.
/// A path that is a bare extension URN (`urn:…:enterprise:2.0:User`) parses
/// as `uri = urn:…:enterprise:2.0`, `attr = User`; callers check for that
/// case against the registry before resolving.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub path: AttrPath,
    pub filter: Option<Filter>,
}
