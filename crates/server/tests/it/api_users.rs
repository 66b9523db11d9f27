//! The app-facing directory API: normalized users and groups by cursor.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api_directories::{admin_key, api, events_until};
use crate::support::TestServer;

async fn get(s: &TestServer, key: &str, path: &str) -> Value {
    let r = api(s, key, Method::GET, path, None).await;
    assert_eq!(r.status, StatusCode::OK, "GET {path}: {:?}", r.body);
    r.body
}

/// Every page of a list, following `list_metadata.after`; the ids in order.
async fn walk(s: &TestServer, key: &str, path: &str, limit: u64) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let page = get(s, key, &format!("{path}{sep}limit={limit}&after={after}")).await;
        assert_eq!(page["object"], "list");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() as u64 <= limit);
        ids.extend(data.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        match page["list_metadata"]["after"].as_str() {
            Some(a) => {
                assert!(!data.is_empty(), "a cursor follows a non-empty page");
                after = a.to_owned();
            }
            None => return ids,
        }
    }
}

async fn group(s: &TestServer, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let r = s
        .post("/Groups", json!({"displayName": name, "members": members}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn paging_through_25_users_sees_each_once() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(s.user(&format!("user{i:02}")).await);
    }
    let path = format!("/directories/{}/users", s.directory);
    let seen = walk(&s, &key, &path, 7).await;
    assert_eq!(seen, ids, "each once, in creation (UUIDv7) order");
    // Exactly one page: no cursor.
    let page = get(&s, &key, &format!("{path}?limit=25")).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 25);
    assert!(page["list_metadata"]["after"].is_null());
    // Default limit covers them all too.
    assert_eq!(
        get(&s, &key, &path).await["data"].as_array().unwrap().len(),
        25
    );
    // Another directory's users never show up.
    let (other, _) = s.other_directory().await;
    let page = get(&s, &key, &format!("/directories/{other}/users")).await;
    assert_eq!(page["data"], json!([]));
    assert!(page["list_metadata"]["after"].is_null());
}

#[tokio::test]
async fn users_are_normalized_like_events() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let r = s
        .post(
            "/Users",
            json!({
                "userName": "bjensen", "externalId": "okta-1", "password": "hunter2hunter2",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "title": "Tour Guide",
                "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Tours"}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let g = group(&s, "Guides", &[&id]).await;

    let u = get(&s, &key, &format!("/users/{id}")).await;
    assert_eq!(u["object"], "directory_user");
    assert_eq!(u["id"], id.as_str());
    assert_eq!(u["directory_id"], s.directory.as_str());
    assert_eq!(u["idp_id"], "okta-1");
    assert_eq!(u["username"], "bjensen");
    assert_eq!(u["first_name"], "Barbara");
    assert_eq!(u["last_name"], "Jensen");
    assert_eq!(u["job_title"], "Tour Guide");
    assert_eq!(u["state"], "active");
    assert_eq!(u["emails"][0]["value"], "b@example.com");
    assert_eq!(u["groups"], json!([{"id": g, "name": "Guides"}]));
    assert_eq!(u["custom_attributes"]["department"], "Tours");
    assert_eq!(u["raw_attributes"]["userName"], "bjensen");
    assert!(u["raw_attributes"].get("password").is_none());

    // The list shows the same object, and so does the created event.
    let list = get(&s, &key, &format!("/directories/{}/users", s.directory)).await;
    assert_eq!(list["data"][0], u);
    let events = events_until(&s, &key, "/events?events=dsync.user.created", |d| {
        !d.is_empty()
    })
    .await;
    let mut created = events[0]["data"].clone();
    created["groups"] = u["groups"].clone();
    assert_eq!(created, u);

    let gr = get(&s, &key, &format!("/groups/{g}")).await;
    assert_eq!(gr["object"], "directory_group");
    assert_eq!(gr["name"], "Guides");
    assert_eq!(gr["directory_id"], s.directory.as_str());
    assert_eq!(gr["raw_attributes"]["displayName"], "Guides");

    // Unknown ids, and ids of the wrong kind.
    for path in [
        "/users/nope".to_owned(),
        "/groups/nope".to_owned(),
        format!("/users/{g}"),
        format!("/groups/{id}"),
        format!("/groups/{id}/users"),
        "/groups/nope/users".to_owned(),
        "/directories/nope/users".to_owned(),
        "/directories/nope/groups".to_owned(),
    ] {
        let r = api(&s, &key, Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {:?}", r.body);
        assert_eq!(r.body["error"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn filters_by_group_state_and_updated_after() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let c = s
        .post("/Users", json!({"userName": "c", "active": false}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = s
        .post("/Users", json!({"userName": "d", "active": true}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let eng = group(&s, "Eng", &[&a, &c]).await;
    let empty = group(&s, "Empty", &[]).await;
    // A nested group is a member of eng but not a user: it must not be listed.
    let nested = group(&s, "Nested", &[&b]).await;
    s.patch(
        &format!("/Groups/{eng}"),
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": nested}]}]}),
    )
    .await;
    let users = format!("/directories/{}/users", s.directory);

    assert_eq!(
        walk(&s, &key, &format!("{users}?group={eng}"), 1).await,
        [a.clone(), c.clone()]
    );
    assert_eq!(
        walk(&s, &key, &format!("{users}?group={empty}"), 10).await,
        Vec::<String>::new()
    );
    assert_eq!(
        walk(&s, &key, &format!("/groups/{eng}/users"), 1).await,
        [a.clone(), c.clone()]
    );
    assert_eq!(
        walk(&s, &key, &format!("/groups/{nested}/users"), 5).await,
        [b.as_str()]
    );

    assert_eq!(
        walk(&s, &key, &format!("{users}?state=active"), 2).await,
        [a.clone(), b.clone(), d.clone()]
    );
    assert_eq!(
        walk(&s, &key, &format!("{users}?state=inactive"), 2).await,
        [c.as_str()]
    );
    assert_eq!(
        walk(&s, &key, &format!("{users}?state=inactive&group={eng}"), 2).await,
        [c.as_str()]
    );
    assert_eq!(
        walk(&s, &key, &format!("{users}?state=active&group={eng}"), 2).await,
        [a.as_str()]
    );

    // updated_after: only what changed since.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = now_rfc3339();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = s
        .patch(
            &format!("/Users/{b}"),
            json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = s.patch(&format!("/Groups/{empty}"), json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Still empty"}]})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let e = s.user("e").await;
    let q = format!("updated_after={}", t.replace('+', "%2B"));
    assert_eq!(
        walk(&s, &key, &format!("{users}?{q}"), 1).await,
        [b.clone(), e.clone()]
    );
    assert_eq!(
        walk(&s, &key, &format!("{users}?{q}&state=inactive"), 1).await,
        [b.as_str()]
    );
    let groups = format!("/directories/{}/groups", s.directory);
    assert_eq!(
        walk(&s, &key, &format!("{groups}?{q}"), 1).await,
        [empty.as_str()]
    );
    assert_eq!(
        walk(&s, &key, &groups, 2).await,
        [eng.clone(), empty.clone(), nested.clone()]
    );
    let later = get(
        &s,
        &key,
        &format!("{users}?updated_after=2999-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(later["data"], json!([]));

    // The group of another directory is unknown here.
    let (other, other_token) = s.other_directory().await;
    let url = format!("http://{}/scim/v2/{other}/Groups", s.addr);
    let r = s
        .call_with(
            Method::POST,
            &url,
            Some(json!({"displayName": "Theirs"})),
            &other_token,
            &[],
        )
        .await;
    let theirs = r.body["id"].as_str().unwrap().to_owned();
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!("{users}?group={theirs}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.body["error"], "not_found");

    // Bad parameters say what to send.
    for q in [
        "state=gone",
        "updated_after=yesterday",
        "limit=0",
        "limit=1001",
        "limit=x",
        "after=not-an-id",
    ] {
        let r = api(&s, &key, Method::GET, &format!("{users}?{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {:?}", r.body);
        assert_eq!(r.body["error"], "invalid_request", "{q}");
    }
    for q in ["updated_after=yesterday", "limit=0"] {
        let r = api(&s, &key, Method::GET, &format!("{groups}?{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {:?}", r.body);
    }
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!("/groups/{eng}/users?limit=0"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
