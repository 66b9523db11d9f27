//! A database outage is a 503 with `Retry-After`, never a 500: PostgreSQL
//! unreachable (its connections cut and new ones refused, by a proxy this
//! test controls, so the shared cluster is left alone) and SQLite locked by
//! another process past its busy timeout. Once the database is back, the
//! same server answers again by itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use roster_server::{ServerConfig, build_registry};
use roster_store::{PgOptions, PgStore, Store};
use roster_testkit::poll;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::{Place, StoreKind, TestServer, place, postgres_url};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const UNAVAILABLE: &str = "the database is unavailable; retry shortly";

/// A TCP proxy on loopback in front of PostgreSQL that can play dead:
/// `down` cuts every connection through it and refuses new ones.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::<JoinHandle<()>>::new()));
        let accept = {
            let (up, links) = (up.clone(), links.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        // Closed at once: what a client sees of a server going away.
                        drop(client);
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            })
        };
        Proxy {
            addr,
            up,
            links,
            accept,
        }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
        self.accept.abort();
    }
}

/// Where the test database listens.
async fn pg_target() -> SocketAddr {
    let config: postgres::Config = postgres_url().parse().unwrap();
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// The test database's URL with the proxy in place of the server.
fn url_via(proxy: SocketAddr) -> String {
    let config: postgres::Config = postgres_url().parse().unwrap();
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or("postgres");
    format!("postgres://{user}{password}@{proxy}/{db}")
}

/// Every outcome a client saw, to check that none was a 500.
#[derive(Default)]
struct Seen(Vec<(String, u16)>);

impl Seen {
    fn assert_no_500(&self) {
        let bad: Vec<_> = self
            .0
            .iter()
            .filter(|(_, s)| *s >= 500 && *s != 503)
            .collect();
        assert!(bad.is_empty(), "server errors other than 503: {bad:?}");
    }
}

async fn send(
    seen: &mut Seen,
    req: reqwest::RequestBuilder,
    what: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = req
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    let status = resp.status();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    seen.0.push((what.to_owned(), status.as_u16()));
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_out_of_reach_is_503_with_retry_after_then_serves_again() {
    if crate::STORE != StoreKind::Postgres {
        return;
    }
    roster_server::install_crypto_provider();
    let Some(place) = place() else {
        return;
    };
    let Place::Postgres(schema) = &place else {
        unreachable!()
    };
    let proxy = Proxy::start(pg_target().await).await;
    let config = ServerConfig::default();
    let reg = Arc::new(build_registry(&config).unwrap());
    let mut options = PgOptions::new(url_via(proxy.addr));
    options.schema = Some(schema.name().to_owned());
    options.pool_size = 2;
    // A checkout gives up quickly, so the outage is answered in about a second.
    options.acquire_timeout = Duration::from_secs(1);
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(options, reg.clone()).await.unwrap());
    let dir = store
        .create_directory(&roster_store::Actor::Cli, "outage")
        .await
        .unwrap()
        .id;
    let (_, token) = store
        .issue_token(&roster_store::Actor::Cli, &dir)
        .await
        .unwrap();
    let admin = store
        .create_admin_key(&roster_store::Actor::Cli, "ops", &Default::default())
        .await
        .unwrap()
        .1;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(roster_server::serve(
        listener,
        store.clone(),
        reg,
        ServerConfig {
            listen: addr,
            ..config
        },
        async {
            let _ = stopped.await;
        },
    ));
    let c = reqwest::Client::new();
    let mut seen = Seen::default();
    let users = format!("http://{addr}/scim/v2/{dir}/Users");
    let create = |name: &str| {
        c.post(&users)
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(json!({"schemas": [USER], "userName": name}).to_string())
    };
    let (status, _, body) = send(&mut seen, create("before"), "create before").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    proxy.down();
    let requests = [
        ("list users", c.get(&users).bearer_auth(&token)),
        ("create user", create("during")),
        (
            "admin list",
            c.get(format!("http://{addr}/api/v1/directories"))
                .bearer_auth(&admin),
        ),
    ];
    for (what, req) in requests {
        let (status, headers, body) = send(&mut seen, req, what).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
        assert_eq!(headers["retry-after"], "1", "{what}");
        let detail = body["detail"].as_str().or(body["message"].as_str());
        assert_eq!(detail, Some(UNAVAILABLE), "{what}: {body}");
        assert!(
            !body.to_string().contains(&proxy.addr.port().to_string()),
            "{body}"
        );
    }

    let ready = format!("http://{addr}/health/ready");
    let (status, headers, body) = send(&mut seen, c.get(&ready), "ready during").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["status"], "failing");
    assert_eq!(body["checks"]["database"]["status"], "failing", "{body}");
    assert!(
        body["checks"]["database"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("the database does not answer"),
        "{body}"
    );
    assert_eq!(body["checks"]["writer"]["status"], "failing", "{body}");
    assert!(
        !body.to_string().contains(&proxy.addr.port().to_string()),
        "{body}"
    );

    proxy.up();
    // A probe's future cannot borrow `seen` mutably, so each attempt records
    // its own and the records join `seen` afterwards.
    let retries = Mutex::new(Seen::default());
    poll::until(
        "a write after the outage",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let mut attempt = Seen::default();
            let (status, _, body) = send(&mut attempt, create("after"), "create after").await;
            retries.lock().unwrap().0.append(&mut attempt.0);
            if status == StatusCode::CREATED {
                return Ok(());
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            Err(body)
        },
    )
    .await;
    seen.0.append(&mut retries.into_inner().unwrap().0);
    let (status, _, body) = send(&mut seen, c.get(&users).bearer_auth(&token), "list after").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, ready_body) = send(&mut seen, c.get(&ready), "ready after").await;
    assert_eq!(status, StatusCode::OK, "{ready_body}");
    assert_eq!(
        body["totalResults"], 2,
        "the write refused during the outage left nothing: {body}"
    );
    seen.assert_no_500();
    let _ = stop.send(());
    let _ = server.await;
    drop(store);
    drop(place);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_past_its_busy_timeout_is_503_with_retry_after() {
    if crate::STORE != StoreKind::Sqlite {
        return;
    }
    let Some(s) = TestServer::start().await else {
        return;
    };
    let Place::Sqlite(dir) = s.place() else {
        unreachable!()
    };
    // Another process (a backup tool, an operator's sqlite3 shell) holding
    // the write lock longer than Roster's busy_timeout (5 s).
    let holder = rusqlite::Connection::open(dir.path().join("roster.db")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = s
        .post("/Users", json!({"schemas": [USER], "userName": "blocked"}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.body["detail"], UNAVAILABLE);
    // Reads go on meanwhile (WAL).
    assert_eq!(s.get("/Users").await.status, StatusCode::OK);
    // Ready names the writer, whose no-op cannot begin, and only it.
    let resp = reqwest::get(format!("http://{}/health/ready", s.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["migrations"], "ok", "{body}");
    assert_eq!(body["checks"]["writer"]["status"], "failing", "{body}");
    holder.execute_batch("ROLLBACK").unwrap();
    let r = s
        .post("/Users", json!({"schemas": [USER], "userName": "after"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}
