//! A user's `groups` in POST and PUT (and in /Bulk), accepted as a tolerance
//! (RFC 7643 §4.1.2 makes them readOnly): memberships with their events.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api_directories::{admin_key, api, events_until};
use crate::support::{TestServer, assert_scim_error};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// At least `n` membership events, as (event, user id, group id).
async fn memberships(s: &TestServer, key: &str, n: usize) -> Vec<(String, String, String)> {
    let path = "/events?limit=1000&events=dsync.group.user_added,dsync.group.user_removed";
    events_until(s, key, path, |d| d.len() >= n)
        .await
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["data"]["user"]["id"].as_str().unwrap().to_owned(),
                e["data"]["group"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The types of at least `n` events, without `dsync.activated`.
async fn event_types(s: &TestServer, key: &str, n: usize) -> Vec<String> {
    let types = |d: &[Value]| -> Vec<String> {
        d.iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .filter(|t| t != "dsync.activated")
            .collect()
    };
    types(&events_until(s, key, "/events?limit=1000", |d| types(d).len() >= n).await)
}

/// The ids of a user's groups as GET shows them (from membership rows).
async fn groups_of(s: &TestServer, user: &str) -> Vec<String> {
    let r = s.get(&format!("/Users/{user}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut ids: Vec<String> = r.body["groups"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| g["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

async fn members_of(s: &TestServer, group: &str) -> Vec<String> {
    let r = s.get(&format!("/Groups/{group}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut ids: Vec<String> = r.body["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn refs(ids: &[&str]) -> Value {
    Value::Array(ids.iter().map(|g| json!({"value": g})).collect())
}

#[tokio::test]
async fn post_joins_the_groups_a_user_names() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let g1 = s.group("One", &[]).await;
    let g2 = s.group("Two", &[]).await;
    let v1 = s.get(&format!("/Groups/{g1}")).await.body["meta"]["version"].clone();

    let r = s
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "alice",
                   "groups": [{"value": g1, "display": "One"}, {"value": g2}, {"value": g1}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let u = r.body["id"].as_str().unwrap().to_owned();
    // The reply, and every GET after it, shows groups from membership rows.
    let mut in_reply: Vec<String> = r.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap().to_owned())
        .collect();
    in_reply.sort();
    assert_eq!(in_reply, sorted(vec![g1.clone(), g2.clone()]));
    assert_eq!(
        groups_of(&s, &u).await,
        sorted(vec![g1.clone(), g2.clone()])
    );
    assert_eq!(members_of(&s, &g1).await, vec![u.clone()]);
    // The group's members changed, and so did its version.
    let g = s.get(&format!("/Groups/{g1}")).await;
    assert_ne!(g.body["meta"]["version"], v1);

    // user.created (showing both groups), then one user_added per group.
    assert_eq!(
        event_types(&s, &key, 5).await,
        [
            "dsync.group.created",
            "dsync.group.created",
            "dsync.user.created",
            "dsync.group.user_added",
            "dsync.group.user_added"
        ]
    );
    let m = memberships(&s, &key, 2).await;
    assert_eq!(
        sorted(m.iter().map(|(_, _, g)| g.clone()).collect()),
        sorted(vec![g1.clone(), g2.clone()])
    );
    assert!(
        m.iter()
            .all(|(e, user, _)| e == "dsync.group.user_added" && user == &u)
    );
    let created = api(
        &s,
        &key,
        Method::GET,
        "/events?events=dsync.user.created",
        None,
    )
    .await;
    assert_eq!(
        created.body["data"][0]["data"]["groups"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // An empty list joins nothing (Okta sends it with every create).
    let r = s
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "bob", "groups": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body.get("groups").is_none());
}

#[tokio::test]
async fn put_sets_exactly_the_groups_a_user_names() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let u = s.user("alice").await;
    let other = s.user("other").await;
    let g1 = s.group("One", &[&u, &other]).await;
    let g2 = s.group("Two", &[]).await;
    let g3 = s.group("Three", &[&u]).await;
    // g1 gained two members and g3 one.
    let before = memberships(&s, &key, 3).await.len();
    let path = format!("/Users/{u}");
    let put = |groups: Value| json!({"schemas": [USER], "userName": "alice", "groups": groups});

    // {g1, g3} -> {g1, g2}: g2 joined, g3 left, g1 untouched.
    let r = s.put(&path, put(refs(&[&g1, &g2]))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.body["meta"]["version"].clone();
    assert_eq!(
        groups_of(&s, &u).await,
        sorted(vec![g1.clone(), g2.clone()])
    );
    assert_eq!(members_of(&s, &g3).await, Vec::<String>::new());
    assert_eq!(
        members_of(&s, &g1).await,
        sorted(vec![u.clone(), other.clone()])
    );
    let m = memberships(&s, &key, before + 2).await;
    assert_eq!(
        m[before..],
        [
            ("dsync.group.user_added".to_owned(), u.clone(), g2.clone()),
            ("dsync.group.user_removed".to_owned(), u.clone(), g3.clone()),
        ]
    );
    // Only memberships changed: no dsync.user.updated for them. Two users,
    // three groups and before + 2 membership changes made an event each.
    assert!(
        !event_types(&s, &key, 5 + before + 2)
            .await
            .contains(&"dsync.user.updated".to_owned())
    );

    // The same set again: nothing changes, not even the version.
    let r = s.put(&path, put(refs(&[&g2, &g1]))).await;
    assert_eq!(r.body["meta"]["version"], v);
    assert_eq!(memberships(&s, &key, before + 2).await.len(), before + 2);

    // An attribute change and a membership change together: user.updated
    // (without groups in previous_attributes), then the membership events.
    let r = s
        .put(
            &path,
            json!({"schemas": [USER], "userName": "alice", "title": "Boss", "groups": refs(&[&g1])}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The newest events may show a moment later on PostgreSQL.
    let data = events_until(&s, &key, "/events?limit=1000", |d| {
        d.last().is_some_and(|e| {
            e["event"] == "dsync.group.user_removed" && e["data"]["group"]["id"] == g2.as_str()
        })
    })
    .await;
    let n = data.len();
    assert_eq!(data[n - 2]["event"], "dsync.user.updated");
    let updated = &data[n - 2]["data"];
    assert_eq!(updated["previous_attributes"]["job_title"], Value::Null);
    assert!(
        updated["previous_attributes"].get("groups").is_none(),
        "{updated}"
    );
    assert_eq!(updated["groups"].as_array().unwrap().len(), 1);
    assert_eq!(data[n - 1]["event"], "dsync.group.user_removed");
    assert_eq!(data[n - 1]["data"]["group"]["id"], g2.as_str());

    // Without groups, or with an empty list (what Okta sends with every user
    // PUT while Group Push manages memberships), memberships stay.
    for body in [
        json!({"schemas": [USER], "userName": "alice", "title": "Boss"}),
        put(json!([])),
        put(Value::Null),
    ] {
        let r = s.put(&path, body).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(groups_of(&s, &u).await, vec![g1.clone()]);
    }
    // PATCH leaves memberships to the groups.
    let r = s
        .patch(
            &path,
            json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Al"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(groups_of(&s, &u).await, vec![g1.clone()]);
}

#[tokio::test]
async fn unknown_groups_and_groups_of_other_directories_are_refused() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let g = s.group("Mine", &[]).await;
    let someone = s.user("someone").await;
    // A group of another directory never resolves.
    let (other, token) = s.other_directory().await;
    let url = format!("http://{}/scim/v2/{other}/Groups", s.addr);
    let r = s
        .call_with(
            Method::POST,
            &url,
            Some(json!({"displayName": "Theirs"})),
            &token,
            &[],
        )
        .await;
    let theirs = r.body["id"].as_str().unwrap().to_owned();
    // Mine, someone and Theirs were created.
    let events_before = event_types(&s, &key, 3).await.len();

    for bad in ["no-such-group", theirs.as_str(), someone.as_str()] {
        let r = s
            .post(
                "/Users",
                json!({"schemas": [USER], "userName": "x", "groups": refs(&[&g, bad])}),
            )
            .await;
        assert_scim_error(&r, 400, Some("invalidValue"));
        assert!(
            r.body["detail"].as_str().unwrap().contains(bad),
            "{:?}",
            r.body
        );
    }
    // Nothing was created, joined or announced.
    assert_eq!(members_of(&s, &g).await, Vec::<String>::new());
    let r = s.get("/Users?filter=userName%20eq%20%22x%22").await;
    assert_eq!(r.body["totalResults"], 0);

    let u = s.user("alice").await;
    let path = format!("/Users/{u}");
    let r = s
        .put(
            &path,
            json!({"schemas": [USER], "userName": "alice", "title": "T", "groups": refs(&[&g, &theirs])}),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap().contains(&theirs));
    let now = s.get(&path).await.body;
    assert!(now.get("title").is_none(), "a refused PUT changes nothing");
    assert_eq!(groups_of(&s, &u).await, Vec::<String>::new());
    // Only the users created here wrote events.
    assert_eq!(
        event_types(&s, &key, events_before + 1).await.len(),
        events_before + 1
    );
    // Malformed groups are refused as such.
    let r = s
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "y", "groups": [{"display": "Mine"}]}),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
}

#[tokio::test]
async fn bulk_creates_and_replaces_carry_groups_by_bulk_id() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let existing = s.group("Existing", &[]).await;
    let r = s
        .post(
            "/Bulk",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "u1",
                     "data": {"schemas": [USER], "userName": "u1", "groups": [{"value": "bulkId:g"}, {"value": existing}]}},
                    {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "New"}},
                    {"method": "POST", "path": "/Users", "bulkId": "u2",
                     "data": {"schemas": [USER], "userName": "u2", "groups": [{"value": "nope"}]}},
                    {"method": "POST", "path": "/Users", "bulkId": "u3",
                     "data": {"schemas": [USER], "userName": "u3"}},
                    {"method": "PUT", "path": "/Users/bulkId:u3",
                     "data": {"schemas": [USER], "userName": "u3", "groups": [{"value": existing}]}}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let ops = r.body["Operations"].as_array().unwrap();
    let status: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    // Executed in dependency order: the group before the user that names it.
    assert_eq!(status.iter().filter(|s| **s == "201").count(), 3, "{ops:?}");
    assert!(status.contains(&"400"), "{ops:?}");
    let id_of = |bulk: &str| {
        ops.iter()
            .find(|o| o["bulkId"] == bulk && o["method"] == "POST")
            .and_then(|o| o["location"].as_str())
            .map(|l| l.rsplit('/').next().unwrap().to_owned())
    };
    let (u1, g, u3) = (
        id_of("u1").unwrap(),
        id_of("g").unwrap(),
        id_of("u3").unwrap(),
    );
    assert_eq!(
        groups_of(&s, &u1).await,
        sorted(vec![g.clone(), existing.clone()])
    );
    assert_eq!(
        members_of(&s, &existing).await,
        sorted(vec![u1.clone(), u3.clone()])
    );
    let m = memberships(&s, &key, 3).await;
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m.iter().all(|(e, _, _)| e == "dsync.group.user_added"));
    assert!(m.contains(&(
        "dsync.group.user_added".into(),
        u3.clone(),
        existing.clone()
    )));
}
