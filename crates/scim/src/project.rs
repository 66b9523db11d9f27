//! Projection of resources for output: the `attributes` and
//! `excludedAttributes` parameters (RFC 7644 §3.4.2.5, §3.9) combined with
//! the `returned` characteristic of each definition (RFC 7643 §7).
//!
//! Decisions beyond the RFCs:
//! - When both lists are given, `attributes` wins and `excludedAttributes` is
//!   ignored, though both must parse.
//! - A malformed path in either list is a 400 `invalidPath` naming it.
//! - A well-formed name the schemas don't define is ignored, as most servers
//!   do, so clients asking for attributes of another vendor's schema still work.
//! - A bare extension URN selects (or excludes) the whole extension object;
//!   `returned: request` attributes inside it still need naming one by one.
//! - Keys the schemas don't define are never output.

use serde_json::Value;

use crate::error::Result;
use crate::keys::{Key, classify};
use crate::path::AttrPath;
use crate::schema::{AttributeDef, ResourceType, Returned, Schema, SchemaRegistry};

/// Which attributes of a resource a response shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

impl Projection {
    /// Reads the query parameters: comma-separated lists, blanks ignored.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Projection> {
        Self::build(
            attributes.into_iter().collect(),
            excluded.into_iter().collect(),
        )
    }

    /// Reads the lists of a SearchRequest body (RFC 7644 §3.4.3). An element
    /// holding several comma-separated names is read as those names.
    pub fn from_lists(attributes: &[String], excluded: &[String]) -> Result<Projection> {
        Self::build(
            attributes.iter().map(String::as_str).collect(),
            excluded.iter().map(String::as_str).collect(),
        )
    }

    fn build(attributes: Vec<&str>, excluded: Vec<&str>) -> Result<Projection> {
        let attributes = parse_paths(&attributes)?;
        let excluded = parse_paths(&excluded)?;
        let excluded = if attributes.is_empty() {
            excluded
        } else {
            Vec::new()
        };
        Ok(Projection {
            attributes,
            excluded,
        })
    }

    /// The `attributes` list; empty when not given.
    pub fn attributes(&self) -> &[AttrPath] {
        &self.attributes
    }

    /// The `excludedAttributes` list; empty when not given or overridden by `attributes`.
    pub fn excluded(&self) -> &[AttrPath] {
        &self.excluded
    }

    /// True when neither list was given: the default representation.
    pub fn is_default(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// The resource as the response shows it. `resource` is a full canonical
    /// resource: extensions under their URN keys, Group `members` inline. It
    /// is filtered in place: what is shown is never copied.
    pub fn apply(&self, reg: &SchemaRegistry, rt: &ResourceType, mut resource: Value) -> Value {
        let mode = self.mode(reg, rt);
        if let Value::Object(obj) = &mut resource {
            obj.retain(|key, value| match classify(reg, rt, key) {
                Key::Schemas => true,
                Key::Top(def) => project_attr(&mode, None, def, value),
                Key::InExtension(ext, def) => project_attr(&mode, Some(ext), def, value),
                Key::Extension(ext) => project_extension(&mode, ext, value),
                Key::Unknown => false,
            });
        }
        resource
    }

    /// Whether the top-level attribute (or extension URN) `attr` can appear in
    /// the output, so that the server can skip loading what won't be shown.
    pub fn includes(&self, reg: &SchemaRegistry, rt: &ResourceType, attr: &str) -> bool {
        let mode = self.mode(reg, rt);
        match classify(reg, rt, attr) {
            Key::Schemas => true,
            Key::Top(def) => pick(&mode, None, def).is_some(),
            Key::InExtension(ext, def) => pick(&mode, Some(ext), def).is_some(),
            Key::Extension(ext) => ext
                .attributes
                .iter()
                .any(|def| pick(&mode, Some(ext), def).is_some()),
            Key::Unknown => false,
        }
    }

    fn mode<'a>(&self, reg: &'a SchemaRegistry, rt: &'a ResourceType) -> Mode<'a> {
        if !self.attributes.is_empty() {
            Mode::Only(Named::bind(reg, rt, &self.attributes))
        } else if !self.excluded.is_empty() {
            Mode::Except(Named::bind(reg, rt, &self.excluded))
        } else {
            Mode::Default
        }
    }
}

fn parse_paths(lists: &[&str]) -> Result<Vec<AttrPath>> {
    lists
        .iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(AttrPath::parse)
        .collect()
}

/// The names of one list bound to definitions; definitions are compared by
/// identity, as every one of them lives once in the registry.
struct Named<'a> {
    extensions: Vec<&'a Schema>,
    attrs: Vec<(&'a AttributeDef, Option<&'a AttributeDef>)>,
}

impl<'a> Named<'a> {
    fn bind(reg: &'a SchemaRegistry, rt: &'a ResourceType, paths: &[AttrPath]) -> Self {
        let mut named = Named {
            extensions: Vec::new(),
            attrs: Vec::new(),
        };
        for path in paths {
            if let Some(ext) = bare_extension(reg, rt, path) {
                named.extensions.push(ext);
            } else if let Some(r) = reg.resolve(rt, path) {
                named.attrs.push((r.attr, r.sub));
            }
        }
        named
    }

    fn names_whole(&self, def: &AttributeDef) -> bool {
        self.attrs
            .iter()
            .any(|(a, sub)| sub.is_none() && std::ptr::eq(*a, def))
    }

    fn names_extension(&self, ext: Option<&Schema>) -> bool {
        ext.is_some_and(|e| self.extensions.iter().any(|n| std::ptr::eq(*n, e)))
    }

    fn subs_of(&self, def: &AttributeDef) -> Vec<&'a AttributeDef> {
        self.attrs
            .iter()
            .filter(|(a, _)| std::ptr::eq(*a, def))
            .filter_map(|(_, sub)| *sub)
            .collect()
    }
}

/// A path that is an extension's URN alone. Paths split at the last colon, so
/// `urn:…:2.0:User` parses as attribute `User` of schema `urn:…:2.0`.
fn bare_extension<'a>(
    reg: &'a SchemaRegistry,
    rt: &'a ResourceType,
    path: &AttrPath,
) -> Option<&'a Schema> {
    match (&path.uri, &path.sub_attr) {
        (Some(uri), None) => reg.extension(rt, &format!("{uri}:{}", path.attr)),
        _ => None,
    }
}

enum Mode<'a> {
    Default,
    Only(Named<'a>),
    Except(Named<'a>),
}

/// Which sub-attributes of a shown complex attribute are shown.
enum Subs<'a> {
    Default,
    Only(Vec<&'a AttributeDef>),
    Except(Vec<&'a AttributeDef>),
}

impl Subs<'_> {
    fn keeps(&self, sub: &AttributeDef) -> bool {
        let listed = |l: &[&AttributeDef]| l.iter().any(|n| std::ptr::eq(*n, sub));
        match (sub.returned, self) {
            (Returned::Never, _) => false,
            (Returned::Always, _) => true,
            (_, Subs::Only(l)) => listed(l),
            (r, Subs::Default) => r == Returned::Default,
            (r, Subs::Except(l)) => r == Returned::Default && !listed(l),
        }
    }
}

/// Whether a top-level attribute is shown, and which of its sub-attributes.
fn pick<'a>(mode: &Mode<'a>, ext: Option<&Schema>, def: &'a AttributeDef) -> Option<Subs<'a>> {
    let returned = def.returned;
    match (returned, mode) {
        (Returned::Never, _) => None,
        (Returned::Request, Mode::Default | Mode::Except(_)) => None,
        (_, Mode::Default) => Some(Subs::Default),
        (_, Mode::Only(named)) => {
            let whole = named.names_whole(def)
                || returned == Returned::Always
                || (returned == Returned::Default && named.names_extension(ext));
            if whole {
                return Some(Subs::Default);
            }
            let subs = named.subs_of(def);
            (!subs.is_empty()).then_some(Subs::Only(subs))
        }
        (_, Mode::Except(named)) => {
            let whole = named.names_whole(def) || named.names_extension(ext);
            if whole && returned != Returned::Always {
                return None;
            }
            Some(Subs::Except(named.subs_of(def)))
        }
    }
}

/// Keeps the shown part of `value`; false when nothing of it is shown.
fn project_attr(
    mode: &Mode<'_>,
    ext: Option<&Schema>,
    def: &AttributeDef,
    value: &mut Value,
) -> bool {
    let Some(subs) = pick(mode, ext, def) else {
        return false;
    };
    if !def.is_complex() {
        return true;
    }
    match value {
        Value::Array(items) => {
            items.retain_mut(|item| project_complex(def, &subs, item));
            !items.is_empty()
        }
        other => project_complex(def, &subs, other),
    }
}

/// One complex value with only the shown sub-attributes; false when none is left.
fn project_complex(def: &AttributeDef, subs: &Subs<'_>, value: &mut Value) -> bool {
    let Value::Object(obj) = value else {
        return true;
    };
    obj.retain(|k, _| def.sub_attribute(k).is_some_and(|s| subs.keeps(s)));
    !obj.is_empty()
}

fn project_extension(mode: &Mode<'_>, ext: &Schema, value: &mut Value) -> bool {
    let Some(obj) = value.as_object_mut() else {
        return false;
    };
    obj.retain(|k, v| {
        ext.attribute(k)
            .is_some_and(|def| project_attr(mode, Some(ext), def, v))
    });
    !obj.is_empty()
}

#[cfg(test)]
mod tests;
