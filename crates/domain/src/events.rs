//! Directory-sync events: the normalized, app-facing view of every change.
//!
//! Events are written by the store in the same transaction as the change they
//! describe, so a committed change always has its event and a rolled-back one
//! never does. This module builds their payloads; it does no I/O.

use roster_scim::schema::ENTERPRISE_USER_SCHEMA;
use roster_scim::values::format_unix_millis;
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use crate::custom_attributes::{
    CustomAttributes, MAX_CUSTOM_ATTRIBUTES, MAX_CUSTOM_KEY_BYTES, StoredMappingError,
};
use crate::model::{Directory, Kind, Stored};

pub const USER_CREATED: &str = "dsync.user.created";
pub const USER_UPDATED: &str = "dsync.user.updated";
pub const USER_DELETED: &str = "dsync.user.deleted";
pub const GROUP_CREATED: &str = "dsync.group.created";
pub const GROUP_UPDATED: &str = "dsync.group.updated";
pub const GROUP_DELETED: &str = "dsync.group.deleted";
pub const GROUP_USER_ADDED: &str = "dsync.group.user_added";
pub const GROUP_USER_REMOVED: &str = "dsync.group.user_removed";
pub const DIRECTORY_ACTIVATED: &str = "dsync.activated";
pub const DIRECTORY_DELETED: &str = "dsync.deleted";

pub const ALL_TYPES: &[&str] = &[
    DIRECTORY_ACTIVATED,
    DIRECTORY_DELETED,
    USER_CREATED,
    USER_UPDATED,
    USER_DELETED,
    GROUP_CREATED,
    GROUP_UPDATED,
    GROUP_DELETED,
    GROUP_USER_ADDED,
    GROUP_USER_REMOVED,
];

/// One stored event, as the Events API and webhooks send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub directory_id: String,
    pub event: String,
    pub created_at: i64,
    pub data: Value,
}

impl Event {
    /// Event ids are opaque to clients but sort like the sequence they come from.
    pub fn id(&self) -> String {
        event_id(self.seq)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "object": "event",
            "id": self.id(),
            "event": self.event,
            "directory_id": self.directory_id,
            "created_at": roster_scim::values::format_unix_millis(self.created_at),
            "data": self.data,
        })
    }
}

pub fn event_id(seq: i64) -> String {
    format!("evt_{seq:016x}")
}

/// The sequence number inside an event id, if it is one of ours.
pub fn parse_event_id(id: &str) -> Option<i64> {
    let hex = id.strip_prefix("evt_")?;
    (hex.len() == 16)
        .then(|| i64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// A group a user belongs to, as user payloads list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The normalized user: the attributes apps need, plus the raw SCIM resource.
/// `custom` is the directory's custom-attribute mapping; without one,
/// `custom_attributes` holds the Enterprise User attributes.
pub fn user_data(
    directory: &str,
    s: &Stored,
    groups: &[GroupRef],
    custom: Option<&CustomAttributes>,
) -> Value {
    to_value(&UserView::new(directory, s, groups, custom))
}

/// The normalized group.
pub fn group_data(directory: &str, s: &Stored) -> Value {
    to_value(&GroupView::new(directory, s))
}

/// [`data`] as JSON text, written straight from the stored document: a
/// create stores its payload without first building (and hashing the keys
/// of) a second copy of the resource.
pub fn data_text(
    directory: &str,
    s: &Stored,
    groups: &[GroupRef],
    custom: Option<&CustomAttributes>,
) -> String {
    let text = match s.kind {
        Kind::User => serde_json::to_string(&UserView::new(directory, s, groups, custom)),
        Kind::Group => serde_json::to_string(&GroupView::new(directory, s)),
    };
    // Borrowed JSON values with string keys always serialize.
    text.unwrap_or_default()
}

fn to_value(view: &impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

static NULL: Value = Value::Null;

/// The one definition behind [`user_data`] and [`data_text`]; the field
/// order is the order apps see.
#[derive(Serialize)]
struct UserView<'a> {
    object: &'static str,
    id: &'a str,
    directory_id: &'a str,
    idp_id: Option<&'a str>,
    username: Option<&'a str>,
    emails: Vec<EmailView<'a>>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    job_title: Option<&'a str>,
    state: &'static str,
    groups: Vec<GroupRefView<'a>>,
    custom_attributes: Value,
    created_at: String,
    updated_at: String,
    raw_attributes: RawAttributes<'a>,
}

#[derive(Serialize)]
struct EmailView<'a> {
    value: &'a Value,
    #[serde(rename = "type")]
    kind: &'a Value,
    primary: bool,
}

#[derive(Serialize)]
struct GroupRefView<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct GroupView<'a> {
    object: &'static str,
    id: &'a str,
    directory_id: &'a str,
    idp_id: Option<&'a str>,
    name: Option<&'a str>,
    created_at: String,
    updated_at: String,
    raw_attributes: RawAttributes<'a>,
}

impl<'a> UserView<'a> {
    fn new(
        directory: &'a str,
        s: &'a Stored,
        groups: &'a [GroupRef],
        custom: Option<&CustomAttributes>,
    ) -> Self {
        let doc = &s.doc;
        let emails = doc
            .get("emails")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|e| EmailView {
                        value: e.get("value").unwrap_or(&NULL),
                        kind: e.get("type").unwrap_or(&NULL),
                        primary: e.get("primary").and_then(Value::as_bool).unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let name = doc.get("name").unwrap_or(&NULL);
        // RFC 7643 leaves `active` optional; an absent flag means the IdP never deactivated the user.
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
        UserView {
            object: "directory_user",
            id: &s.id,
            directory_id: directory,
            idp_id: text(doc, "externalId"),
            username: text(doc, "userName"),
            emails,
            first_name: text(name, "givenName"),
            last_name: text(name, "familyName"),
            job_title: text(doc, "title"),
            state: if active { "active" } else { "inactive" },
            groups: groups
                .iter()
                .map(|g| GroupRefView {
                    id: &g.id,
                    name: &g.name,
                })
                .collect(),
            custom_attributes: match custom {
                Some(mapping) => mapping.extract(doc),
                None => custom_attributes(doc),
            },
            created_at: format_unix_millis(s.created),
            updated_at: format_unix_millis(s.last_modified),
            raw_attributes: RawAttributes(s),
        }
    }
}

impl<'a> GroupView<'a> {
    fn new(directory: &'a str, s: &'a Stored) -> Self {
        GroupView {
            object: "directory_group",
            id: &s.id,
            directory_id: directory,
            idp_id: text(&s.doc, "externalId"),
            name: text(&s.doc, "displayName"),
            created_at: format_unix_millis(s.created),
            updated_at: format_unix_millis(s.last_modified),
            raw_attributes: RawAttributes(s),
        }
    }
}

/// The SCIM document as stored, with its id first; never the password hash.
struct RawAttributes<'a>(&'a Stored);

impl Serialize for RawAttributes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let s = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &s.id)?;
        if let Value::Object(doc) = &s.doc {
            for (k, v) in doc {
                if k != "password" && k != "id" {
                    map.serialize_entry(k, v)?;
                }
            }
        }
        map.end()
    }
}

pub fn data(
    directory: &str,
    s: &Stored,
    groups: &[GroupRef],
    custom: Option<&CustomAttributes>,
) -> Value {
    match s.kind {
        Kind::User => user_data(directory, s, groups, custom),
        Kind::Group => group_data(directory, s),
    }
}

/// Without a mapping: the Enterprise User attributes, under the snake_case names apps expect.
fn custom_attributes(doc: &Value) -> Value {
    let mut out = Map::new();
    if let Some(Value::Object(ext)) = doc.get(ENTERPRISE_USER_SCHEMA) {
        for (k, v) in ext {
            let key = match k.as_str() {
                "employeeNumber" => "employee_number",
                "costCenter" => "cost_center",
                "organization" => "organization",
                "division" => "division",
                "department" => "department",
                "manager" => {
                    if let Some(id) = v.get("value") {
                        out.insert("manager_id".into(), id.clone());
                    }
                    continue;
                }
                other => other,
            };
            out.insert(key.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// Payload keys that are not attributes: compared by nothing, listed in no
/// `previous_attributes` (`updated_at` changes with every write).
const NOT_ATTRIBUTES: &[&str] = &["raw_attributes", "updated_at"];

/// `data` of an `*.updated` event: the new state plus `previous_attributes`,
/// the prior values of exactly the top-level attributes that changed. `None`
/// when nothing an app sees changed.
pub fn updated(before: &Value, after: &Value) -> Option<Value> {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return None;
    };
    let mut previous = Map::new();
    for (k, new) in a {
        if NOT_ATTRIBUTES.contains(&k.as_str()) {
            continue;
        }
        let old = b.get(k).cloned().unwrap_or(Value::Null);
        if &old != new {
            previous.insert(k.clone(), old);
        }
    }
    for (k, old) in b {
        if !NOT_ATTRIBUTES.contains(&k.as_str()) && !a.contains_key(k) {
            previous.insert(k.clone(), old.clone());
        }
    }
    let raw_changed = b.get("raw_attributes") != a.get("raw_attributes");
    if previous.is_empty() && !raw_changed {
        return None;
    }
    if raw_changed {
        previous.insert(
            "raw_attributes".into(),
            b.get("raw_attributes").cloned().unwrap_or(Value::Null),
        );
    }
    let mut data = after.clone();
    if let Value::Object(d) = &mut data {
        d.insert("previous_attributes".into(), Value::Object(previous));
    }
    Some(data)
}

/// `data` of `dsync.activated` and `dsync.deleted`: the directory as it was
/// when the event happened.
pub fn directory_data(d: &Directory) -> Value {
    json!({
        "object": "directory",
        "id": d.id,
        "name": d.name,
        "organization_id": d.organization_id,
        "domain": d.domain,
        "type": d.provider.as_deref().unwrap_or(crate::model::GENERIC_PROVIDER),
        "created_at": format_unix_millis(d.created_at),
        "updated_at": format_unix_millis(d.updated_at),
    })
}

/// `data` of a membership event.
pub fn membership(directory: &str, user: Value, group: Value) -> Value {
    json!({"directory_id": directory, "user": user, "group": group})
}

#[cfg(test)]
mod tests {
    use roster_scim::schema::SchemaRegistry;

    use super::*;

    fn user(doc: Value) -> Stored {
        Stored {
            id: "u1".into(),
            kind: Kind::User,
            doc,
            version: 1,
            created: 0,
            last_modified: 0,
        }
    }

    #[test]
    fn the_payload_text_is_the_payload_value_written_out() {
        let groups = [GroupRef {
            id: "g".into(),
            name: "G \"quoted\"".into(),
        }];
        let users = [
            json!({
                "userName": "bjensen", "externalId": "x1", "active": false, "password": "$argon2...",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"value": "b@x", "type": "work", "primary": true}, {"value": "c@x"}],
                "title": "Ms", "nickName": "Babs \u{e9}\n",
                ENTERPRISE_USER_SCHEMA: {"department": "Tour", "manager": {"value": "m1"}}
            }),
            json!({"userName": "only"}),
            json!({"userName": "n", "name": "not an object", "emails": "not a list"}),
        ];
        for doc in users {
            let s = user(doc);
            for g in [&groups[..], &[]] {
                assert_eq!(
                    data_text("d1", &s, g, None),
                    data("d1", &s, g, None).to_string()
                );
            }
        }
        let mut g = user(json!({"displayName": "Eng", "externalId": "e", "members": []}));
        g.kind = Kind::Group;
        assert_eq!(
            data_text("d1", &g, &[], None),
            data("d1", &g, &[], None).to_string()
        );
        let text: Value = serde_json::from_str(&data_text("d1", &g, &[], None)).unwrap();
        assert_eq!(text["raw_attributes"]["id"], "u1");
        assert_eq!(text["name"], "Eng");
    }

    #[test]
    fn normalizes_a_user() {
        let s = user(json!({
            "userName": "bjensen", "externalId": "x1", "active": false, "password": "$argon2...",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@x", "type": "work", "primary": true}],
            ENTERPRISE_USER_SCHEMA: {"department": "Tour", "manager": {"value": "m1"}}
        }));
        let d = user_data(
            "d1",
            &s,
            &[GroupRef {
                id: "g".into(),
                name: "G".into(),
            }],
            None,
        );
        assert_eq!(d["username"], "bjensen");
        assert_eq!(d["idp_id"], "x1");
        assert_eq!(d["state"], "inactive");
        assert_eq!(d["first_name"], "Barbara");
        assert_eq!(d["emails"][0]["primary"], true);
        assert_eq!(d["custom_attributes"]["manager_id"], "m1");
        assert_eq!(d["groups"][0]["name"], "G");
        assert!(d["raw_attributes"].get("password").is_none());
    }

    #[test]
    fn updated_lists_exactly_the_changed_attributes() {
        let a = user_data(
            "d",
            &user(json!({"userName": "a", "title": "x"})),
            &[],
            None,
        );
        let mut later = user(json!({"userName": "a", "title": "y", "active": false}));
        later.last_modified = 5;
        let b = user_data("d", &later, &[], None);
        let d = updated(&a, &b).unwrap();
        let prev = d["previous_attributes"].as_object().unwrap();
        assert!(!prev.contains_key("updated_at"), "{prev:?}");
        assert_eq!(d["updated_at"], "1970-01-01T00:00:00.005Z");
        // A write that changed only the time is no update.
        let mut touched = user(json!({"userName": "a", "title": "x"}));
        touched.last_modified = 9;
        assert!(updated(&a, &user_data("d", &touched, &[], None)).is_none());
        assert_eq!(prev["job_title"], "x");
        assert_eq!(prev["state"], "active");
        assert!(!prev.contains_key("username"));
        assert!(updated(&a, &a).is_none());
    }

    #[test]
    fn a_mapping_is_checked_against_the_schemas_and_read_from_the_document() {
        let reg = SchemaRegistry::core();
        let m = CustomAttributes::parse(
            &reg,
            &json!({
                "department": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:DEPARTMENT",
                "manager_id": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "given": "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName",
                "mails": "emails.value",
                "nick": "nickName"
            }),
        )
        .unwrap();
        assert_eq!(
            m.to_json(),
            json!({
                "department": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "manager_id": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "given": "name.givenName",
                "mails": "emails.value",
                "nick": "nickName"
            })
        );
        assert_eq!(CustomAttributes::from_stored(&m.to_stored()).unwrap(), m);
        let doc = json!({
            "userName": "b", "name": {"givenName": "Barbara"},
            "emails": [{"value": "a@x"}, {"type": "home"}, {"value": "b@x"}],
            ENTERPRISE_USER_SCHEMA: {"department": "Tours", "manager": {"value": "m1"}}
        });
        assert_eq!(
            m.extract(&doc),
            json!({"department": "Tours", "manager_id": "m1", "given": "Barbara",
                   "mails": ["a@x", "b@x"], "nick": null})
        );
        let d = user_data("d", &user(doc), &[], Some(&m));
        assert_eq!(d["custom_attributes"]["manager_id"], "m1");
        // Every refusal names what it refuses.
        for (bad, named) in [
            (
                json!({"x": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nope"}),
                "nope",
            ),
            (json!({"x": "costCentre"}), "costCentre"),
            (json!({"x": "name.nope"}), "name.nope"),
            (json!({"x": "password"}), "password"),
            (json!({"x": "groups.value"}), "groups.value"),
            (json!({"x": "meta.created"}), "meta.created"),
            (json!({"x": "a..b"}), "a..b"),
            (json!({"x": 3}), "\"x\""),
            (json!({"": "userName"}), "\"\""),
        ] {
            let e = CustomAttributes::parse(&reg, &bad).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.detail.contains(named), "{named}: {}", e.detail);
        }
        assert!(CustomAttributes::parse(&reg, &json!(["x"])).is_err());
    }

    #[test]
    fn event_ids_sort_and_parse() {
        assert!(event_id(9) < event_id(10));
        assert_eq!(parse_event_id(&event_id(12345)), Some(12345));
        assert_eq!(parse_event_id("evt_zz"), None);
    }
}
