//! Binding the keys of a resource document to schema definitions. Validation
//! and projection both walk documents key by key and must agree on what a key
//! means, whatever its spelling.

use serde_json::{Map, Value};

use crate::path::AttrPath;
use crate::schema::{AttributeDef, ResourceType, Schema, SchemaRegistry};

/// What one top-level key of a resource document stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'a> {
    Schemas,
    /// A core or common attribute, stored at top level.
    Top(&'a AttributeDef),
    /// The object holding an extension's attributes.
    Extension(&'a Schema),
    /// An extension attribute written outside its extension object: fully
    /// qualified, or by bare name when only one extension defines it.
    InExtension(&'a Schema, &'a AttributeDef),
    Unknown,
}

pub(crate) fn classify<'a>(reg: &'a SchemaRegistry, rt: &'a ResourceType, key: &str) -> Key<'a> {
    if key.eq_ignore_ascii_case("schemas") {
        return Key::Schemas;
    }
    if let Some(ext) = reg.extension(rt, key) {
        return Key::Extension(ext);
    }
    // Most keys are core attributes by their bare name: found without
    // parsing the key as a path (which copies it) and resolving that.
    if !key.contains([':', '.'])
        && let Some(attr) = reg.core_schema(rt).attribute(key)
    {
        return Key::Top(attr);
    }
    // A dotted key ("name.givenName") is not an attribute name, so sub-paths are unknown.
    let Ok(path) = AttrPath::parse(key) else {
        return Key::Unknown;
    };
    if path.sub_attr.is_some() {
        return Key::Unknown;
    }
    match reg.resolve(rt, &path) {
        Some(r) => match r.extension {
            Some(ext) => Key::InExtension(ext, r.attr),
            None => Key::Top(r.attr),
        },
        None => qualified_common(reg, rt, &path).map_or(Key::Unknown, Key::Top),
    }
}

/// `urn:…:core:2.0:User:externalId`: common attributes belong to no schema, but
/// clients qualify them with the core schema like any other top-level name.
fn qualified_common<'a>(
    reg: &'a SchemaRegistry,
    rt: &ResourceType,
    path: &AttrPath,
) -> Option<&'a AttributeDef> {
    let uri = path.uri.as_deref()?;
    if !uri.eq_ignore_ascii_case(&rt.schema) {
        return None;
    }
    reg.common_attributes()
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(&path.attr))
}

/// Looks a key up by its canonical spelling first, then case-insensitively,
/// because SCIM attribute names are case-insensitive (RFC 7643 §2.1).
pub(crate) fn get_ci<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The stored value of an attribute in a canonical document.
pub(crate) fn stored<'v>(
    doc: &'v Value,
    ext: Option<&Schema>,
    def: &AttributeDef,
) -> Option<&'v Value> {
    let top = doc.as_object()?;
    let container = match ext {
        Some(s) => get_ci(top, &s.id)?.as_object()?,
        None => top,
    };
    get_ci(container, &def.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ENTERPRISE_USER_SCHEMA;

    #[test]
    fn classifies_every_kind_of_key() {
        let reg = SchemaRegistry::core();
        let user = reg.resource_type("User").unwrap();
        assert!(matches!(classify(&reg, user, "SCHEMAS"), Key::Schemas));
        assert!(matches!(classify(&reg, user, "USERNAME"), Key::Top(d) if d.name == "userName"));
        assert!(
            matches!(classify(&reg, user, "externalid"), Key::Top(d) if d.name == "externalId")
        );
        assert!(matches!(
            classify(&reg, user, &ENTERPRISE_USER_SCHEMA.to_uppercase()),
            Key::Extension(_)
        ));
        let flat = format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber");
        assert!(matches!(
            classify(&reg, user, &flat),
            Key::InExtension(_, d) if d.name == "employeeNumber"
        ));
        assert!(matches!(
            classify(
                &reg,
                user,
                "urn:ietf:params:scim:schemas:core:2.0:User:userName"
            ),
            Key::Top(_)
        ));
        assert!(matches!(
            classify(&reg, user, "urn:ietf:params:scim:schemas:core:2.0:User:externalId"),
            Key::Top(d) if d.name == "externalId"
        ));
        for unknown in ["nope", "name.givenName", "urn:x:y", "urn:x:y:z"] {
            assert!(
                matches!(classify(&reg, user, unknown), Key::Unknown),
                "{unknown}"
            );
        }
    }
}
