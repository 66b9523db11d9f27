//! Webhook signing secrets encrypted at rest when `secret_key` is set: the
//! stored column is not the secret, deliveries still verify, rotation works,
//! secrets stored before the key was set are encrypted at the next start,
//! and a wrong or missing key stops `roster serve` at startup, naming the
//! endpoint. Keys rotate through `previous_secret_keys`: at `roster serve`
//! start and with `roster secret-key rotate`.

use std::time::Duration;

use roster_testkit::poll;
use serde_json::json;

use crate::support::{Receiver, Roster, Server, request};

/// Two different keys, 32 bytes in base64 as `openssl rand -base64 32` prints them.
const KEY: &str = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
const OTHER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const THIRD_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn stored_secrets(r: &Roster) -> Vec<(String, String)> {
    let c = rusqlite::Connection::open(r.dir.path().join("roster.db")).unwrap();
    let mut q = c
        .prepare("SELECT id, secret FROM webhook_endpoints ORDER BY id")
        .unwrap();
    q.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn config(r: &Roster, key: Option<&str>) -> std::path::PathBuf {
    let mut text = "webhook_poll_ms = 50\n".to_owned();
    if let Some(k) = key {
        text.push_str(&format!("secret_key = \"{k}\"\n"));
    }
    r.config(&text)
}

/// Creates a user and waits for its delivery; checks the signature with `secret`.
async fn deliver_and_verify(
    server: &Server,
    receiver: &Receiver,
    dir: &str,
    token: &str,
    user: &str,
    secret: &str,
) {
    let before = receiver.seen.lock().unwrap().len();
    let (status, body) = request(
        server.addr(),
        "POST",
        &format!("/scim/v2/{dir}/Users"),
        token,
        Some(&json!({"userName": user})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let raw = poll::until(
        "a delivery",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            if let Some((_, raw)) = receiver.seen.lock().unwrap().get(before) {
                return Ok(raw.clone());
            }
            // The log is read only if time runs out.
            Err(std::fmt::from_fn(|f| {
                write!(f, "none; roster serve's log:\n{}", server.log_text())
            }))
        },
    )
    .await;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let header = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("roster-signature")
                .then(|| v.trim().to_owned())
        })
        .expect("a Roster-Signature header");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    roster_client::webhook::verify(secret, &header, body.as_bytes(), now, 300)
        .unwrap_or_else(|e| panic!("the delivery does not verify with the secret: {e:?}"));
    assert!(body.contains(user), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_secrets_are_encrypted_at_rest_and_still_sign() {
    roster_server::install_crypto_provider();
    let receiver = Receiver::start(Duration::ZERO).await;
    let r = Roster::new();
    let d = r.json(&["directory", "create", "acme"]);
    let (dir, token) = (d["id"].as_str().unwrap(), d["token"].as_str().unwrap());
    let key = r.json(&["admin-key", "create", "ops"]);
    let admin = key["key"].as_str().unwrap();

    // An endpoint added before any key: stored in plaintext, as before.
    let old = r.json(&["webhook", "add", &receiver.url]);
    let old_id = old["id"].as_str().unwrap().to_owned();
    let old_secret = old["secret"].as_str().unwrap().to_owned();
    assert_eq!(stored_secrets(&r), [(old_id.clone(), old_secret.clone())]);

    // With the key (here from the environment), a new endpoint's secret is stored encrypted.
    let new = r.json_with(
        &["webhook", "add", &receiver.url],
        &[("ROSTER_SECRET_KEY", KEY)],
    );
    let new_id = new["id"].as_str().unwrap().to_owned();
    let new_secret = new["secret"].as_str().unwrap().to_owned();
    let stored: std::collections::HashMap<_, _> = stored_secrets(&r).into_iter().collect();
    assert!(
        stored[&new_id].starts_with("enc:v1:"),
        "{}",
        stored[&new_id]
    );
    assert!(!stored[&new_id].contains(&new_secret));
    assert_eq!(stored[&old_id], old_secret, "not touched by the CLI");

    // Starting with the key (from the file) encrypts the plaintext one too.
    let with_key = config(&r, Some(KEY));
    let server = r.serve(Some(&with_key), "info");
    for (id, value) in stored_secrets(&r) {
        assert!(value.starts_with("enc:v1:"), "{id}: {value}");
        assert!(!value.contains("whsec_"), "{id}: {value}");
    }
    assert!(
        server.log_text().contains("encrypted webhook secrets"),
        "{}",
        server.log_text()
    );
    // Both endpoints get every event, signed with their own secret. Only the
    // old one is checked by signature here: deliveries to the two endpoints
    // interleave, so pick the old endpoint by disabling the new one.
    let disable = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/webhooks/{new_id}/disable")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), 200);
    deliver_and_verify(&server, &receiver, dir, token, "alice", &old_secret).await;
    let toggle = |id: String, on: bool| {
        let url = server.url(&format!(
            "/api/v1/webhooks/{id}/{}",
            if on { "enable" } else { "disable" }
        ));
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(admin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    toggle(old_id.clone(), false).await;
    toggle(new_id.clone(), true).await;
    // The new endpoint starts where its cursor stood: alice's event first.
    receiver.at_least(2, Duration::from_secs(20)).await;
    deliver_and_verify(&server, &receiver, dir, token, "bob", &new_secret).await;

    // Rotation: the new secret is shown once, stored encrypted, and signs.
    let rotated: serde_json::Value = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/webhooks/{new_id}/rotate_secret")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(rotated_secret, new_secret);
    let stored: std::collections::HashMap<_, _> = stored_secrets(&r).into_iter().collect();
    assert!(stored[&new_id].starts_with("enc:v1:"));
    assert!(!stored[&new_id].contains(&rotated_secret));
    deliver_and_verify(&server, &receiver, dir, token, "carol", &rotated_secret).await;
    // The API never shows a stored secret.
    let listed = reqwest::Client::new()
        .get(server.url("/api/v1/webhooks"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains("enc:v1:") && !listed.contains("whsec_"),
        "{listed}"
    );
    drop(server);

    // A wrong key, or none, stops the start and names the endpoint.
    let (ok, log) = r.serve_fails(Some(&config(&r, Some(OTHER_KEY))));
    assert!(!ok);
    assert!(
        log.contains("does not decrypt the secret of webhook"),
        "{log}"
    );
    let (ok, log) = r.serve_fails(Some(&config(&r, None)));
    assert!(!ok);
    assert!(log.contains("no secret_key is configured"), "{log}");
    // A malformed key is refused before anything else.
    let (ok, log) = r.serve_fails(Some(&config(&r, Some("c2hvcnQ="))));
    assert!(!ok);
    assert!(log.contains("must be 32 bytes"), "{log}");
    assert!(!log.contains("c2hvcnQ"), "the key was echoed: {log}");
    // With the right key it starts again (the config file was rewritten above).
    let _server = r.serve(Some(&config(&r, Some(KEY))), "info");
}

/// `previous_secret_keys` in the config file, as a TOML list.
fn config_with_previous(r: &Roster, key: &str, previous: &[&str]) -> std::path::PathBuf {
    let list: Vec<String> = previous.iter().map(|k| format!("\"{k}\"")).collect();
    r.config(&format!(
        "webhook_poll_ms = 50\nsecret_key = \"{key}\"\nprevious_secret_keys = [{}]\n",
        list.join(", ")
    ))
}

fn rotate(r: &Roster, key: &str, previous: &str) -> std::process::Output {
    r.run_with(
        &["secret-key", "rotate", "--json"],
        &[
            ("ROSTER_SECRET_KEY", key),
            ("ROSTER_PREVIOUS_SECRET_KEYS", previous),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_keys_rotate_by_command_and_at_start_through_previous_keys() {
    roster_server::install_crypto_provider();
    let receiver = Receiver::start(Duration::ZERO).await;
    let r = Roster::new();
    let d = r.json(&["directory", "create", "acme"]);
    let (dir, token) = (d["id"].as_str().unwrap(), d["token"].as_str().unwrap());
    let with_key = [("ROSTER_SECRET_KEY", KEY)];
    let a = r.json_with(&["webhook", "add", &receiver.url], &with_key);
    r.json_with(&["webhook", "add", &receiver.url], &with_key);
    let a_id = a["id"].as_str().unwrap().to_owned();
    let a_secret = a["secret"].as_str().unwrap().to_owned();
    let under_key = stored_secrets(&r);

    // Without the old key nothing opens them, and nothing changes: one transaction.
    let out = rotate(&r, OTHER_KEY, "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not decrypt the secret of webhook"),
        "{err}"
    );
    assert_eq!(stored_secrets(&r), under_key);

    // With it as a previous key, both move to the new key; a second run finds nothing to do.
    let out = rotate(&r, OTHER_KEY, KEY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(counted["reencrypted"], 2);
    let under_other = stored_secrets(&r);
    for ((id, before), (_, after)) in under_key.iter().zip(&under_other) {
        assert_ne!(before, after, "{id}");
        assert!(after.starts_with("enc:v1:"), "{id}: {after}");
    }
    let again = rotate(&r, OTHER_KEY, KEY);
    let counted: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(counted["reencrypted"], 0);
    assert_eq!(stored_secrets(&r), under_other);
    // The old key alone no longer opens them: they really are under the new one.
    let (ok, log) = r.serve_fails(Some(&config(&r, Some(KEY))));
    assert!(!ok && log.contains("previous_secret_keys"), "{log}");

    // An instance not yet moved (the old key current, the new one previous)
    // reads them, and writes what only it would have written: under its own key.
    let c = r.json_with(
        &["webhook", "add", &receiver.url],
        &[
            ("ROSTER_SECRET_KEY", THIRD_KEY),
            ("ROSTER_PREVIOUS_SECRET_KEYS", OTHER_KEY),
        ],
    );
    let c_id = c["id"].as_str().unwrap().to_owned();
    // Starting with the new key re-encrypts that one (and only that one) at once.
    let server = r.serve(
        Some(&config_with_previous(&r, OTHER_KEY, &[THIRD_KEY])),
        "info",
    );
    assert!(
        server.log_text().contains("encrypted webhook secrets")
            && server.log_text().contains("endpoints=1"),
        "{}",
        server.log_text()
    );
    let now: std::collections::HashMap<_, _> = stored_secrets(&r).into_iter().collect();
    for (id, value) in &under_other {
        assert_eq!(&now[id], value, "{id} was already under the current key");
    }
    assert!(now[&c_id].starts_with("enc:v1:"));
    // Deliveries still sign with each endpoint's own secret: only `a` stays enabled.
    let admin = r.json(&["admin-key", "create", "ops"]);
    let admin = admin["key"].as_str().unwrap();
    for id in now.keys() {
        if *id != a_id {
            let resp = reqwest::Client::new()
                .post(server.url(&format!("/api/v1/webhooks/{id}/disable")))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    }
    deliver_and_verify(&server, &receiver, dir, token, "dora", &a_secret).await;
    drop(server);
    // The previous keys can go now: the new key alone starts.
    let _server = r.serve(Some(&config(&r, Some(OTHER_KEY))), "info");
}

#[test]
fn previous_keys_are_checked_and_never_echoed() {
    let r = Roster::new();
    let out = r.run_with(
        &["directory", "list"],
        &[
            ("ROSTER_SECRET_KEY", KEY),
            (
                "ROSTER_PREVIOUS_SECRET_KEYS",
                &format!("{OTHER_KEY},c2hvcnQ="),
            ),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("previous_secret_keys[1]") && err.contains("32 bytes"),
        "{err}"
    );
    assert!(
        !err.contains("c2hvcnQ") && !err.contains(OTHER_KEY),
        "a key was echoed: {err}"
    );
    // Previous keys only decrypt: without a current key there is nothing to move to.
    let out = r.run_with(
        &["directory", "list"],
        &[("ROSTER_PREVIOUS_SECRET_KEYS", KEY)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secret_key is not"), "{err}");
    let out = r.run_with(&["secret-key", "rotate"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no secret_key is configured"), "{err}");
}
