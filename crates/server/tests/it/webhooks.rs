//! Webhook delivery against real HTTP receivers started by the tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use roster_client::webhook::verify;
use roster_server::ServerConfig;
use roster_store::webhooks::WebhookFormat;
use serde_json::Value;

use crate::support::TestServer;

/// What a receiver does with the n-th request (0-based).
type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    Hang(Duration),
    /// 429 with `Retry-After` in seconds.
    TooMany(u64),
}

#[derive(Default)]
struct Received {
    bodies: Vec<(HeaderMap, Bytes)>,
    /// When each request arrived and the status it was answered.
    answers: Vec<(Instant, u16)>,
}

async fn receiver(script: Script) -> (String, Arc<Mutex<Received>>) {
    let got = Arc::new(Mutex::new(Received::default()));
    let state = (got.clone(), script);
    let app = Router::new()
        .route(
            "/hook",
            post(
                |axum::extract::State((got, script)): axum::extract::State<(
                    Arc<Mutex<Received>>,
                    Script,
                )>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let (reply, code, wait) = {
                        let mut g = got.lock().unwrap();
                        g.bodies.push((headers, body));
                        let reply = script(g.bodies.len() - 1);
                        let (code, wait) = match reply {
                            Reply::Status(code) => (code, None),
                            Reply::Hang(d) => (200, Some(d)),
                            Reply::TooMany(_) => (429, None),
                        };
                        g.answers.push((Instant::now(), code));
                        (reply, code, wait)
                    };
                    if let Some(d) = wait {
                        tokio::time::sleep(d).await;
                    }
                    let mut headers = HeaderMap::new();
                    if let Reply::TooMany(secs) = reply {
                        headers.insert("retry-after", secs.to_string().parse().unwrap());
                    }
                    (StatusCode::from_u16(code).unwrap(), headers)
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn fast_config() -> ServerConfig {
    ServerConfig {
        webhook_poll_ms: 20,
        webhook_backoff_base_ms: 20,
        webhook_backoff_max_secs: 1,
        // Generous: a loaded CI machine must not turn a slow 200 into a retry.
        webhook_timeout_secs: 5,
        ..ServerConfig::default()
    }
}

/// Waits (bounded) until `cond` holds.
async fn wait_for(mut cond: impl FnMut() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached within 10 s");
}

fn event_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn retries_until_the_receiver_accepts_and_signs_every_attempt() {
    let Some(s) = TestServer::start_with(fast_config()).await else {
        return;
    };
    let (url, got) = receiver(Arc::new(|n| Reply::Status(if n < 2 { 500 } else { 200 }))).await;
    let (endpoint, secret) = s
        .store
        .create_webhook(
            &roster_store::Actor::Cli,
            &url,
            WebhookFormat::Roster,
            &[],
            None,
        )
        .await
        .unwrap();
    s.user("alice").await;
    s.user("bob").await;
    wait_for(|| got.lock().unwrap().bodies.len() >= 4).await;
    let g: Vec<(HeaderMap, Bytes)> = got.lock().unwrap().bodies.clone();
    // Each user's attempts come one after another, numbered 1, 2, 3…: the
    // two failures held back only their own user.
    let mut tries: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (h, b) in &g {
        let user = event_of(b)["data"]["username"].as_str().unwrap().to_owned();
        let attempt = h["roster-delivery-attempt"].to_str().unwrap().to_owned();
        tries.entry(user).or_default().push(attempt);
    }
    for (user, attempts) in &tries {
        let want: Vec<String> = (1..=attempts.len()).map(|n| n.to_string()).collect();
        assert_eq!(attempts, &want, "{user}");
    }
    assert_eq!(
        tries.values().map(Vec::len).sum::<usize>(),
        4,
        "two failures, then one success per user: {tries:?}"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (headers, body) in &g {
        let sig = headers["roster-signature"].to_str().unwrap();
        verify(&secret, sig, body, now, 300).unwrap();
    }
    // The receiver sees a delivery before the dispatcher records it: wait for the log.
    let mut log = Vec::new();
    for _ in 0..400 {
        log = s.store.webhook_deliveries(&endpoint.id, 10).await.unwrap();
        if log.iter().filter(|d| d.status == "succeeded").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        log.iter()
            .any(|d| d.status == "retrying" && d.response_code == Some(500))
    );
    assert_eq!(log.iter().filter(|d| d.status == "succeeded").count(), 2);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_a_timeout_is_retried() {
    let Some(s) = TestServer::start_with(ServerConfig {
        webhook_timeout_secs: 1,
        ..fast_config()
    })
    .await
    else {
        return;
    };
    let (gone_url, gone) = receiver(Arc::new(|_| Reply::Status(410))).await;
    let (slow_url, slow) = receiver(Arc::new(|n| {
        if n == 0 {
            Reply::Hang(Duration::from_secs(3))
        } else {
            Reply::Status(204)
        }
    }))
    .await;
    let (gone_ep, _) = s
        .store
        .create_webhook(
            &roster_store::Actor::Cli,
            &gone_url,
            WebhookFormat::Roster,
            &[],
            None,
        )
        .await
        .unwrap();
    s.store
        .create_webhook(
            &roster_store::Actor::Cli,
            &slow_url,
            WebhookFormat::Roster,
            &[],
            None,
        )
        .await
        .unwrap();
    s.user("carol").await;
    wait_for(|| slow.lock().unwrap().bodies.len() >= 2).await;
    wait_for(|| !gone.lock().unwrap().bodies.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ep = s.store.get_webhook(&gone_ep.id).await.unwrap().unwrap();
    assert!(!ep.enabled);
    assert_eq!(ep.state, "disabled");
    s.user("dave").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        gone.lock().unwrap().bodies.len(),
        1,
        "a disabled endpoint gets nothing more"
    );
}

#[tokio::test]
async fn filters_by_event_type_and_directory() {
    let Some(s) = TestServer::start_with(fast_config()).await else {
        return;
    };
    let (url, got) = receiver(Arc::new(|_| Reply::Status(200))).await;
    let (other_dir, other_token) = s.other_directory().await;
    s.store
        .create_webhook(
            &roster_store::Actor::Cli,
            &url,
            WebhookFormat::Roster,
            &["dsync.group.created".into()],
            Some(&s.directory),
        )
        .await
        .unwrap();
    // A group in another directory must not be delivered to this endpoint.
    let other = format!("http://{}/scim/v2/{other_dir}/Groups", s.addr);
    let r = s
        .call_with(
            reqwest::Method::POST,
            &other,
            Some(serde_json::json!({"displayName": "Other"})),
            &other_token,
            &[],
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::CREATED);
    s.user("erin").await;
    s.post("/Groups", serde_json::json!({"displayName": "G"}))
        .await;
    wait_for(|| !got.lock().unwrap().bodies.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let g = got.lock().unwrap();
    assert_eq!(g.bodies.len(), 1);
    let e = event_of(&g.bodies[0].1);
    assert_eq!(e["event"], "dsync.group.created");
    assert_eq!(e["data"]["name"], "G");
}

/// Starts Roster on an existing database; returns its store, a stop
/// switch and the task that ends once the server and dispatcher have stopped.
async fn roster_on(
    place: &crate::support::Place,
    config: ServerConfig,
) -> (
    Arc<dyn roster_store::Store>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let reg = Arc::new(roster_server::build_registry(&config).unwrap());
    let store = place.open(reg.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(roster_server::serve(
        listener,
        store.clone(),
        reg,
        config,
        async {
            let _ = stopped.await;
        },
    ));
    (store, stop, task)
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_backlog_loses_no_delivery() {
    const EVENTS: usize = 10_000;
    roster_server::install_crypto_provider();
    let Some(place) = crate::support::place() else {
        return;
    };
    let (url, got) = receiver(Arc::new(|_| Reply::Status(200))).await;

    // Build the backlog with deliveries off, in one transaction.
    let quiet = ServerConfig {
        webhooks_enabled: false,
        ..fast_config()
    };
    let (store, stop, task) = roster_on(&place, quiet.clone()).await;
    let directory = store
        .create_directory(&roster_store::Actor::Cli, "backlog")
        .await
        .unwrap()
        .id;
    store
        .create_webhook(
            &roster_store::Actor::Cli,
            &url,
            WebhookFormat::Roster,
            &["dsync.user.created".into()],
            None,
        )
        .await
        .unwrap();
    roster_store::in_transaction(store.as_ref(), &directory, |tx| {
        for i in 0..EVENTS {
            tx.create(roster_store::NewResource {
                kind: roster_store::Kind::User,
                doc: serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("u{i}")
                }),
                members: Vec::new(),
                groups: Vec::new(),
            })?;
        }
        Ok(())
    })
    .await
    .unwrap();
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    drop(store);

    // Deliver part of it, stop Roster, start it again on the same database.
    let (_, stop, task) = roster_on(&place, fast_config()).await;
    wait_for(|| got.lock().unwrap().bodies.len() >= 1_500).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let before_restart = got.lock().unwrap().bodies.len();
    assert!(
        before_restart < EVENTS,
        "the restart must come in the middle of the backlog"
    );
    let (_, stop, task) = roster_on(&place, fast_config()).await;
    for _ in 0..2400 {
        let ids: std::collections::HashSet<String> = got
            .lock()
            .unwrap()
            .bodies
            .iter()
            .map(|(h, _)| h["roster-event-id"].to_str().unwrap().to_owned())
            .collect();
        if ids.len() == EVENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let g = got.lock().unwrap();
    let ids: Vec<String> = g
        .bodies
        .iter()
        .map(|(h, _)| h["roster-event-id"].to_str().unwrap().to_owned())
        .collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), EVENTS, "every event delivered at least once");
    // At-least-once: a restart may re-send the unsaved tail of a batch, never more.
    assert!(
        ids.len() - EVENTS <= 100,
        "{} duplicates",
        ids.len() - EVENTS
    );
    assert_repeats_marked(&g.bodies);
}

/// Every event arrived at most once as a first attempt: a receiver tells a
/// repeat by its attempt header alone.
fn assert_repeats_marked(bodies: &[(HeaderMap, Bytes)]) {
    let mut first = HashSet::new();
    for (h, _) in bodies {
        if h["roster-delivery-attempt"] == "1" {
            let id = h["roster-event-id"].to_str().unwrap();
            assert!(
                first.insert(id.to_owned()),
                "{id} arrived twice as attempt 1"
            );
        }
    }
}

#[tokio::test]
async fn a_backlog_is_delivered_without_a_poll_interval_between_batches() {
    const EVENTS: usize = 1_000;
    // A slow poll: waiting it out between batches of 100 would take 20 s.
    let Some(s) = TestServer::start_with(ServerConfig {
        webhook_poll_ms: 2_000,
        ..fast_config()
    })
    .await
    else {
        return;
    };
    let (url, got) = receiver(Arc::new(|_| Reply::Status(200))).await;
    s.store
        .create_webhook(
            &roster_store::Actor::Cli,
            &url,
            WebhookFormat::Roster,
            &["dsync.user.created".into()],
            None,
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    roster_store::in_transaction(s.store.as_ref(), &s.directory, |tx| {
        for i in 0..EVENTS {
            tx.create(roster_store::NewResource {
                kind: roster_store::Kind::User,
                doc: serde_json::json!({"userName": format!("u{i}")}),
                members: Vec::new(),
                groups: Vec::new(),
            })?;
        }
        Ok(())
    })
    .await
    .unwrap();
    for _ in 0..1200 {
        if got.lock().unwrap().bodies.len() >= EVENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let took = started.elapsed();
    assert_eq!(got.lock().unwrap().bodies.len(), EVENTS);
    assert!(
        took < Duration::from_secs(12),
        "{EVENTS} events took {took:?}: the dispatcher paused between batches"
    );
}

/// A small deterministic generator: which requests a receiver fails.
fn coin(n: usize, seed: u64) -> u64 {
    let mut z = (n as u64)
        .wrapping_add(seed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 31)
}

/// The resource an event orders by: its user, or its group (membership
/// events with their group).
fn resource_of(e: &Value) -> String {
    match e["event"].as_str().unwrap() {
        "dsync.group.user_added" | "dsync.group.user_removed" => {
            format!("group {}", e["data"]["group"]["id"].as_str().unwrap())
        }
        t => format!(
            "{} {}",
            t.split('.').nth(1).unwrap(),
            e["data"]["id"].as_str().unwrap()
        ),
    }
}

#[tokio::test]
async fn per_resource_order_holds_under_random_failures() {
    const USERS: usize = 12;
    const ROUNDS: usize = 4;
    let Some(s) = TestServer::start_with(ServerConfig {
        webhook_backoff_base_ms: 5,
        webhook_backoff_max_secs: 1,
        ..fast_config()
    })
    .await
    else {
        return;
    };
    // A quarter of all requests fail, wherever they fall.
    let (url, got) = receiver(Arc::new(|n| {
        Reply::Status(if coin(n, 7).is_multiple_of(4) {
            500
        } else {
            200
        })
    }))
    .await;
    let (endpoint, _) = s
        .store
        .create_webhook(
            &roster_store::Actor::Cli,
            &url,
            roster_store::webhooks::WebhookFormat::Roster,
            &[],
            None,
        )
        .await
        .unwrap();
    let group = s.group("G", &[]).await;
    for round in 0..ROUNDS {
        let mut ids = Vec::new();
        for u in 0..USERS {
            ids.push(s.user(&format!("u{round}-{u}")).await);
        }
        for (u, id) in ids.iter().enumerate() {
            for v in 0..3 {
                let r = s
                    .patch(
                        &format!("/Users/{id}"),
                        serde_json::json!({
                            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "replace", "path": "title", "value": format!("t{v}")}]
                        }),
                    )
                    .await;
                assert_eq!(r.status, reqwest::StatusCode::OK, "{:?}", r.body);
            }
            if u % 3 == 0 {
                let op = serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]
                });
                let r = s.patch(&format!("/Groups/{group}"), op).await;
                assert_eq!(r.status, reqwest::StatusCode::OK, "{:?}", r.body);
            }
        }
        for id in ids.iter().step_by(2) {
            let r = s.delete(&format!("/Users/{id}")).await;
            assert_eq!(r.status, reqwest::StatusCode::NO_CONTENT);
        }
    }
    // From the endpoint's creation on.
    let committed = s
        .store
        .list_events(endpoint.cursor, 100_000, &[], None)
        .await
        .unwrap();
    let want: HashSet<String> = committed.iter().map(|e| e.id()).collect();
    // Wait (bounded) until every event arrived with a 200.
    let mut delivered = HashSet::new();
    for _ in 0..1200 {
        delivered = {
            let g = got.lock().unwrap();
            g.bodies
                .iter()
                .zip(&g.answers)
                .filter(|(_, (_, code))| *code == 200)
                .map(|((_, b), _)| event_of(b)["id"].as_str().unwrap().to_owned())
                .collect()
        };
        if delivered.len() >= want.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let missing: Vec<&String> = want.difference(&delivered).collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert_eq!(delivered.len(), want.len());
    let g = got.lock().unwrap();
    let failures = g.answers.iter().filter(|(_, c)| *c != 200).count();
    assert!(
        failures > 10,
        "the receiver failed only {failures} requests"
    );
    // Per resource, first successful arrivals in commit (event id) order.
    let mut seen = HashSet::new();
    let mut per: HashMap<String, Vec<String>> = HashMap::new();
    for ((_, b), (_, code)) in g.bodies.iter().zip(&g.answers) {
        let e = event_of(b);
        let id = e["id"].as_str().unwrap().to_owned();
        if *code == 200 && seen.insert(id.clone()) {
            per.entry(resource_of(&e)).or_default().push(id);
        }
    }
    assert!(per.len() > USERS, "{} resources", per.len());
    for (resource, ids) in &per {
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, &sorted, "{resource}: arrivals out of commit order");
    }
    // Different resources went out side by side: the failures did not hold
    // the whole endpoint (some event arrived before an older one of another
    // resource).
    let mut seen = HashSet::new();
    let order: Vec<String> = g
        .bodies
        .iter()
        .zip(&g.answers)
        .filter(|(_, (_, c))| *c == 200)
        .map(|((_, b), _)| event_of(b)["id"].as_str().unwrap().to_owned())
        .filter(|id| seen.insert(id.clone()))
        .collect();
    assert!(order.windows(2).any(|w| w[0] > w[1]));
}

#[tokio::test]
async fn a_failing_endpoint_does_not_delay_a_healthy_one() {
    let Some(s) = TestServer::start_with(ServerConfig {
        webhook_timeout_secs: 2,
        // Less than two endpoints' worth of requests in flight.
        webhook_concurrency: 40,
        ..fast_config()
    })
    .await
    else {
        return;
    };
    // Half its requests hang until the timeout, the rest fail at once.
    let (bad_url, bad) = receiver(Arc::new(|n| {
        if n % 2 == 0 {
            Reply::Hang(Duration::from_secs(5))
        } else {
            Reply::Status(503)
        }
    }))
    .await;
    let (good_url, good) = receiver(Arc::new(|_| Reply::Status(200))).await;
    s.store
        .create_webhook(
            &roster_store::Actor::Cli,
            &bad_url,
            roster_store::webhooks::WebhookFormat::Roster,
            &[],
            None,
        )
        .await
        .unwrap();
    s.store
        .create_webhook(
            &roster_store::Actor::Cli,
            &good_url,
            roster_store::webhooks::WebhookFormat::Roster,
            &[],
            None,
        )
        .await
        .unwrap();
    let mut committed: HashMap<String, Instant> = HashMap::new();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(4) {
        let name = format!("lag{n}");
        s.user(&name).await;
        committed.insert(name, Instant::now());
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for(|| good.lock().unwrap().bodies.len() >= n).await;
    let g = good.lock().unwrap();
    let mut worst = Duration::ZERO;
    for ((_, b), (at, _)) in g.bodies.iter().zip(&g.answers) {
        let name = event_of(b)["data"]["username"].as_str().unwrap().to_owned();
        worst = worst.max(at.saturating_duration_since(committed[&name]));
    }
    assert!(
        bad.lock().unwrap().bodies.len() > 10,
        "the failing endpoint was tried"
    );
    assert!(
        worst < Duration::from_secs(1),
        "the healthy endpoint lagged {worst:?}"
    );
}

#[tokio::test]
async fn a_429_retry_after_is_honoured() {
    let Some(s) = TestServer::start_with(fast_config()).await else {
        return;
    };
    let (url, got) = receiver(Arc::new(|n| {
        if n == 0 {
            Reply::TooMany(2)
        } else {
            Reply::Status(200)
        }
    }))
    .await;
    let (endpoint, _) = s
        .store
        .create_webhook(
            &roster_store::Actor::Cli,
            &url,
            roster_store::webhooks::WebhookFormat::Roster,
            &[],
            None,
        )
        .await
        .unwrap();
    s.user("limited").await;
    wait_for(|| got.lock().unwrap().bodies.len() >= 2).await;
    {
        let g = got.lock().unwrap();
        let gap = g.answers[1].0 - g.answers[0].0;
        // Backoff alone (fast_config) would retry within a second.
        assert!(gap >= Duration::from_millis(1_900), "retried after {gap:?}");
        assert_eq!(g.bodies[1].0["roster-delivery-attempt"], "2");
    }
    for _ in 0..200 {
        let log = s.store.webhook_deliveries(&endpoint.id, 10).await.unwrap();
        if log.iter().any(|d| d.status == "succeeded") {
            assert!(log.iter().any(|d| d.response_code == Some(429)));
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the success was never recorded");
}

#[tokio::test]
async fn batches_are_json_arrays_signed_as_one_body() {
    const EVENTS: usize = 45;
    let Some(s) = TestServer::start_with(fast_config()).await else {
        return;
    };
    let (url, got) = receiver(Arc::new(|_| Reply::Status(200))).await;
    let options = roster_store::webhooks::DeliveryOptions {
        max_in_flight: Some(2),
        batch_max_events: 10,
        batch_max_wait_ms: 300,
    };
    let (endpoint, secret) = s
        .store
        .create_webhook_with(
            &roster_store::Actor::Cli,
            &url,
            WebhookFormat::Roster,
            &["dsync.user.created".into()],
            None,
            options,
        )
        .await
        .unwrap();
    assert_eq!(endpoint.to_json()["batch_max_events"], 10);
    roster_store::in_transaction(s.store.as_ref(), &s.directory, |tx| {
        for i in 0..EVENTS {
            tx.create(roster_store::NewResource {
                kind: roster_store::Kind::User,
                doc: serde_json::json!({"userName": format!("b{i}")}),
                members: Vec::new(),
                groups: Vec::new(),
            })?;
        }
        Ok(())
    })
    .await
    .unwrap();
    let count = |g: &Received| {
        g.bodies
            .iter()
            .map(|(_, b)| event_of(b).as_array().unwrap().len())
            .sum::<usize>()
    };
    wait_for(|| count(&got.lock().unwrap()) >= EVENTS).await;
    let g = got.lock().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut ids = Vec::new();
    for (headers, body) in &g.bodies {
        let sig = headers["roster-signature"].to_str().unwrap();
        verify(&secret, sig, body, now, 300).unwrap();
        let events = event_of(body);
        let events = events.as_array().unwrap();
        assert!(events.len() <= 10);
        assert_eq!(
            headers["roster-event-count"],
            events.len().to_string().as_str()
        );
        ids.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
    }
    assert!(g.bodies.len() < EVENTS / 2, "{} requests", g.bodies.len());
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), EVENTS);
}

#[tokio::test]
async fn the_api_takes_and_checks_delivery_options() {
    let Some(s) = TestServer::start_with(fast_config()).await else {
        return;
    };
    let (_, key) = s
        .store
        .create_admin_key(&roster_store::Actor::Cli, "hooks", &Default::default())
        .await
        .unwrap();
    let post = |body: Value| {
        let c = s.client.clone();
        let url = format!("http://{}/api/v1/webhooks", s.addr);
        let key = key.clone();
        async move {
            let r = c
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = post(serde_json::json!({
        "url": "http://127.0.0.1:9/hook",
        "max_in_flight": 4,
        "batch_max_events": 50,
        "batch_max_wait_ms": 250
    }))
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    assert_eq!(body["max_in_flight"], 4);
    assert_eq!(body["batch_max_events"], 50);
    assert_eq!(body["batch_max_wait_ms"], 250);
    let (status, body) = post(serde_json::json!({"url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    assert_eq!(body["max_in_flight"], Value::Null);
    assert_eq!(body["batch_max_events"], 1);
    for bad in [
        serde_json::json!({"url": "http://127.0.0.1:9/hook", "max_in_flight": 0}),
        serde_json::json!({"url": "http://127.0.0.1:9/hook", "batch_max_events": 0}),
        serde_json::json!({"url": "http://127.0.0.1:9/hook", "batch_max_events": 100_000}),
    ] {
        let (status, body) = post(bad).await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    }
}
