//! Secrets never reach the log: a real `roster serve` at trace level handles
//! tokens, admin keys, webhook secrets and passwords, and none of them, nor a
//! password hash, appears in what it wrote, as text or as JSON lines.

use std::time::Duration;

use roster_testkit::poll;
use serde_json::{Value, json};

use crate::support::{Receiver, Roster, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_text_log_or_error_bodies() {
    secrets_stay_out_of("text").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_json_log_or_error_bodies() {
    secrets_stay_out_of("json").await;
}

/// Drives traffic carrying every kind of secret through a server whose log
/// is in `format` (`log_format`), then searches the whole log for them.
async fn secrets_stay_out_of(format: &str) {
    let receiver = Receiver::start(Duration::from_millis(0)).await;
    let r = Roster::new();
    let d = r.json(&["directory", "create", "acme"]);
    let (dir, token) = (d["id"].as_str().unwrap(), d["token"].as_str().unwrap());
    let admin = r.json(&["admin-key", "create", "ops"]);
    let admin_key = admin["key"].as_str().unwrap();
    let config = r.config("webhook_poll_ms = 50\n");
    let server = r.serve_with(Some(&config), "trace", &[("ROSTER_LOG_FORMAT", format)]);
    let addr = server.addr();
    let scim = |p: &str| format!("/scim/v2/{dir}{p}");

    // Webhook secrets: created and rotated through the API, then used to sign.
    let (status, body) = request(
        addr,
        "POST",
        "/api/v1/webhooks",
        admin_key,
        Some(&json!({"url": receiver.url})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let hook: Value = serde_json::from_str(&body).unwrap();
    let first_secret = hook["secret"].as_str().unwrap().to_owned();
    let (status, body) = request(
        addr,
        "POST",
        &format!(
            "/api/v1/webhooks/{}/rotate_secret",
            hook["id"].as_str().unwrap()
        ),
        admin_key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let second_secret = serde_json::from_str::<Value>(&body).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    // Passwords on every write path.
    let passwords = [
        "Create-Pa55word-7f3a",
        "Replace-Pa55word-91c2",
        "Patch-Pa55word-4d0e",
        "Bulk-Pa55word-b6a8",
    ];
    let (status, body) = request(
        addr,
        "POST",
        &scim("/Users"),
        token,
        Some(&json!({"userName": "ada", "password": passwords[0]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = request(
        addr,
        "PUT",
        &scim(&format!("/Users/{id}")),
        token,
        Some(&json!({"userName": "ada", "password": passwords[1]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(
        addr,
        "PATCH",
        &scim(&format!("/Users/{id}")),
        token,
        Some(
            &json!({"Operations": [{"op": "replace", "path": "password", "value": passwords[2]}]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(
        addr,
        "POST",
        &scim("/Bulk"),
        token,
        Some(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{"method": "POST", "path": "/Users", "bulkId": "b",
                            "data": {"userName": "bob", "password": passwords[3]}}]
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Wrong credentials: neither the log nor the answer repeats them.
    let wrong_token = "rst_wrong0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
    let wrong_key = "rak_wrong0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
    let (status, body) = request(addr, "GET", &scim("/Users"), wrong_token, None).await;
    assert_eq!(status, 401);
    assert!(!body.contains(wrong_token), "{body}");
    let (status, body) = request(addr, "GET", "/api/v1/directories", wrong_key, None).await;
    assert_eq!(status, 401);
    assert!(!body.contains(wrong_key), "{body}");
    // A token on another directory's path, and an admin key on SCIM.
    let (status, body) = request(addr, "GET", "/scim/v2/elsewhere/Users", token, None).await;
    assert_eq!(status, 404);
    assert!(!body.contains(token), "{body}");
    let (status, body) = request(addr, "GET", &scim("/Users"), admin_key, None).await;
    assert_eq!(status, 401);
    assert!(!body.contains(admin_key), "{body}");

    // Let signed deliveries happen (the two creates; password changes alone
    // are not reported to apps).
    poll::until(
        "two webhook deliveries",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            let delivered = receiver.ids().len();
            if delivered >= 2 {
                return Ok(());
            }
            // The log is read only if time runs out.
            let server = &server;
            Err(std::fmt::from_fn(move |f| {
                write!(f, "{delivered}; roster serve's log:\n{}", server.log_text())
            }))
        },
    )
    .await;
    server.terminate();
    server
        .wait_exit(Duration::from_secs(20))
        .expect("did not exit");
    let log = server.log_text();
    assert!(
        log.contains("Roster is serving") && log.contains("request"),
        "the log was not captured:\n{log}"
    );
    let mut secrets: Vec<(&str, &str)> = vec![
        ("SCIM token", token),
        ("admin key", admin_key),
        ("webhook secret", &first_secret),
        ("rotated webhook secret", &second_secret),
        ("wrong token", wrong_token),
        ("wrong admin key", wrong_key),
        ("password hash", "$argon2"),
    ];
    for p in &passwords {
        secrets.push(("password", p));
    }
    for (what, secret) in secrets {
        assert!(
            !log.contains(secret),
            "the {what} appears in the {format} log"
        );
    }
    if format == "json" {
        check_json_lines(&log, dir);
    }
}

/// Every line of a JSON log is one object, and each answered request has
/// its line with the request id, directory, route, status and latency.
fn check_json_lines(log: &str, dir: &str) {
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["level"].is_string(), "{line}");
        assert!(line.get("message").is_some(), "{line}");
    }
    let created = lines
        .iter()
        .find(|l| {
            l["message"] == "request" && l["route"] == "/scim/v2/{dir}/Users" && l["status"] == 201
        })
        .unwrap_or_else(|| panic!("no access line for POST /Users in:\n{log}"));
    assert_eq!(created["directory_id"], dir, "{created}");
    assert_eq!(created["method"], "POST", "{created}");
    assert!(created["latency_ms"].as_f64().is_some(), "{created}");
    let id = created["request_id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "a request id: {created}");
    assert_eq!(created["span"]["request_id"], id, "{created}");
    assert_eq!(created["span"]["directory_id"], dir, "{created}");
    // A request whose token proved nothing names no directory.
    let refused = lines
        .iter()
        .find(|l| l["message"] == "request" && l["status"] == 401)
        .unwrap_or_else(|| panic!("no access line for a 401 in:\n{log}"));
    assert_eq!(refused["directory_id"], "-", "{refused}");
}
