//! The SQL filter compiler and the in-memory evaluator must agree: random
//! filters over random Users, run through `Store::list` on a real SQLite file
//! and on a real PostgreSQL schema, and through `roster_scim::filter::matches`
//! on the full rendered resources, must select the same ids. Both take the
//! filter `check_filter` resolved, once: a filter it refuses reaches neither.
//!
//! `PROPTEST_CASES` sets the number of SQLite cases (300 by default),
//! `PROPTEST_CASES_PG` the PostgreSQL ones (100), against the test PostgreSQL
//! (`roster_testkit::pg`); without one, the PostgreSQL side is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use roster_scim::AttrPath;
use roster_scim::filter::{CompValue, CompareOp, Filter, check_filter};
use roster_scim::schema::SchemaRegistry;
use roster_scim::values::{format_datetime, format_timestamp_millis};
use roster_store::{
    Kind, ListQuery, NewResource, Page, PgOptions, PgStore, SortOrder, SqliteOptions, SqliteStore,
    Store, Stored, Update,
};
use roster_testkit::pg::Schema;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const BASE: &str = "https://roster.test/scim/v2/d";
/// Marks a filter value that is filled in once the resources exist (ids, times).
const LATE: char = '\u{1}';

// ---------------------------------------------------------------------------
// Resources

const WORDS: &[&str] = &[
    "alice", "Alice", "ALICE", "bob", "Bob", "émile", "Émile", "zoë", "a%b", "a_b", "x*y", "q?r",
    "[z]", "ice", "al", "", "Eng", "eng", "R&D", "100%", LONG, SCATTERED,
];

/// Holds every trigram of `co "abcab"` but not the pattern: a substring
/// search must find consecutive trigrams, not a value holding them all.
const SCATTERED: &str = "abca-bcab";

/// Longer than the index keeps whole (`index::entries::CUT`), with a match
/// for `co "alice"` and `ew "com"` past the part it keeps.
const LONG: &str = concat!(
    "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "-Alice@Example.com"
);

const EMAILS: &[&str] = &[
    "alice@example.com",
    "Alice@Example.COM",
    "bob@ex_ample.org",
    "x*y@z.io",
    "émile@x.fr",
    "ÉMILE@X.FR",
    "100%@x",
    "[a]@b.c",
    "q?@r",
];

const PHONES: &[&str] = &["+1 555 0100", "555-0100", "(555) [0]", "0*1"];
const TYPES: &[&str] = &["work", "home", "Work", "other"];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_owned)
}

fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.6, s)
}

fn multi_item(values: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(values),
        opt(prop::sample::select(TYPES)),
        opt(any::<bool>()),
        opt(word()),
    )
        .prop_map(|(v, t, p, d)| {
            let mut m = Map::new();
            m.insert("value".into(), json!(v));
            if let Some(t) = t {
                m.insert("type".into(), json!(t));
            }
            if let Some(p) = p {
                m.insert("primary".into(), json!(p));
            }
            if let Some(d) = d {
                m.insert("display".into(), json!(d));
            }
            Value::Object(m)
        })
}

#[derive(Debug, Clone)]
struct UserSpec {
    body: Value,
    /// Updated once after creation, so lastModified moves past created.
    touch: bool,
}

fn user() -> impl Strategy<Value = UserSpec> {
    let names = (
        word(),
        prop::sample::select(&["", "1", "_x", "%", "Ü"][..]),
        opt(word()),
        opt(word()),
        opt(word()),
        opt(word()),
        opt(word()),
    );
    let rest = (
        opt(any::<bool>()),
        prop::collection::vec(multi_item(EMAILS), 0..=3),
        prop::collection::vec(multi_item(PHONES), 0..=2),
        opt((opt(word()), opt(word()), opt(word()))),
        opt(word()),
        any::<bool>(),
    );
    (names, rest).prop_map(
        |(
            (un, suffix, ext, given, family, display, title),
            (active, emails, phones, ent, password, touch),
        )| {
            let mut m = Map::new();
            m.insert("schemas".into(), json!([CORE, ENTERPRISE]));
            // userName is required and unique; an empty word would make the user invalid.
            let un = if un.is_empty() { "anon".to_owned() } else { un };
            m.insert("userName".into(), json!(format!("{un}{suffix}")));
            if let Some(e) = ext {
                m.insert("externalId".into(), json!(e));
            }
            let mut name = Map::new();
            if let Some(g) = given {
                name.insert("givenName".into(), json!(g));
            }
            if let Some(f) = family {
                name.insert("familyName".into(), json!(f));
            }
            if !name.is_empty() {
                m.insert("name".into(), Value::Object(name));
            }
            if let Some(d) = display {
                m.insert("displayName".into(), json!(d));
            }
            if let Some(t) = title {
                m.insert("title".into(), json!(t));
            }
            if let Some(a) = active {
                m.insert("active".into(), json!(a));
            }
            if !emails.is_empty() {
                m.insert("emails".into(), Value::Array(emails));
            }
            if !phones.is_empty() {
                m.insert("phoneNumbers".into(), Value::Array(phones));
            }
            if let Some((num, dept, mgr)) = ent {
                let mut e = Map::new();
                if let Some(n) = num {
                    e.insert("employeeNumber".into(), json!(n));
                }
                if let Some(d) = dept {
                    e.insert("department".into(), json!(d));
                }
                if let Some(mg) = mgr {
                    e.insert("manager".into(), json!({"value": mg}));
                }
                m.insert(ENTERPRISE.into(), Value::Object(e));
            }
            if let Some(p) = password {
                m.insert("password".into(), json!(format!("pw-{p}")));
            }
            UserSpec {
                body: Value::Object(m),
                touch,
            }
        },
    )
}

// ---------------------------------------------------------------------------
// Filters

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Text,
    Bool,
    Time,
    Complex,
    /// Paths that resolve to nothing: both sides must reject them.
    Unknown,
}

/// Paths at resource level, as a client might spell them.
const PATHS: &[(&str, Ty)] = &[
    ("userName", Ty::Text),
    ("USERNAME", Ty::Text),
    (
        "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        Ty::Text,
    ),
    ("externalId", Ty::Text),
    ("id", Ty::Text),
    ("displayName", Ty::Text),
    ("title", Ty::Text),
    ("name.givenName", Ty::Text),
    ("name.FAMILYNAME", Ty::Text),
    ("name", Ty::Complex),
    ("emails", Ty::Complex),
    ("emails.value", Ty::Text),
    ("Emails.Value", Ty::Text),
    ("emails.type", Ty::Text),
    ("emails.display", Ty::Text),
    ("emails.primary", Ty::Bool),
    ("phoneNumbers", Ty::Complex),
    ("phoneNumbers.value", Ty::Text),
    ("phoneNumbers.primary", Ty::Bool),
    ("active", Ty::Bool),
    ("employeeNumber", Ty::Text),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        Ty::Text,
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        Ty::Text,
    ),
    (
        "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:department",
        Ty::Text,
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        Ty::Complex,
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        Ty::Text,
    ),
    ("manager.value", Ty::Text),
    ("meta", Ty::Complex),
    ("meta.created", Ty::Time),
    ("meta.lastModified", Ty::Time),
    ("meta.resourceType", Ty::Text),
    ("meta.version", Ty::Text),
    ("groups", Ty::Complex),
    ("groups.value", Ty::Text),
    ("schemas", Ty::Text),
    ("SCHEMAS", Ty::Text),
    ("password", Ty::Text),
    ("addresses.locality", Ty::Text),
    ("nosuch", Ty::Unknown),
    ("name.nosuch", Ty::Unknown),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName",
        Ty::Unknown,
    ),
];

/// Attributes that columns serve, mixed with a few of the attribute index,
/// so that `and`, `or` and `not` join sets of both kinds and complements.
const COLUMN_MIX: &[(&str, Ty)] = &[
    ("id", Ty::Text),
    ("externalId", Ty::Text),
    ("meta.created", Ty::Time),
    ("meta.lastModified", Ty::Time),
    ("meta.resourceType", Ty::Text),
    ("meta", Ty::Complex),
    ("title", Ty::Text),
    ("active", Ty::Bool),
    ("emails.type", Ty::Text),
    ("name.givenName", Ty::Text),
];

/// Attributes that take a value filter, with the sub-attributes inside it.
const VALUE_PATHS: &[(&str, &[(&str, Ty)])] = &[
    (
        "emails",
        &[
            ("value", Ty::Text),
            ("type", Ty::Text),
            ("TYPE", Ty::Text),
            ("primary", Ty::Bool),
            ("display", Ty::Text),
            ("nosuch", Ty::Unknown),
        ],
    ),
    (
        "phoneNumbers",
        &[
            ("value", Ty::Text),
            ("type", Ty::Text),
            ("primary", Ty::Bool),
        ],
    ),
    ("name", &[("givenName", Ty::Text), ("familyName", Ty::Text)]),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        &[("value", Ty::Text), ("displayName", Ty::Text)],
    ),
    (
        "meta",
        &[
            ("created", Ty::Time),
            ("lastModified", Ty::Time),
            ("resourceType", Ty::Text),
        ],
    ),
    ("addresses", &[("locality", Ty::Text)]),
    ("groups", &[("value", Ty::Text), ("display", Ty::Text)]),
    ("userName", &[("value", Ty::Text)]),
];

const OPS: &[CompareOp] = &[
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Co,
    CompareOp::Sw,
    CompareOp::Ew,
    CompareOp::Gt,
    CompareOp::Ge,
    CompareOp::Lt,
    CompareOp::Le,
];

fn path(text: &str) -> AttrPath {
    AttrPath::parse(text).unwrap()
}

/// Substrings and spellings of the resource vocabulary, so that comparisons hit.
fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => word(),
        2 => prop::sample::select(EMAILS).prop_map(str::to_owned),
        1 => prop::sample::select(PHONES).prop_map(str::to_owned),
        2 => prop::sample::select(&[
            "@", "example", "EXAMPLE.com", "@x", "%", "_", "*", "?", "[", "]", "É", "é", "work",
            "Work", "User", "user", "Users", "W/\"1\"", "W/\"2\"", "pw-", "m", "0", "abcab",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER", "enterprise",
        ][..]).prop_map(str::to_owned),
        // Ids of stored resources, filled in later: exact, upper-cased, prefix, suffix.
        2 => (0usize..32, 0u8..4).prop_map(|(i, v)| format!("{LATE}id:{i}:{v}")),
    ]
}

fn time_value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0usize..32, any::<bool>(), -3i64..=3, 0u8..4)
            .prop_map(|(i, lm, d, f)| format!("{LATE}ts:{i}:{}:{d}:{f}", u8::from(lm))),
        1 => prop::sample::select(&[
            "9999-12-31T23:59:59Z",
            "1000-01-01T00:00:00Z",
            "2000-01-01T00:00:00+14:00",
            "yesterday",
        ][..]).prop_map(str::to_owned),
    ]
}

fn comp_value(ty: Ty) -> impl Strategy<Value = CompValue> {
    let typed = match ty {
        Ty::Text | Ty::Complex | Ty::Unknown => text_value().prop_map(CompValue::String).boxed(),
        Ty::Bool => prop_oneof![
            4 => any::<bool>().prop_map(CompValue::Bool),
            1 => prop::sample::select(&["True", "false", "yes"][..])
                .prop_map(|s| CompValue::String(s.to_owned())),
        ]
        .boxed(),
        Ty::Time => time_value().prop_map(CompValue::String).boxed(),
    };
    prop_oneof![
        12 => typed,
        2 => Just(CompValue::Null),
        1 => any::<bool>().prop_map(CompValue::Bool),
        1 => (-2i64..3).prop_map(|n| CompValue::Number(n.into())),
        1 => text_value().prop_map(CompValue::String),
    ]
}

fn leaf(paths: &'static [(&'static str, Ty)]) -> BoxedStrategy<Filter> {
    let entry = prop::sample::select(paths);
    prop_oneof![
        1 => entry.clone().prop_map(|(p, _)| Filter::Present(path(p))),
        6 => (entry, prop::sample::select(OPS)).prop_flat_map(|((p, ty), op)| {
            comp_value(ty).prop_map(move |value| Filter::Compare { path: path(p), op, value })
        }),
    ]
    .boxed()
}

fn logic(inner: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    prop_oneof![
        (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
        (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
        inner.prop_map(|a| Filter::Not(Box::new(a))),
    ]
    .boxed()
}

fn value_path() -> BoxedStrategy<Filter> {
    prop::sample::select(VALUE_PATHS)
        .prop_flat_map(|(attr, subs)| {
            leaf(subs)
                .prop_recursive(2, 6, 2, logic)
                .prop_map(move |f| Filter::ValuePath {
                    path: path(attr),
                    filter: Box::new(f),
                })
        })
        .boxed()
}

fn filter() -> impl Strategy<Value = Filter> {
    let base = prop_oneof![3 => leaf(PATHS), 2 => leaf(COLUMN_MIX), 1 => value_path()];
    base.prop_recursive(3, 12, 2, logic)
}

// ---------------------------------------------------------------------------
// Running both sides

struct Ctx {
    stored: Vec<Stored>,
}

fn millis_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
}

impl Ctx {
    fn late(&self, s: &str) -> String {
        let parts: Vec<&str> = s[LATE.len_utf8()..].split(':').collect();
        let n = self.stored.len();
        let pick = |i: &str| &self.stored[i.parse::<usize>().unwrap() % n];
        match parts[0] {
            "id" => {
                let id = &pick(parts[1]).id;
                match parts[2] {
                    "0" => id.clone(),
                    "1" => id.to_uppercase(),
                    "2" => id[..8].to_owned(),
                    _ => id[id.len() - 4..].to_owned(),
                }
            }
            "ts" => {
                let s = pick(parts[1]);
                let ms = if parts[2] == "1" {
                    s.last_modified
                } else {
                    s.created
                };
                // Steps of half a millisecond: exact hits, and bounds between two millis.
                let delta: i64 = parts[3].parse().unwrap();
                let t = millis_time(ms) + time::Duration::microseconds(delta * 500);
                match parts[4] {
                    "0" => format_timestamp_millis(t),
                    "1" => format_datetime(t),
                    "2" => format_datetime(t).trim_end_matches('Z').to_owned(),
                    _ => {
                        let o = t.to_offset(time::UtcOffset::from_hms(-5, -30, 0).unwrap());
                        format!(
                            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}-05:30",
                            o.year(),
                            u8::from(o.month()),
                            o.day(),
                            o.hour(),
                            o.minute(),
                            o.second(),
                            o.nanosecond()
                        )
                    }
                }
            }
            other => panic!("unknown late value {other}"),
        }
    }

    fn resolve(&self, f: &Filter) -> Filter {
        match f {
            Filter::And(a, b) => Filter::And(Box::new(self.resolve(a)), Box::new(self.resolve(b))),
            Filter::Or(a, b) => Filter::Or(Box::new(self.resolve(a)), Box::new(self.resolve(b))),
            Filter::Not(a) => Filter::Not(Box::new(self.resolve(a))),
            Filter::ValuePath { path, filter } => Filter::ValuePath {
                path: path.clone(),
                filter: Box::new(self.resolve(filter)),
            },
            Filter::Compare {
                path,
                op,
                value: CompValue::String(s),
            } if s.starts_with(LATE) => Filter::Compare {
                path: path.clone(),
                op: *op,
                value: CompValue::String(self.late(s)),
            },
            other => other.clone(),
        }
    }
}

/// The full resource as `render::full_resource` builds it (no groups: the
/// test makes none).
fn full_resource(s: &Stored) -> Value {
    let mut out = Map::new();
    out.insert(
        "schemas".into(),
        s.doc.get("schemas").cloned().unwrap_or(json!([CORE])),
    );
    out.insert("id".into(), json!(s.id));
    for (k, v) in s.doc.as_object().unwrap() {
        if k != "schemas" && k != "password" {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": format_timestamp_millis(millis_time(s.created)),
            "lastModified": format_timestamp_millis(millis_time(s.last_modified)),
            "location": format!("{BASE}/Users/{}", s.id),
            "version": format!("W/\"{}\"", s.version),
        }),
    );
    Value::Object(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Where one case's store keeps its data; dropping it removes the data.
enum Place {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] Schema),
}

/// `selective`: the list's bound on index candidates (0: every filter is
/// broad, so the list walks the directory and counts through the index).
/// `text_flush_rows`: pending trigram rows at which SQLite's writer moves
/// them into FTS5.
async fn open_store(
    backend: Backend,
    reg: &Arc<SchemaRegistry>,
    selective: u64,
    text_flush_rows: i64,
) -> (Arc<dyn Store>, Place) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let mut opts = SqliteOptions::new(dir.path().join("roster.db"));
            opts.readers = 1;
            opts.list.selective = selective;
            opts.text_flush_rows = text_flush_rows;
            let store = Arc::new(SqliteStore::open(opts, reg.clone()).unwrap());
            (store, Place::Sqlite(dir))
        }
        Backend::Postgres => {
            let schema = Schema::create().expect("the test PostgreSQL (checked by the caller)");
            let mut opts = PgOptions::new(schema.database_url().to_owned());
            opts.schema = Some(schema.name().to_owned());
            opts.pool_size = 4;
            opts.list.selective = selective;
            let store = Arc::new(PgStore::connect(opts, reg.clone()).await.unwrap());
            (store, Place::Postgres(schema))
        }
    }
}

async fn run_case(
    backend: Backend,
    reg: &Arc<SchemaRegistry>,
    users: &[UserSpec],
    filters: &[Filter],
    selective: u64,
) -> Result<Vec<Option<usize>>, TestCaseError> {
    // Searches must agree whether trigram rows are still pending or moved
    // into FTS5, and updates delete rows of both kinds: cases move them at
    // every commit, once more than a few are pending, or never.
    let text_flush_rows = [1, 12, roster_store::index::text::FLUSH_ROWS][users.len() % 3];
    let (store, _place) = open_store(backend, reg, selective, text_flush_rows).await;
    let d = store
        .create_directory(&roster_store::Actor::Cli, "d")
        .await
        .unwrap()
        .id;
    let rt = reg.resource_type("User").unwrap();

    // Submitted together, so the writer commits them in one transaction.
    let mut pending = Vec::new();
    let mut seen = BTreeSet::new();
    for u in users {
        // Bodies the server would reject (two primary emails) are never stored.
        let Ok(doc) = roster_scim::validate::normalize(reg, rt, &u.body, None) else {
            continue;
        };
        let key = roster_scim::values::fold(doc["userName"].as_str().unwrap());
        if !seen.insert(key) {
            continue;
        }
        let (store, d) = (store.clone(), d.clone());
        let touch = u.touch;
        pending.push(tokio::spawn(async move {
            let s = store
                .create(
                    &d,
                    NewResource {
                        kind: Kind::User,
                        doc,
                        members: Vec::new(),
                        groups: Vec::new(),
                    },
                )
                .await
                .unwrap();
            (s, touch)
        }));
    }
    let mut stored = Vec::new();
    for p in pending {
        stored.push(p.await.unwrap());
    }
    let mut touched = Vec::new();
    for (s, touch) in &stored {
        if *touch {
            let (store, d, id) = (store.clone(), d.clone(), s.id.clone());
            touched.push(tokio::spawn(async move {
                store
                    .update(
                        &d,
                        Kind::User,
                        &id,
                        None,
                        Box::new(|cur: &Stored| {
                            let mut doc = cur.doc.clone();
                            doc["title"] = json!("touched");
                            Ok(Update {
                                doc,
                                members: Vec::new(),
                                groups: None,
                            })
                        }),
                    )
                    .await
                    .unwrap()
            }));
        }
    }
    let mut all: Vec<Stored> = stored
        .into_iter()
        .filter(|(_, t)| !t)
        .map(|(s, _)| s)
        .collect();
    for t in touched {
        all.push(t.await.unwrap());
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let ctx = Ctx { stored: all };
    let full: Vec<Value> = ctx.stored.iter().map(full_resource).collect();
    let mut counts = Vec::new();

    for f in filters {
        let f = ctx.resolve(f);
        // One check serves both sides: a filter it refuses reaches neither.
        let checked = match check_filter(reg, rt, &f) {
            Ok(checked) => checked,
            Err(_) => {
                counts.push(None);
                continue;
            }
        };
        let want: BTreeSet<String> = ctx
            .stored
            .iter()
            .zip(&full)
            .filter(|(_, r)| checked.matches(r))
            .map(|(s, _)| s.id.clone())
            .collect();
        let listed = store
            .list(
                &d,
                users_page(
                    checked,
                    Page::Index {
                        start: 1,
                        count: 1000,
                    },
                ),
            )
            .await;
        let got = listed.map_err(|g| {
            TestCaseError::fail(format!(
                "filter {f} passes the check but the store fails: {g}"
            ))
        })?;
        let ids: BTreeSet<String> = got.resources.into_iter().map(|s| s.id).collect();
        counts.push(Some(ids.len()));
        prop_assert_eq!(got.total as usize, ids.len(), "totalResults for {}", f);
        if want != ids {
            let show = |set: &BTreeSet<String>| -> Vec<Value> {
                ctx.stored
                    .iter()
                    .zip(&full)
                    .filter(|(s, _)| set.contains(&s.id))
                    .map(|(_, r)| r.clone())
                    .collect()
            };
            let only_eval: BTreeSet<String> = want.difference(&ids).cloned().collect();
            let only_sql: BTreeSet<String> = ids.difference(&want).cloned().collect();
            prop_assert!(
                false,
                "filter {} disagrees\nonly the evaluator matched: {:#?}\nonly SQL matched: {:#?}",
                f,
                show(&only_eval),
                show(&only_sql)
            );
        }
    }
    Ok(counts)
}

/// A page of the users `filter` matches, in the default order.
fn users_page(filter: roster_scim::filter::CheckedFilter, page: Page) -> ListQuery {
    ListQuery {
        kind: Kind::User,
        filter: Some(filter),
        sort: None,
        sort_order: SortOrder::Ascending,
        page,
    }
}

fn config() -> Config {
    config_with("PROPTEST_CASES", 300)
}

fn config_pg() -> Config {
    config_with("PROPTEST_CASES_PG", 100)
}

fn config_with(variable: &str, default: u32) -> Config {
    let cases = std::env::var(variable)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        // Each shrinking step builds a database; a few hundred steps already give a small case.
        max_shrink_iters: 300,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/filter_agreement.txt",
        ))),
        ..Config::default()
    }
}

/// Bounds on index candidates the list runs with: every filter broad (the
/// list walks the directory, counting through the index when the candidate
/// set is exact), some selective, every one selective (resources fetched by
/// number, rechecked when the set is a superset).
const SELECTIVE: &[u64] = &[0, 4, 2_000];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sql_and_evaluator_select_the_same_resources(
        users in prop::collection::vec(user(), 5..=25),
        filters in prop::collection::vec(filter(), 10..=20),
        selective in prop::sample::select(SELECTIVE),
    ) {
        let rt = runtime();
        let reg = Arc::new(SchemaRegistry::core());
        rt.block_on(run_case(Backend::Sqlite, &reg, &users, &filters, selective))?;
    }
}

proptest! {
    #![proptest_config(config_pg())]

    #[test]
    fn postgres_sql_and_evaluator_select_the_same_resources(
        users in prop::collection::vec(user(), 5..=25),
        filters in prop::collection::vec(filter(), 10..=20),
        selective in prop::sample::select(SELECTIVE),
    ) {
        let rt = runtime();
        // No PostgreSQL (the PostgreSQL tests are skipped): nothing to compare.
        if roster_testkit::pg::postgres().is_none() {
            return Ok(());
        }
        let reg = Arc::new(SchemaRegistry::core());
        rt.block_on(run_case(Backend::Postgres, &reg, &users, &filters, selective))?;
    }
}

// ---------------------------------------------------------------------------
// Disagreements the property test found, kept as plain cases.

/// Runs one filter (in text form) over the given bodies through both sides,
/// failing on any disagreement; the number of matches, `None` when rejected.
fn agree(bodies: &[Value], filter: &str) -> Option<usize> {
    agree_all(bodies, &[filter])[0]
}

/// [`agree`] for several filters over one store of each kind and bound.
fn agree_all(bodies: &[Value], filters: &[&str]) -> Vec<Option<usize>> {
    let filters: Vec<Filter> = filters
        .iter()
        .map(|f| roster_scim::filter::parse_filter(f).unwrap())
        .collect();
    let users: Vec<UserSpec> = bodies
        .iter()
        .map(|b| UserSpec {
            body: b.clone(),
            touch: false,
        })
        .collect();
    let rt = runtime();
    let reg = Arc::new(SchemaRegistry::core());
    let count = |backend| {
        let counts: Vec<Vec<Option<usize>>> = SELECTIVE
            .iter()
            .map(|&selective| {
                match rt.block_on(run_case(backend, &reg, &users, &filters, selective)) {
                    Ok(counts) => counts,
                    Err(e) => panic!("{backend:?}, {selective} candidates: {e}"),
                }
            })
            .collect();
        assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
        counts[0].clone()
    };
    let sqlite = count(Backend::Sqlite);
    // Without PostgreSQL (its tests skipped) the SQLite side is still checked.
    if roster_testkit::pg::postgres().is_some() {
        assert_eq!(
            sqlite,
            count(Backend::Postgres),
            "SQLite and PostgreSQL differ on {filters:?}"
        );
    }
    sqlite
}

fn enterprise_users() -> Vec<Value> {
    vec![
        json!({"userName": "a", ENTERPRISE: {"manager": {"value": "m1"}}}),
        json!({"userName": "b", "manager": {"value": "m2"}}),
        json!({"userName": "c"}),
    ]
}

/// `meta[...]` read `meta` from the stored document, which has none: the SQL
/// side matched nothing where the evaluator (and `meta.created`) matched all.
#[test]
fn meta_value_filter_reads_the_meta_columns() {
    let users = enterprise_users();
    assert_eq!(
        agree(&users, r#"meta[created gt "2000-01-01T00:00:00Z"]"#),
        Some(3)
    );
    assert_eq!(agree(&users, r#"meta[resourceType eq "User"]"#), Some(3));
    assert_eq!(
        agree(
            &users,
            r#"not (meta[lastModified lt "2000-01-01T00:00:00Z"])"#
        ),
        Some(3)
    );
}

/// `…:User:manager[...]` looked for `manager` at the top of the document,
/// outside the extension object it lives in.
#[test]
fn extension_value_filter_reads_the_extension_object() {
    let users = enterprise_users();
    let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert_eq!(
        agree(&users, &format!(r#"{urn}:manager[value eq "m1"]"#)),
        Some(1)
    );
    assert_eq!(agree(&users, r#"manager[value sw "m"]"#), Some(2));
}

/// The stored document keeps the password (hashed), the resource a client
/// sees never has it: SQL matched `password pr` where the evaluator did not.
#[test]
fn password_is_absent_to_filters() {
    let users = vec![
        json!({"userName": "a", "password": "s3cret"}),
        json!({"userName": "b"}),
    ];
    assert_eq!(agree(&users, "password pr"), Some(0));
    assert_eq!(agree(&users, r#"password sw "s3""#), Some(0));
    assert_eq!(agree(&users, "password eq null"), Some(2));
    assert_eq!(agree(&users, r#"password ne "s3cret""#), Some(2));
    assert_eq!(agree(&users, "password gt 1"), None);
}

/// A single-valued complex attribute that is absent has no element for a
/// value filter to hold on, even a negated one (as with an empty `emails`).
#[test]
fn value_filter_on_an_absent_complex_attribute_is_false() {
    let users = vec![
        json!({"userName": "a", "name": {"givenName": "A"}}),
        json!({"userName": "b", "name": {"familyName": "B"}}),
        json!({"userName": "c"}),
    ];
    assert_eq!(agree(&users, "name[not (givenName pr)]"), Some(1));
    assert_eq!(agree(&users, "not (name[not (givenName pr)])"), Some(2));
    assert_eq!(agree(&users, r#"manager[not (value eq "x")]"#), Some(0));
}

/// dateTimes outside 1677–2262 overflow i64 nanoseconds; the SQL side
/// rejected them as "out of range" while the evaluator, rightly, compared them.
#[test]
fn datetimes_far_from_now_compare() {
    let users = vec![json!({"userName": "a"}), json!({"userName": "b"})];
    assert_eq!(
        agree(&users, r#"meta.created gt "1000-01-01T00:00:00Z""#),
        Some(2)
    );
    assert_eq!(
        agree(&users, r#"meta.lastModified le "1000-01-01T00:00:00Z""#),
        Some(0)
    );
    assert_eq!(
        agree(&users, r#"meta[lastModified lt "9999-12-31T23:59:59Z"]"#),
        Some(2)
    );
}

/// Index entries keep the first 200 characters of longer values: lookups of
/// `emails.value` (by the compiler on its own and by candidate sets) must
/// not answer from such an entry what only the whole value decides.
#[test]
fn long_addresses_are_decided_by_the_whole_value() {
    let head = "u".repeat(200);
    let users = vec![
        json!({"userName": "a", "emails": [{"value": format!("{head}a@x.io"), "type": "work"}]}),
        json!({"userName": "b", "emails": [{"value": format!("{head}b@x.io")}]}),
        json!({"userName": "c", "emails": [{"value": head.clone(), "type": "work"}]}),
        json!({"userName": "d", "phoneNumbers": [{"value": format!("{head}+1 555")}]}),
    ];
    let upper = head.to_uppercase();
    let cases = [
        (format!(r#"emails.value eq "{head}a@x.io""#), 1),
        (format!(r#"emails.value eq "{upper}A@X.IO""#), 1),
        (format!(r#"emails.value eq "{head}""#), 1),
        (format!(r#"emails.value eq "{head}c@x.io""#), 0),
        (format!(r#"emails.value sw "{head}""#), 3),
        (format!(r#"emails.value sw "{head}b""#), 1),
        (r#"emails.value co "b@x""#.to_owned(), 1),
        (r#"emails.value ew "a@x.io""#.to_owned(), 1),
        (r#"phoneNumbers.value ew "555""#.to_owned(), 1),
        (format!(r#"emails.value gt "{head}a""#), 2),
        (format!(r#"emails.value lt "{head}b""#), 2),
        (format!(r#"emails.value ne "{head}a@x.io""#), 2),
        (
            format!(r#"emails[type eq "work" and value eq "{head}a@x.io"]"#),
            1,
        ),
        (format!(r#"emails[value eq "{head}b@x.io"]"#), 1),
        (
            format!(r#"emails[type eq "work" and value eq "{head}b@x.io"]"#),
            0,
        ),
    ];
    let texts: Vec<&str> = cases.iter().map(|(f, _)| f.as_str()).collect();
    for ((filter, n), got) in cases.iter().zip(agree_all(&users, &texts)) {
        assert_eq!(got, Some(*n), "{filter}");
    }
}

/// A long pattern is searched by its head, and the search checks the whole
/// pattern on each value it finds; a value holding the trigrams of a
/// pattern apart is no match. Three users, so that the case moves values
/// into FTS5 at every commit (see `run_case`).
#[test]
fn substring_searches_check_the_pattern_on_the_values_they_find() {
    let users = vec![
        json!({"userName": "a", "title": SCATTERED, "emails": [{"value": "alice@examplz.org"}]}),
        json!({"userName": "b", "title": "xabcabx"}),
        json!({"userName": "c", "title": "abc", "emails": [{"value": "alice@example.com"}]}),
    ];
    let cases = [
        (r#"title co "abcab""#, 1),
        (r#"title co "bcab""#, 2),
        (r#"title ew "cab""#, 1),
        (r#"title ew "abc""#, 1),
        (r#"title co "cabc""#, 0),
        (r#"emails.value co "lice@exampl""#, 2),
        (r#"emails.value co "lice@examplz""#, 1),
        (r#"emails.value co "lice@examplq""#, 0),
        (r#"emails.value ew "e@example.com""#, 1),
        (r#"emails.value ew "e@example.org""#, 0),
    ];
    let texts: Vec<&str> = cases.iter().map(|(f, _)| *f).collect();
    for ((filter, n), got) in cases.iter().zip(agree_all(&users, &texts)) {
        assert_eq!(got, Some(*n), "{filter}");
    }
}

/// Counts of `not` and of a singular `ne` come from the directory's count
/// less an exact set; `and` takes such a complement away from a set.
#[test]
fn complements_count_and_list_what_the_evaluator_matches() {
    let users = vec![
        json!({"userName": "a", "title": "Boss", "externalId": "x1", "active": true}),
        json!({"userName": "b", "title": "Clerk", "active": false}),
        json!({"userName": "c", "externalId": "x2"}),
        json!({"userName": "d", "title": "boss", "externalId": "y"}),
    ];
    for (filter, n) in [
        (r#"not (title eq "boss")"#, 2),
        (r#"title ne "boss""#, 2),
        ("not (title pr)", 1),
        ("title pr", 3),
        ("not (externalId pr)", 1),
        (r#"externalId ne "x1""#, 3),
        (r#"not (externalId sw "x")"#, 2),
        (r#"not (not (externalId sw "x"))"#, 2),
        (r#"title pr and not (active eq true)"#, 2),
        (r#"externalId sw "x" and title ne "boss""#, 1),
        (r#"not (title eq "boss") or externalId eq "y""#, 3),
        (r#"not (title eq "boss" or active eq false)"#, 1),
        (r#"not (title co "o")"#, 2),
        ("not (id pr)", 0),
        ("not (meta pr) or title eq \"clerk\"", 1),
        (r#"not (meta.created gt "2000-01-01T00:00:00Z")"#, 0),
        (
            r#"meta.resourceType eq "Group" or not (externalId gt "x")"#,
            1,
        ),
        (
            r#"meta[not (lastModified lt "2000-01-01T00:00:00Z")] and title sw "b""#,
            2,
        ),
    ] {
        assert_eq!(agree(&users, filter), Some(n), "{filter}");
    }
}

/// A store on `backend` with one directory, whose id comes last; the list's
/// selective bound is 4.
async fn directory(backend: Backend, reg: &Arc<SchemaRegistry>) -> (Arc<dyn Store>, Place, String) {
    let (store, place) = open_store(backend, reg, 4, roster_store::index::text::FLUSH_ROWS).await;
    let d = store
        .create_directory(&roster_store::Actor::Cli, "d")
        .await
        .unwrap()
        .id;
    (store, place, d)
}

/// A runtime on the test's own thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// SQLite, and PostgreSQL when the tests have one.
fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if roster_testkit::pg::postgres().is_some() {
        backends.push(Backend::Postgres);
    }
    backends
}

/// A page of a broad filter walks the directory in id order when enough of
/// it matches, and otherwise reads the filter's range and sorts it
/// (`rows::list`): either way the pages, by index and by cursor, are the
/// matches in id order, each once, with the right total.
#[test]
fn broad_filters_page_alike_whichever_way_they_read() {
    let rt = runtime();
    let reg = Arc::new(SchemaRegistry::core());
    let rtype = reg.resource_type("User").unwrap();
    for backend in backends() {
        rt.block_on(async {
            let (store, _place, d) = directory(backend, &reg).await;
            let mut stored = Vec::new();
            for i in 0..60 {
                let mut body = json!({"schemas": [CORE], "userName": format!("u{i:02}")});
                if i % 2 == 0 {
                    body["title"] = json!("clerk");
                }
                let doc = roster_scim::validate::normalize(&reg, rtype, &body, None).unwrap();
                let new = NewResource {
                    kind: Kind::User,
                    doc,
                    members: Vec::new(),
                    groups: Vec::new(),
                };
                stored.push(store.create(&d, new).await.unwrap());
            }
            stored.sort_by(|a, b| a.id.cmp(&b.id));
            let full: Vec<Value> = stored.iter().map(full_resource).collect();
            // 40 matches walk the first pages and sort the last ones; 3 and
            // 30 sort; 60 walk.
            for (filter, size) in [
                (r#"userName ge "u20""#, 5),
                (r#"userName ge "u57""#, 2),
                ("title pr", 7),
                (r#"meta.lastModified lt "2999-01-01T00:00:00Z""#, 9),
            ] {
                let parsed = roster_scim::filter::parse_filter(filter).unwrap();
                let checked = check_filter(&reg, rtype, &parsed).unwrap();
                let want: Vec<&str> = stored
                    .iter()
                    .zip(&full)
                    .filter(|(_, r)| checked.matches(r))
                    .map(|(s, _)| s.id.as_str())
                    .collect();
                let list = |page| {
                    let store = store.clone();
                    let (d, checked) = (d.clone(), checked.clone());
                    async move { store.list(&d, users_page(checked, page)).await.unwrap() }
                };
                let ids = |r: &roster_store::ListResult| -> Vec<String> {
                    r.resources.iter().map(|s| s.id.clone()).collect()
                };
                let mut start = 1;
                while start <= want.len() + 1 {
                    let got = list(Page::Index {
                        start: start as u64,
                        count: size as u64,
                    })
                    .await;
                    let end = (start - 1 + size).min(want.len());
                    let expect = want.get(start - 1..end).unwrap_or_default();
                    assert_eq!(ids(&got), expect, "{backend:?} {filter} from {start}");
                    assert_eq!(got.total as usize, want.len(), "{backend:?} {filter}");
                    start += size;
                }
                let mut walked = Vec::new();
                let mut cursor = None;
                loop {
                    let got = list(Page::Cursor {
                        cursor: cursor.take(),
                        count: size as u64,
                    })
                    .await;
                    assert_eq!(got.total as usize, want.len(), "{backend:?} {filter}");
                    walked.extend(ids(&got));
                    match got.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                assert_eq!(walked, want, "{backend:?} {filter} by cursor");
            }
            // The whole directory by index, past its end too: a page skips
            // through the id index (`rows::list`).
            let all: Vec<&str> = stored.iter().map(|s| s.id.as_str()).collect();
            for start in [1, 2, 7, 59, 60, 61, 100] {
                let query = ListQuery {
                    kind: Kind::User,
                    filter: None,
                    sort: None,
                    sort_order: SortOrder::Ascending,
                    page: Page::Index { start, count: 7 },
                };
                let got = store.list(&d, query).await.unwrap();
                let from = (start as usize - 1).min(all.len());
                let expect = &all[from..(from + 7).min(all.len())];
                let ids: Vec<&str> = got.resources.iter().map(|s| s.id.as_str()).collect();
                assert_eq!(ids, expect, "{backend:?} the directory from {start}");
                assert_eq!(got.total, 60, "{backend:?}");
            }
        });
    }
}

/// Attribute keys are kept across transactions, but a transaction that rolls
/// back takes the keys it made with it: were they kept, the next user with
/// that attribute would be indexed under a key that does not exist (and on
/// SQLite, that the next new path would be given as well), and no filter
/// would find it.
#[test]
fn keys_made_by_a_rolled_back_transaction_are_not_kept() {
    let rt = runtime();
    let reg = Arc::new(SchemaRegistry::core());
    let rtype = reg.resource_type("User").unwrap();
    let new = |body: Value| NewResource {
        kind: Kind::User,
        doc: roster_scim::validate::normalize(&reg, rtype, &body, None).unwrap(),
        members: Vec::new(),
        groups: Vec::new(),
    };
    for backend in backends() {
        rt.block_on(async {
            let (store, _place, d) = directory(backend, &reg).await;
            // Committed first, so that the directory's keys are on the shelf.
            store
                .create(&d, new(json!({"schemas": [CORE], "userName": "a"})))
                .await
                .unwrap();
            let first = new(json!({"schemas": [CORE], "userName": "b", "title": "lost"}));
            let rolled_back = store
                .transaction(
                    &d,
                    Box::new(move |tx| {
                        tx.create(first)?;
                        Err(roster_store::StoreError::Invalid("rolled back".into()))
                    }),
                )
                .await;
            assert!(rolled_back.is_err());
            store
                .create(
                    &d,
                    new(json!({"schemas": [CORE], "userName": "c", "title": "kept"})),
                )
                .await
                .unwrap();
            store
                .create(
                    &d,
                    new(json!({"schemas": [CORE], "userName": "e", "nickName": "nick"})),
                )
                .await
                .unwrap();
            // The same inside one transaction: a savepoint rolled back (a
            // bulk request's failed reference cycle) takes its keys and
            // value rows with it, and what follows in the transaction
            // makes them anew.
            let lost = new(json!({"schemas": [CORE], "userName": "f", "locale": "lost"}));
            let kept = new(json!({"schemas": [CORE], "userName": "g", "locale": "kept"}));
            let next = new(json!({"schemas": [CORE], "userName": "h", "timezone": "Europe/Oslo"}));
            store
                .transaction(
                    &d,
                    Box::new(move |tx| {
                        tx.begin_group()?;
                        tx.create(lost)?;
                        tx.end_group(false)?;
                        tx.create(kept)?;
                        tx.create(next)?;
                        Ok(())
                    }),
                )
                .await
                .unwrap();
            for (filter, want) in [
                (r#"locale eq "kept""#, 1),
                (r#"locale co "ep""#, 1),
                ("locale pr", 1),
                (r#"timezone eq "Europe/Oslo""#, 1),
                (r#"timezone co "Oslo""#, 1),
                (r#"userName eq "f""#, 0),
                (r#"title eq "kept""#, 1),
                (r#"title eq "lost""#, 0),
                ("title pr", 1),
                (r#"nickName eq "nick""#, 1),
                (r#"userName eq "b""#, 0),
            ] {
                let parsed = roster_scim::filter::parse_filter(filter).unwrap();
                let checked = check_filter(&reg, rtype, &parsed).unwrap();
                let page = Page::Index {
                    start: 1,
                    count: 10,
                };
                let got = store.list(&d, users_page(checked, page)).await.unwrap();
                assert_eq!(got.total, want, "{backend:?} {filter}");
                assert_eq!(got.resources.len() as u64, want, "{backend:?} {filter}");
            }
        });
    }
}
