//! A fault-injecting proxy in front of Roster: 429 with Retry-After, 500 on
//! some /Bulk operations, answers cut off after the request was applied, and
//! requests that never get an answer. The proxy logs every operation it is
//! sent, so the tests can prove that retries touch only the failed items and
//! that nothing is duplicated or lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use roster_server::ServerConfig;
use roster_testkit::poll;
use serde_json::{Value, json};

use crate::support::*;

#[derive(Default, Clone)]
struct Faults {
    /// /Bulk request numbers (1-based) answered 429 with `Retry-After: 1`, unapplied.
    bulk_429: BTreeSet<usize>,
    /// /Bulk request numbers applied upstream whose answer is then cut off.
    bulk_cut: BTreeSet<usize>,
    /// The first time an operation for one of these userNames arrives in a
    /// /Bulk request, it is answered 500 without being applied.
    bulk_500: BTreeSet<String>,
    /// Single requests by userName, first time only: 429 (Retry-After: 1), 503, or
    /// applied upstream and then cut off.
    single_429: BTreeSet<String>,
    single_503: BTreeSet<String>,
    single_cut: BTreeSet<String>,
    /// Advertise this bulk.maxPayloadSize instead of the server's own.
    spc_payload: Option<usize>,
    /// /Bulk request number from which requests are applied upstream and then
    /// never answered (the client is killed meanwhile).
    hang_from: Option<usize>,
}

#[derive(Debug, Clone)]
struct Logged {
    at: Instant,
    method: String,
    path: String,
    /// The resource names the request carried (bulk: one per operation).
    names: Vec<String>,
    status: u16,
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    faults: Mutex<Faults>,
    fired: Mutex<BTreeSet<String>>,
    bulk_seen: AtomicUsize,
    log: Mutex<Vec<Logged>>,
}

fn name_of(data: &Value) -> Option<String> {
    data.get("userName")
        .or_else(|| data.get("displayName"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl Proxy {
    async fn start(
        upstream: std::net::SocketAddr,
        faults: Faults,
    ) -> (Arc<Proxy>, std::net::SocketAddr) {
        let p = Arc::new(Proxy {
            upstream: format!("http://{upstream}"),
            http: reqwest::Client::new(),
            faults: Mutex::new(faults),
            fired: Mutex::new(BTreeSet::new()),
            bulk_seen: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new().fallback(handle).with_state(p.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (p, addr)
    }

    fn first_time(&self, what: &str) -> bool {
        self.fired.lock().unwrap().insert(what.to_owned())
    }

    async fn forward(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> (u16, HeaderMap, Bytes) {
        let url = format!(
            "{}{}",
            self.upstream,
            uri.path_and_query().map_or("", |p| p.as_str())
        );
        let mut req = self.http.request(method.clone(), url).body(body);
        for k in ["authorization", "content-type", "if-match"] {
            if let Some(v) = headers.get(k) {
                req = req.header(k, v);
            }
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        (status, h, resp.bytes().await.unwrap())
    }

    fn record(&self, method: &Method, uri: &Uri, names: Vec<String>, status: u16) {
        self.log.lock().unwrap().push(Logged {
            at: Instant::now(),
            method: method.to_string(),
            path: uri.path().to_owned(),
            names,
            status,
        });
    }

    /// Every /Bulk or write request, with the names it carried.
    fn writes(&self) -> Vec<Logged> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.method != "GET")
            .cloned()
            .collect()
    }
}

/// A response whose body breaks off after a few bytes: the client sees the
/// connection fail mid-answer, after the server applied the request.
fn cut_off() -> Response {
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from_static(
            b"{\"schemas\":[\"urn:ietf:params:scim:api:mess",
        )),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected: connection dropped",
        )),
    ]);
    Response::builder()
        .status(200)
        .header("content-type", "application/scim+json")
        .header("content-length", "4096")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn scim_error(status: u16, retry_after: Option<&str>) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/scim+json")],
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.to_string(), "detail": "injected"})
            .to_string(),
    )
        .into_response();
    if let Some(ra) = retry_after {
        r.headers_mut().insert("retry-after", ra.parse().unwrap());
    }
    r
}

async fn handle(
    State(p): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let faults = p.faults.lock().unwrap().clone();
    if uri.path().ends_with("/Bulk") {
        let n = p.bulk_seen.fetch_add(1, Ordering::SeqCst) + 1;
        let mut req: Value = serde_json::from_slice(&body).unwrap();
        let ops = req["Operations"].as_array().cloned().unwrap();
        let names: Vec<String> = ops
            .iter()
            .map(|o| name_of(&o["data"]).unwrap_or_else(|| o["path"].as_str().unwrap().to_owned()))
            .collect();
        if faults.bulk_429.contains(&n) {
            p.record(&method, &uri, names, 429);
            return scim_error(429, Some("1"));
        }
        // Take out the operations that fail with 500 this time; Roster runs the rest.
        let mut failed = Vec::new();
        let mut keep = Vec::new();
        for (op, name) in ops.into_iter().zip(&names) {
            if faults.bulk_500.contains(name) && p.first_time(&format!("500:{name}")) {
                failed.push(op);
            } else {
                keep.push(op);
            }
        }
        req["Operations"] = Value::Array(keep);
        let (status, _, bytes) = p
            .forward(&method, &uri, &headers, Bytes::from(req.to_string()))
            .await;
        p.record(&method, &uri, names, status);
        if faults.hang_from.is_some_and(|h| n >= h) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if faults.bulk_cut.contains(&n) {
            return cut_off();
        }
        let mut resp: Value = serde_json::from_slice(&bytes).unwrap();
        for op in failed {
            resp["Operations"].as_array_mut().unwrap().push(json!({
                "method": op["method"], "bulkId": op["bulkId"], "status": "500",
                "response": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "500", "detail": "injected"}
            }));
        }
        return (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/scim+json")],
            resp.to_string(),
        )
            .into_response();
    }
    if let Some(claim) = faults.spc_payload
        && uri.path().ends_with("/ServiceProviderConfig")
    {
        let (status, _, bytes) = p.forward(&method, &uri, &headers, body).await;
        let mut spc: Value = serde_json::from_slice(&bytes).unwrap();
        spc["bulk"]["maxPayloadSize"] = json!(claim);
        return (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/scim+json")],
            spc.to_string(),
        )
            .into_response();
    }
    let name = serde_json::from_slice::<Value>(&body)
        .ok()
        .as_ref()
        .and_then(name_of);
    if method != Method::GET
        && let Some(name) = &name
    {
        if faults.single_429.contains(name) && p.first_time(&format!("429:{name}")) {
            p.record(&method, &uri, vec![name.clone()], 429);
            return scim_error(429, Some("1"));
        }
        if faults.single_503.contains(name) && p.first_time(&format!("503:{name}")) {
            p.record(&method, &uri, vec![name.clone()], 503);
            return scim_error(503, None);
        }
    }
    let (status, h, bytes) = p.forward(&method, &uri, &headers, body).await;
    p.record(&method, &uri, name.clone().into_iter().collect(), status);
    if method != Method::GET
        && let Some(name) = &name
        && faults.single_cut.contains(name)
        && p.first_time(&format!("cut:{name}"))
    {
        return cut_off();
    }
    let mut r = (StatusCode::from_u16(status).unwrap(), bytes).into_response();
    for k in ["content-type", "etag", "location"] {
        if let Some(v) = h.get(k) {
            r.headers_mut().insert(k, v.clone());
        }
    }
    r
}

/// How many write requests carried each name.
fn sends_per_name(log: &[Logged]) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for l in log {
        for name in &l.names {
            *n.entry(name.clone()).or_default() += 1;
        }
    }
    n
}

fn names(prefix: &str, idx: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    idx.into_iter().map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn bulk_faults_retry_only_the_failed_items() {
    let r = Roster::start(ServerConfig {
        bulk_max_operations: 20,
        ..ServerConfig::default()
    })
    .await;
    let (src, dst) = (r.directory("src").await, r.directory("dst").await);
    src.seed_users("user", 100).await;
    // Requests 1..5 carry user0..19, user20..39, …: #1 is refused with 429,
    // #3 is applied and its answer lost, and a few items fail with 500.
    let failing_500 = names("user", [25, 27, 70, 90]);
    let (proxy, addr) = Proxy::start(
        r.addr,
        Faults {
            bulk_429: [1].into(),
            bulk_cut: [3].into(),
            bulk_500: failing_500.clone(),
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let run = sync(&src, &dst.via(addr), &state, &["--backoff-ms", "50"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.report);
    assert_eq!(run.report["mode"], "bulk");

    let users = dst.users_by_name().await; // panics on a duplicate
    assert_eq!(users.len(), 100, "lost users");
    assert_eq!(run.count("created") + run.count("updated"), 100);
    let log = proxy.writes();
    assert!(
        log.iter().all(|l| l.path.ends_with("/Bulk")),
        "a write outside /Bulk"
    );
    let sends = sends_per_name(&log);
    let refused = names("user", 0..20);
    let cut = names("user", 40..60);
    let failed: BTreeSet<String> = refused
        .iter()
        .chain(&cut)
        .chain(&failing_500)
        .cloned()
        .collect();
    for (name, n) in &sends {
        if failed.contains(name) {
            assert_eq!(*n, 2, "{name} was sent {n} times");
        } else {
            assert_eq!(*n, 1, "{name} was sent again although it never failed");
        }
    }
    assert_eq!(sends.len(), 100);
    // The cut-off request was applied: its creates were found by lookup and
    // became updates instead of second creates.
    assert_eq!(run.count("verified_after_ambiguity"), 20, "{}", run.report);
    assert_eq!(run.count("retried"), 20 + 20 + 4, "{}", run.report);
    assert_eq!(run.count("created"), 80);
    // Retry-After: 1 held back every /Bulk request for a second.
    assert_eq!(log[0].status, 429);
    assert!(
        log[1].at - log[0].at >= Duration::from_millis(950),
        "{:?}",
        log[1].at - log[0].at
    );
    // The 500s were reported per operation and retried in a later request.
    assert!(
        log.iter()
            .skip(5)
            .all(|l| l.names.iter().all(|n| failed.contains(n)))
    );
}

#[tokio::test]
async fn single_request_faults_retry_only_the_failed_items() {
    let r = Roster::start(ServerConfig::default()).await;
    let (src, dst) = (r.directory("src").await, r.directory("dst").await);
    src.seed_users("user", 40).await;
    let (t429, t503, cut) = (
        names("user", [3, 17]),
        names("user", [8, 30, 31]),
        names("user", [12, 25]),
    );
    let (proxy, addr) = Proxy::start(
        r.addr,
        Faults {
            single_429: t429.clone(),
            single_503: t503.clone(),
            single_cut: cut.clone(),
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let run = sync(
        &src,
        &dst.via(addr),
        &state,
        &["--no-bulk", "--concurrency", "4", "--backoff-ms", "50"],
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.report);
    assert_eq!(run.report["mode"], "single");
    assert_eq!(dst.users_by_name().await.len(), 40);
    let sends = sends_per_name(&proxy.writes());
    let failed: BTreeSet<String> = t429.iter().chain(&t503).chain(&cut).cloned().collect();
    for (name, n) in &sends {
        let want = if failed.contains(name) { 2 } else { 1 };
        assert_eq!(*n, want, "{name} was sent {n} times");
    }
    assert_eq!(run.count("created"), 38);
    assert_eq!(
        run.count("updated"),
        2,
        "the cut-off creates were found and updated"
    );
    assert_eq!(run.count("verified_after_ambiguity"), 2);
}

#[tokio::test]
async fn interrupted_runs_resume_without_loss_or_duplication() {
    let r = Roster::start(ServerConfig {
        bulk_max_operations: 10,
        ..ServerConfig::default()
    })
    .await;
    let (src, dst) = (r.directory("src").await, r.directory("dst").await);
    let ids = src.seed_users("user", 60).await;
    src.group(
        "team",
        &ids[55..].iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let (proxy, addr) = Proxy::start(
        r.addr,
        Faults {
            hang_from: Some(3),
            ..Faults::default()
        },
    )
    .await;
    let target = dst.via(addr);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let report = report_path(&state);
    let args = [
        "--source",
        src.base.as_str(),
        "--target",
        target.base.as_str(),
        "--timeout",
        "3",
    ];
    let env = [
        ("ROSTER_SOURCE_TOKEN", src.token.as_str()),
        ("ROSTER_TARGET_TOKEN", target.token.as_str()),
    ];

    let wait_for_bulk = |n: usize| {
        let proxy = proxy.clone();
        async move {
            poll::until(
                &format!("/Bulk request {n} from the sync"),
                Duration::from_secs(10),
                Duration::from_millis(50),
                || async {
                    let sent = proxy.bulk_seen.load(Ordering::SeqCst);
                    if sent >= n { Ok(()) } else { Err(sent) }
                },
            )
            .await;
        }
    };

    // 1. Ctrl-C while request 3 (applied upstream) waits for its answer.
    let mut child = command(&args, &state, &report, &env).spawn().unwrap();
    wait_for_bulk(3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130));
    let st = state_json(&state);
    assert_eq!(
        st["users"].as_object().unwrap().len(),
        20,
        "the two acknowledged chunks are saved"
    );
    assert!(
        st["checkpoint"].is_null(),
        "the checkpoint moved in an interrupted run"
    );
    assert_eq!(
        dst.users_by_name().await.len(),
        30,
        "three chunks reached the target"
    );

    // 2. Killed outright (no chance to save) while request 5 hangs.
    proxy.faults.lock().unwrap().hang_from = Some(5);
    let mut child = command(&args, &state, &report, &env).spawn().unwrap();
    wait_for_bulk(5).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().await.unwrap();
    assert!(dst.users_by_name().await.len() >= 40);

    // 3. No more faults: the run completes; nothing is created twice.
    proxy.faults.lock().unwrap().hang_from = None;
    let run = run_sync(&args, &state, &env).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.report);
    let users = dst.users_by_name().await;
    assert_eq!(users.len(), 60);
    assert_eq!(
        dst.memberships().await["team"],
        names("user", 55..60).into_iter().collect::<Vec<_>>()
    );
    assert!(run.report["checkpoint"]["after"].is_string());
    let st = state_json(&state);
    assert_eq!(st["users"].as_object().unwrap().len(), 60);
    let again = run_sync(&args, &state, &env).await;
    assert_eq!(again.code, 0);
    assert_eq!(again.count("planned"), 0, "{}", again.report);
}

#[tokio::test]
async fn a_target_that_refuses_less_than_it_advertises_gets_smaller_chunks() {
    let r = Roster::start(ServerConfig {
        bulk_max_payload_bytes: 8 * 1024,
        ..ServerConfig::default()
    })
    .await;
    let (src, dst) = (r.directory("src").await, r.directory("dst").await);
    src.seed_users("user", 60).await;
    let (proxy, addr) = Proxy::start(
        r.addr,
        Faults {
            spc_payload: Some(1 << 20),
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let run = sync(&src, &dst.via(addr), &state, &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.report);
    assert_eq!(dst.users_by_name().await.len(), 60);
    let log = proxy.writes();
    let refused = log.iter().filter(|l| l.status == 413).count();
    // About 18 KB of operations: refused whole, then at 9 KB, then sent at 4.5 KB.
    assert_eq!(refused, 2, "{log:?}");
    assert!(log.iter().filter(|l| l.status == 200).count() >= 3);
    assert_eq!(run.count("created"), 60);
}
