//! The set of schemas and resource types a server knows, and the binding of
//! attribute paths to their definitions.

use serde_json::{Value, json};

use super::{
    AttributeDef, Schema, common_attributes, enterprise_user_schema, group_schema, user_schema,
};
use crate::path::AttrPath;

pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

#[derive(Debug, Clone, PartialEq)]
pub struct SchemaExtension {
    pub schema: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// "User" or "Group": the `id`, `name` and `meta.resourceType` of the type.
    pub name: String,
    /// "/Users" or "/Groups".
    pub endpoint: String,
    pub description: String,
    pub schema: String,
    pub extensions: Vec<SchemaExtension>,
}

impl ResourceType {
    /// The `/ResourceTypes/{name}` representation; `base` is the directory's SCIM base URL.
    pub fn to_json(&self, base: &str) -> Value {
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema,
            "schemaExtensions": self.extensions.iter().map(|e| json!({
                "schema": e.schema, "required": e.required
            })).collect::<Vec<_>>(),
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", self.name)},
        })
    }
}

/// An attribute path bound to its definitions.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The extension schema holding the attribute; `None` for core and common attributes.
    /// In a stored resource the extension's attributes live under the key `extension.id`.
    pub extension: Option<&'a Schema>,
    pub attr: &'a AttributeDef,
    pub sub: Option<&'a AttributeDef>,
}

impl<'a> Resolved<'a> {
    /// The definition the path ends at: the sub-attribute if there is one.
    pub fn leaf(&self) -> &'a AttributeDef {
        self.sub.unwrap_or(self.attr)
    }

    /// The JSON key under which the attribute's extension lives, if any.
    pub fn container(&self) -> Option<&'a str> {
        self.extension.map(|s| s.id.as_str())
    }

    /// True when the path crosses a multi-valued attribute ("any value matches" semantics).
    pub fn is_multi(&self) -> bool {
        self.attr.multi_valued
    }
}

#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: Vec<Schema>,
    common: Vec<AttributeDef>,
    resource_types: Vec<ResourceType>,
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        Self::core()
    }
}

impl SchemaRegistry {
    /// User (with the Enterprise User extension) and Group.
    pub fn core() -> Self {
        let user = user_schema();
        let group = group_schema();
        let enterprise = enterprise_user_schema();
        SchemaRegistry {
            resource_types: vec![
                ResourceType {
                    name: "User".into(),
                    endpoint: "/Users".into(),
                    description: "User Account".into(),
                    schema: user.id.clone(),
                    extensions: vec![SchemaExtension {
                        schema: enterprise.id.clone(),
                        required: false,
                    }],
                },
                ResourceType {
                    name: "Group".into(),
                    endpoint: "/Groups".into(),
                    description: "Group".into(),
                    schema: group.id.clone(),
                    extensions: Vec::new(),
                },
            ],
            schemas: vec![user, group, enterprise],
            common: common_attributes(),
        }
    }

    /// Adds a custom extension schema to a resource type ("User" or "Group").
    pub fn add_extension(
        &mut self,
        schema: Schema,
        resource_type: &str,
        required: bool,
    ) -> Result<(), String> {
        if self.schema(&schema.id).is_some() {
            return Err(format!("schema {} is defined twice", schema.id));
        }
        let rt = self
            .resource_types
            .iter_mut()
            .find(|r| r.name.eq_ignore_ascii_case(resource_type))
            .ok_or_else(|| format!("unknown resource type {resource_type:?}"))?;
        rt.extensions.push(SchemaExtension {
            schema: schema.id.clone(),
            required,
        });
        self.schemas.push(schema);
        Ok(())
    }

    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    pub fn common_attributes(&self) -> &[AttributeDef] {
        &self.common
    }

    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resource_types
    }

    pub fn schema(&self, id: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    pub fn core_schema(&self, rt: &ResourceType) -> &Schema {
        // Resource types are built from registered schemas, so the lookup cannot miss.
        self.schema(&rt.schema)
            .unwrap_or_else(|| unreachable!("resource type {} without schema", rt.name))
    }

    /// The extension schemas of a resource type, in declaration order.
    pub fn extensions<'a>(&'a self, rt: &'a ResourceType) -> impl Iterator<Item = &'a Schema> {
        rt.extensions.iter().filter_map(|e| self.schema(&e.schema))
    }

    /// The extension schema of `rt` whose URN is exactly `urn` (case-insensitive).
    pub fn extension<'a>(&'a self, rt: &'a ResourceType, urn: &str) -> Option<&'a Schema> {
        self.extensions(rt).find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Binds a path to its definitions within a resource type.
    ///
    /// With a URN the attribute is looked up in that schema only. Without one,
    /// the core schema and the common attributes come first; an unqualified
    /// name that only an extension defines is accepted too, because clients
    /// (Entra ID among them) sometimes drop the URN in filters.
    /// Returns `None` when the path names nothing (the caller picks the error).
    pub fn resolve<'a>(&'a self, rt: &'a ResourceType, path: &AttrPath) -> Option<Resolved<'a>> {
        let (extension, attr) = match &path.uri {
            Some(uri) => {
                if uri.eq_ignore_ascii_case(&rt.schema) {
                    (None, self.core_schema(rt).attribute(&path.attr)?)
                } else {
                    let ext = self.extension(rt, uri)?;
                    (Some(ext), ext.attribute(&path.attr)?)
                }
            }
            None => {
                if let Some(a) = self.core_schema(rt).attribute(&path.attr).or_else(|| {
                    self.common
                        .iter()
                        .find(|a| a.name.eq_ignore_ascii_case(&path.attr))
                }) {
                    (None, a)
                } else {
                    let mut found = self
                        .extensions(rt)
                        .filter_map(|s| s.attribute(&path.attr).map(|a| (s, a)));
                    let (s, a) = found.next()?;
                    if found.next().is_some() {
                        return None; // ambiguous without a URN
                    }
                    (Some(s), a)
                }
            }
        };
        let sub = match &path.sub_attr {
            Some(name) => Some(attr.sub_attribute(name)?),
            None => None,
        };
        Some(Resolved {
            extension,
            attr,
            sub,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_core_common_and_extension_paths() {
        let reg = SchemaRegistry::core();
        let user = reg.resource_type("user").unwrap();
        let r = reg
            .resolve(user, &AttrPath::parse("USERNAME").unwrap())
            .unwrap();
        assert_eq!(r.attr.name, "userName");
        assert!(r.container().is_none());
        let r = reg
            .resolve(user, &AttrPath::parse("meta.lastModified").unwrap())
            .unwrap();
        assert_eq!(r.leaf().name, "lastModified");
        let r = reg
            .resolve(
                user,
                &AttrPath::parse(
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                )
                .unwrap(),
            )
            .unwrap();
        assert_eq!(r.container(), Some(super::super::ENTERPRISE_USER_SCHEMA));
        assert_eq!(r.leaf().name, "value");
        let r = reg
            .resolve(
                user,
                &AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName")
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(r.leaf().name, "familyName");
        let r = reg.resolve(user, &AttrPath::new("employeeNumber")).unwrap();
        assert!(r.extension.is_some());
        assert!(reg.resolve(user, &AttrPath::new("nope")).is_none());
        let group = reg.resource_type("Group").unwrap();
        assert!(reg.resolve(group, &AttrPath::new("userName")).is_none());
    }
}
