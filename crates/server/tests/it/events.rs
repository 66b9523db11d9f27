//! Directory-sync events: written with each change, served by the Events API.

use std::time::Duration;

use reqwest::StatusCode;
use roster_testkit::poll;
use serde_json::{Value, json};

use crate::support::TestServer;

async fn admin_key(s: &TestServer) -> String {
    s.store
        .create_admin_key(&roster_store::Actor::Cli, "test", &Default::default())
        .await
        .unwrap()
        .1
}

/// A page of events without `dsync.activated`: every test server starts with
/// one for its directory, and these tests look at what resources do.
async fn events(s: &TestServer, key: &str, query: &str) -> (StatusCode, Value) {
    let r = s
        .client
        .get(format!("http://{}/api/v1/events?{query}", s.addr))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let mut body: Value = r.json().await.unwrap_or(Value::Null);
    if let Some(data) = body.get_mut("data").and_then(Value::as_array_mut) {
        data.retain(|e| e["event"] != "dsync.activated");
    }
    (status, body)
}

/// [`events`] once at least `n` are visible. On PostgreSQL an event shows
/// only once no Roster transaction that began before it is still running
/// (`rows::visible_events`): a background write (a webhook claim, the
/// request log) in flight holds the newest events back for a moment.
async fn at_least(s: &TestServer, key: &str, query: &str, n: usize) -> Value {
    poll::until_or_last(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let (status, list) = events(s, key, query).await;
            assert_eq!(status, StatusCode::OK);
            list
        },
        |list| list["data"].as_array().map_or(0, Vec::len) >= n,
    )
    .await
}

fn types(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_change_has_one_event_and_noop_updates_have_none() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let id = s.user("bjensen").await;
    let path = format!("/Users/{id}");
    let deactivate = json!({"Operations": [{"op": "replace", "path": "active", "value": "False"}]});
    assert_eq!(
        s.patch(&path, deactivate.clone()).await.status,
        StatusCode::OK
    );
    // The same change again: no new version, no event.
    assert_eq!(s.patch(&path, deactivate).await.status, StatusCode::OK);
    assert_eq!(s.delete(&path).await.status, StatusCode::NO_CONTENT);

    let list = at_least(&s, &key, "", 3).await;
    assert_eq!(
        types(&list),
        [
            "dsync.user.created",
            "dsync.user.updated",
            "dsync.user.deleted"
        ]
    );
    let updated = &list["data"][1];
    assert_eq!(updated["object"], "event");
    assert_eq!(updated["directory_id"], s.directory.as_str());
    assert_eq!(updated["data"]["state"], "inactive");
    assert_eq!(updated["data"]["previous_attributes"]["state"], "active");
    assert_eq!(updated["data"]["username"], "bjensen");
    assert!(updated["data"]["raw_attributes"].get("password").is_none());
}

#[tokio::test]
async fn membership_events_follow_the_membership_diff() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let g = s
        .post(
            "/Groups",
            json!({"displayName": "Eng", "members": [{"value": a}]}),
        )
        .await;
    let gid = g.body["id"].as_str().unwrap().to_owned();
    let gpath = format!("/Groups/{gid}");
    // Add b, remove a (Entra's value-list form), then a rename with unchanged members.
    let added = s
        .patch(
            &gpath,
            json!({"Operations": [{"op": "Add", "path": "members", "value": [{"value": b}]}]}),
        )
        .await;
    let removed = s
        .patch(
            &gpath,
            json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": a}]}]}),
        )
        .await;
    let renamed = s
        .put(
            &gpath,
            json!({"displayName": "Engineering", "members": [{"value": b}]}),
        )
        .await;
    for r in [&added, &removed, &renamed] {
        assert!(r.status.is_success(), "{:?}", r.body);
    }

    let list = at_least(&s, &key, "limit=1000", 7).await;
    let t = types(&list);
    assert_eq!(
        t[2..],
        [
            "dsync.group.created",
            "dsync.group.user_added",
            "dsync.group.user_added",
            "dsync.group.user_removed",
            "dsync.group.updated"
        ]
    );
    let added = &list["data"][3]["data"];
    assert_eq!(added["user"]["id"], a.as_str());
    assert_eq!(added["group"]["id"], gid.as_str());
    let renamed = &list["data"][6]["data"];
    assert_eq!(renamed["name"], "Engineering");
    assert_eq!(renamed["previous_attributes"]["name"], "Eng");
}

#[tokio::test]
async fn the_cursor_walks_every_event_once_with_filters() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    for i in 0..25 {
        s.user(&format!("user{i}")).await;
    }
    at_least(&s, &key, "limit=100&events=dsync.user.created", 25).await;
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (_, page) = events(
            &s,
            &key,
            &format!("limit=7&after={after}&events=dsync.user.created"),
        )
        .await;
        let data = page["data"].as_array().unwrap().clone();
        after = page["list_metadata"]["after"].as_str().unwrap().to_owned();
        if data.is_empty() {
            break;
        }
        seen.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ids are unique and in order");

    let (_, other) = events(&s, &key, "directory_id=nope").await;
    assert_eq!(other["data"].as_array().unwrap().len(), 0);
    assert_eq!(
        events(&s, &key, "events=dsync.bogus").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        events(&s, &key, "after=garbage").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(events(&s, &key, "limit=0").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        events(&s, "rak_wrong", "").await.0,
        StatusCode::UNAUTHORIZED
    );
    // A SCIM token is not an admin key.
    assert_eq!(events(&s, &s.token, "").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_rejected_change_writes_no_event() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    s.user("dup").await;
    assert_eq!(
        s.post("/Users", json!({"userName": "DUP"})).await.status,
        StatusCode::CONFLICT
    );
    let bulk = json!({"Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "ok"}},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "dup"}}
    ]});
    assert_eq!(s.post("/Bulk", bulk).await.status, StatusCode::OK);
    let list = at_least(&s, &key, "", 2).await;
    assert_eq!(types(&list), ["dsync.user.created", "dsync.user.created"]);
    assert_eq!(list["data"][1]["data"]["username"], "ok");
}

#[tokio::test]
async fn pruned_history_makes_an_old_cursor_fail_clearly() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    s.user("old1").await;
    s.user("old2").await;
    let first = at_least(&s, &key, "limit=2", 1).await;
    let old_cursor = first["list_metadata"]["after"].as_str().unwrap().to_owned();
    // Everything so far is older than a cutoff in the future.
    let pruned = s
        .store
        .prune_events(roster_store::now_ms() + 1000)
        .await
        .unwrap();
    assert_eq!(pruned, 3, "the directory's dsync.activated and two users");
    s.user("new").await;
    let (status, body) = events(&s, &key, &format!("after={old_cursor}")).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"], "cursor_expired");
    let fresh = at_least(&s, &key, "", 1).await;
    assert_eq!(types(&fresh), ["dsync.user.created"]);
}

#[tokio::test]
async fn pruning_keeps_what_an_enabled_webhook_has_not_delivered() {
    let Some(s) = TestServer::start_with(roster_server::ServerConfig {
        webhooks_enabled: false,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    s.store
        .create_webhook(
            &roster_store::Actor::Cli,
            "http://127.0.0.1:9/never",
            roster_store::webhooks::WebhookFormat::Roster,
            &[],
            None,
        )
        .await
        .unwrap();
    s.user("kept").await;
    let pruned = s
        .store
        .prune_events(roster_store::now_ms() + 1000)
        .await
        .unwrap();
    // Only the directory's dsync.activated, which predates the endpoint.
    assert_eq!(pruned, 1);
    let left = s.store.list_events(0, 10, &[], None).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event, "dsync.user.created");
}

#[tokio::test]
async fn a_directory_can_report_deactivation_as_deletion() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let settings = format!(
        "http://{}/api/v1/directories/{}/settings",
        s.addr, s.directory
    );
    let r = s
        .client
        .put(&settings)
        .bearer_auth(&key)
        .json(&json!({"deactivation": "delete"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .client
        .put(&settings)
        .bearer_auth(&key)
        .json(&json!({"deactivation": "archive"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r: Value = s
        .client
        .get(&settings)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["deactivation"], "delete");

    let id = s.user("leaver").await;
    let path = format!("/Users/{id}");
    let set_active =
        |v: bool| json!({"Operations": [{"op": "replace", "path": "active", "value": v}]});
    s.patch(&path, set_active(false)).await;
    // Changes while deactivated are not news to an app that deleted the user.
    s.patch(
        &path,
        json!({"Operations": [{"op": "replace", "path": "title", "value": "x"}]}),
    )
    .await;
    s.patch(&path, set_active(true)).await;
    s.patch(&path, set_active(false)).await;
    s.delete(&path).await;
    let list = at_least(&s, &key, "", 4).await;
    assert_eq!(
        types(&list),
        [
            "dsync.user.created",
            "dsync.user.deleted",
            "dsync.user.created",
            "dsync.user.deleted"
        ]
    );
    assert_eq!(list["data"][1]["data"]["state"], "inactive");
    assert_eq!(list["data"][2]["data"]["job_title"], "x");
}
