//! The audit log: one record per administrative change, by whom and about
//! what, written with the change; none for a failed change; never a secret.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use crate::support::TestServer;

/// Every record after `after` (an id, or the start), read in pages of `page`
/// by the API's cursor.
async fn records_after(s: &TestServer, key: &str, after: Option<&str>, page: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = after.map(str::to_owned);
    loop {
        let path = match &cursor {
            Some(c) => format!("/audit_log?limit={page}&after={c}"),
            None => format!("/audit_log?limit={page}"),
        };
        let r = api(s, key, Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let data = r.body["data"].as_array().unwrap().clone();
        if data.is_empty() {
            assert_eq!(r.body["list_metadata"]["after"].as_str(), cursor.as_deref());
            return out;
        }
        assert!(data.len() as u64 <= page);
        cursor = r.body["list_metadata"]["after"].as_str().map(str::to_owned);
        assert_eq!(cursor.as_deref(), data.last().unwrap()["id"].as_str());
        out.extend(data);
    }
}

/// The id of the newest record, to read what comes after it.
async fn head(s: &TestServer, key: &str) -> Option<String> {
    records_after(s, key, None, 1000)
        .await
        .last()
        .map(|r| r["id"].as_str().unwrap().to_owned())
}

fn created(r: &crate::support::Reply) -> Value {
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body.clone()
}

#[tokio::test]
async fn each_change_leaves_exactly_one_record_and_no_secret() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    let root_id = {
        let r = api(&s, &root, Method::GET, "/admin_keys", None).await;
        r.body["data"][0]["id"].as_str().unwrap().to_owned()
    };
    let start = head(&s, &root).await;
    assert!(start.is_some(), "the setup's own changes are audited");
    let mut secrets = vec![root.clone(), s.token.clone()];

    let d = created(
        &api(
            &s,
            &root,
            Method::POST,
            "/directories",
            Some(json!({"name": "Acme"})),
        )
        .await,
    );
    let dir = d["id"].as_str().unwrap().to_owned();
    let first_token = d["token_id"].as_str().unwrap().to_owned();
    secrets.push(d["token"].as_str().unwrap().to_owned());
    let ok = |r: crate::support::Reply| assert!(r.status.is_success(), "{:?}", r.body);
    ok(api(
        &s,
        &root,
        Method::PATCH,
        &format!("/directories/{dir}"),
        Some(json!({"name": "Acme 2"})),
    )
    .await);
    ok(api(
        &s,
        &root,
        Method::PUT,
        &format!("/directories/{dir}/settings"),
        Some(json!({"deactivation": "delete"})),
    )
    .await);
    let t = created(
        &api(
            &s,
            &root,
            Method::POST,
            &format!("/directories/{dir}/tokens"),
            None,
        )
        .await,
    );
    let token = t["id"].as_str().unwrap().to_owned();
    secrets.push(t["token"].as_str().unwrap().to_owned());
    let r = created(
        &api(
            &s,
            &root,
            Method::POST,
            &format!("/directories/{dir}/tokens/{token}/rotate"),
            Some(json!({"overlap_seconds": 0})),
        )
        .await,
    );
    secrets.push(r["token"].as_str().unwrap().to_owned());
    ok(api(
        &s,
        &root,
        Method::DELETE,
        &format!("/directories/{dir}/tokens/{first_token}"),
        None,
    )
    .await);
    let k = created(
        &api(
            &s,
            &root,
            Method::POST,
            "/admin_keys",
            Some(json!({"name": "app", "read_only": true, "directories": [dir]})),
        )
        .await,
    );
    let key_id = k["id"].as_str().unwrap().to_owned();
    secrets.push(k["key"].as_str().unwrap().to_owned());
    let r = api(
        &s,
        &root,
        Method::POST,
        &format!("/admin_keys/{key_id}/rotate"),
        None,
    )
    .await;
    secrets.push(r.body["key"].as_str().unwrap().to_owned());
    ok(api(
        &s,
        &root,
        Method::DELETE,
        &format!("/admin_keys/{key_id}"),
        None,
    )
    .await);
    let w = created(
        &api(
            &s,
            &root,
            Method::POST,
            "/webhooks",
            Some(
                json!({"url": "https://user:pw@hooks.example.com/in?sig=abc", "directory_id": dir}),
            ),
        )
        .await,
    );
    let hook = w["id"].as_str().unwrap().to_owned();
    secrets.push(w["secret"].as_str().unwrap().to_owned());
    ok(api(
        &s,
        &root,
        Method::POST,
        &format!("/webhooks/{hook}/disable"),
        None,
    )
    .await);
    let r = api(
        &s,
        &root,
        Method::POST,
        &format!("/webhooks/{hook}/rotate_secret"),
        None,
    )
    .await;
    secrets.push(r.body["secret"].as_str().unwrap().to_owned());
    ok(api(
        &s,
        &root,
        Method::DELETE,
        &format!("/webhooks/{hook}"),
        None,
    )
    .await);
    ok(api(
        &s,
        &root,
        Method::DELETE,
        &format!("/directories/{dir}"),
        None,
    )
    .await);
    // The CLI's changes go through the store with its own actor.
    let (_, cli_token) = s
        .store
        .issue_token(&roster_store::Actor::Cli, &s.directory)
        .await
        .unwrap();
    secrets.push(cli_token);

    let records = records_after(&s, &root, start.as_deref(), 3).await;
    let got: Vec<(String, String, String, String)> = records
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
                r["target"]["type"].as_str().unwrap().to_owned(),
                r["target"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let me = format!("admin_key:{root_id}");
    let new_token = records
        .iter()
        .find(|r| r["action"] == "token.issued" && r["actor"] == "cli")
        .map(|r| r["target"]["id"].as_str().unwrap().to_owned())
        .unwrap_or_default();
    let want: Vec<(String, String, String, String)> = [
        (me.as_str(), "directory.created", "directory", dir.as_str()),
        (&me, "directory.updated", "directory", &dir),
        (&me, "settings.updated", "directory", &dir),
        (&me, "token.issued", "token", &token),
        (&me, "token.rotated", "token", &token),
        (&me, "token.revoked", "token", &first_token),
        (&me, "admin_key.created", "admin_key", &key_id),
        (&me, "admin_key.rotated", "admin_key", &key_id),
        (&me, "admin_key.revoked", "admin_key", &key_id),
        (&me, "webhook.created", "webhook", &hook),
        (&me, "webhook.updated", "webhook", &hook),
        (&me, "webhook.updated", "webhook", &hook),
        (&me, "webhook.deleted", "webhook", &hook),
        (&me, "directory.deleted", "directory", &dir),
        ("cli", "token.issued", "token", &new_token),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    assert_eq!(got, want);

    // What each record says, beyond who and what.
    assert_eq!(records[0]["details"]["name"], "Acme");
    assert_eq!(
        records[1]["details"],
        json!({"changes": {"name": "Acme 2"}, "previous": {"name": "Acme"}})
    );
    assert_eq!(records[2]["details"], json!({"deactivation": "delete"}));
    assert_eq!(records[6]["details"]["access"], "read_only");
    assert_eq!(records[6]["details"]["directories"], json!([dir]));
    assert_eq!(records[9]["details"]["url"], "https://hooks.example.com/in");
    assert_eq!(records[10]["details"], json!({"enabled": false}));
    for (i, r) in records[..14].iter().enumerate() {
        let want = if (6..9).contains(&i) {
            Value::Null
        } else {
            json!(dir)
        };
        assert_eq!(r["target"]["directory_id"], want, "{r}");
    }
    assert!(records.iter().all(|r| r["at"].is_string()));

    // No secret anywhere in the whole log.
    let all = records_after(&s, &root, None, 1000).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret in the audit log: {secret}"
        );
    }
    assert!(!text.contains("pw@") && !text.contains("sig=abc"));
}

#[tokio::test]
async fn a_failed_change_leaves_no_record() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    let (_, ro) = {
        let r = api(
            &s,
            &root,
            Method::POST,
            "/admin_keys",
            Some(json!({"name": "ro", "read_only": true})),
        )
        .await;
        (
            r.body["id"].clone(),
            r.body["key"].as_str().unwrap().to_owned(),
        )
    };
    let start = head(&s, &root).await;
    let dir = s.directory.clone();
    let nobody = "0190f5c2-0000-7000-8000-000000000000";
    let failures = [
        (
            &root,
            Method::PATCH,
            format!("/directories/{nobody}"),
            Some(json!({"name": "x"})),
        ),
        (
            &root,
            Method::DELETE,
            format!("/directories/{nobody}"),
            None,
        ),
        (
            &root,
            Method::PUT,
            format!("/directories/{nobody}/settings"),
            Some(json!({"deactivation": "delete"})),
        ),
        (
            &root,
            Method::POST,
            format!("/directories/{nobody}/tokens"),
            None,
        ),
        (
            &root,
            Method::DELETE,
            format!("/directories/{dir}/tokens/{nobody}"),
            None,
        ),
        (
            &root,
            Method::POST,
            format!("/directories/{dir}/tokens/{nobody}/rotate"),
            None,
        ),
        (
            &root,
            Method::POST,
            "/admin_keys".to_owned(),
            Some(json!({"name": "k", "directories": [dir, nobody]})),
        ),
        (&root, Method::DELETE, format!("/admin_keys/{nobody}"), None),
        (
            &root,
            Method::POST,
            format!("/admin_keys/{nobody}/rotate"),
            None,
        ),
        (
            &root,
            Method::POST,
            "/webhooks".to_owned(),
            Some(json!({"url": "ftp://x", "directory_id": dir})),
        ),
        (&root, Method::DELETE, format!("/webhooks/{nobody}"), None),
        (
            &root,
            Method::POST,
            format!("/webhooks/{nobody}/disable"),
            None,
        ),
        (
            &ro,
            Method::PATCH,
            format!("/directories/{dir}"),
            Some(json!({"name": "x"})),
        ),
        (
            &ro,
            Method::POST,
            format!("/directories/{dir}/tokens"),
            None,
        ),
    ];
    for (key, method, path, body) in failures {
        let r = api(&s, key, method.clone(), &path, body).await;
        assert!(r.status.is_client_error(), "{method} {path}: {:?}", r.body);
    }
    assert!(
        s.store
            .revoke_token(&roster_store::Actor::Cli, nobody)
            .await
            .is_ok_and(|r| !r)
    );
    let after = records_after(&s, &root, start.as_deref(), 100).await;
    assert!(after.is_empty(), "{after:?}");
}

#[tokio::test]
async fn the_log_is_filtered_by_target_and_actor_and_needs_an_unlimited_key() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    let dir = s.directory.clone();
    for name in ["a", "b"] {
        let r = api(
            &s,
            &root,
            Method::PATCH,
            &format!("/directories/{dir}"),
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = api(
        &s,
        &root,
        Method::GET,
        &format!("/audit_log?target_id={dir}"),
        None,
    )
    .await;
    let actions: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "directory.created",
            "directory.updated",
            "directory.updated"
        ]
    );
    assert_eq!(
        r.body["data"][2]["details"],
        json!({"changes": {"name": "b"}, "previous": {"name": "a"}})
    );
    let r = api(&s, &root, Method::GET, "/audit_log?actor=cli", None).await;
    let data = r.body["data"].as_array().unwrap();
    assert!(
        !data.is_empty() && data.iter().all(|r| r["actor"] == "cli"),
        "{data:?}"
    );
    let r = api(&s, &root, Method::GET, "/audit_log?after=42", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = api(&s, &root, Method::GET, "/audit_log?limit=0", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    let r = api(
        &s,
        &root,
        Method::POST,
        "/admin_keys",
        Some(json!({"name": "tenant", "directories": [dir]})),
    )
    .await;
    let limited = r.body["key"].as_str().unwrap().to_owned();
    let r = api(&s, &limited, Method::GET, "/audit_log", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = api(&s, "rak_nonsense", Method::GET, "/audit_log", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
