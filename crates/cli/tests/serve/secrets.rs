//! Webhook signing secrets encrypted at rest when `secret_key` is set: the
//! stored column is not the secret, deliveries still verify, rotation works,
//! secrets stored before the key was set are encrypted at the next start,
//! and a wrong or missing key stops `roster serve` at startup, naming the
//! endpoint.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Receiver, Roster, Server, request};

/// Two different keys, 32 bytes in base64 as `openssl rand -base64 32` prints them.
const KEY: &str = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
const OTHER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

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
        server.addr,
        "POST",
        &format!("/scim/v2/{dir}/Users"),
        token,
        Some(&json!({"userName": user})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let waited = Instant::now();
    let raw = loop {
        if let Some((_, raw)) = receiver.seen.lock().unwrap().get(before) {
            break raw.clone();
        }
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "no delivery:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
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
        server.log().contains("encrypted webhook secrets"),
        "{}",
        server.log()
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
    let waited = Instant::now();
    while receiver.seen.lock().unwrap().len() < 2 {
        assert!(waited.elapsed() < Duration::from_secs(20), "no delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
