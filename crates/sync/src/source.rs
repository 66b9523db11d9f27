//! Reading the source: a SCIM service (incrementally where it can filter on
//! `meta.lastModified`) or a file exported from an HR system (JSON Lines of
//! SCIM resources, or CSV with the column mapping in docs/sync.md).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use roster_client::{ListQuery, ScimClient, ServiceProviderConfig, schemas};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use roster_scim::ResourceKind;
use roster_scim::values::{format_unix_millis, is_blank};

use crate::SyncError;

/// A prepared document kept as compact JSON text: a parsed `serde_json::Value`
/// costs several times its text in memory, and a run holds every changed
/// resource of the source at once (100,000 users and more).
#[derive(Debug, Clone)]
pub struct Doc(Box<str>);

impl Doc {
    pub fn new(v: &Value) -> Self {
        Doc(v.to_string().into_boxed_str())
    }

    /// The document; parsing text this program wrote cannot fail.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

/// One source resource, ready to be compared and pushed.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: ResourceKind,
    /// The source's id for it (state files are keyed by it).
    pub key: String,
    /// The document to send, with references (`members[].value`, the
    /// enterprise `manager.value`) still holding source keys.
    pub doc: Doc,
    /// Digest of `doc`: unchanged since the last applied version when equal.
    pub hash: String,
    /// The source's `meta.lastModified`, in milliseconds since the epoch.
    pub last_modified: Option<i128>,
}

impl Record {
    /// Prepares `doc` (see [`prepare`]) and digests it.
    pub fn new(kind: ResourceKind, key: String, doc: Value, last_modified: Option<i128>) -> Self {
        let doc = prepare(kind, doc);
        Record {
            kind,
            key,
            hash: digest(&doc),
            doc: Doc::new(&doc),
            last_modified,
        }
    }

    /// Source keys this record refers to: group members and the manager.
    #[cfg(test)]
    pub fn refs(&self) -> Vec<String> {
        let doc = self.doc.value();
        let mut out = Vec::new();
        if let Some(ms) = doc.get("members").and_then(Value::as_array) {
            out.extend(
                ms.iter()
                    .filter_map(|m| m.get("value").and_then(Value::as_str))
                    .map(str::to_owned),
            );
        }
        if let Some(m) = manager(&doc) {
            out.push(m.to_owned());
        }
        out
    }
}

/// Digest of a document with keys sorted at every level, so that the order
/// in which a source serialises attributes does not matter.
pub fn digest(doc: &Value) -> String {
    use sha2::Digest;
    fn canon(v: &Value, out: &mut String) {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canon(&o[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for x in a {
                    canon(x, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    canon(doc, &mut s);
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..12])
}

pub fn manager(doc: &Value) -> Option<&str> {
    doc.get(schemas::ENTERPRISE_USER)?
        .get("manager")?
        .get("value")?
        .as_str()
}

/// What a source read produced.
#[derive(Debug, Default)]
pub struct Listing {
    pub records: Vec<Record>,
    /// Every resource of the source is in `records` (a full listing), so
    /// vanished keys can be computed from it.
    pub complete: bool,
    /// "incremental", "full" or "file".
    pub mode: &'static str,
    /// The `meta.lastModified` bound an incremental listing used.
    pub since: Option<String>,
    /// Why an incremental listing was not possible, when it was wanted.
    pub fallback_reason: Option<String>,
}

pub fn parse_time(s: &str) -> Option<i128> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() / 1_000_000)
}

/// RFC 3339 in UTC with milliseconds, the form Roster itself writes.
pub fn format_time(millis: i128) -> String {
    format_unix_millis(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// Removes what a target must not be sent or computes itself: `id`, `meta`,
/// the read-only `groups` of a user, passwords (never readable anyway), and
/// the read-only parts of references. Empty values go too, so that a source
/// that writes `"nickName": ""` and one that omits it look alike.
pub fn prepare(kind: ResourceKind, mut doc: Value) -> Value {
    let Some(obj) = doc.as_object_mut() else {
        return doc;
    };
    obj.retain(|k, _| {
        !(k.eq_ignore_ascii_case("id")
            || k.eq_ignore_ascii_case("meta")
            || k.eq_ignore_ascii_case("password")
            || (kind == ResourceKind::User && k.eq_ignore_ascii_case("groups")))
    });
    if let Some(Value::Array(ms)) = obj.get_mut("members") {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for m in ms.iter() {
            let Some(v) = m.get("value").and_then(Value::as_str) else {
                continue;
            };
            if !seen.insert(v.to_owned()) {
                continue;
            }
            let mut keep = Map::new();
            keep.insert("value".into(), json!(v));
            if let Some(t) = m.get("type").and_then(Value::as_str) {
                keep.insert("type".into(), json!(t));
            }
            out.push(Value::Object(keep));
        }
        // Sorted, so the digest does not change when a source reorders members.
        out.sort_by(|a, b| a["value"].as_str().cmp(&b["value"].as_str()));
        *ms = out;
    }
    if let Some(ext) = obj
        .get_mut(schemas::ENTERPRISE_USER)
        .and_then(Value::as_object_mut)
        && let Some(Value::Object(m)) = ext.get_mut("manager")
    {
        m.retain(|k, _| k == "value");
        if m.is_empty() {
            ext.remove("manager");
        }
    }
    if !obj.contains_key("schemas") {
        let urn = match kind {
            ResourceKind::User => schemas::USER,
            ResourceKind::Group => schemas::GROUP,
        };
        obj.insert("schemas".into(), json!([urn]));
    }
    drop_empty(&mut doc);
    doc
}

fn drop_empty(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for x in o.values_mut() {
                drop_empty(x);
            }
            o.retain(|_, x| !is_blank(x));
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                drop_empty(x);
            }
            a.retain(|x| !is_blank(x));
        }
        _ => {}
    }
}

/// Keeps one record per key: the most recently modified (an overlap window
/// and cursor pages over a changing set can both show a resource twice).
fn dedupe(records: Vec<Record>) -> Vec<Record> {
    let mut at: HashMap<(ResourceKind, String), usize> = HashMap::new();
    let mut out: Vec<Record> = Vec::with_capacity(records.len());
    for r in records {
        match at.get(&(r.kind, r.key.clone())) {
            Some(&i) => {
                if r.last_modified >= out[i].last_modified {
                    out[i] = r;
                }
            }
            None => {
                at.insert((r.kind, r.key.clone()), out.len());
                out.push(r);
            }
        }
    }
    out
}

fn scim_record(kind: ResourceKind, v: Value) -> Option<Record> {
    let key = v.get("id")?.as_str()?.to_owned();
    let last_modified = v
        .pointer("/meta/lastModified")
        .and_then(Value::as_str)
        .and_then(parse_time);
    Some(Record::new(kind, key, v, last_modified))
}

/// Lists a SCIM source: only what changed after `since` when the source
/// filters, else everything. `on_page` counts resources as they arrive.
pub async fn read_scim(
    client: &ScimClient,
    cfg: &ServiceProviderConfig,
    since: Option<String>,
    mut on_page: impl FnMut(ResourceKind, usize, Option<u64>),
) -> Result<Listing, SyncError> {
    let count = cfg.page_size(1000);
    let mut fallback_reason = None;
    if let Some(since) = &since {
        if cfg.filter {
            let q = ListQuery {
                filter: Some(format!("meta.lastModified gt \"{since}\"")),
                attributes: None,
                count,
            };
            let mut records = Vec::new();
            let mut refused = None;
            for kind in [ResourceKind::User, ResourceKind::Group] {
                match client
                    .for_each_page(kind.endpoint(), &q, cfg.pagination.cursor, |page, t| {
                        on_page(kind, page.len(), t);
                        records.extend(page.into_iter().filter_map(|v| scim_record(kind, v)));
                    })
                    .await
                {
                    Ok(()) => {}
                    // A source that advertises filtering but cannot filter on
                    // meta.lastModified answers 400 (invalidFilter) or 501.
                    Err(e) if matches!(e.status(), Some(400 | 403 | 501)) => {
                        refused = Some(e.to_string());
                        break;
                    }
                    Err(e) => return Err(SyncError::list_source(e)),
                }
            }
            match refused {
                None => {
                    return Ok(Listing {
                        records: dedupe(records),
                        complete: false,
                        mode: "incremental",
                        since: Some(since.clone()),
                        fallback_reason: None,
                    });
                }
                Some(r) => fallback_reason = Some(format!("the source refused the filter: {r}")),
            }
        } else {
            fallback_reason = Some("the source does not support filters".into());
        }
    }
    let q = ListQuery {
        filter: None,
        attributes: None,
        count,
    };
    let mut records = Vec::new();
    for kind in [ResourceKind::User, ResourceKind::Group] {
        client
            .for_each_page(kind.endpoint(), &q, cfg.pagination.cursor, |page, t| {
                on_page(kind, page.len(), t);
                // Shrink each page to records as it arrives: never the whole source as JSON values.
                records.extend(page.into_iter().filter_map(|v| scim_record(kind, v)));
            })
            .await
            .map_err(SyncError::list_source)?;
    }
    Ok(Listing {
        records: dedupe(records),
        complete: true,
        mode: "full",
        since: None,
        fallback_reason,
    })
}

/// Every key the source holds now, by kind: the set a reconcile compares against.
pub async fn read_scim_keys(
    client: &ScimClient,
    cfg: &ServiceProviderConfig,
) -> Result<(BTreeSet<String>, BTreeSet<String>), SyncError> {
    let q = ListQuery {
        filter: None,
        attributes: Some("id".into()),
        count: cfg.page_size(1000),
    };
    let mut sets = Vec::new();
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let all = client
            .list_all(kind.endpoint(), &q, cfg.pagination.cursor, |_, _| {})
            .await
            .map_err(SyncError::list_source_ids)?;
        sets.push(
            all.iter()
                .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect::<BTreeSet<_>>(),
        );
    }
    let groups = sets.pop().unwrap_or_default();
    let users = sets.pop().unwrap_or_default();
    Ok((users, groups))
}

/// Reads a `.jsonl` or `.csv` export.
pub fn read_file(path: &Path) -> Result<Listing, SyncError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let records = match ext.as_str() {
        "jsonl" | "ndjson" => read_jsonl(path)?,
        "csv" => read_csv(path)?,
        _ => {
            return Err(file_error(
                path.display(),
                "--source-file takes a .jsonl or a .csv file",
            ));
        }
    };
    let mut seen = BTreeSet::new();
    for r in &records {
        if !seen.insert((r.kind, r.key.clone())) {
            return Err(file_error(
                path.display(),
                format!("two {} records have the key {:?}", r.kind.noun(), r.key),
            ));
        }
    }
    Ok(Listing {
        records,
        complete: true,
        mode: "file",
        since: None,
        fallback_reason: None,
    })
}

/// A JSON Lines record is a Group when its `schemas` name the Group schema,
/// or when it has a displayName but no userName; anything else is a User.
/// Its key is `id`, else `externalId`, else `userName` / `displayName`, and
/// `members[].value` refers to other records by that key.
fn read_jsonl(path: &Path) -> Result<Vec<Record>, SyncError> {
    let text = std::fs::read_to_string(path).map_err(|e| SyncError::Read {
        path: path.to_owned(),
        source: e,
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        let v: Value = serde_json::from_str(line).map_err(|e| SyncError::SourceFile {
            location: at(),
            detail: "not JSON".into(),
            source: Some(Box::new(e)),
        })?;
        if !v.is_object() {
            return Err(file_error(at(), "not a JSON object"));
        }
        let schemas_say_group = v
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(schemas::GROUP)));
        let kind = if schemas_say_group
            || (v.get("userName").is_none() && v.get("displayName").is_some())
        {
            ResourceKind::Group
        } else {
            ResourceKind::User
        };
        let text_of = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let key = text_of("id")
            .or_else(|| text_of("externalId"))
            .or_else(|| text_of(kind.name_attr()))
            .ok_or_else(|| {
                file_error(
                    at(),
                    format!("a record needs id, externalId or {}", kind.name_attr()),
                )
            })?
            .to_owned();
        let last_modified = v
            .pointer("/meta/lastModified")
            .and_then(Value::as_str)
            .and_then(parse_time);
        out.push(Record::new(kind, key, v, last_modified));
    }
    Ok(out)
}

/// An error in the source file at `location` (the file, or file:line).
fn file_error(location: impl std::fmt::Display, detail: impl Into<String>) -> SyncError {
    SyncError::SourceFile {
        location: location.to_string(),
        detail: detail.into(),
        source: None,
    }
}

/// CSV columns (header names, case-insensitive) and where they go. Documented
/// in docs/sync.md; an unknown column is an error, so that a renamed column
/// in an export is noticed instead of silently dropped.
const CSV_COLUMNS: &[(&str, &str)] = &[
    ("userName", "/userName"),
    ("externalId", "/externalId"),
    ("displayName", "/displayName"),
    ("givenName", "/name/givenName"),
    ("familyName", "/name/familyName"),
    ("middleName", "/name/middleName"),
    ("nickName", "/nickName"),
    ("title", "/title"),
    ("userType", "/userType"),
    ("preferredLanguage", "/preferredLanguage"),
    ("locale", "/locale"),
    ("timezone", "/timezone"),
    ("active", "/active"),
    ("email", "/emails"),
    ("phone", "/phoneNumbers"),
    ("employeeNumber", "/ent/employeeNumber"),
    ("costCenter", "/ent/costCenter"),
    ("organization", "/ent/organization"),
    ("division", "/ent/division"),
    ("department", "/ent/department"),
    ("manager", "/ent/manager"),
    ("groups", "/groups"),
];

fn read_csv(path: &Path) -> Result<Vec<Record>, SyncError> {
    let file = std::fs::File::open(path).map_err(|e| SyncError::Read {
        path: path.to_owned(),
        source: e,
    })?;
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = rdr.headers()?.clone();
    let mut columns = Vec::new();
    for h in headers.iter() {
        let Some((_, target)) = CSV_COLUMNS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(h))
        else {
            let known: Vec<&str> = CSV_COLUMNS.iter().map(|(n, _)| *n).collect();
            return Err(file_error(
                path.display(),
                format!(
                    "unknown column {h:?}; the columns are {} (see docs/sync.md)",
                    known.join(", ")
                ),
            ));
        };
        columns.push(*target);
    }
    if !columns.contains(&"/userName") {
        return Err(file_error(path.display(), "a userName column is required"));
    }
    let mut users = Vec::new();
    // Group display name → member keys, in first-seen order of groups.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (n, row) in rdr.records().enumerate() {
        let row = row.map_err(|e| SyncError::SourceFile {
            location: path.display().to_string(),
            detail: format!("row {}", n + 2),
            source: Some(Box::new(e)),
        })?;
        let mut doc = Map::new();
        let mut ent = Map::new();
        let mut group_names = Vec::new();
        for (cell, target) in row.iter().zip(&columns) {
            if cell.is_empty() {
                continue;
            }
            match *target {
                "/active" => {
                    let b = match cell.to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" | "y" => true,
                        "false" | "0" | "no" | "n" => false,
                        _ => {
                            return Err(file_error(
                                path.display(),
                                format!("row {}: active is {cell:?}; use true/false", n + 2),
                            ));
                        }
                    };
                    doc.insert("active".into(), json!(b));
                }
                "/emails" => {
                    doc.insert(
                        "emails".into(),
                        json!([{"value": cell, "type": "work", "primary": true}]),
                    );
                }
                "/phoneNumbers" => {
                    doc.insert(
                        "phoneNumbers".into(),
                        json!([{"value": cell, "type": "work"}]),
                    );
                }
                "/groups" => {
                    group_names.extend(
                        cell.split(';')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                    );
                }
                "/ent/manager" => {
                    ent.insert("manager".into(), json!({"value": cell}));
                }
                t if t.starts_with("/ent/") => {
                    ent.insert(t["/ent/".len()..].into(), json!(cell));
                }
                t if t.starts_with("/name/") => {
                    let name = doc
                        .entry("name")
                        .or_insert_with(|| json!({}))
                        .as_object_mut();
                    if let Some(name) = name {
                        name.insert(t["/name/".len()..].into(), json!(cell));
                    }
                }
                t => {
                    doc.insert(t[1..].into(), json!(cell));
                }
            }
        }
        let Some(user_name) = doc.get("userName").and_then(Value::as_str) else {
            return Err(file_error(
                path.display(),
                format!("row {}: userName is empty", n + 2),
            ));
        };
        let key = doc
            .get("externalId")
            .and_then(Value::as_str)
            .unwrap_or(user_name)
            .to_owned();
        let mut schema_list = vec![json!(schemas::USER)];
        if !ent.is_empty() {
            schema_list.push(json!(schemas::ENTERPRISE_USER));
            doc.insert(schemas::ENTERPRISE_USER.into(), Value::Object(ent));
        }
        doc.insert("schemas".into(), Value::Array(schema_list));
        for g in group_names {
            match groups.iter_mut().find(|(name, _)| *name == g) {
                Some((_, members)) => members.push(key.clone()),
                None => groups.push((g, vec![key.clone()])),
            }
        }
        users.push(Record::new(
            ResourceKind::User,
            key,
            Value::Object(doc),
            None,
        ));
    }
    // Groups named in the `groups` column: keyed by display name, members by
    // the users' keys.
    for (name, members) in groups {
        let members: Vec<Value> = members
            .iter()
            .map(|k| json!({"value": k, "type": "User"}))
            .collect();
        users.push(Record::new(
            ResourceKind::Group,
            name.clone(),
            json!({"schemas": [schemas::GROUP], "displayName": name, "members": members}),
            None,
        ));
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_strips_server_owned_attributes_and_sorts_members() {
        let doc = prepare(
            ResourceKind::Group,
            json!({"id": "g", "meta": {"version": "W/\"1\""}, "displayName": "Eng", "description": "",
                   "members": [{"value": "b", "display": "B", "$ref": "x"}, {"value": "a", "type": "User"}, {"value": "b"}]}),
        );
        assert_eq!(
            doc,
            json!({"displayName": "Eng", "members": [{"value": "a", "type": "User"}, {"value": "b"}],
                   "schemas": [schemas::GROUP]})
        );
        let doc = prepare(
            ResourceKind::User,
            json!({"userName": "a", "groups": [{"value": "g"}], "password": "x",
                   schemas::ENTERPRISE_USER: {"manager": {"value": "m", "displayName": "M"}}}),
        );
        assert_eq!(manager(&doc), Some("m"));
        assert!(doc.get("groups").is_none() && doc.get("password").is_none());
        assert_eq!(
            doc[schemas::ENTERPRISE_USER]["manager"],
            json!({"value": "m"})
        );
    }

    #[test]
    fn times_round_trip_in_milliseconds() {
        let ms = parse_time("2026-03-01T10:20:30.456Z").unwrap();
        assert_eq!(format_time(ms), "2026-03-01T10:20:30.456Z");
        assert_eq!(parse_time("2026-03-01T11:20:30.456+01:00"), Some(ms));
    }

    #[test]
    fn csv_maps_columns_and_builds_groups() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hr.csv");
        std::fs::write(
            &p,
            "userName,externalId,givenName,familyName,email,active,department,manager,groups\n\
             ann@x.com,e1,Ann,Lee,ann@x.com,true,R&D,,Eng;All\n\
             bob@x.com,,Bob,Ray,,no,,e1,All\n",
        )
        .unwrap();
        let l = read_file(&p).unwrap();
        assert_eq!(l.records.len(), 4);
        let ann = l.records[0].doc.value();
        assert_eq!(l.records[0].key, "e1");
        assert_eq!(ann["name"]["givenName"], "Ann");
        assert_eq!(ann["emails"][0]["value"], "ann@x.com");
        assert_eq!(ann[schemas::ENTERPRISE_USER]["department"], "R&D");
        let bob = l.records[1].doc.value();
        assert_eq!(l.records[1].key, "bob@x.com");
        assert_eq!(bob["active"], false);
        assert_eq!(manager(&bob), Some("e1"));
        let all = &l.records[3];
        assert_eq!((all.kind, all.key.as_str()), (ResourceKind::Group, "All"));
        assert_eq!(all.refs(), vec!["bob@x.com", "e1"]);
        std::fs::write(&p, "userName,shoeSize\na,42\n").unwrap();
        let e = read_file(&p).unwrap_err().to_string();
        assert!(e.contains("shoeSize"), "{e}");
    }

    #[test]
    fn jsonl_tells_groups_from_users_and_refuses_duplicate_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        std::fs::write(
            &p,
            "{\"externalId\":\"u1\",\"userName\":\"a\"}\n\n{\"displayName\":\"G\",\"members\":[{\"value\":\"u1\"}]}\n",
        )
        .unwrap();
        let l = read_file(&p).unwrap();
        assert_eq!(l.records[0].kind, ResourceKind::User);
        assert_eq!(l.records[0].key, "u1");
        assert_eq!(l.records[1].kind, ResourceKind::Group);
        assert_eq!(l.records[1].key, "G");
        std::fs::write(&p, "{\"userName\":\"a\"}\n{\"userName\":\"a\"}\n").unwrap();
        assert!(read_file(&p).is_err());
    }
}
