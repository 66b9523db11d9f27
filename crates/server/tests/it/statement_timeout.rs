//! A read that runs past `statement_timeout_ms` is stopped by the database
//! and answered 503 with `Retry-After` and the API's own error body, long
//! before the request timeout; the connection (or reader) it held serves the
//! next request. And large loads leave PostgreSQL's planner statistics to
//! plan with, while SQLite plans without any.
//!
//! What makes a read slow differs by store. On SQLite, a directory loaded
//! (through the store, in one transaction) with enough users that a filter
//! matching all of them and sorted by an attribute no index orders reads for
//! tens of milliseconds, against a limit of a few; lookups by key run too few
//! steps for SQLite's clock to ever look at them (`sqlite::deadline`). On
//! PostgreSQL, whose every statement is timed, however short, the test holds
//! a lock on the resources table from a session of its own: every read of it
//! waits, past the limit, while the token lookups and everything else run as
//! usual. Either way the database cancels the statement, as it would a scan.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use roster_server::ServerConfig;
use roster_store::{Kind, NewResource, in_transaction};
use roster_testkit::poll;
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use crate::support::{Place, StoreKind, TestServer};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Users loaded for SQLite's slow read.
const SQLITE_USERS: usize = 20_000;

/// The slow read: every user, sorted by an attribute no index orders.
const SLOW: &str = "/Users?filter=userName%20sw%20%22u%22&sortBy=title&count=5";

fn limit_ms() -> u64 {
    match crate::STORE {
        StoreKind::Sqlite => 5,
        StoreKind::Postgres => 300,
    }
}

fn config() -> ServerConfig {
    ServerConfig {
        statement_timeout_ms: Some(limit_ms()),
        // Nothing else reads while the test watches.
        webhooks_enabled: false,
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    }
}

fn user(i: usize) -> NewResource {
    NewResource {
        kind: Kind::User,
        doc: json!({
            "schemas": [USER],
            "userName": format!("u{i:05}"),
            "title": format!("title {}", (i * 7919) % SQLITE_USERS),
            "name": {"familyName": format!("f{i}")},
            "emails": [{"value": format!("u{i}@example.com"), "type": "work"}],
        }),
        members: Vec::new(),
        groups: Vec::new(),
    }
}

/// Loads `n` users straight into the store, in one transaction.
async fn load(s: &TestServer, n: usize) {
    let names: Vec<(Kind, String)> = (0..n).map(|i| (Kind::User, format!("u{i:05}"))).collect();
    in_transaction(s.store.as_ref(), &s.directory, move |tx| {
        tx.expect_creates(&names)?;
        for i in 0..n {
            tx.create(user(i))?;
        }
        Ok(())
    })
    .await
    .unwrap();
}

/// A session of the test's own holding the resources table: every read of
/// it waits until this is dropped.
struct TableLock {
    release: std::sync::mpsc::Sender<()>,
    done: Option<std::thread::JoinHandle<()>>,
}

impl TableLock {
    fn take(place: &Place) -> TableLock {
        let Place::Postgres(schema) = place else {
            panic!("a lock is for PostgreSQL");
        };
        let (url, name) = (schema.database_url().to_owned(), schema.name().to_owned());
        let (taken, is_taken) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let done = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(&format!(
                "SET search_path TO \"{name}\"; BEGIN; LOCK TABLE resources IN ACCESS EXCLUSIVE MODE"
            ))
            .unwrap();
            taken.send(()).unwrap();
            let _ = released.recv();
            c.batch_execute("ROLLBACK").unwrap();
        });
        is_taken.recv().unwrap();
        TableLock {
            release,
            done: Some(done),
        }
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        let _ = self.release.send(());
        if let Some(done) = self.done.take() {
            let _ = done.join();
        }
    }
}

/// A 503 of the statement timeout: `Retry-After`, and the detail that says
/// what happened and what to do.
fn assert_timed_out(status: StatusCode, headers: &reqwest::header::HeaderMap, message: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
    assert_eq!(headers["retry-after"], "1");
    assert!(
        message.contains(&format!(
            "took longer than statement_timeout_ms ({} ms)",
            limit_ms()
        )) && message.contains("narrow the filter or retry"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_past_the_statement_timeout_is_a_503_with_retry_after_and_the_next_one_is_served() {
    let Some(s) = TestServer::start_with(config()).await else {
        return;
    };
    let kept = s.user("kept").await;
    let lock = match crate::STORE {
        StoreKind::Sqlite => {
            load(&s, SQLITE_USERS).await;
            None
        }
        StoreKind::Postgres => Some(TableLock::take(s.place())),
    };
    // More timeouts than the pool has connections (and SQLite readers):
    // each one went back to serve.
    const TIMEOUTS: usize = 6;
    for _ in 0..TIMEOUTS {
        let started = Instant::now();
        let r = s.get(SLOW).await;
        let took = started.elapsed();
        assert_eq!(r.body["status"], "503", "{:?}", r.body);
        assert_eq!(
            r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{:?}",
            r.body
        );
        assert_timed_out(r.status, &r.headers, r.body["detail"].as_str().unwrap());
        // Stopped at the limit, not at the request timeout.
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
    if lock.is_some() {
        // The same wait through the other two APIs, in their own shapes.
        let key = admin_key(&s).await;
        let r = api(
            &s,
            &key,
            Method::GET,
            &format!("/directories/{}/users", s.directory),
            None,
        )
        .await;
        assert_eq!(r.body["error"], "unavailable", "{:?}", r.body);
        assert_timed_out(r.status, &r.headers, r.body["message"].as_str().unwrap());
        let url = format!(
            "http://{}/directory_users?directory={}",
            s.addr, s.directory
        );
        let r = s.call_with(Method::GET, &url, None, &key, &[]).await;
        assert_eq!(r.body["code"], "service_unavailable", "{:?}", r.body);
        assert!(r.body.get("error").is_none(), "{:?}", r.body);
        assert_timed_out(r.status, &r.headers, r.body["message"].as_str().unwrap());
    }
    drop(lock);

    // The next requests are served, on the same pool and readers.
    let r = s.get(&format!("/Users/{kept}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = s.get("/Users?filter=userName%20eq%20%22kept%22").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["totalResults"], 1);

    let metrics = reqwest::get(format!("http://{}/metrics", s.metrics_addr().unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let backend = match crate::STORE {
        StoreKind::Sqlite => "sqlite",
        StoreKind::Postgres => "postgres",
    };
    let counted: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "roster_statement_timeouts_total{{backend=\"{backend}\"}} "
            ))
        })
        .unwrap_or_else(|| panic!("no timeouts counted:\n{metrics}"))
        .parse()
        .unwrap();
    assert!(counted >= TIMEOUTS as f64, "{counted}");
}

/// The users of one /Bulk request.
fn bulk_of_users(from: usize, n: usize) -> Value {
    let ops: Vec<Value> = (from..from + n)
        .map(|i| {
            json!({
                "method": "POST",
                "path": "/Users",
                "bulkId": format!("b{i}"),
                "data": {
                    "schemas": [USER],
                    "userName": format!("bulk{i}"),
                    "displayName": format!("Bulk User {i}"),
                    "emails": [{"value": format!("bulk{i}@example.com"), "type": "work"}],
                },
            })
        })
        .collect();
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": ops,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_load_through_bulk_leaves_postgres_statistics_and_sqlite_none() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s.post("/Bulk", bulk_of_users(0, 1000)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let ops = r.body["Operations"].as_array().unwrap();
    assert!(ops.iter().all(|o| o["status"] == "201"), "{:?}", ops[0]);

    // In the background, within a few seconds.
    match s.place() {
        Place::Sqlite(dir) => {
            // Sampled statistics made SQLite walk a whole directory in id
            // order for `meta.lastModified ge` and `userName gt`; without
            // any, its plans follow the query's shape (docs/design.md).
            let path = dir.path().join("roster.db");
            let stats = tokio::task::spawn_blocking(move || sqlite_statistics(&path))
                .await
                .unwrap();
            assert_eq!(stats, 0, "SQLite statistics after the load");
        }
        Place::Postgres(schema) => {
            let rows = poll::until(
                "statistics of the resources table after the load",
                Duration::from_secs(10),
                Duration::from_millis(100),
                || {
                    let (url, name) = (schema.database_url().to_owned(), schema.name().to_owned());
                    async move {
                        tokio::task::spawn_blocking(move || postgres_rows_analyzed(&url, &name))
                            .await
                            .unwrap()
                            .ok_or("none")
                    }
                },
            )
            .await;
            assert!(rows >= 1000, "{rows}");
        }
    }
}

/// How many statistics tables (`sqlite_stat1`, `sqlite_stat4`) the file has.
fn sqlite_statistics(path: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_stat%'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// The rows of `resources` as the last ANALYZE counted them, if one ran (a
/// `VACUUM (ANALYZE)` statement, not autovacuum's: both columns are set).
fn postgres_rows_analyzed(url: &str, schema: &str) -> Option<i64> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let row = c
        .query_one(
            "SELECT s.last_analyze IS NOT NULL AND s.last_vacuum IS NOT NULL, c.reltuples::bigint
               FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
              WHERE s.schemaname = $1 AND s.relname = 'resources'",
            &[&schema],
        )
        .unwrap();
    row.get::<_, bool>(0).then(|| row.get(1))
}
