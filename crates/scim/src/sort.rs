//! `sortBy` (RFC 7644 §3.4.2.3), resolved against the schemas once, at the
//! edge, like a filter: the store receives the attribute, never the text.

use crate::error::ScimError;
use crate::filter::AttrRef;
use crate::path::AttrPath;
use crate::schema::{ResourceType, SchemaRegistry};

/// A singular attribute to sort by.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    attr: AttrRef,
    /// The `sortBy` text as the client sent it: part of what a cursor is bound to.
    text: String,
}

impl SortKey {
    /// Resolves `text`. A complex attribute sorts by its `value`; a
    /// multi-valued one cannot be sorted by (`invalidValue`).
    pub fn resolve(reg: &SchemaRegistry, rt: &ResourceType, text: &str) -> Result<Self, ScimError> {
        let parsed = AttrPath::parse(text)
            .map_err(|e| ScimError::invalid_value(format!("sortBy: {}", e.detail)))?;
        let mut r = reg.resolve(rt, &parsed).ok_or_else(|| {
            ScimError::invalid_value(format!("sortBy: {text} is not an attribute of {}", rt.name))
        })?;
        if r.sub.is_none() && r.attr.is_complex() {
            r.sub = r.attr.sub_attribute("value");
        }
        if r.attr.multi_valued || r.leaf().is_complex() {
            return Err(ScimError::invalid_value(format!(
                "sortBy: {text} is multi-valued or complex; sort by a singular attribute"
            )));
        }
        Ok(SortKey {
            attr: AttrRef::of(&r),
            text: text.to_owned(),
        })
    }

    pub fn attr(&self) -> &AttrRef {
        &self.attr
    }

    pub fn as_text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::AttrType;

    fn key(text: &str) -> Result<SortKey, ScimError> {
        let reg = SchemaRegistry::core();
        let rt = reg.resource_type("User").unwrap();
        SortKey::resolve(&reg, rt, text)
    }

    #[test]
    fn singular_attributes_resolve_to_their_schema_names() {
        let k = key("NAME.familyname").unwrap();
        assert_eq!(k.attr().attr, "name");
        assert_eq!(k.attr().sub.as_deref(), Some("familyName"));
        assert_eq!(k.attr().ty, AttrType::String);
        assert_eq!(k.as_text(), "NAME.familyname");
        let k = key("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager").unwrap();
        assert_eq!(k.attr().sub.as_deref(), Some("value"));
        assert!(!k.attr().is_core());
    }

    #[test]
    fn multi_valued_and_unknown_attributes_are_invalid_values() {
        for text in ["emails", "emails.value", "nope", "name..x"] {
            let e = key(text).unwrap_err();
            assert_eq!(e.scim_type, Some(crate::ScimType::InvalidValue), "{text}");
            assert!(e.detail.starts_with("sortBy: "), "{text}: {}", e.detail);
        }
    }
}
