//! Attribute paths (RFC 7644 §3.10): `[URI ":"] ATTRNAME ["." subAttr]`.
//!
//! A path is parsed without knowing the schemas; [`crate::schema::SchemaRegistry::resolve`]
//! then binds it to definitions. The URN prefix is split at the *last* colon,
//! so `urn:…:enterprise:2.0:User:manager.value` never splits at the dot of `2.0`.

use std::fmt;

use crate::error::{Result, ScimError};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN prefix, as written (matched case-insensitively).
    pub uri: Option<String>,
    pub attr: String,
    pub sub_attr: Option<String>,
}

impl AttrPath {
    pub fn new(attr: &str) -> Self {
        AttrPath {
            uri: None,
            attr: attr.to_owned(),
            sub_attr: None,
        }
    }

    pub fn with_sub(attr: &str, sub: &str) -> Self {
        AttrPath {
            uri: None,
            attr: attr.to_owned(),
            sub_attr: Some(sub.to_owned()),
        }
    }

    /// Parses a complete attribute path; errors are `invalidPath` and name the offending text.
    pub fn parse(text: &str) -> Result<Self> {
        let (uri, rest) = split_urn(text);
        if uri.is_some() && rest.is_empty() {
            return Err(ScimError::invalid_path(format!(
                "attribute path {text:?} has a schema URN but no attribute name"
            )));
        }
        let (attr, sub) = match rest.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (rest, None),
        };
        check_name(attr, text)?;
        if let Some(s) = sub {
            check_name(s, text)?;
        }
        Ok(AttrPath {
            uri: uri.map(str::to_owned),
            attr: attr.to_owned(),
            sub_attr: sub.map(str::to_owned),
        })
    }

    /// True when the path names `name` (case-insensitively) with no sub-attribute and no URN.
    pub fn is(&self, name: &str) -> bool {
        self.uri.is_none() && self.sub_attr.is_none() && self.attr.eq_ignore_ascii_case(name)
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.uri {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(s) = &self.sub_attr {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// Splits `urn:…:X:attr.sub` into (`urn:…:X`, `attr.sub`); text without a URN is returned whole.
pub fn split_urn(text: &str) -> (Option<&str>, &str) {
    if text.len() > 4 && has_urn_prefix(text) {
        // The attribute part never contains a colon, so the last colon ends the URN.
        match text.rfind(':') {
            Some(i) => (Some(&text[..i]), &text[i + 1..]),
            None => (None, text),
        }
    } else {
        (None, text)
    }
}

/// True when `text` starts with `urn:` in any case. Slicing with `get` keeps
/// client text whose fourth byte falls inside a multi-byte character from panicking.
pub fn has_urn_prefix(text: &str) -> bool {
    text.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA; `$ref` is also allowed.
pub fn is_attr_name(name: &str) -> bool {
    if name == "$ref" || name.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_name(name: &str, whole: &str) -> Result<()> {
    if is_attr_name(name) {
        Ok(())
    } else {
        Err(ScimError::invalid_path(format!(
            "{name:?} in attribute path {whole:?} is not a valid attribute name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_sub_attribute_paths() {
        assert_eq!(
            AttrPath::parse("userName").unwrap(),
            AttrPath::new("userName")
        );
        assert_eq!(
            AttrPath::parse("name.givenName").unwrap(),
            AttrPath::with_sub("name", "givenName")
        );
        assert_eq!(
            AttrPath::parse("members.$ref").unwrap().sub_attr.as_deref(),
            Some("$ref")
        );
    }

    #[test]
    fn urn_splits_at_last_colon_not_at_version_dot() {
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            p.uri.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.attr, "manager");
        assert_eq!(p.sub_attr.as_deref(), Some("value"));
        assert_eq!(
            p.to_string(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
        );
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "", "1abc", "a b", "a.b.c", "urn:x:", "na[me", "ab€x", "urn€",
        ] {
            assert!(AttrPath::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
