//! SIGTERM: stop accepting, finish requests in flight within
//! `shutdown_grace_secs`, stop the webhook dispatcher between deliveries and
//! release its leases.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{Receiver, Roster, read_reply, request};

/// Starts a POST /Users whose body is only half sent; returns the connection and the rest.
async fn half_sent_create(
    addr: std::net::SocketAddr,
    dir: &str,
    token: &str,
    user: &str,
) -> (TcpStream, String) {
    let body = json!({"userName": user}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut c = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /scim/v2/{dir}/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    (c, rest.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_refuses_new_ones() {
    let r = Roster::new();
    let d = r.json(&["directory", "create", "acme"]);
    let (dir, token) = (d["id"].as_str().unwrap(), d["token"].as_str().unwrap());
    let config = r.config("shutdown_grace_secs = 10\nwebhooks_enabled = false\n");
    let server = r.serve(Some(&config), "info");
    let addr = server.addr();

    let (mut c, rest) = half_sent_create(addr, dir, token, "in-flight").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The listener is closed: a new client is refused at once, not left waiting.
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a new connection was accepted after SIGTERM"
    );
    assert!(server.exited().is_none(), "exited with a request in flight");
    // The request in flight completes normally.
    c.write_all(rest.as_bytes()).await.unwrap();
    let (status, body) = read_reply(&mut c, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let (ok, _) = server
        .wait_exit(Duration::from_secs(10))
        .expect("roster serve did not exit after SIGTERM");
    assert!(ok, "exit status not success:\n{}", server.log_text());

    // What it acknowledged is there after a restart.
    let server = r.serve(Some(&config), "info");
    let (status, body) = request(
        server.addr(),
        "GET",
        &format!("/scim/v2/{dir}/Users?filter=userName%20eq%20%22in-flight%22"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("\"totalResults\":1"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_requests_still_running_after_the_grace_period() {
    let r = Roster::new();
    let d = r.json(&["directory", "create", "acme"]);
    let (dir, token) = (d["id"].as_str().unwrap(), d["token"].as_str().unwrap());
    let config = r.config(
        "shutdown_grace_secs = 1\nbody_read_timeout_secs = 120\nwebhooks_enabled = false\n",
    );
    let server = r.serve(Some(&config), "info");
    // A client that never finishes its body.
    let (_stuck, _) = half_sent_create(server.addr(), dir, token, "stuck").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    let (ok, took) = server
        .wait_exit(Duration::from_secs(10))
        .expect("roster serve waited for a stuck client past its grace period");
    assert!(ok, "{}", server.log_text());
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(
        server.log_text().contains("shutdown_grace_secs passed"),
        "{}",
        server.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_webhook_delivery_between_events_and_releases_the_lease() {
    let receiver = Receiver::start(Duration::from_millis(300)).await;
    let r = Roster::new();
    let d = r.json(&["directory", "create", "acme"]);
    let (dir, token) = (d["id"].as_str().unwrap(), d["token"].as_str().unwrap());
    // One request at a time, so that a stop falls between events.
    r.json(&["webhook", "add", &receiver.url, "--max-in-flight", "1"]);
    let config = r.config("webhook_poll_ms = 50\nshutdown_grace_secs = 10\n");

    let server = r.serve(Some(&config), "info");
    // One dsync.user.created per user (a new endpoint starts at the head of
    // the log, so the directory's dsync.activated is not among them).
    let users = 15;
    for i in 0..users {
        let (status, body) = request(
            server.addr(),
            "POST",
            &format!("/scim/v2/{dir}/Users"),
            token,
            Some(&json!({"userName": format!("u{i}")})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let total = users;
    receiver.at_least(3, Duration::from_secs(20)).await;
    server.terminate();
    let (ok, took) = server
        .wait_exit(Duration::from_secs(20))
        .expect("roster serve did not exit");
    assert!(ok, "{}", server.log_text());
    let before = receiver.ids().len();
    assert!(
        before < total,
        "everything was delivered before the test could stop it"
    );
    // Delivering the rest of the batch would take (total - before) × 300 ms.
    assert!(
        took < Duration::from_millis(2500),
        "shutdown took {took:?}: the dispatcher kept delivering"
    );

    // A new process (another lease owner) picks the endpoint up at once:
    // the old lease (60 s) was released, not left to expire.
    let _server = r.serve(Some(&config), "info");
    receiver.at_least(total, Duration::from_secs(20)).await;
    let mut ids = receiver.ids();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    // Progress was saved on the way out: nothing delivered twice.
    assert_eq!(ids.len(), n, "duplicates: {:?}", receiver.ids());
    assert_eq!(n, total);
}
