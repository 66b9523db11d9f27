//! Custom attributes: which SCIM attributes of a user fill the
//! `custom_attributes` of its events and of the users API, per directory.

use roster_scim::ScimError;
use roster_scim::path::AttrPath;
use roster_scim::schema::{Mutability, Returned, SchemaRegistry};
use serde_json::{Map, Value};

/// Most keys a custom-attribute mapping may have.
pub const MAX_CUSTOM_ATTRIBUTES: usize = 100;
/// Longest key of a custom-attribute mapping, in bytes.
pub const MAX_CUSTOM_KEY_BYTES: usize = 128;

/// A directory's custom-attribute mapping: each output key of a user's
/// `custom_attributes` and the SCIM attribute path it is read from, e.g.
/// `"cost_center"` ← `urn:…:enterprise:2.0:User:costCenter`. Paths are
/// checked against the schema registry when the mapping is set and kept in
/// canonical spelling, so reading a value is a lookup in the canonical
/// document, with no schema at hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomAttributes {
    entries: Vec<Mapped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapped {
    key: String,
    /// The canonical path: `attr[.sub]` for core attributes, `URN:attr[.sub]` for extensions.
    path: String,
    /// The extension URN the attribute lives under in the document.
    container: Option<String>,
    attr: String,
    sub: Option<String>,
}

/// Why a stored custom-attribute mapping cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredMappingError {
    #[error("the stored custom-attribute mapping is unreadable")]
    Unreadable(#[source] serde_json::Error),
    #[error("the stored custom attribute {key:?} is not a path")]
    NotAPath { key: String },
    #[error("the stored custom attribute {key:?} is not a valid path")]
    BadPath {
        key: String,
        #[source]
        source: ScimError,
    },
}

impl CustomAttributes {
    /// Checks a mapping (a JSON object of output key → User attribute path)
    /// against the User resource type of `reg`. Errors are SCIM errors that
    /// name the offending key or path.
    pub fn parse(reg: &SchemaRegistry, mapping: &Value) -> Result<Self, ScimError> {
        let obj = mapping.as_object().ok_or_else(|| {
            ScimError::invalid_value(
                "custom_attributes must be an object of output key to SCIM attribute path, e.g. {\"department\": \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department\"}",
            )
        })?;
        if obj.len() > MAX_CUSTOM_ATTRIBUTES {
            return Err(ScimError::invalid_value(format!(
                "custom_attributes has {} keys; at most {MAX_CUSTOM_ATTRIBUTES} are allowed",
                obj.len()
            )));
        }
        let rt = reg
            .resource_type("User")
            .ok_or_else(|| ScimError::internal("no User resource type"))?;
        let mut entries = Vec::with_capacity(obj.len());
        for (key, path) in obj {
            if key.trim().is_empty() || key.len() > MAX_CUSTOM_KEY_BYTES {
                return Err(ScimError::invalid_value(format!(
                    "custom attribute key {key:?} must be 1 to {MAX_CUSTOM_KEY_BYTES} bytes"
                )));
            }
            let text = path.as_str().ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "custom attribute {key:?} must map to an attribute path (a string)"
                ))
            })?;
            let parsed = AttrPath::parse(text).map_err(|e| {
                ScimError::invalid_path(format!("custom attribute {key:?}: {}", e.detail))
            })?;
            let unknown = || {
                ScimError::invalid_path(format!(
                    "custom attribute {key:?}: {text:?} is not an attribute of the User schema or its extensions"
                ))
            };
            let r = reg.resolve(rt, &parsed).ok_or_else(unknown)?;
            let leaf = r.leaf();
            if r.attr.mutability == Mutability::ReadOnly || leaf.mutability == Mutability::ReadOnly
            {
                return Err(ScimError::invalid_path(format!(
                    "custom attribute {key:?}: {text:?} is readOnly, and Roster does not store readOnly attributes; map an attribute the identity provider sends"
                )));
            }
            if r.attr.returned == Returned::Never || leaf.returned == Returned::Never {
                return Err(ScimError::invalid_path(format!(
                    "custom attribute {key:?}: {text:?} is never returned, so it cannot be mapped"
                )));
            }
            let attr = r.attr.name.clone();
            let sub = r.sub.map(|d| d.name.clone());
            let container = r.container().map(str::to_owned);
            let mut canonical = String::new();
            if let Some(urn) = &container {
                canonical.push_str(urn);
                canonical.push(':');
            }
            canonical.push_str(&attr);
            if let Some(sub) = &sub {
                canonical.push('.');
                canonical.push_str(sub);
            }
            entries.push(Mapped {
                key: key.clone(),
                path: canonical,
                container,
                attr,
                sub,
            });
        }
        Ok(CustomAttributes { entries })
    }

    /// Reads a mapping stored by [`CustomAttributes::to_stored`]: its paths
    /// are canonical already, so no schema is needed.
    pub fn from_stored(text: &str) -> Result<Self, StoredMappingError> {
        let obj: Map<String, Value> =
            serde_json::from_str(text).map_err(StoredMappingError::Unreadable)?;
        let mut entries = Vec::with_capacity(obj.len());
        for (key, path) in obj {
            let Some(text) = path.as_str() else {
                return Err(StoredMappingError::NotAPath { key });
            };
            let parsed = match AttrPath::parse(text) {
                Ok(parsed) => parsed,
                Err(source) => return Err(StoredMappingError::BadPath { key, source }),
            };
            entries.push(Mapped {
                key,
                path: text.to_owned(),
                container: parsed.uri,
                attr: parsed.attr,
                sub: parsed.sub_attr,
            });
        }
        Ok(CustomAttributes { entries })
    }

    /// The mapping as JSON: `{key: canonical path}`, in the order given.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.entries
                .iter()
                .map(|m| (m.key.clone(), Value::String(m.path.clone())))
                .collect(),
        )
    }

    pub fn to_stored(&self) -> String {
        self.to_json().to_string()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `custom_attributes` of a user document: every mapped key, `null` when
    /// the user has no value there. A sub-attribute of a multi-valued
    /// attribute (`emails.value`) gives the list of the values present.
    pub fn extract(&self, doc: &Value) -> Value {
        let mut out = Map::with_capacity(self.entries.len());
        for m in &self.entries {
            let holder = match &m.container {
                Some(urn) => doc.get(urn),
                None => Some(doc),
            };
            let value = holder.and_then(|h| h.get(&m.attr));
            let value = match (&m.sub, value) {
                (None, v) => v.cloned(),
                (Some(sub), Some(Value::Array(items))) => {
                    let found: Vec<Value> =
                        items.iter().filter_map(|i| i.get(sub)).cloned().collect();
                    (!found.is_empty()).then_some(Value::Array(found))
                }
                (Some(sub), Some(v)) => v.get(sub).cloned(),
                (Some(_), None) => None,
            };
            out.insert(m.key.clone(), value.unwrap_or(Value::Null));
        }
        Value::Object(out)
    }
}
