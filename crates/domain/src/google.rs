//! Google Workspace Directory API resources as SCIM documents: what a pulled
//! directory writes through the same path as a SCIM request. Pure: the
//! server's poller fetches, this maps.

use serde_json::{Map, Value, json};

use roster_scim::schema::ENTERPRISE_USER_SCHEMA;

/// The extension under which a user's `customSchemas` are written: one
/// complex attribute per Google custom schema, one sub-attribute per field.
/// Written only where an operator registered a schema of that URN.
pub const GOOGLE_USER_SCHEMA: &str = "urn:roster:params:scim:schemas:extension:google:2.0:User";

/// The `fields` selector of `users.list`: only what [`user_to_scim`] reads.
pub const USER_FIELDS: &str = "nextPageToken,users(id,primaryEmail,name(givenName,familyName,fullName),suspended,archived,orgUnitPath,organizations,externalIds,phones,emails,customSchemas)";
/// The `fields` selector of `groups.list`.
pub const GROUP_FIELDS: &str = "nextPageToken,groups(id,email,name)";
/// The `fields` selector of `members.list`.
pub const MEMBER_FIELDS: &str = "nextPageToken,members(id,email,type,status)";

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// SCIM `phoneNumbers.type` for Google's phone type (SCIM's canonical
/// values are work, home, mobile, fax, pager and other).
fn phone_type(google: &str) -> &'static str {
    match google {
        "work" | "work_mobile" | "company_main" | "main" => "work",
        "home" => "home",
        "mobile" => "mobile",
        "home_fax" | "work_fax" | "other_fax" => "fax",
        "pager" | "work_pager" => "pager",
        _ => "other",
    }
}

/// The organization that describes the user's job: the one marked primary,
/// else the first.
fn main_organization(user: &Value) -> Option<&Value> {
    let orgs = user.get("organizations")?.as_array()?;
    orgs.iter()
        .find(|o| o.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| orgs.first())
}

/// A Google `users` resource as a SCIM User body; `None` when it lacks the
/// id or primaryEmail every user has. `externalId` is Google's immutable
/// user id, which is how later polls find the user again.
pub fn user_to_scim(user: &Value) -> Option<Value> {
    let id = text(user, "id")?;
    let email = text(user, "primaryEmail")?;
    let mut doc = Map::new();
    doc.insert("userName".into(), json!(email));
    doc.insert("externalId".into(), json!(id));
    let name = user.get("name").cloned().unwrap_or(Value::Null);
    let mut scim_name = Map::new();
    for (from, to) in [
        ("givenName", "givenName"),
        ("familyName", "familyName"),
        ("fullName", "formatted"),
    ] {
        if let Some(v) = text(&name, from) {
            scim_name.insert(to.into(), json!(v));
        }
    }
    if let Some(full) = text(&name, "fullName") {
        doc.insert("displayName".into(), json!(full));
    }
    if !scim_name.is_empty() {
        doc.insert("name".into(), Value::Object(scim_name));
    }
    let suspended = user.get("suspended").and_then(Value::as_bool) == Some(true)
        || user.get("archived").and_then(Value::as_bool) == Some(true);
    doc.insert("active".into(), json!(!suspended));

    let mut emails = vec![json!({"value": email, "type": "work", "primary": true})];
    for e in user
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(addr) = text(e, "address")
            && !addr.eq_ignore_ascii_case(email)
        {
            let kind = match text(e, "type") {
                Some("home") => "home",
                Some("work") => "work",
                _ => "other",
            };
            emails.push(json!({"value": addr, "type": kind}));
        }
    }
    doc.insert("emails".into(), Value::Array(emails));

    let phones: Vec<Value> = user
        .get("phones")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let value = text(p, "value")?;
            let mut out =
                json!({"value": value, "type": phone_type(text(p, "type").unwrap_or(""))});
            if p.get("primary").and_then(Value::as_bool) == Some(true) {
                out["primary"] = json!(true);
            }
            Some(out)
        })
        .collect();
    if !phones.is_empty() {
        doc.insert("phoneNumbers".into(), Value::Array(phones));
    }

    let mut enterprise = Map::new();
    if let Some(org) = main_organization(user) {
        if let Some(title) = text(org, "title") {
            doc.insert("title".into(), json!(title));
        }
        for (from, to) in [
            ("department", "department"),
            ("costCenter", "costCenter"),
            ("name", "organization"),
        ] {
            if let Some(v) = text(org, from) {
                enterprise.insert(to.into(), json!(v));
            }
        }
    }
    if let Some(ou) = text(user, "orgUnitPath") {
        enterprise.insert("division".into(), json!(ou));
    }
    let employee_number = user
        .get("externalIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|x| text(x, "type") == Some("organization"))
        .and_then(|x| text(x, "value"));
    if let Some(n) = employee_number {
        enterprise.insert("employeeNumber".into(), json!(n));
    }
    let mut schemas = vec![json!("urn:ietf:params:scim:schemas:core:2.0:User")];
    if !enterprise.is_empty() {
        schemas.push(json!(ENTERPRISE_USER_SCHEMA));
        doc.insert(ENTERPRISE_USER_SCHEMA.into(), Value::Object(enterprise));
    }
    if let Some(custom) = user.get("customSchemas").and_then(Value::as_object)
        && !custom.is_empty()
    {
        let fields: Map<String, Value> = custom
            .iter()
            .filter(|(_, v)| v.is_object())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !fields.is_empty() {
            schemas.push(json!(GOOGLE_USER_SCHEMA));
            doc.insert(GOOGLE_USER_SCHEMA.into(), Value::Object(fields));
        }
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    Some(Value::Object(doc))
}

/// A Google `groups` resource as a SCIM Group body (without members).
pub fn group_to_scim(group: &Value) -> Option<Value> {
    let id = text(group, "id")?;
    let email = text(group, "email");
    let name = text(group, "name").or(email)?;
    Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "externalId": id,
    }))
}

/// The Google id of a group member that is a user or a group, with whether
/// it is a group; members of type CUSTOMER (everyone in the account) and
/// ones not yet active are not mirrored.
pub fn member_ref(member: &Value) -> Option<(String, bool)> {
    let id = text(member, "id")?;
    if let Some(status) = text(member, "status")
        && status != "ACTIVE"
    {
        return None;
    }
    match text(member, "type") {
        Some("USER") | None => Some((id.to_owned(), false)),
        Some("GROUP") => Some((id.to_owned(), true)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_a_full_user() {
        let u = json!({
            "id": "1001", "primaryEmail": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "fullName": "Ada Lovelace"},
            "suspended": false, "orgUnitPath": "/Engineering",
            "organizations": [{"title": "Engineer", "department": "R&D", "costCenter": "42", "primary": true}],
            "externalIds": [{"type": "organization", "value": "E-7"}],
            "phones": [{"type": "work_fax", "value": "+1 555"}, {"type": "mobile", "value": "+1 556", "primary": true}],
            "emails": [{"address": "ada@example.com", "primary": true}, {"address": "ada@home.example", "type": "home"}],
            "customSchemas": {"Badge": {"number": "77"}}
        });
        let doc = user_to_scim(&u).unwrap();
        assert_eq!(doc["userName"], "ada@example.com");
        assert_eq!(doc["externalId"], "1001");
        assert_eq!(doc["displayName"], "Ada Lovelace");
        assert_eq!(doc["name"]["formatted"], "Ada Lovelace");
        assert_eq!(doc["active"], true);
        assert_eq!(doc["title"], "Engineer");
        assert_eq!(doc["emails"].as_array().unwrap().len(), 2);
        assert_eq!(doc["phoneNumbers"][0]["type"], "fax");
        assert_eq!(doc["phoneNumbers"][1]["primary"], true);
        let ent = &doc[ENTERPRISE_USER_SCHEMA];
        assert_eq!(ent["department"], "R&D");
        assert_eq!(ent["costCenter"], "42");
        assert_eq!(ent["division"], "/Engineering");
        assert_eq!(ent["employeeNumber"], "E-7");
        assert_eq!(doc[GOOGLE_USER_SCHEMA]["Badge"]["number"], "77");
    }

    #[test]
    fn suspended_or_archived_is_inactive() {
        for flag in ["suspended", "archived"] {
            let u = json!({"id": "1", "primaryEmail": "a@x.test", flag: true});
            assert_eq!(user_to_scim(&u).unwrap()["active"], false);
        }
    }

    #[test]
    fn incomplete_resources_are_skipped() {
        assert!(user_to_scim(&json!({"id": "1"})).is_none());
        assert!(group_to_scim(&json!({"email": "g@x.test"})).is_none());
        assert_eq!(
            group_to_scim(&json!({"id": "g", "email": "g@x.test"})).unwrap()["displayName"],
            "g@x.test"
        );
        assert_eq!(member_ref(&json!({"id": "c", "type": "CUSTOMER"})), None);
        assert_eq!(
            member_ref(&json!({"id": "u", "type": "USER", "status": "SUSPENDED"})),
            None
        );
        assert_eq!(
            member_ref(&json!({"id": "g", "type": "GROUP"})),
            Some(("g".into(), true))
        );
    }
}
