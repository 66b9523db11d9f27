//! Schema definitions to and from their JSON representation (RFC 7643 §7),
//! used by `/Schemas` and by custom extension schema files.

use serde_json::{Map, Value, json};

use super::{AttrType, AttributeDef, Mutability, Returned, Schema, Uniqueness};
use crate::error::{Result, ScimError};

pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

impl AttributeDef {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "type": self.ty.as_str(),
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability.as_str(),
            "returned": self.returned.as_str(),
            "uniqueness": self.uniqueness.as_str(),
        });
        if !self.canonical_values.is_empty() {
            v["canonicalValues"] = json!(self.canonical_values);
        }
        if !self.reference_types.is_empty() {
            v["referenceTypes"] = json!(self.reference_types);
        }
        if self.is_complex() {
            v["subAttributes"] =
                Value::Array(self.sub_attributes.iter().map(|a| a.to_json()).collect());
        }
        v
    }

    pub fn from_json(v: &Value) -> Result<Self> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad("an attribute definition must be a JSON object"))?;
        let name = str_field(obj, "name")?
            .ok_or_else(|| bad("an attribute definition needs a \"name\""))?;
        let ty = match str_field(obj, "type")? {
            Some(t) => AttrType::parse(t)
                .ok_or_else(|| bad(format!("attribute {name}: unknown type {t:?}")))?,
            None => AttrType::String,
        };
        let mut def = AttributeDef::new(name, ty);
        def.multi_valued = bool_field(obj, "multiValued")?.unwrap_or(false);
        def.required = bool_field(obj, "required")?.unwrap_or(false);
        def.case_exact = bool_field(obj, "caseExact")?.unwrap_or(false);
        def.description = str_field(obj, "description")?.unwrap_or("").to_owned();
        if let Some(m) = str_field(obj, "mutability")? {
            def.mutability = Mutability::parse(m)
                .ok_or_else(|| bad(format!("attribute {name}: unknown mutability {m:?}")))?;
        }
        if let Some(r) = str_field(obj, "returned")? {
            def.returned = Returned::parse(r)
                .ok_or_else(|| bad(format!("attribute {name}: unknown returned {r:?}")))?;
        }
        if let Some(u) = str_field(obj, "uniqueness")? {
            def.uniqueness = Uniqueness::parse(u)
                .ok_or_else(|| bad(format!("attribute {name}: unknown uniqueness {u:?}")))?;
        }
        def.canonical_values = str_list(obj, "canonicalValues")?;
        def.reference_types = str_list(obj, "referenceTypes")?;
        if let Some(subs) = obj.get("subAttributes") {
            let subs = subs
                .as_array()
                .ok_or_else(|| bad(format!("attribute {name}: subAttributes must be an array")))?;
            def.sub_attributes = subs
                .iter()
                .map(AttributeDef::from_json)
                .collect::<Result<_>>()?;
        }
        if def.is_complex() && def.sub_attributes.is_empty() {
            return Err(bad(format!(
                "attribute {name}: a complex attribute needs subAttributes"
            )));
        }
        if def.sub_attributes.iter().any(|s| s.is_complex()) {
            return Err(bad(format!(
                "attribute {name}: a sub-attribute cannot be complex (RFC 7643 §2.3.8)"
            )));
        }
        Ok(def)
    }
}

impl Schema {
    /// The `/Schemas/{id}` representation; `location` is the absolute URL of that endpoint.
    pub fn to_json(&self, location: &str) -> Value {
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(|a| a.to_json()).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": location},
        })
    }

    /// Reads a schema in the `/Schemas` representation, as custom extension files are written.
    pub fn from_json(v: &Value) -> Result<Self> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad("a schema must be a JSON object"))?;
        let id = str_field(obj, "id")?.ok_or_else(|| bad("a schema needs an \"id\" URN"))?;
        if !id.to_ascii_lowercase().starts_with("urn:") {
            return Err(bad(format!("schema id {id:?} must be a URN")));
        }
        let attributes = obj
            .get("attributes")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("schema {id}: \"attributes\" must be an array")))?
            .iter()
            .map(AttributeDef::from_json)
            .collect::<Result<Vec<_>>>()?;
        Ok(Schema {
            id: id.to_owned(),
            name: str_field(obj, "name")?.unwrap_or(id).to_owned(),
            description: str_field(obj, "description")?.unwrap_or("").to_owned(),
            attributes,
        })
    }
}

fn bad(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_value(detail)
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("\"{key}\" must be a string"))),
    }
}

fn bool_field(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(format!("\"{key}\" must be a boolean"))),
    }
}

fn str_list(obj: &Map<String, Value>, key: &str) -> Result<Vec<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("\"{key}\" must hold strings")))
            })
            .collect(),
        Some(_) => Err(bad(format!("\"{key}\" must be an array"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{enterprise_user_schema, group_schema, user_schema};

    #[test]
    fn core_schemas_round_trip_through_json() {
        for schema in [user_schema(), group_schema(), enterprise_user_schema()] {
            let json = schema.to_json("http://x/Schemas/1");
            let back = Schema::from_json(&json).unwrap();
            assert_eq!(back, schema);
        }
    }

    #[test]
    fn rejects_complex_without_sub_attributes() {
        let v = json!({"id": "urn:x:y", "attributes": [{"name": "a", "type": "complex"}]});
        assert!(Schema::from_json(&v).is_err());
    }
}
