//! Roster's objects in the shapes the WorkOS Directory Sync SDKs parse:
//! Directory, DirectoryUser (with or without `groups`), DirectoryGroup and
//! Event. Pure: everything comes in as arguments.
//!
//! Users and groups arrive as the normalized payloads events carry
//! (`roster_domain::events::user_data`, `group_data`); what those lack (the
//! organization, the primary `email`, `name`) is filled in here, so stored
//! events written before a field existed render completely too. Each object
//! is a type: the OpenAPI document takes its schema from the same type the
//! routes serialize.

use roster_domain::events::{self, Event};
use roster_domain::{Directory, DirectoryCounts, GENERIC_PROVIDER};
use roster_scim::values::format_unix_millis;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

fn ts(ms: i64) -> Value {
    Value::String(format_unix_millis(ms))
}

/// A Directory.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = workos::Directory)]
pub struct WorkosDirectory {
    /// Always `directory`.
    #[schema(example = "directory")]
    pub object: &'static str,
    pub id: String,
    /// The app's id for the customer that owns the directory.
    pub organization_id: Option<String>,
    /// The directory's id again: WorkOS's key of a directory.
    pub external_key: String,
    /// Which provider feeds the directory: `okta scim v2.0`,
    /// `azure scim v2.0`, `generic scim v2.0`, `gsuite directory`, ….
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `linked`: a directory Roster serves accepts its provider's requests.
    #[schema(example = "linked")]
    pub state: &'static str,
    pub name: String,
    pub domain: Option<String>,
    pub metadata: DirectoryMetadata,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

/// How many users and groups a directory holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DirectoryMetadata {
    pub users: UserCounts,
    pub groups: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserCounts {
    pub active: i64,
    pub inactive: i64,
}

/// A directory as `GET /directories` lists it.
pub fn directory(d: &Directory, counts: &DirectoryCounts) -> WorkosDirectory {
    WorkosDirectory {
        object: "directory",
        id: d.id.clone(),
        organization_id: d.organization_id.clone(),
        external_key: d.id.clone(),
        kind: d
            .provider
            .clone()
            .unwrap_or_else(|| GENERIC_PROVIDER.to_owned()),
        state: "linked",
        name: d.name.clone(),
        domain: d.domain.clone(),
        metadata: DirectoryMetadata {
            users: UserCounts {
                active: counts.active_users,
                inactive: counts.inactive_users,
            },
            groups: counts.groups,
        },
        created_at: format_unix_millis(d.created_at),
        updated_at: format_unix_millis(d.updated_at),
    }
}

/// A DirectoryUser.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DirectoryUser {
    /// Always `directory_user`.
    #[schema(example = "directory_user")]
    pub object: &'static str,
    pub id: String,
    pub directory_id: String,
    pub organization_id: Option<String>,
    /// The identity provider's id (SCIM `externalId`); `""` when it sent none.
    pub idp_id: String,
    /// The primary email, else the first one.
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// SCIM `name.formatted`, else the given and family names joined.
    pub name: Option<String>,
    pub emails: Vec<UserEmail>,
    pub username: Option<String>,
    pub job_title: Option<String>,
    /// `active` or `inactive` (SCIM `active`).
    #[schema(example = "active")]
    pub state: String,
    /// The directory's mapped attributes (`roster directory set-custom-attributes`).
    #[schema(value_type = Object)]
    pub custom_attributes: Map<String, Value>,
    /// The SCIM resource as the provider sent it (never a password).
    #[schema(value_type = Object)]
    pub raw_attributes: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    /// The user's groups, on `/directory_users` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<DirectoryGroup>>,
}

/// One of a user's email addresses.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserEmail {
    pub value: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub primary: bool,
}

/// A DirectoryGroup.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DirectoryGroup {
    /// Always `directory_group`.
    #[schema(example = "directory_group")]
    pub object: &'static str,
    pub id: String,
    /// The identity provider's id; `""` when it sent none.
    pub idp_id: String,
    pub directory_id: String,
    pub organization_id: Option<String>,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    /// The SCIM group as the provider sent it.
    #[schema(value_type = Object)]
    pub raw_attributes: Map<String, Value>,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn owned(v: &Value, key: &str) -> Option<String> {
    text(v, key).map(str::to_owned)
}

fn object(v: &Value, key: &str) -> Map<String, Value> {
    v.get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The primary email, else the first one with a value.
fn primary_email(payload: &Value) -> Option<String> {
    let emails = payload.get("emails").and_then(Value::as_array);
    let mut values = emails.into_iter().flatten();
    let primary = values
        .clone()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .and_then(|e| text(e, "value"));
    primary
        .or_else(|| values.find_map(|e| text(e, "value")))
        .map(str::to_owned)
}

/// `name`: the SCIM `name.formatted`, else the given and family names joined.
fn full_name(payload: &Value) -> Option<String> {
    let raw = payload.get("raw_attributes").unwrap_or(&Value::Null);
    if let Some(formatted) = raw.get("name").and_then(|n| text(n, "formatted")) {
        return Some(formatted.to_owned());
    }
    let parts: Vec<&str> = [text(payload, "first_name"), text(payload, "last_name")]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// An event's user or group payload with the event's time where it carries none.
fn with_times(payload: &Value, at: i64) -> Value {
    let mut p = payload.clone();
    if let Value::Object(o) = &mut p {
        for key in ["created_at", "updated_at"] {
            if !o.get(key).is_some_and(Value::is_string) {
                o.insert(key.into(), ts(at));
            }
        }
    }
    p
}

fn emails(payload: &Value) -> Vec<UserEmail> {
    let items = payload.get("emails").and_then(Value::as_array);
    items
        .into_iter()
        .flatten()
        .map(|e| UserEmail {
            value: owned(e, "value"),
            kind: owned(e, "type"),
            primary: e.get("primary").and_then(Value::as_bool).unwrap_or(false),
        })
        .collect()
}

/// A DirectoryUser from a normalized user payload; `groups` (full
/// DirectoryGroups) only where the route promises them.
pub fn user(
    payload: &Value,
    organization_id: Option<&str>,
    groups: Option<Vec<DirectoryGroup>>,
) -> DirectoryUser {
    DirectoryUser {
        object: "directory_user",
        id: owned(payload, "id").unwrap_or_default(),
        directory_id: owned(payload, "directory_id").unwrap_or_default(),
        organization_id: organization_id.map(str::to_owned),
        // Never null for the SDKs: an IdP that sends no externalId gets "".
        idp_id: owned(payload, "idp_id").unwrap_or_default(),
        email: primary_email(payload),
        first_name: owned(payload, "first_name"),
        last_name: owned(payload, "last_name"),
        name: full_name(payload),
        emails: emails(payload),
        username: owned(payload, "username"),
        job_title: owned(payload, "job_title"),
        state: text(payload, "state").unwrap_or("active").to_owned(),
        custom_attributes: object(payload, "custom_attributes"),
        raw_attributes: object(payload, "raw_attributes"),
        created_at: owned(payload, "created_at").unwrap_or_default(),
        updated_at: owned(payload, "updated_at").unwrap_or_default(),
        groups,
    }
}

/// A DirectoryGroup from a normalized group payload.
pub fn group(payload: &Value, organization_id: Option<&str>) -> DirectoryGroup {
    DirectoryGroup {
        object: "directory_group",
        id: owned(payload, "id").unwrap_or_default(),
        idp_id: owned(payload, "idp_id").unwrap_or_default(),
        directory_id: owned(payload, "directory_id").unwrap_or_default(),
        organization_id: organization_id.map(str::to_owned),
        name: owned(payload, "name").unwrap_or_default(),
        created_at: owned(payload, "created_at").unwrap_or_default(),
        updated_at: owned(payload, "updated_at").unwrap_or_default(),
        raw_attributes: object(payload, "raw_attributes"),
    }
}

/// A rendered object as JSON, with the payload's `previous_attributes` (of
/// an update) where it has them.
fn with_previous(rendered: impl Serialize, payload: &Value) -> Value {
    let mut out = serde_json::to_value(rendered).unwrap_or(Value::Null);
    if let (Some(prev), Value::Object(o)) = (payload.get("previous_attributes"), &mut out) {
        o.insert("previous_attributes".into(), prev.clone());
    }
    out
}

/// `data` of `dsync.activated` / `dsync.deleted`: the directory as the event
/// stored it, completed from the directory as it is now when it still exists.
fn directory_event_data(ev: &Event, directory: Option<&Directory>) -> Value {
    let data = &ev.data;
    let deleted = ev.event == events::DIRECTORY_DELETED;
    let pick = |key: &str, now: Option<Value>| -> Value {
        match data.get(key) {
            Some(v) if !v.is_null() => v.clone(),
            _ => now.unwrap_or(Value::Null),
        }
    };
    let name = pick("name", directory.map(|d| json!(d.name)));
    let organization_id = pick(
        "organization_id",
        directory.and_then(|d| d.organization_id.as_deref().map(|o| json!(o))),
    );
    let kind = pick(
        "type",
        Some(json!(
            directory
                .and_then(|d| d.provider.as_deref())
                .unwrap_or(GENERIC_PROVIDER)
        )),
    );
    let created = pick(
        "created_at",
        Some(directory.map_or_else(|| ts(ev.created_at), |d| ts(d.created_at))),
    );
    let mut out = json!({
        "object": "directory",
        "id": ev.directory_id,
        "organization_id": organization_id,
        "external_key": ev.directory_id,
        "type": kind,
        // Events spell states as the SDKs' event models do: `active`, `deleting`.
        "state": if deleted { "deleting" } else { "active" },
        "name": name,
        "created_at": created,
        "updated_at": ts(ev.created_at),
    });
    if let Value::Object(o) = &mut out {
        let domain = pick(
            "domain",
            directory.and_then(|d| d.domain.as_deref().map(|s| json!(s))),
        );
        if !deleted {
            o.insert("domain".into(), domain.clone());
            // WorkOS lists verified domains as objects; Roster verifies none.
            o.insert("domains".into(), json!([]));
        }
    }
    out
}

/// The `data` of an event in the WorkOS shapes.
fn event_data(ev: &Event, directory: Option<&Directory>) -> Value {
    let org = directory.and_then(|d| d.organization_id.as_deref());
    let at = ev.created_at;
    let none = Value::Null;
    let part = |key: &str| with_times(ev.data.get(key).unwrap_or(&none), at);
    match ev.event.as_str() {
        events::DIRECTORY_ACTIVATED | events::DIRECTORY_DELETED => {
            directory_event_data(ev, directory)
        }
        events::USER_CREATED | events::USER_UPDATED | events::USER_DELETED => {
            with_previous(user(&with_times(&ev.data, at), org, None), &ev.data)
        }
        events::GROUP_CREATED | events::GROUP_UPDATED | events::GROUP_DELETED => {
            with_previous(group(&with_times(&ev.data, at), org), &ev.data)
        }
        events::GROUP_USER_ADDED | events::GROUP_USER_REMOVED => {
            serde_json::to_value(MembershipData {
                directory_id: ev.directory_id.clone(),
                user: user(&part("user"), org, None),
                group: group(&part("group"), org),
            })
            .unwrap_or(Value::Null)
        }
        _ => ev.data.clone(),
    }
}

/// An Event as `GET /events` lists it and WorkOS-format webhooks send it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = workos::Event)]
pub struct WorkosEvent {
    /// Always `event`.
    #[schema(example = "event")]
    pub object: &'static str,
    /// `evt_` and 16 hex digits, in commit order.
    pub id: String,
    /// `dsync.activated`, `dsync.deleted`, `dsync.user.created|updated|deleted`,
    /// `dsync.group.created|updated|deleted`, `dsync.group.user_added|user_removed`.
    pub event: String,
    /// A DirectoryUser or DirectoryGroup (with `previous_attributes` on
    /// updates), a membership, or the directory.
    #[schema(value_type = EventData)]
    pub data: Value,
    pub created_at: String,
}

/// What an event is about: its `data`, by the event's type.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
// Never built: it describes `WorkosEvent::data` to the document.
#[allow(dead_code, clippy::large_enum_variant)]
pub enum EventData {
    User(DirectoryUserChange),
    Group(DirectoryGroupChange),
    Membership(MembershipData),
    Directory(DirectoryEventData),
}

/// `data` of `dsync.user.*`: the user (no `groups`), and on
/// `dsync.user.updated` what changed, as it was.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct DirectoryUserChange {
    #[schema(inline)]
    #[serde(flatten)]
    user: DirectoryUser,
    #[schema(value_type = Option<Object>)]
    previous_attributes: Option<Value>,
}

/// `data` of `dsync.group.*`: the group, and on `dsync.group.updated` what
/// changed, as it was.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct DirectoryGroupChange {
    #[schema(inline)]
    #[serde(flatten)]
    group: DirectoryGroup,
    #[schema(value_type = Option<Object>)]
    previous_attributes: Option<Value>,
}

/// `data` of `dsync.group.user_added` and `dsync.group.user_removed`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MembershipData {
    pub directory_id: String,
    pub user: DirectoryUser,
    pub group: DirectoryGroup,
}

/// `data` of `dsync.activated` and `dsync.deleted`: the directory as the
/// event stored it (`state` `active` or `deleting`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct DirectoryEventData {
    #[schema(example = "directory")]
    object: String,
    id: String,
    organization_id: Option<String>,
    external_key: String,
    #[serde(rename = "type")]
    kind: String,
    state: String,
    name: Option<String>,
    /// Not on `dsync.deleted`.
    domain: Option<String>,
    /// Not on `dsync.deleted`.
    #[schema(value_type = Option<Vec<Object>>)]
    domains: Option<Vec<Value>>,
    created_at: Option<String>,
    updated_at: String,
}

/// An event as `GET /events` lists it and WorkOS-format webhooks send it.
/// `directory` is the event's directory as it is now, `None` once deleted
/// (what the stored event carries is used then).
pub fn event_object(ev: &Event, directory: Option<&Directory>) -> WorkosEvent {
    WorkosEvent {
        object: "event",
        id: ev.id(),
        event: ev.event.clone(),
        data: event_data(ev, directory),
        created_at: format_unix_millis(ev.created_at),
    }
}

/// [`event_object`] as JSON, as webhook deliveries carry it.
pub fn event(ev: &Event, directory: Option<&Directory>) -> Value {
    serde_json::to_value(event_object(ev, directory)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_KEYS: &[&str] = &[
        "object",
        "id",
        "directory_id",
        "organization_id",
        "idp_id",
        "email",
        "first_name",
        "last_name",
        "name",
        "state",
        "custom_attributes",
        "raw_attributes",
        "created_at",
        "updated_at",
    ];
    const GROUP_KEYS: &[&str] = &[
        "object",
        "id",
        "idp_id",
        "directory_id",
        "organization_id",
        "name",
        "created_at",
        "updated_at",
        "raw_attributes",
    ];

    fn dir() -> Directory {
        Directory {
            id: "d1".into(),
            name: "Acme".into(),
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_001_000,
            organization_id: Some("org_1".into()),
            domain: Some("acme.test".into()),
            provider: Some("okta scim v2.0".into()),
        }
    }

    fn v(x: impl Serialize) -> Value {
        serde_json::to_value(x).unwrap()
    }

    fn has_keys(v: &Value, keys: &[&str]) {
        for k in keys {
            assert!(v.get(k).is_some(), "{k} missing from {v}");
        }
    }

    fn user_payload() -> Value {
        json!({
            "object": "directory_user", "id": "u1", "directory_id": "d1", "idp_id": "x1",
            "username": "bjensen",
            "emails": [{"value": "b@home", "type": "home", "primary": false},
                       {"value": "b@work", "type": "work", "primary": true}],
            "first_name": "Barbara", "last_name": "Jensen", "job_title": null,
            "state": "active", "groups": [{"id": "g1", "name": "Eng"}],
            "custom_attributes": {"department": "Tours"},
            "created_at": "2023-11-14T22:13:20.000Z", "updated_at": "2023-11-14T22:13:22.000Z",
            "raw_attributes": {"id": "u1", "userName": "bjensen"}
        })
    }

    fn group_payload() -> Value {
        json!({"object": "directory_group", "id": "g1", "directory_id": "d1", "idp_id": null,
               "name": "Eng", "created_at": "2023-11-14T22:13:20.000Z",
               "updated_at": "2023-11-14T22:13:22.000Z",
               "raw_attributes": {"id": "g1", "displayName": "Eng"}})
    }

    #[test]
    fn a_directory_has_every_key_the_sdks_read() {
        let counts = DirectoryCounts {
            active_users: 3,
            inactive_users: 1,
            groups: 2,
        };
        let d = v(directory(&dir(), &counts));
        has_keys(
            &d,
            &[
                "object",
                "id",
                "organization_id",
                "external_key",
                "type",
                "state",
                "name",
                "created_at",
                "updated_at",
                "domain",
            ],
        );
        assert_eq!(d["type"], "okta scim v2.0");
        assert_eq!(d["state"], "linked");
        assert_eq!(d["metadata"]["users"]["inactive"], 1);
        assert_eq!(d["metadata"]["groups"], 2);
        assert_eq!(d["created_at"], "2023-11-14T22:13:20.000Z");
        let mut bare = dir();
        bare.provider = None;
        bare.organization_id = None;
        let d = v(directory(&bare, &counts));
        assert_eq!(d["type"], GENERIC_PROVIDER);
        assert!(d["organization_id"].is_null());
    }

    #[test]
    fn a_user_has_every_key_and_groups_only_when_asked() {
        let u = v(user(&user_payload(), Some("org_1"), None));
        has_keys(&u, USER_KEYS);
        assert!(u.get("groups").is_none());
        assert_eq!(u["email"], "b@work");
        assert_eq!(u["name"], "Barbara Jensen");
        assert_eq!(u["organization_id"], "org_1");
        assert_eq!(u["updated_at"], "2023-11-14T22:13:22.000Z");
        let g = group(&group_payload(), Some("org_1"));
        let u = v(user(&user_payload(), None, Some(vec![g.clone()])));
        assert_eq!(u["groups"], json!([v(&g)]));
        assert!(u["organization_id"].is_null());
        // No primary: the first address; none at all: null. idp_id is never null.
        let mut p = user_payload();
        p["emails"] = json!([{"value": "only@x"}]);
        p["idp_id"] = Value::Null;
        let u = v(user(&p, None, None));
        assert_eq!(u["email"], "only@x");
        assert_eq!(u["idp_id"], "");
        p["emails"] = json!([]);
        assert!(v(user(&p, None, None))["email"].is_null());
        assert_eq!(
            v(user(&p, None, None))["created_at"],
            "2023-11-14T22:13:20.000Z"
        );
    }

    #[test]
    fn a_group_has_every_key() {
        let g = v(group(&group_payload(), Some("org_1")));
        has_keys(&g, GROUP_KEYS);
        assert_eq!(g["idp_id"], "");
        assert_eq!(g["name"], "Eng");
        assert_eq!(g["object"], "directory_group");
    }

    fn ev(kind: &str, data: Value) -> Event {
        Event {
            seq: 7,
            directory_id: "d1".into(),
            event: kind.into(),
            created_at: 1_700_000_003_000,
            data,
        }
    }

    #[test]
    fn events_have_the_envelope_and_workos_data() {
        let d = dir();
        let e = event(&ev(events::USER_CREATED, user_payload()), Some(&d));
        assert_eq!(
            e.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["object", "id", "event", "data", "created_at"]
        );
        assert_eq!(e["id"], "evt_0000000000000007");
        assert_eq!(e["created_at"], "2023-11-14T22:13:23.000Z");
        has_keys(&e["data"], USER_KEYS);
        assert!(e["data"].get("groups").is_none());
        assert_eq!(e["data"]["organization_id"], "org_1");

        let mut updated = user_payload();
        updated["previous_attributes"] = json!({"first_name": "Babs"});
        let e = event(&ev(events::USER_UPDATED, updated), Some(&d));
        assert_eq!(e["data"]["previous_attributes"]["first_name"], "Babs");
        has_keys(&e["data"], USER_KEYS);

        let mut gup = group_payload();
        gup["previous_attributes"] = json!({"name": "Old"});
        let e = event(&ev(events::GROUP_UPDATED, gup), Some(&d));
        has_keys(&e["data"], GROUP_KEYS);
        assert_eq!(e["data"]["previous_attributes"]["name"], "Old");
        let e = event(&ev(events::GROUP_DELETED, group_payload()), None);
        has_keys(&e["data"], GROUP_KEYS);
        assert!(e["data"]["organization_id"].is_null());
        // Stored before payloads carried timestamps: the event's time.
        let mut old = user_payload();
        old.as_object_mut().unwrap().remove("created_at");
        let e = event(&ev(events::USER_DELETED, old), Some(&d));
        assert_eq!(e["data"]["created_at"], "2023-11-14T22:13:23.000Z");
        assert_eq!(e["data"]["updated_at"], "2023-11-14T22:13:22.000Z");
    }

    #[test]
    fn membership_events_carry_directory_user_and_group() {
        let data = json!({"directory_id": "d1", "user": user_payload(), "group": group_payload()});
        for kind in [events::GROUP_USER_ADDED, events::GROUP_USER_REMOVED] {
            let e = event(&ev(kind, data.clone()), Some(&dir()));
            assert_eq!(e["data"]["directory_id"], "d1");
            has_keys(&e["data"]["user"], USER_KEYS);
            has_keys(&e["data"]["group"], GROUP_KEYS);
            assert!(e["data"]["user"].get("groups").is_none());
        }
    }

    #[test]
    fn directory_events_carry_the_directory() {
        let stored = json!({"object": "directory", "id": "d1", "name": "Acme",
                            "organization_id": "org_old"});
        let e = event(
            &ev(events::DIRECTORY_ACTIVATED, stored.clone()),
            Some(&dir()),
        );
        has_keys(
            &e["data"],
            &[
                "object",
                "id",
                "type",
                "state",
                "name",
                "external_key",
                "domains",
                "created_at",
                "updated_at",
            ],
        );
        assert_eq!(e["data"]["state"], "active");
        assert_eq!(e["data"]["domains"], json!([]));
        assert_eq!(e["data"]["type"], "okta scim v2.0");
        // What the event stored wins: it is what was true then.
        assert_eq!(e["data"]["organization_id"], "org_old");
        // Deleted: only what the event stored is left.
        let e = event(&ev(events::DIRECTORY_DELETED, stored), None);
        has_keys(
            &e["data"],
            &[
                "object",
                "id",
                "type",
                "state",
                "name",
                "created_at",
                "updated_at",
            ],
        );
        assert_eq!(e["data"]["state"], "deleting");
        assert_eq!(e["data"]["type"], GENERIC_PROVIDER);
        assert_eq!(e["data"]["name"], "Acme");
    }
}
