//! Several `roster serve` processes on one PostgreSQL database, hammered at
//! once: every guarantee of a single instance must hold across instances
//! (userName uniqueness, If-Match, membership, /Bulk, the event stream) and
//! instances that start together must migrate the database once.
//!
//! PostgreSQL is the test PostgreSQL (`roster_testkit::pg`; without one the
//! tests return early); each test gets a schema of its own, which the
//! processes reach through the URL's `options=-csearch_path=…` parameter, and
//! which is dropped at the end.

// A test crate of its own: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers beside them, which fail a test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use reqwest::{Method, StatusCode};
use roster_testkit::poll;
use serde_json::{Value, json};

mod common;
use common::{
    BULK_REQUEST, Dir, GROUP, PATCH_OP, Schema, Serve, USER, cli, create_directory, http_client,
    serve, with_client,
};

/// What the tests read and do in a test's schema.
trait SchemaQueries {
    /// One number computed in this schema (table names qualified by it).
    async fn count(&self, sql_with_schema: &str) -> i64;
    /// Ends every server connection of this test's processes, as a database
    /// restart does; returns how many there were.
    async fn terminate_connections(&self) -> i64;
}

impl SchemaQueries for Schema {
    async fn count(&self, sql_with_schema: &str) -> i64 {
        let sql = sql_with_schema
            .replace("{s}", &format!("\"{}\"", self.name()))
            .replace("{n}", self.name());
        with_client(self.database_url().to_owned(), move |c| {
            c.query_one(&sql, &[]).unwrap().get::<_, i64>(0)
        })
        .await
    }

    async fn terminate_connections(&self) -> i64 {
        let name = self.name().to_owned();
        with_client(self.database_url().to_owned(), move |c| {
            c.query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = $1",
                &[&name],
            )
            .unwrap()
            .get::<_, i64>(0)
        })
        .await
    }
}

/// A `roster serve` process of a cluster.
type Instance = Serve;

/// Starts `roster serve` on `url`, its log in the temporary directory
/// (removed when the instance is dropped).
fn spawn_instance(url: &str, label: &str) -> Instance {
    let log = std::env::temp_dir().join(format!(
        "roster-multi-{}-{label}.log",
        uuid::Uuid::now_v7().simple()
    ));
    serve(url, None, log, label)
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

/// Several processes on one schema, a directory and an admin key.
struct Cluster {
    client: reqwest::Client,
    instances: Vec<Instance>,
    dir: Dir,
    admin_key: String,
    // Last: the processes stop before their schema goes.
    schema: Schema,
}

impl Cluster {
    /// Starts `n` processes at once on an empty schema while the CLI creates
    /// a directory and an admin key in it: they all race to migrate it.
    /// `None` when the PostgreSQL tests are skipped (no PostgreSQL).
    async fn start(n: usize) -> Option<Cluster> {
        let schema = Schema::create()?;
        let client = http_client(Duration::from_secs(30));
        let mut instances: Vec<Instance> = (0..n)
            .map(|i| spawn_instance(&schema.url(), &format!("instance {i}")))
            .collect();
        let dir = create_directory(&schema.url(), "multi").await;
        let key = cli(&schema.url(), &["admin-key", "create", "tests"]).await;
        let path = format!("/scim/v2/{}/ServiceProviderConfig", dir.id);
        join_all(
            instances
                .iter_mut()
                .map(|i| i.wait_ready(&path, &dir.token)),
        )
        .await;
        Some(Cluster {
            client,
            instances,
            dir,
            admin_key: key["key"].as_str().unwrap().to_owned(),
            schema,
        })
    }

    fn n(&self) -> usize {
        self.instances.len()
    }

    /// A SCIM request to `instance` (modulo the number of instances) in `dir`.
    async fn scim_in(
        &self,
        dir: &Dir,
        instance: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Reply {
        let inst = &self.instances[instance % self.n()];
        let url = format!("{}/scim/v2/{}{path}", inst.origin(), dir.id);
        let mut req = self
            .client
            .request(method.clone(), &url)
            .bearer_auth(&dir.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        if let Some(m) = if_match {
            req = req.header("if-match", m);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status();
        let etag = resp
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("{method} {url} answered {status} non-JSON ({e}): {text}")
            })
        };
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {url} failed on {}: {body}",
            inst.label
        );
        Reply { status, etag, body }
    }

    async fn scim(
        &self,
        instance: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.scim_in(&self.dir, instance, method, path, body, None)
            .await
    }

    async fn create_user(&self, dir: &Dir, instance: usize, user_name: &str) -> String {
        let r = self
            .scim_in(
                dir,
                instance,
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER], "userName": user_name})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    async fn create_group(&self, dir: &Dir, instance: usize, name: &str) -> String {
        let r = self
            .scim_in(
                dir,
                instance,
                Method::POST,
                "/Groups",
                Some(json!({"schemas": [GROUP], "displayName": name})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// The member ids of a group, read from `instance`.
    async fn members(&self, instance: usize, group: &str) -> BTreeSet<String> {
        let r = self
            .scim(instance, Method::GET, &format!("/Groups/{group}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let members = r.body["members"].as_array().cloned().unwrap_or_default();
        let set: BTreeSet<String> = members
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(set.len(), members.len(), "a member is listed twice");
        set
    }

    /// Every user of the directory (id → userName), read from `instance`.
    async fn users(&self, instance: usize) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut start = 1;
        loop {
            let r = self
                .scim(
                    instance,
                    Method::GET,
                    &format!("/Users?startIndex={start}&count=500&attributes=userName"),
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let page = r.body["Resources"].as_array().cloned().unwrap_or_default();
            for u in &page {
                out.insert(
                    u["id"].as_str().unwrap().to_owned(),
                    u["userName"].as_str().unwrap().to_owned(),
                );
            }
            let total = r.body["totalResults"].as_u64().unwrap() as usize;
            start += page.len();
            if page.is_empty() || start > total {
                assert_eq!(out.len(), total);
                return out;
            }
        }
    }

    /// One page of `/api/v1/events` from `instance`: the events and the next cursor.
    async fn events_page(&self, instance: usize, after: &str, limit: u32) -> (Vec<Value>, String) {
        let inst = &self.instances[instance % self.n()];
        let mut url = format!("{}/api/v1/events?limit={limit}", inst.origin());
        if !after.is_empty() {
            url.push_str(&format!("&after={after}"));
        }
        let resp = self
            .client
            .get(&url)
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {url} on {}", inst.label);
        let body: Value = resp.json().await.unwrap();
        let data = body["data"].as_array().cloned().unwrap();
        let next = body["list_metadata"]["after"].as_str().unwrap().to_owned();
        (data, next)
    }

    /// Every event visible now, read from `instance` in pages of 1000.
    async fn all_events(&self, instance: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let (page, next) = self.events_page(instance, &after, 1000).await;
            if page.is_empty() {
                return out;
            }
            out.extend(page);
            after = next;
        }
    }

    /// Every event, from `instance`, once `expected` of them are visible
    /// (transactions of other test runs on the same server can hold the
    /// newest events back for a moment).
    async fn events_when(&self, instance: usize, expected: usize) -> Vec<Value> {
        poll::until_or_last(
            Duration::from_secs(15),
            Duration::from_millis(50),
            || self.all_events(instance),
            |events| events.len() >= expected,
        )
        .await
    }

    /// How many directories exist (each wrote one dsync.activated event).
    async fn directories(&self) -> usize {
        let list = cli(&self.schema.url(), &["directory", "list"]).await;
        list.as_array().unwrap().len()
    }

    /// No process logged a storage error or a panic.
    fn assert_clean_logs(&self) {
        for i in &self.instances {
            let log = i.log_text();
            for bad in ["storage error", "panicked", " ERROR "] {
                assert!(!log.contains(bad), "{} logged {bad:?}:\n{log}", i.label);
            }
        }
    }
}

fn ids_of(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

fn count_by_type(events: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in events {
        *m.entry(e["event"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    m
}

/// Events are listed once each, in strictly increasing id order.
fn assert_ordered_once(events: &[Value]) {
    let ids = ids_of(events);
    for w in ids.windows(2) {
        assert!(
            w[0] < w[1],
            "events out of order or repeated: {} then {}",
            w[0],
            w[1]
        );
    }
}

fn add_member(id: &str) -> Value {
    json!({"schemas": [PATCH_OP],
           "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]})
}

fn remove_member(id: &str) -> Value {
    json!({"schemas": [PATCH_OP],
           "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]})
}

/// 20 rounds of 8 simultaneous creates of one userName (in different cases),
/// split across both instances: exactly one 201 per round, the rest 409
/// uniqueness.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_race_has_one_winner_across_instances() {
    let Some(c) = Cluster::start(2).await else {
        return;
    };
    let mut winners = BTreeSet::new();
    for round in 0..20 {
        let name = format!("race-{round}@example.com");
        let attempts = (0..8).map(|i| {
            let user_name = match i % 3 {
                0 => name.clone(),
                1 => name.to_uppercase(),
                _ => format!("Race-{round}@Example.com"),
            };
            let body = json!({"schemas": [USER], "userName": user_name, "displayName": format!("attempt {i}")});
            c.scim(i, Method::POST, "/Users", Some(body))
        });
        let replies = join_all(attempts).await;
        let created: Vec<&Reply> = replies
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .collect();
        assert_eq!(created.len(), 1, "round {round}: {replies:#?}");
        winners.insert(created[0].body["id"].as_str().unwrap().to_owned());
        for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
            assert_eq!(r.status, StatusCode::CONFLICT, "round {round}: {}", r.body);
            assert_eq!(
                r.body["scimType"], "uniqueness",
                "round {round}: {}",
                r.body
            );
        }
    }
    for i in 0..2 {
        let users = c.users(i).await;
        assert_eq!(users.keys().cloned().collect::<BTreeSet<_>>(), winners);
        let r = c
            .scim(
                i,
                Method::GET,
                "/Users?filter=userName%20eq%20%22RACE-7@EXAMPLE.COM%22",
                None,
            )
            .await;
        assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    }
    assert_eq!(
        c.schema.count("SELECT count(*) FROM {s}.resources").await,
        20,
        "the schema holds exactly the winners"
    );
    let expected = c.directories().await + 20;
    let events = c.events_when(1, expected).await;
    assert_eq!(events.len(), expected);
    assert_eq!(count_by_type(&events)["dsync.user.created"], 20);
    c.assert_clean_logs();
}

/// The same ETag sent with PATCH and PUT to both instances at once: exactly
/// one write wins, the others get 412, and the winner's change is what stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_has_one_winner_across_instances() {
    let Some(c) = Cluster::start(2).await else {
        return;
    };
    let r = c
        .scim(
            0,
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "etag", "displayName": "start", "title": "t"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    for round in 0..12 {
        let current = c.scim(round, Method::GET, &path, None).await;
        let etag = current.etag.clone().expect("GET answers an ETag");
        let version = current.body["meta"]["version"].clone();
        assert_eq!(version.as_str(), Some(etag.as_str()));
        let writes = (0..6).map(|i| {
            let value = format!("round {round} writer {i}");
            let (method, body) = if (i / 2) % 2 == 0 {
                (
                    Method::PATCH,
                    json!({"schemas": [PATCH_OP], "Operations": [
                        {"op": "replace", "path": "displayName", "value": value}]}),
                )
            } else {
                (
                    Method::PUT,
                    json!({"schemas": [USER], "userName": "etag", "displayName": value}),
                )
            };
            let (c, path, etag) = (&c, &path, &etag);
            async move {
                let r = c
                    .scim_in(&c.dir, i, method, path, Some(body), Some(etag))
                    .await;
                (i, value, r)
            }
        });
        let results = join_all(writes).await;
        let winners: Vec<&(usize, String, Reply)> = results
            .iter()
            .filter(|(_, _, r)| r.status == StatusCode::OK)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:#?}");
        for (i, _, r) in &results {
            if r.status != StatusCode::OK {
                assert_eq!(
                    r.status,
                    StatusCode::PRECONDITION_FAILED,
                    "round {round} writer {i}: {}",
                    r.body
                );
            }
        }
        let (_, value, won) = winners[0];
        assert_ne!(
            won.etag.as_ref(),
            Some(&etag),
            "a change makes a new version"
        );
        for i in 0..2 {
            let now = c.scim(i, Method::GET, &path, None).await;
            assert_eq!(
                now.body["displayName"],
                value.as_str(),
                "round {round}: a lost update"
            );
            assert_eq!(now.etag, won.etag, "round {round}");
        }
    }
    let expected = c.directories().await + 1 + 12;
    let events = c.events_when(0, expected).await;
    assert_eq!(events.len(), expected);
    let counts = count_by_type(&events);
    assert_eq!(
        counts["dsync.user.updated"], 12,
        "one event per winning write"
    );
    c.assert_clean_logs();
}

/// 200 users added to one group by single-member PATCHes spread over both
/// instances, 16 in flight; then half of them removed the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_membership_patches_all_apply() {
    const N: usize = 200;
    let Some(c) = Cluster::start(2).await else {
        return;
    };
    let ids: Vec<String> = stream::iter(0..N)
        .map(|i| {
            let c = &c;
            async move { c.create_user(&c.dir, i, &format!("member-{i:03}")).await }
        })
        .buffered(16)
        .collect()
        .await;
    let group = c.create_group(&c.dir, 0, "everyone").await;
    let gpath = format!("/Groups/{group}");
    let statuses: Vec<StatusCode> = stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let (c, gpath) = (&c, &gpath);
            async move {
                c.scim(i, Method::PATCH, gpath, Some(add_member(id)))
                    .await
                    .status
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    for i in 0..2 {
        assert_eq!(
            c.members(i, &group).await,
            all,
            "instance {i} after the adds"
        );
    }
    let (removed, kept) = ids.split_at(N / 2);
    let statuses: Vec<StatusCode> = stream::iter(removed.iter().enumerate())
        .map(|(i, id)| {
            let (c, gpath) = (&c, &gpath);
            async move {
                c.scim(i + 1, Method::PATCH, gpath, Some(remove_member(id)))
                    .await
                    .status
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let kept: BTreeSet<String> = kept.iter().cloned().collect();
    for i in 0..2 {
        assert_eq!(
            c.members(i, &group).await,
            kept,
            "instance {i} after the removes"
        );
    }
    assert_eq!(
        c.schema
            .count("SELECT count(*) FROM {s}.group_members")
            .await,
        (N / 2) as i64
    );

    // dsync.activated, N users, 1 group, N adds, N/2 removes.
    let expected = c.directories().await + N + 1 + N + N / 2;
    let events = c.events_when(1, expected).await;
    assert_ordered_once(&events);
    let users_in = |t: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["event"] == t)
            .map(|e| {
                assert_eq!(e["data"]["group"]["id"], group.as_str());
                e["data"]["user"]["id"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let added = users_in("dsync.group.user_added");
    assert_eq!(added.len(), N, "exactly one user_added per member");
    assert_eq!(added.iter().cloned().collect::<BTreeSet<_>>(), all);
    let gone = users_in("dsync.group.user_removed");
    assert_eq!(
        gone.len(),
        N / 2,
        "exactly one user_removed per removed member"
    );
    assert_eq!(
        gone.into_iter().collect::<BTreeSet<_>>(),
        removed.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(events.len(), expected, "{:?}", count_by_type(&events));
    c.assert_clean_logs();
}

/// Eight /Bulk requests at once, four to each instance: each creates its
/// own users and one userName they all share, and adds its users to three
/// shared groups in its own order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_requests_from_both_instances_interleave() {
    const K: usize = 8;
    const M: usize = 10;
    let Some(c) = Cluster::start(2).await else {
        return;
    };
    let mut groups = Vec::new();
    for g in 0..3 {
        groups.push(c.create_group(&c.dir, g, &format!("bulk-group-{g}")).await);
    }
    let requests: Vec<Value> = (0..K)
        .map(|k| {
            let mut ops = Vec::new();
            let mut patches = Vec::new();
            for step in 0..3 {
                // Each request walks the groups in its own order.
                let g = if k % 2 == 0 {
                    (k + step) % 3
                } else {
                    (k + 3 - step) % 3
                };
                let members: Vec<Value> = (0..M)
                    .map(|j| json!({"value": format!("bulkId:u{j}")}))
                    .collect();
                patches.push(json!({
                    "method": "PATCH", "path": format!("/Groups/{}", groups[g]),
                    "data": {"schemas": [PATCH_OP],
                             "Operations": [{"op": "add", "path": "members", "value": members}]}
                }));
            }
            let creates: Vec<Value> = (0..M)
                .map(|j| {
                    json!({"method": "POST", "path": "/Users", "bulkId": format!("u{j}"),
                           "data": {"schemas": [USER], "userName": format!("bulk-{k}-{j}")}})
                })
                .collect();
            let shared = json!({"method": "POST", "path": "/Users", "bulkId": "shared",
                                "data": {"schemas": [USER], "userName": "bulk-shared"}});
            // Half the requests list their PATCHes before the creates they reference.
            if k % 2 == 0 {
                ops.extend(creates);
                ops.push(shared);
                ops.extend(patches);
            } else {
                ops.extend(patches);
                ops.push(shared);
                ops.extend(creates);
            }
            json!({"schemas": [BULK_REQUEST], "Operations": ops})
        })
        .collect();
    let replies = join_all(
        requests
            .iter()
            .enumerate()
            .map(|(k, body)| c.scim(k, Method::POST, "/Bulk", Some(body.clone()))),
    )
    .await;
    let mut created = BTreeSet::new();
    let mut shared_winners = 0;
    for (k, r) in replies.iter().enumerate() {
        assert_eq!(r.status, StatusCode::OK, "bulk {k}: {}", r.body);
        let ops = r.body["Operations"].as_array().unwrap();
        assert_eq!(ops.len(), M + 1 + 3, "bulk {k}: {}", r.body);
        for op in ops {
            let status = op["status"].as_str().unwrap();
            match (op["method"].as_str().unwrap(), op["bulkId"].as_str()) {
                ("POST", Some("shared")) if status == "201" => shared_winners += 1,
                ("POST", Some("shared")) => {
                    assert_eq!(status, "409", "bulk {k}: {op}");
                    assert_eq!(op["response"]["scimType"], "uniqueness", "bulk {k}: {op}");
                }
                ("POST", _) => {
                    assert_eq!(status, "201", "bulk {k}: {op}");
                    let location = op["location"].as_str().unwrap();
                    created.insert(location.rsplit('/').next().unwrap().to_owned());
                }
                ("PATCH", _) => assert_eq!(status, "200", "bulk {k}: {op}"),
                other => panic!("unexpected operation {other:?}: {op}"),
            }
        }
    }
    assert_eq!(
        shared_winners, 1,
        "exactly one request created the shared userName"
    );
    assert_eq!(created.len(), K * M);
    for i in 0..2 {
        let users = c.users(i).await;
        assert_eq!(users.len(), K * M + 1, "no duplicate users");
        let names: HashSet<String> = users.values().map(|n| n.to_lowercase()).collect();
        assert_eq!(names.len(), users.len(), "userNames are unique");
        for g in &groups {
            assert_eq!(c.members(i, g).await, created, "group {g} on instance {i}");
        }
    }
    assert_eq!(
        c.schema
            .count("SELECT count(*) FROM {s}.group_members")
            .await,
        (3 * K * M) as i64
    );
    let expected = c.directories().await + 3 + K * M + 1 + 3 * K * M;
    let events = c.events_when(0, expected).await;
    assert_eq!(events.len(), expected, "{:?}", count_by_type(&events));
    assert_ordered_once(&events);
    let counts = count_by_type(&events);
    assert_eq!(counts["dsync.user.created"], K * M + 1, "{counts:?}");
    assert_eq!(counts["dsync.group.user_added"], 3 * K * M, "{counts:?}");
    c.assert_clean_logs();
}

/// Writes to two directories through both instances while a reader follows
/// the Events API cursor (alternating instances, small pages): the reader
/// ends with exactly the list one read at the end returns, from either
/// instance, and that list has one event per committed change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_has_no_gaps_across_instances() {
    const U: usize = 40;
    let Some(c) = Cluster::start(2).await.map(Arc::new) else {
        return;
    };
    let second = create_directory(&c.schema.url(), "second").await;
    let dirs = [c.dir.clone(), second];

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (c, done) = (c.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen: Vec<Value> = Vec::new();
            let mut after = String::new();
            let mut polls = 0usize;
            loop {
                // Read `done` first: once it is set, every write has committed.
                let finished = done.load(Ordering::SeqCst);
                let (page, next) = c.events_page(polls, &after, 37).await;
                polls += 1;
                let empty = page.is_empty();
                seen.extend(page);
                after = next;
                if empty {
                    if finished {
                        return (seen, polls);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };

    // Phase 1: users and a group in each directory, from both instances.
    let users: Vec<(usize, String)> = stream::iter((0..2 * U).map(|n| (n % 2, n / 2)))
        .map(|(d, i)| {
            let (c, dirs) = (&c, &dirs);
            // Each directory is written through both instances.
            async move { (d, c.create_user(&dirs[d], i, &format!("stream-{i}")).await) }
        })
        .buffer_unordered(12)
        .collect()
        .await;
    let mut group = Vec::new();
    for (d, dir) in dirs.iter().enumerate() {
        group.push(c.create_group(dir, d, "stream-group").await);
    }
    // Phase 2: for each user an update and a membership add, interleaved.
    let statuses: Vec<StatusCode> = stream::iter(users.iter().enumerate().flat_map(|(n, (d, id))| {
        [(n, *d, id.clone(), false), (n + 1, *d, id.clone(), true)]
    }))
    .map(|(n, d, id, add)| {
        let (c, dirs, group) = (&c, &dirs, &group);
        async move {
            let (path, body) = if add {
                (format!("/Groups/{}", group[d]), add_member(&id))
            } else {
                (
                    format!("/Users/{id}"),
                    json!({"schemas": [PATCH_OP], "Operations": [
                        {"op": "replace", "path": "displayName", "value": format!("updated {n}")}]}),
                )
            };
            c.scim_in(&dirs[d], n, Method::PATCH, &path, Some(body), None)
                .await
                .status
        }
    })
    .buffer_unordered(12)
    .collect()
    .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );

    let activated = c.directories().await;
    let expected = activated + 2 * U + 2 + 2 * U + 2 * U;
    let at_end = c.events_when(0, expected).await;
    done.store(true, Ordering::SeqCst);
    let (mut followed, polls) = reader.await.unwrap();
    // Events of this run that other test runs' transactions held back past
    // the reader's last empty page are read on, exactly as a client would.
    let deadline = Instant::now() + Duration::from_secs(15);
    while followed.len() < at_end.len() && Instant::now() < deadline {
        let after = followed
            .last()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .unwrap_or_default();
        let (page, _) = c.events_page(1, &after, 1000).await;
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        followed.extend(page);
    }

    assert_ordered_once(&at_end);
    assert_eq!(at_end.len(), expected, "{:?}", count_by_type(&at_end));
    let counts = count_by_type(&at_end);
    let want: BTreeMap<String, usize> = [
        ("dsync.activated", activated),
        ("dsync.user.created", 2 * U),
        ("dsync.user.updated", 2 * U),
        ("dsync.group.created", 2),
        ("dsync.group.user_added", 2 * U),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts, want);
    // Each change has its own event.
    for t in ["dsync.user.created", "dsync.user.updated"] {
        let ids: BTreeSet<&str> = at_end
            .iter()
            .filter(|e| e["event"] == t)
            .map(|e| e["data"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2 * U, "{t}");
    }
    assert_eq!(
        ids_of(&c.all_events(1).await),
        ids_of(&at_end),
        "both instances list the same events in the same order"
    );
    assert!(polls > 2, "the reader polled during the writes");
    let (got, want) = (ids_of(&followed), ids_of(&at_end));
    let missed: Vec<&String> = want.iter().filter(|id| !got.contains(id)).collect();
    assert!(missed.is_empty(), "the cursor reader skipped {missed:?}");
    assert_eq!(
        got, want,
        "the cursor reader read events twice or out of order"
    );
    c.assert_clean_logs();
}

/// Four processes started at once on an empty schema (and the CLI with
/// them) all migrate, come up and serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_race_four_instances_start_together() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let client = http_client(Duration::from_secs(30));
    let mut instances: Vec<Instance> = (0..4)
        .map(|i| spawn_instance(&schema.url(), &format!("instance {i}")))
        .collect();
    let dir = create_directory(&schema.url(), "migrated").await;
    let path = format!("/scim/v2/{}/ServiceProviderConfig", dir.id);
    join_all(
        instances
            .iter_mut()
            .map(|i| i.wait_ready(&path, &dir.token)),
    )
    .await;
    let c = Cluster {
        client,
        instances,
        dir,
        admin_key: String::new(),
        schema,
    };
    let created = join_all((0..4).map(|i| {
        let c = &c;
        async move { c.create_user(&c.dir, i, &format!("migrated-{i}")).await }
    }))
    .await;
    for i in 0..4 {
        assert_eq!(c.users(i).await.len(), 4, "instance {i}");
    }
    assert_eq!(created.len(), 4);
    assert_eq!(
        c.schema
            .count("SELECT count(*) FROM {s}.roster_schema")
            .await,
        1
    );
    // Each instance creates "default" on an empty database; together, at most one.
    assert!(
        c.schema
            .count("SELECT count(*) FROM {s}.directories WHERE name = 'default'")
            .await
            <= 1
    );
    // Migrated once, to the current version (postgres/conn.rs SCHEMA_VERSION).
    assert_eq!(
        c.schema
            .count("SELECT max(version) FROM {s}.roster_schema")
            .await,
        roster_store::postgres::SCHEMA_VERSION
    );
    assert_eq!(
        c.schema
            .count(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = '{n}' AND p.proname IN ('roster_fold', 'roster_ts')"
            )
            .await,
        2,
        "the functions were created once, in the test's schema"
    );
    c.assert_clean_logs();
}

/// Every database connection of both processes is ended (what a PostgreSQL
/// restart does to a pool): the pools notice on checkout, connect again, and
/// no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_ended_by_the_database_are_replaced() {
    let Some(c) = Cluster::start(2).await else {
        return;
    };
    let before = join_all((0..8).map(|i| {
        let c = &c;
        async move { c.create_user(&c.dir, i, &format!("before-{i}")).await }
    }))
    .await;
    let ended = c.schema.terminate_connections().await;
    assert!(ended >= 2, "each process had connections open ({ended})");
    let after = join_all((0..8).map(|i| {
        let c = &c;
        async move { c.create_user(&c.dir, i, &format!("after-{i}")).await }
    }))
    .await;
    assert_eq!(before.len() + after.len(), 16);
    for i in 0..2 {
        assert_eq!(c.users(i).await.len(), 16, "instance {i}");
    }
    // r2d2 logs the broken connections it drops; no request failed.
    for i in &c.instances {
        let log = i.log_text();
        assert!(!log.contains("storage error"), "{}:\n{log}", i.label);
    }
}
