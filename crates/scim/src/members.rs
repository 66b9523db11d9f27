//! Group members as the protocol carries them. Members are stored as rows, not
//! inside the group document, so they travel separately from the rest of a group.

use serde_json::{Value, json};

use crate::error::{Result, ScimError};

/// The kind of a member: RFC 7643 §4.2 allows users and groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberType {
    User,
    Group,
}

impl MemberType {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberType::User => "User",
            MemberType::Group => "Group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("user") {
            Some(MemberType::User)
        } else if s.eq_ignore_ascii_case("group") {
            Some(MemberType::Group)
        } else {
            None
        }
    }
}

/// One member reference sent by a client: the member's id and, optionally, its type.
/// When the type is missing the server finds it by looking the id up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberRef {
    pub value: String,
    pub ty: Option<MemberType>,
}

impl MemberRef {
    /// Reads one element of a `members` array. Tolerates `"$ref": null` (Entra ID)
    /// and a bare id string instead of an object.
    pub fn from_json(v: &Value) -> Result<Self> {
        match v {
            Value::String(s) if !s.is_empty() => Ok(MemberRef {
                value: s.clone(),
                ty: None,
            }),
            Value::Object(obj) => {
                let mut value = None;
                let mut ty = None;
                for (k, v) in obj {
                    if k.eq_ignore_ascii_case("value") {
                        value = match v {
                            Value::String(s) if !s.is_empty() => Some(s.clone()),
                            _ => {
                                return Err(ScimError::invalid_value(
                                    "members.value must be a non-empty string",
                                ));
                            }
                        };
                    } else if k.eq_ignore_ascii_case("type") {
                        ty = match v {
                            Value::Null => None,
                            Value::String(s) => Some(MemberType::parse(s).ok_or_else(|| {
                                ScimError::invalid_value(format!(
                                    "members.type must be \"User\" or \"Group\", not {s:?}"
                                ))
                            })?),
                            _ => {
                                return Err(ScimError::invalid_value(
                                    "members.type must be a string",
                                ));
                            }
                        };
                    } else if k.eq_ignore_ascii_case("$ref") || k.eq_ignore_ascii_case("display") {
                        // $ref is derived from value; display is readOnly. Both are ignored on input.
                    } else {
                        return Err(ScimError::invalid_syntax(format!(
                            "members has no sub-attribute {k:?}"
                        )));
                    }
                }
                let value = value.ok_or_else(|| {
                    ScimError::invalid_value("each member needs a \"value\" (the member's id)")
                })?;
                Ok(MemberRef { value, ty })
            }
            _ => Err(ScimError::invalid_value(
                "a member must be an object with a \"value\"",
            )),
        }
    }

    /// Reads a `members` value: an array of members, or a single member.
    pub fn list_from_json(v: &Value) -> Result<Vec<Self>> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items.iter().map(MemberRef::from_json).collect(),
            other => Ok(vec![MemberRef::from_json(other)?]),
        }
    }
}

/// The group ids a User body lists in `groups`, read as a tolerance: RFC 7643
/// §4.1.2 makes `User.groups` readOnly (so `normalize` drops it), but some
/// clients send the user's groups with the user. `None` when the body has no
/// `groups` key (plain or qualified with the core User URN); `Some(vec![])`
/// for `null` or `[]`. Items are `{"value": id}` objects (`display`, `$ref`
/// and `type` are ignored; `"type": "indirect"` items are skipped, since only
/// direct memberships can be set) or bare id strings; ids come back
/// deduplicated, in the order given.
pub fn user_groups(body: &Value) -> Result<Option<Vec<String>>> {
    let Some(obj) = body.as_object() else {
        return Ok(None);
    };
    let qualified = format!("{}:groups", crate::schema::USER_SCHEMA);
    let mut found = false;
    let mut ids: Vec<String> = Vec::new();
    for (k, v) in obj {
        if !(k.eq_ignore_ascii_case("groups") || k.eq_ignore_ascii_case(&qualified)) {
            continue;
        }
        found = true;
        let items = match v {
            Value::Null => continue,
            Value::Array(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        for item in items {
            if let Some(id) = group_ref(item)?
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
    }
    Ok(found.then_some(ids))
}

/// One element of a user's `groups`: its id, or `None` for an indirect membership.
fn group_ref(v: &Value) -> Result<Option<String>> {
    let bad_value =
        || ScimError::invalid_value("groups.value must be a non-empty string (a group id)");
    match v {
        Value::String(s) if !s.is_empty() => Ok(Some(s.clone())),
        Value::Object(obj) => {
            let mut value = None;
            for (k, v) in obj {
                if k.eq_ignore_ascii_case("value") {
                    match v {
                        Value::String(s) if !s.is_empty() => value = Some(s.clone()),
                        _ => return Err(bad_value()),
                    }
                } else if k.eq_ignore_ascii_case("type") {
                    if v.as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case("indirect"))
                    {
                        return Ok(None);
                    }
                } else if !(k.eq_ignore_ascii_case("display") || k.eq_ignore_ascii_case("$ref")) {
                    return Err(ScimError::invalid_syntax(format!(
                        "groups has no sub-attribute {k:?}"
                    )));
                }
            }
            value.map(Some).ok_or_else(|| {
                ScimError::invalid_value(
                    "each of a user's groups needs a \"value\" (the group's id)",
                )
            })
        }
        _ => Err(ScimError::invalid_value(
            "a user's groups must be objects with a \"value\" (the group's id)",
        )),
    }
}

/// A member as returned to clients: RFC 7643 §4.2 `value`, `$ref`, `type`, `display`.
pub fn member_json(base_url: &str, id: &str, ty: MemberType, display: Option<&str>) -> Value {
    let endpoint = match ty {
        MemberType::User => "Users",
        MemberType::Group => "Groups",
    };
    let mut v = json!({
        "value": id,
        "$ref": format!("{base_url}/{endpoint}/{id}"),
        "type": ty.as_str(),
    });
    if let Some(d) = display {
        v["display"] = Value::String(d.to_owned());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_entra_member_with_null_ref() {
        let m = MemberRef::from_json(&json!({"value": "abc", "$ref": null})).unwrap();
        assert_eq!(
            m,
            MemberRef {
                value: "abc".into(),
                ty: None
            }
        );
        let list = MemberRef::list_from_json(&json!([{"value": "a", "type": "user"}])).unwrap();
        assert_eq!(list[0].ty, Some(MemberType::User));
        assert!(MemberRef::from_json(&json!({"display": "x"})).is_err());
        assert!(MemberRef::from_json(&json!({"value": 3})).is_err());
    }

    #[test]
    fn reads_a_users_groups_as_a_tolerance() {
        assert_eq!(user_groups(&json!({"userName": "a"})).unwrap(), None);
        assert_eq!(user_groups(&json!({"groups": []})).unwrap(), Some(vec![]));
        assert_eq!(user_groups(&json!({"Groups": null})).unwrap(), Some(vec![]));
        let body = json!({"groups": [
            {"value": "g1", "display": "One", "$ref": "https://x/Groups/g1", "type": "direct"},
            "g2",
            {"value": "g1"},
            {"value": "g3", "type": "indirect"}
        ]});
        assert_eq!(
            user_groups(&body).unwrap(),
            Some(vec!["g1".to_owned(), "g2".to_owned()])
        );
        let qualified =
            json!({"urn:ietf:params:scim:schemas:core:2.0:User:groups": {"value": "g"}});
        assert_eq!(user_groups(&qualified).unwrap(), Some(vec!["g".to_owned()]));
        assert!(user_groups(&json!({"groups": [{"display": "x"}]})).is_err());
        assert!(user_groups(&json!({"groups": [{"value": 3}]})).is_err());
        assert!(user_groups(&json!({"groups": [{"value": "g", "x": 1}]})).is_err());
        assert!(user_groups(&json!({"groups": [7]})).is_err());
    }
}

/// A change to a group's membership, as a PATCH or PUT asks for it. Applied by
/// the store to membership rows, so one member change costs the same whatever
/// the size of the group.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    Add(Vec<MemberRef>),
    Remove(Vec<String>),
    RemoveAll,
    /// Remove the members matching a value filter, checked against the
    /// sub-attributes of `members`.
    RemoveWhere(crate::filter::CheckedFilter),
    ReplaceAll(Vec<MemberRef>),
}
