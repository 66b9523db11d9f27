//! Crash faults: real `roster serve` processes killed with SIGKILL at random
//! points (a seeded RNG; set `ROSTER_FAULT_SEED` to replay a run) while
//! clients write single resources, send /Bulk requests, and while webhooks
//! are being delivered; then restarted on the same database. After the last
//! restart:
//!
//! - every acknowledged write (a 2xx that reached the client) is present;
//! - nothing unacknowledged is half there: a /Bulk request whose answer never
//!   arrived left all of its operations or none (Roster runs one bulk request
//!   in one transaction);
//! - every committed change has exactly one event (one `created` per
//!   resource, one `updated` per version past the first, one `deleted` per
//!   deleted resource, one `user_added` per membership);
//! - every event was delivered to the webhook at least once (duplicates are
//!   allowed: delivery is at-least-once).
//!
//! Each scenario runs on SQLite (a temporary file) and on PostgreSQL (a schema
//! of its own in the test PostgreSQL, `roster_testkit::pg`; without one the
//! PostgreSQL scenarios return early).
//!
//! `postgres_restart_under_load` restarts the whole PostgreSQL cluster while a
//! client writes, which disturbs everything else using that server, so it is
//! ignored by default; run it alone:
//! `cargo nextest run -p roster --test faults --run-ignored ignored-only`.

// A test crate of its own: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers beside them, which fail a test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

mod common;
use common::{BULK_REQUEST, Dir, GROUP, PATCH_OP, Schema, Serve, USER, cli, http_client, serve};
use roster_testkit::http::Receiver;
use roster_testkit::poll;

const ROUNDS: usize = 6;
/// Quick webhook retries and a short lease: a killed process holds its
/// endpoints until the lease runs out.
const CONFIG: &str = "webhook_poll_ms = 20\nwebhook_lease_secs = 1\nwebhook_backoff_base_ms = 50\nwebhook_backoff_max_secs = 1\nrate_limit_per_sec = 0\nshutdown_grace_secs = 1\n";

// ---------------------------------------------------------------- randomness

/// splitmix64: small, seedable, the same on every platform.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}

fn seeded(test: &str) -> Rng {
    let seed = std::env::var("ROSTER_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: ROSTER_FAULT_SEED={seed}");
    Rng(seed)
}

// ------------------------------------------------------------------ databases

/// Where a test's data lives; removed when dropped.
enum Database {
    /// Held for its Drop, which removes the file.
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// Held for its Drop, which drops the schema.
    Postgres(#[allow(dead_code)] Schema),
}

struct Data {
    url: String,
    /// Held for its Drop.
    #[allow(dead_code)]
    db: Database,
    /// Holds the config file.
    files: tempfile::TempDir,
}

impl Data {
    fn sqlite() -> Data {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("roster.db").display());
        Data {
            url,
            db: Database::Sqlite(dir),
            files: tempfile::tempdir().unwrap(),
        }
    }

    /// `None` when the PostgreSQL tests are skipped (no PostgreSQL).
    fn postgres() -> Option<Data> {
        let schema = Schema::create()?;
        Some(Data {
            url: schema.url(),
            db: Database::Postgres(schema),
            files: tempfile::tempdir().unwrap(),
        })
    }

    fn config(&self) -> PathBuf {
        let path = self.files.path().join("roster.toml");
        std::fs::write(&path, CONFIG).unwrap();
        path
    }
}

// -------------------------------------------------------------------- servers

/// A `roster serve` process of a fixture.
type Server = Serve;

/// A database with a directory and an admin key.
struct Fixture {
    c: reqwest::Client,
    dir: Dir,
    admin_key: String,
    data: Data,
}

impl Fixture {
    async fn new(data: Data) -> Fixture {
        let d = cli(&data.url, &["directory", "create", "faults"]).await;
        let key = cli(&data.url, &["admin-key", "create", "faults"]).await;
        Fixture {
            c: http_client(Duration::from_secs(20)),
            dir: Dir {
                id: d["id"].as_str().unwrap().to_owned(),
                token: d["token"].as_str().unwrap().to_owned(),
            },
            admin_key: key["key"].as_str().unwrap().to_owned(),
            data,
        }
    }

    /// Starts a server and waits until it answers the directory's
    /// ServiceProviderConfig.
    async fn start(&self) -> Server {
        let log = self
            .data
            .files
            .path()
            .join(format!("serve-{}.log", uuid::Uuid::now_v7().simple()));
        let config = self.data.config();
        let s = serve(&self.data.url, Some(&config), log, "roster serve");
        let path = format!("/scim/v2/{}/ServiceProviderConfig", self.dir.id);
        s.wait_ready(&path, &self.dir.token).await;
        s
    }

    /// Every user (id → (userName, version, title)) and group (id →
    /// (displayName, member ids)), read through SCIM.
    async fn users(&self, s: &Server) -> BTreeMap<String, (String, i64, Option<String>)> {
        let mut out = BTreeMap::new();
        for r in self.list(s, "/Users").await {
            out.insert(
                r["id"].as_str().unwrap().to_owned(),
                (
                    r["userName"].as_str().unwrap().to_owned(),
                    version(&r),
                    r["title"].as_str().map(str::to_owned),
                ),
            );
        }
        out
    }

    async fn groups(&self, s: &Server) -> BTreeMap<String, (String, BTreeSet<String>)> {
        let mut out = BTreeMap::new();
        for r in self.list(s, "/Groups").await {
            let members = r["members"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect();
            out.insert(
                r["id"].as_str().unwrap().to_owned(),
                (r["displayName"].as_str().unwrap().to_owned(), members),
            );
        }
        out
    }

    async fn list(&self, s: &Server, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut start = 1;
        loop {
            let url = format!(
                "{}/scim/v2/{}{path}?startIndex={start}&count=1000",
                s.origin(),
                self.dir.id
            );
            let r = self
                .c
                .get(&url)
                .bearer_auth(&self.dir.token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "GET {url}");
            let body: Value = r.json().await.unwrap();
            let page = body["Resources"].as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                return out;
            }
            start += page.len();
            out.extend(page);
        }
    }

    /// Every event through the Events API.
    async fn events(&self, s: &Server) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let mut url = format!("{}/api/v1/events?limit=1000", s.origin());
            if !after.is_empty() {
                url.push_str(&format!("&after={after}"));
            }
            let r = self
                .c
                .get(&url)
                .bearer_auth(&self.admin_key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "GET {url}");
            let body: Value = r.json().await.unwrap();
            let page = body["data"].as_array().cloned().unwrap();
            if page.is_empty() {
                return out;
            }
            after = body["list_metadata"]["after"].as_str().unwrap().to_owned();
            out.extend(page);
        }
    }
}

fn version(r: &Value) -> i64 {
    let v = r["meta"]["version"].as_str().unwrap();
    v.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .unwrap_or_else(|_| panic!("meta.version {v}"))
}

/// Events per resource: (resource id, event type) → count. Membership events
/// count under the group's id with the user's id appended.
fn event_counts(events: &[Value]) -> HashMap<(String, String), usize> {
    let mut m = HashMap::new();
    for e in events {
        let kind = e["event"].as_str().unwrap().to_owned();
        let key = if kind.starts_with("dsync.group.user_") {
            format!(
                "{}/{}",
                e["data"]["group"]["id"].as_str().unwrap(),
                e["data"]["user"]["id"].as_str().unwrap()
            )
        } else {
            e["data"]["id"].as_str().unwrap_or_default().to_owned()
        };
        *m.entry((key, kind)).or_default() += 1;
    }
    m
}

fn count(m: &HashMap<(String, String), usize>, id: &str, kind: &str) -> usize {
    m.get(&(id.to_owned(), kind.to_owned()))
        .copied()
        .unwrap_or(0)
}

/// Outcome of one request: acknowledged with a 2xx (status and body), or not.
async fn send(
    c: &reqwest::Client,
    origin: &str,
    dir: &Dir,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Option<(StatusCode, Value)> {
    let mut req = c
        .request(method, format!("{origin}/scim/v2/{}{path}", dir.id))
        .bearer_auth(&dir.token)
        .timeout(Duration::from_secs(10));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let resp = req.send().await.ok()?;
    let status = resp.status();
    let text = resp.text().await.ok()?;
    if !status.is_success() {
        return None;
    }
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).ok()?
    };
    Some((status, body))
}

// ------------------------------------------------------------ single writes

/// What a client knows about one user it created.
#[derive(Default, Debug)]
struct Known {
    name: String,
    /// PATCHes acknowledged, and whether one more was sent without an answer.
    patches: i64,
    patch_unknown: bool,
    /// Titles set by PATCH, in order (the last may be the unanswered one).
    titles: Vec<String>,
    deleted: bool,
    delete_unknown: bool,
}

#[derive(Default)]
struct Ledger {
    users: BTreeMap<String, Known>,
    /// userNames whose create got no answer.
    unknown_creates: BTreeSet<String>,
}

/// One client: creates, PATCHes and deletes its own users one request at a
/// time until a request goes unanswered (the server was killed).
async fn writer(
    c: reqwest::Client,
    origin: String,
    dir: Dir,
    ledger: Arc<Mutex<Ledger>>,
    mut rng: Rng,
    prefix: String,
    pause: Duration,
) {
    let mut mine: Vec<String> = Vec::new();
    for i in 0.. {
        tokio::time::sleep(pause).await;
        let op = rng.below(10);
        if op < 5 || mine.is_empty() {
            let name = format!("{prefix}-{i}");
            let body = json!({"schemas": [USER], "userName": name});
            match send(&c, &origin, &dir, Method::POST, "/Users", Some(body)).await {
                Some((StatusCode::CREATED, b)) => {
                    let id = b["id"].as_str().unwrap().to_owned();
                    ledger.lock().unwrap().users.insert(
                        id.clone(),
                        Known {
                            name,
                            ..Known::default()
                        },
                    );
                    mine.push(id);
                }
                Some((s, b)) => panic!("create answered {s}: {b}"),
                None => {
                    ledger.lock().unwrap().unknown_creates.insert(name);
                    return;
                }
            }
        } else if op < 9 {
            let id = mine[rng.below(mine.len() as u64) as usize].clone();
            let title = format!("{prefix}-t{i}");
            ledger
                .lock()
                .unwrap()
                .users
                .get_mut(&id)
                .unwrap()
                .titles
                .push(title.clone());
            let body = json!({"schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "title", "value": title}]});
            let ok = send(
                &c,
                &origin,
                &dir,
                Method::PATCH,
                &format!("/Users/{id}"),
                Some(body),
            )
            .await
            .is_some();
            let mut l = ledger.lock().unwrap();
            let k = l.users.get_mut(&id).unwrap();
            if ok {
                k.patches += 1;
            } else {
                k.patch_unknown = true;
                return;
            }
        } else {
            let at = rng.below(mine.len() as u64) as usize;
            let id = mine.swap_remove(at);
            let ok = send(
                &c,
                &origin,
                &dir,
                Method::DELETE,
                &format!("/Users/{id}"),
                None,
            )
            .await
            .is_some();
            let mut l = ledger.lock().unwrap();
            let k = l.users.get_mut(&id).unwrap();
            if ok {
                k.deleted = true;
            } else {
                k.delete_unknown = true;
                return;
            }
        }
    }
}

async fn single_writes(data: Data, test: &str) {
    let mut rng = seeded(test);
    let f = Fixture::new(data).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for round in 0..ROUNDS {
        let s = f.start().await;
        let tasks: Vec<_> = (0..4)
            .map(|w| {
                tokio::spawn(writer(
                    f.c.clone(),
                    s.origin(),
                    f.dir.clone(),
                    ledger.clone(),
                    rng.fork(),
                    format!("r{round}w{w}"),
                    Duration::ZERO,
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + rng.below(600))).await;
        s.assert_no_panic();
        s.kill();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("a writer did not stop after the kill")
                .unwrap();
        }
    }
    let s = f.start().await;
    let users = f.users(&s).await;
    let events = f.events(&s).await;
    let counts = event_counts(&events);
    let l = ledger.lock().unwrap();
    let mut acked_writes = 0;
    for (id, k) in &l.users {
        acked_writes += 1 + k.patches as usize + usize::from(k.deleted);
        assert_eq!(count(&counts, id, "dsync.user.created"), 1, "{id} {k:?}");
        let deleted = count(&counts, id, "dsync.user.deleted");
        match users.get(id) {
            Some((name, version, title)) => {
                assert!(!k.deleted, "{id}: its DELETE was acknowledged: {k:?}");
                assert_eq!(name, &k.name);
                assert_eq!(deleted, 0, "{id} is there but has a deleted event");
                let committed = version - 1;
                assert!(
                    committed == k.patches || (k.patch_unknown && committed == k.patches + 1),
                    "{id}: version {version} after {} acknowledged PATCHes: {k:?}",
                    k.patches
                );
                assert_eq!(
                    count(&counts, id, "dsync.user.updated") as i64,
                    committed,
                    "{id}: one updated event per committed PATCH"
                );
                if committed > 0 {
                    assert_eq!(
                        title.as_deref(),
                        Some(k.titles[committed as usize - 1].as_str()),
                        "{id}"
                    );
                }
            }
            None => {
                assert!(
                    k.deleted || k.delete_unknown,
                    "acknowledged user {id} is lost: {k:?}"
                );
                assert_eq!(deleted, 1, "{id}: one deleted event");
                let updated = count(&counts, id, "dsync.user.updated") as i64;
                assert!(
                    updated >= k.patches && updated <= k.patches + i64::from(k.patch_unknown),
                    "{id}: {updated} updated events: {k:?}"
                );
            }
        }
    }
    // Users nobody heard of: only creates that got no answer, each whole.
    for (id, (name, version, _)) in &users {
        if l.users.contains_key(id) {
            continue;
        }
        assert!(
            l.unknown_creates.contains(name),
            "{id} ({name}) was never created by a client"
        );
        assert_eq!(*version, 1);
        assert_eq!(count(&counts, id, "dsync.user.created"), 1, "{id}");
        assert_eq!(count(&counts, id, "dsync.user.updated"), 0, "{id}");
    }
    // No event about a user that is neither there nor known.
    for (id, kind) in counts.keys() {
        if kind.starts_with("dsync.user.") {
            assert!(
                users.contains_key(id) || l.users.contains_key(id),
                "{kind} for unknown user {id}"
            );
        }
    }
    eprintln!(
        "{test}: {ROUNDS} kills, {acked_writes} acknowledged writes, {} unanswered creates, {} users, {} events",
        l.unknown_creates.len(),
        users.len(),
        events.len()
    );
    assert!(acked_writes > ROUNDS, "the writers hardly wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sigkill_during_single_writes() {
    single_writes(Data::sqlite(), "sqlite_sigkill_during_single_writes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_during_single_writes() {
    let Some(data) = Data::postgres() else {
        return;
    };
    single_writes(data, "postgres_sigkill_during_single_writes").await;
}

// ---------------------------------------------------------------------- /Bulk

const BULK_USERS: usize = 4;

/// One /Bulk request: four users and a group holding them (by bulkId).
fn bulk_body(prefix: &str) -> Value {
    let mut ops: Vec<Value> = (0..BULK_USERS)
        .map(|k| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{k}"),
                   "data": {"schemas": [USER], "userName": format!("{prefix}-u{k}")}})
        })
        .collect();
    let members: Vec<Value> = (0..BULK_USERS)
        .map(|k| json!({"value": format!("bulkId:u{k}")}))
        .collect();
    ops.push(json!({"method": "POST", "path": "/Groups", "bulkId": "g",
                    "data": {"schemas": [GROUP], "displayName": format!("{prefix}-g"), "members": members}}));
    json!({"schemas": [BULK_REQUEST], "failOnErrors": 1, "Operations": ops})
}

/// Sends bulk requests one after another until one goes unanswered; returns
/// (acknowledged prefixes, the unanswered prefix).
async fn bulk_writer(
    c: reqwest::Client,
    origin: String,
    dir: Dir,
    prefix: String,
) -> (Vec<String>, Option<String>) {
    let mut acked = Vec::new();
    for i in 0.. {
        let p = format!("{prefix}-{i}");
        match send(
            &c,
            &origin,
            &dir,
            Method::POST,
            "/Bulk",
            Some(bulk_body(&p)),
        )
        .await
        {
            Some((_, b)) => {
                let ops = b["Operations"].as_array().unwrap();
                assert_eq!(ops.len(), BULK_USERS + 1, "{b}");
                for op in ops {
                    assert_eq!(op["status"], "201", "{b}");
                }
                acked.push(p);
            }
            None => return (acked, Some(p)),
        }
    }
    unreachable!()
}

async fn bulk_requests(data: Data, test: &str) {
    let mut rng = seeded(test);
    let f = Fixture::new(data).await;
    let mut acked = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..ROUNDS {
        let s = f.start().await;
        let tasks: Vec<_> = (0..2)
            .map(|w| {
                tokio::spawn(bulk_writer(
                    f.c.clone(),
                    s.origin(),
                    f.dir.clone(),
                    format!("r{round}w{w}"),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + rng.below(600))).await;
        s.assert_no_panic();
        s.kill();
        for t in tasks {
            let (a, u) = tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("a bulk writer did not stop after the kill")
                .unwrap();
            acked.extend(a);
            unknown.extend(u);
        }
    }
    let s = f.start().await;
    let users = f.users(&s).await;
    let groups = f.groups(&s).await;
    let events = f.events(&s).await;
    let counts = event_counts(&events);
    let user_by_name: HashMap<&str, &str> = users
        .iter()
        .map(|(id, (n, _, _))| (n.as_str(), id.as_str()))
        .collect();
    let group_by_name: HashMap<&str, (&str, &BTreeSet<String>)> = groups
        .iter()
        .map(|(id, (n, m))| (n.as_str(), (id.as_str(), m)))
        .collect();
    let mut partial_seen = 0;
    let mut applied_unknown = 0;
    for (p, is_acked) in acked
        .iter()
        .map(|p| (p, true))
        .chain(unknown.iter().map(|p| (p, false)))
    {
        let present: Vec<&str> = (0..BULK_USERS)
            .filter_map(|k| user_by_name.get(format!("{p}-u{k}").as_str()).copied())
            .collect();
        let group = group_by_name.get(format!("{p}-g").as_str());
        let all = present.len() == BULK_USERS && group.is_some();
        let none = present.is_empty() && group.is_none();
        if !all && !none {
            partial_seen += 1;
        }
        assert!(
            all || none,
            "bulk {p} is partly applied: {} of {BULK_USERS} users, group {}",
            present.len(),
            group.is_some()
        );
        assert!(all || !is_acked, "acknowledged bulk {p} is lost");
        if all {
            applied_unknown += usize::from(!is_acked);
            let (gid, members) = group.unwrap();
            let want: BTreeSet<String> = present.iter().map(|s| s.to_string()).collect();
            assert_eq!(*members, &want, "bulk {p}: the group's members");
            assert_eq!(count(&counts, gid, "dsync.group.created"), 1, "{p}");
            for u in &present {
                assert_eq!(count(&counts, u, "dsync.user.created"), 1, "{p} {u}");
                assert_eq!(count(&counts, u, "dsync.user.updated"), 0, "{p} {u}");
                assert_eq!(
                    count(&counts, &format!("{gid}/{u}"), "dsync.group.user_added"),
                    1,
                    "{p}: one user_added for {u}"
                );
            }
        }
    }
    assert_eq!(partial_seen, 0);
    // Nothing else was created, and no event names anything else.
    let expected_users = (acked.len() + applied_unknown) * BULK_USERS;
    assert_eq!(
        users.len(),
        expected_users,
        "users beyond the bulk requests"
    );
    assert_eq!(groups.len(), acked.len() + applied_unknown);
    let resource_events = events
        .iter()
        .filter(|e| e["event"] != "dsync.activated")
        .count();
    assert_eq!(
        resource_events,
        expected_users * 2 + groups.len(),
        "one created per user and group, one user_added per member"
    );
    eprintln!(
        "{test}: {ROUNDS} kills, {} acknowledged bulk requests, {} unanswered ({applied_unknown} of them applied whole)",
        acked.len(),
        unknown.len()
    );
    assert!(!acked.is_empty(), "no bulk request was answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sigkill_during_bulk() {
    bulk_requests(Data::sqlite(), "sqlite_sigkill_during_bulk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_during_bulk() {
    let Some(data) = Data::postgres() else {
        return;
    };
    bulk_requests(data, "postgres_sigkill_during_bulk").await;
}

// ------------------------------------------------------------------- webhooks

/// `instances` Roster processes share the database (more than one on
/// PostgreSQL only), all killed each round.
async fn webhook_delivery(data: Data, test: &str, instances: usize) {
    let mut rng = seeded(test);
    let f = Fixture::new(data).await;
    let receiver = Receiver::start(Duration::from_millis(3)).await;
    let s = f.start().await;
    let before: BTreeSet<String> = f
        .events(&s)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let r =
        f.c.post(format!("{}/api/v1/webhooks", s.origin()))
            .bearer_auth(&f.admin_key)
            .json(&json!({"url": receiver.url}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    drop(s);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut kills_mid_delivery = 0;
    for round in 0..ROUNDS {
        let s = f.start().await;
        let others: Vec<Server> =
            futures_util::future::join_all((1..instances).map(|_| f.start())).await;
        // One writer, paced, so that the test can wait for every delivery.
        let tasks: Vec<_> = (0..1)
            .map(|w| {
                tokio::spawn(writer(
                    f.c.clone(),
                    s.origin(),
                    f.dir.clone(),
                    ledger.clone(),
                    rng.fork(),
                    format!("r{round}w{w}"),
                    Duration::from_millis(5),
                ))
            })
            .collect();
        // Past the lease a killed process left behind (1 s), so that
        // deliveries are under way when this one is killed.
        tokio::time::sleep(Duration::from_millis(1100 + rng.below(700))).await;
        let delivered = receiver.ids().len();
        s.assert_no_panic();
        s.kill();
        for o in &others {
            o.assert_no_panic();
            o.kill();
        }
        kills_mid_delivery += usize::from(delivered > 0);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("a writer did not stop after the kill")
                .unwrap();
        }
    }
    let s = f.start().await;
    let events = f.events(&s).await;
    let want: BTreeSet<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .filter(|id| !before.contains(id))
        .collect();
    let got = poll::until(
        "every event delivered",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let got: BTreeSet<String> = receiver.ids().into_iter().collect();
            let missing: Vec<&String> = want.difference(&got).collect();
            if missing.is_empty() {
                return Ok(got);
            }
            Err(format!(
                "{} of {} events never delivered, e.g. {:?}",
                missing.len(),
                want.len(),
                &missing[..missing.len().min(5)]
            ))
        },
    )
    .await;
    let extra: Vec<&String> = got.difference(&want).collect();
    assert!(
        extra.is_empty(),
        "delivered events that do not exist: {extra:?}"
    );
    // Exactly one event per committed change, here too.
    let counts = event_counts(&events);
    let users = f.users(&s).await;
    for (id, (_, version, _)) in &users {
        assert_eq!(count(&counts, id, "dsync.user.created"), 1, "{id}");
        assert_eq!(
            count(&counts, id, "dsync.user.updated") as i64,
            version - 1,
            "{id}"
        );
    }
    for (id, k) in &ledger.lock().unwrap().users {
        assert!(
            users.contains_key(id) || k.deleted || k.delete_unknown,
            "acknowledged user {id} is lost"
        );
    }
    // A receiver tells a repeat by its attempt header alone: no event came
    // twice as a first attempt.
    let mut first = BTreeSet::new();
    for (id, raw) in receiver.deliveries() {
        let attempt = roster_testkit::http::header(&raw, "roster-delivery-attempt");
        if attempt.as_deref() == Some("1") {
            assert!(first.insert(id.clone()), "{id} arrived twice as attempt 1");
        }
    }
    let deliveries = receiver.ids().len();
    eprintln!(
        "{test}: {ROUNDS} kills ({kills_mid_delivery} after deliveries began), {} events, {deliveries} deliveries ({} repeated)",
        want.len(),
        deliveries - want.len()
    );
    assert!(kills_mid_delivery > 0, "no kill happened during delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sigkill_during_webhook_delivery() {
    webhook_delivery(Data::sqlite(), "sqlite_sigkill_during_webhook_delivery", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_during_webhook_delivery() {
    let Some(data) = Data::postgres() else {
        return;
    };
    webhook_delivery(data, "postgres_sigkill_during_webhook_delivery", 2).await;
}

// ------------------------------------------------------- PostgreSQL restart

fn cluster() -> (String, String) {
    // `pg_lsclusters -h`: version, name, port, status, …
    let out = Command::new("pg_lsclusters").arg("-h").output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let first = text.lines().next().unwrap_or_default();
    let mut cols = first.split_whitespace();
    (
        cols.next().unwrap_or("15").to_owned(),
        cols.next().unwrap_or("main").to_owned(),
    )
}

fn pg_ctl(action: &str) -> bool {
    let (version, name) = cluster();
    Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, &name, action])
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts the cluster again if it is down when the test ends, however it ends.
struct ClusterGuard;

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let up = Command::new("pg_lsclusters")
            .arg("-h")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("online"));
        if !up {
            let started = pg_ctl("start");
            eprintln!("PostgreSQL was down at the end of the test; started again: {started}");
        }
    }
}

/// The PostgreSQL cluster restarts while a client writes: Roster (not
/// restarted) answers again by itself, nothing acknowledged is lost, and
/// while the database is away every refusal is a 503 with `Retry-After`,
/// never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the shared PostgreSQL cluster; run alone with --run-ignored ignored-only"]
async fn postgres_restart_under_load() {
    let Some(data) = Data::postgres() else {
        return;
    };
    // pg_ctlcluster restarts the machine's cluster, not a private one nor
    // the one ROSTER_TEST_POSTGRES names.
    let origin = roster_testkit::pg::postgres().map(|pg| pg.origin().clone());
    assert_eq!(
        origin,
        Some(roster_testkit::pg::Origin::Default),
        "this test restarts the cluster at 127.0.0.1:5432 and must run against it"
    );
    let f = Fixture::new(data).await;
    let s = f.start().await;
    let _guard = ClusterGuard;
    let acked = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let failed = Arc::new(Mutex::new(0usize));
    // Refusals by status: each must be a 503 with Retry-After.
    let refused = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (c, origin, dir) = (f.c.clone(), s.origin(), f.dir.clone());
        let (acked, failed, refused, stop) =
            (acked.clone(), failed.clone(), refused.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let body = json!({"schemas": [USER], "userName": format!("pg-{i}")});
                let resp = c
                    .post(format!("{origin}/scim/v2/{}/Users", dir.id))
                    .bearer_auth(&dir.token)
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let answer = match resp {
                    Ok(r) => {
                        let status = r.status();
                        let retry_after = r.headers().contains_key("retry-after");
                        let text = r.text().await.unwrap_or_default();
                        Some((status, retry_after, text))
                    }
                    Err(_) => None,
                };
                match answer {
                    Some((status, _, text)) if status.is_success() => {
                        let b: Value = serde_json::from_str(&text).unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push((b["id"].as_str().unwrap().to_owned(), Instant::now()))
                    }
                    other => {
                        if let Some((status, retry_after, text)) = other {
                            *refused.lock().unwrap().entry(status.as_u16()).or_default() += 1;
                            assert!(
                                status == StatusCode::SERVICE_UNAVAILABLE && retry_after,
                                "during the restart a write was answered {status} (Retry-After: {retry_after}): {text}"
                            );
                        }
                        *failed.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let restarted = tokio::task::spawn_blocking(|| pg_ctl("restart"))
        .await
        .unwrap();
    assert!(restarted, "pg_ctlcluster restart failed");
    let back = Instant::now();
    // Writes succeed again without touching Roster.
    poll::until(
        "20 writes answered after the restart",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let after = acked
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, t)| *t > back)
                .count();
            if after >= 20 {
                return Ok(());
            }
            // The log is read only if time runs out.
            let s = &s;
            Err(std::fmt::from_fn(move |f| {
                write!(f, "{after}; roster serve's log:\n{}", s.log_text())
            }))
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    assert!(s.exited().is_none(), "roster serve exited");
    let refused = refused.lock().unwrap().clone();
    assert!(
        refused.keys().all(|&s| s == 503),
        "refusals other than 503: {refused:?}"
    );
    let users = f.users(&s).await;
    let counts = event_counts(&f.events(&s).await);
    let acked = acked.lock().unwrap();
    for (id, _) in acked.iter() {
        assert!(users.contains_key(id), "acknowledged user {id} is lost");
    }
    for id in users.keys() {
        assert_eq!(count(&counts, id, "dsync.user.created"), 1, "{id}");
    }
    eprintln!(
        "postgres_restart_under_load: {} acknowledged creates, {} failed during the restart (answered: {refused:?}), {} users",
        acked.len(),
        failed.lock().unwrap(),
        users.len()
    );
    s.assert_no_panic();
    s.kill();
}
