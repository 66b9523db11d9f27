//! Webhook delivery against real HTTP receivers started by the tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

#[derive(Default)]
struct Received {
    bodies: Vec<(HeaderMap, Bytes)>,
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
                    let n = {
                        let mut g = got.lock().unwrap();
                        g.bodies.push((headers, body));
                        g.bodies.len() - 1
                    };
                    match script(n) {
                        Reply::Status(code) => StatusCode::from_u16(code).unwrap(),
                        Reply::Hang(d) => {
                            tokio::time::sleep(d).await;
                            StatusCode::OK
                        }
                    }
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
        .create_webhook(&url, WebhookFormat::Roster, &[], None)
        .await
        .unwrap();
    s.user("alice").await;
    s.user("bob").await;
    wait_for(|| got.lock().unwrap().bodies.len() >= 4).await;
    let g: Vec<(HeaderMap, Bytes)> = got.lock().unwrap().bodies.clone();
    let events: Vec<String> = g
        .iter()
        .map(|(_, b)| event_of(b)["data"]["username"].as_str().unwrap().to_owned())
        .collect();
    // At least the two failed attempts and the accepted one at alice, all
    // before bob: order holds through retries.
    let first_bob = events.iter().position(|e| e == "bob").unwrap();
    assert!(first_bob >= 3, "{events:?}");
    assert!(
        events[..first_bob].iter().all(|e| e == "alice"),
        "{events:?}"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (headers, body) in &g {
        let sig = headers["roster-signature"].to_str().unwrap();
        verify(&secret, sig, body, now, 300).unwrap();
    }
    assert_eq!(g[2].0["roster-delivery-attempt"], "3");
    assert_eq!(g[0].0["roster-delivery-attempt"], "1");
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
        .create_webhook(&gone_url, WebhookFormat::Roster, &[], None)
        .await
        .unwrap();
    s.store
        .create_webhook(&slow_url, WebhookFormat::Roster, &[], None)
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
    let directory = store.create_directory("backlog").await.unwrap().id;
    store
        .create_webhook(
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
    // Per endpoint, delivery order is event order.
    let first_seen: Vec<&String> = {
        let mut seen = std::collections::HashSet::new();
        ids.iter().filter(|i| seen.insert(*i)).collect()
    };
    let mut sorted = first_seen.clone();
    sorted.sort();
    assert_eq!(first_seen, sorted);
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
