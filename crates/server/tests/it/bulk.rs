//! POST /Bulk (RFC 7644 §3.7): methods, bulkId references, ordering, cycles,
//! failOnErrors and per-operation failure isolation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Reply, TestServer, assert_scim_error};

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

pub fn request(ops: Value) -> Value {
    json!({"schemas": [BULK_REQUEST], "Operations": ops})
}

/// Posts a BulkRequest and checks the envelope of a 200 BulkResponse.
pub async fn bulk(s: &TestServer, body: Value) -> Vec<Value> {
    let r = s.post("/Bulk", body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["schemas"], json!([BULK_RESPONSE]), "{:?}", r.body);
    r.body["Operations"].as_array().unwrap().clone()
}

pub async fn bulk_ops(s: &TestServer, ops: Value) -> Vec<Value> {
    bulk(s, request(ops)).await
}

/// The result for `bulk_id` (results follow execution order, not request order).
pub fn by_bulk_id<'a>(results: &'a [Value], bulk_id: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["bulkId"] == bulk_id)
        .unwrap_or_else(|| panic!("no result for bulkId {bulk_id}: {results:?}"))
}

/// Asserts a successful result and returns the id its location names.
pub fn ok_id(result: &Value, status: &str) -> String {
    assert_eq!(result["status"], status, "{result:?}");
    assert!(result.get("response").is_none(), "{result:?}");
    let location = result["location"]
        .as_str()
        .unwrap_or_else(|| panic!("{result:?}"));
    location.rsplit('/').next().unwrap().to_owned()
}

/// Asserts a failed result carrying a SCIM error of that status; returns its detail.
pub fn op_error(result: &Value, status: u16, scim_type: Option<&str>) -> String {
    let st = status.to_string();
    assert_eq!(result["status"], st.as_str(), "{result:?}");
    let resp = &result["response"];
    assert_eq!(
        resp["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{result:?}"
    );
    assert_eq!(resp["status"], st.as_str(), "{result:?}");
    match scim_type {
        Some(t) => assert_eq!(resp["scimType"], t, "{result:?}"),
        None => assert!(resp.get("scimType").is_none(), "{result:?}"),
    }
    resp["detail"].as_str().unwrap_or_default().to_owned()
}

pub fn enc(q: &str) -> String {
    q.replace('%', "%25")
        .replace(' ', "%20")
        .replace('"', "%22")
        .replace('[', "%5B")
        .replace(']', "%5D")
}

/// How many resources an endpoint lists.
pub async fn count(s: &TestServer, endpoint: &str) -> u64 {
    count_with(s, &s.directory, endpoint, &s.token).await
}

/// Counts in another directory (`dir`, reached with its own token).
pub async fn count_with(s: &TestServer, dir: &str, endpoint: &str, token: &str) -> u64 {
    let url = format!("http://{}/scim/v2/{dir}{endpoint}", s.addr);
    let r = s.call_with(Method::GET, &url, None, token, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["totalResults"].as_u64().unwrap()
}

pub async fn user_names(s: &TestServer) -> Vec<String> {
    let r = s.get("/Users?count=1000&sortBy=userName").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| u["userName"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub async fn member_ids(s: &TestServer, group: &str) -> Vec<String> {
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

/// Ids of the groups whose membership rows name `member` (the filter runs on those rows).
pub async fn groups_with_member(s: &TestServer, member: &str) -> Vec<String> {
    let r = s
        .get(&format!(
            "/Groups?filter={}",
            enc(&format!("members.value eq \"{member}\""))
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut ids: Vec<String> = r.body["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| g["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

pub async fn group(s: &TestServer, name: &str) -> String {
    let r = s.post("/Groups", json!({"displayName": name})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn etag_of(s: &TestServer, path: &str) -> String {
    let r = s.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.headers["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_method_applies_and_reports_method_bulk_id_location_version_status() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let put_me = s.user("put-me").await;
    let del_me = s.user("del-me").await;
    let g = group(&s, "patch-me").await;
    let results = bulk_ops(
        &s,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "alice"}},
            {"method": "PUT", "path": format!("/Users/{put_me}"), "bulkId": "p1",
             "data": {"userName": "put-me", "displayName": "Put Me"}},
            {"method": "PATCH", "path": format!("/Groups/{g}"),
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "add", "path": "members", "value": [{"value": put_me}]}]}},
            {"method": "DELETE", "path": format!("/Users/{del_me}")}
        ]),
    )
    .await;
    assert_eq!(results.len(), 4, "{results:?}");
    let base = s.base();

    let post = &results[0];
    assert_eq!(post["method"], "POST");
    assert_eq!(post["bulkId"], "u1");
    let alice = ok_id(post, "201");
    assert_eq!(post["location"], format!("{base}/Users/{alice}"));
    assert_eq!(post["version"], "W/\"1\"");
    assert_eq!(
        post["version"],
        etag_of(&s, &format!("/Users/{alice}")).await
    );
    assert_eq!(
        s.get(&format!("/Users/{alice}")).await.body["userName"],
        "alice"
    );

    let put = &results[1];
    assert_eq!(put["method"], "PUT");
    assert_eq!(put["bulkId"], "p1");
    assert_eq!(ok_id(put, "200"), put_me);
    assert_eq!(put["location"], format!("{base}/Users/{put_me}"));
    assert_eq!(put["version"], "W/\"2\"");
    let r = s.get(&format!("/Users/{put_me}")).await;
    assert_eq!(r.body["displayName"], "Put Me");
    assert_eq!(r.headers["etag"], "W/\"2\"");

    let patch = &results[2];
    assert_eq!(patch["method"], "PATCH");
    assert!(patch.get("bulkId").is_none(), "{patch:?}");
    assert_eq!(ok_id(patch, "200"), g);
    assert_eq!(patch["version"], etag_of(&s, &format!("/Groups/{g}")).await);
    assert_eq!(member_ids(&s, &g).await, vec![put_me.clone()]);
    assert_eq!(groups_with_member(&s, &put_me).await, vec![g.clone()]);

    // RFC 7644 §3.7: location is REQUIRED in every result except a failed POST.
    let del = &results[3];
    assert_eq!(del["method"], "DELETE");
    assert_eq!(ok_id(del, "204"), del_me);
    assert_eq!(del["location"], format!("{base}/Users/{del_me}"));
    assert_scim_error(&s.get(&format!("/Users/{del_me}")).await, 404, None);
}

#[tokio::test]
async fn a_group_before_its_members_gets_its_membership_rows() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let results = bulk_ops(
        &s,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"displayName": "Tour Guides",
                      "members": [{"type": "User", "value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "u1"}},
            {"method": "POST", "path": "/Users", "bulkId": "u2", "data": {"userName": "u2"}}
        ]),
    )
    .await;
    assert_eq!(results.len(), 3, "{results:?}");
    let g1 = ok_id(by_bulk_id(&results, "g1"), "201");
    let u1 = ok_id(by_bulk_id(&results, "u1"), "201");
    let u2 = ok_id(by_bulk_id(&results, "u2"), "201");
    assert_eq!(
        member_ids(&s, &g1).await,
        sorted(vec![u1.clone(), u2.clone()])
    );
    assert_eq!(groups_with_member(&s, &u1).await, vec![g1.clone()]);
    assert_eq!(groups_with_member(&s, &u2).await, vec![g1.clone()]);
    let r = s.get(&format!("/Users/{u1}")).await;
    assert_eq!(r.body["groups"][0]["value"], g1.as_str(), "{:?}", r.body);
}

#[tokio::test]
async fn references_in_a_manager_a_patch_value_a_patch_filter_and_a_path() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    // Every reference points forward: the PATCHes come before the creates they name.
    let results = bulk_ops(
        &s,
        json!([
            {"method": "PATCH", "path": "/Groups/bulkId:g1", "bulkId": "p1",
             "data": {"Operations": [{"op": "add", "path": "members",
                                       "value": [{"value": "bulkId:emp"}, {"value": "bulkId:boss"}]}]}},
            {"method": "PATCH", "path": "/Groups/bulkId:g1",
             "data": {"Operations": [{"op": "remove", "path": "members[value eq \"bulkId:boss\"]"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:emp",
             "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "Emp"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "emp",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                      "userName": "emp", ENTERPRISE: {"manager": {"value": "bulkId:boss"}}}},
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"displayName": "g1"}},
            {"method": "POST", "path": "/Users", "bulkId": "boss", "data": {"userName": "boss"}}
        ]),
    )
    .await;
    assert_eq!(results.len(), 6, "{results:?}");
    for r in &results {
        assert!(r["status"] == "200" || r["status"] == "201", "{results:?}");
    }
    let emp = ok_id(by_bulk_id(&results, "emp"), "201");
    let boss = ok_id(by_bulk_id(&results, "boss"), "201");
    let g1 = ok_id(by_bulk_id(&results, "g1"), "201");
    assert_eq!(ok_id(by_bulk_id(&results, "p1"), "200"), g1);
    let r = s.get(&format!("/Users/{emp}")).await;
    assert_eq!(
        r.body[ENTERPRISE]["manager"]["value"],
        boss.as_str(),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["displayName"], "Emp");
    assert_eq!(member_ids(&s, &g1).await, vec![emp.clone()]);
    assert!(groups_with_member(&s, &boss).await.is_empty());
    // The first PATCH ran before the second: the remove found boss to remove.
    let order: Vec<&str> = results
        .iter()
        .filter(|r| r["method"] == "PATCH" && r["location"].as_str().unwrap().contains("/Groups/"))
        .map(|r| r["bulkId"].as_str().unwrap_or("second"))
        .collect();
    assert_eq!(order, vec!["p1", "second"]);
}

#[tokio::test]
async fn circular_group_creates_end_with_both_memberships() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let results = bulk_ops(
        &s,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"displayName": "g1", "members": [{"type": "Group", "value": "bulkId:g2"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "g2",
             "data": {"displayName": "g2", "members": [{"type": "Group", "value": "bulkId:g1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                      "userName": "u1", ENTERPRISE: {"manager": {"value": "bulkId:u2"}}}},
            {"method": "POST", "path": "/Users", "bulkId": "u2",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                      "userName": "u2", ENTERPRISE: {"manager": {"value": "bulkId:u1"}}}}
        ]),
    )
    .await;
    assert_eq!(results.len(), 4, "{results:?}");
    let g1 = ok_id(by_bulk_id(&results, "g1"), "201");
    let g2 = ok_id(by_bulk_id(&results, "g2"), "201");
    assert_eq!(member_ids(&s, &g1).await, vec![g2.clone()]);
    assert_eq!(member_ids(&s, &g2).await, vec![g1.clone()]);
    assert_eq!(groups_with_member(&s, &g1).await, vec![g2.clone()]);
    assert_eq!(groups_with_member(&s, &g2).await, vec![g1.clone()]);
    for (b, path) in [
        ("g1", format!("/Groups/{g1}")),
        ("g2", format!("/Groups/{g2}")),
    ] {
        assert_eq!(by_bulk_id(&results, b)["version"], etag_of(&s, &path).await);
    }
    let u1 = ok_id(by_bulk_id(&results, "u1"), "201");
    let u2 = ok_id(by_bulk_id(&results, "u2"), "201");
    let r = s.get(&format!("/Users/{u1}")).await;
    assert_eq!(
        r.body[ENTERPRISE]["manager"]["value"],
        u2.as_str(),
        "{:?}",
        r.body
    );
    let r = s.get(&format!("/Users/{u2}")).await;
    assert_eq!(
        r.body[ENTERPRISE]["manager"]["value"],
        u1.as_str(),
        "{:?}",
        r.body
    );
    assert_eq!(count(&s, "/Groups").await, 2);
    assert_eq!(count(&s, "/Users").await, 2);
}

#[tokio::test]
async fn a_cycle_that_cannot_be_completed_fails_with_409_and_leaves_nothing() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    group(&s, "taken").await;
    let results = bulk_ops(
        &s,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"displayName": "g1", "members": [{"value": "bulkId:g2"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "g2",
             "data": {"displayName": "taken", "members": [{"value": "bulkId:g1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "bystander"}}
        ]),
    )
    .await;
    assert_eq!(results.len(), 3, "{results:?}");
    op_error(by_bulk_id(&results, "g2"), 409, Some("uniqueness"));
    let detail = op_error(by_bulk_id(&results, "g1"), 409, None);
    assert!(
        detail.contains("bulkId:g2") && detail.contains("failed"),
        "{detail}"
    );
    ok_id(by_bulk_id(&results, "u"), "201");
    // g1 was made without its member first; it must not survive its failure,
    // not even as a created-then-deleted pair of events.
    assert_eq!(count(&s, "/Groups").await, 1);
    assert_eq!(
        event_types(&s).await,
        ["dsync.group.created", "dsync.user.created"]
    );
}

#[tokio::test]
async fn a_cycle_member_failing_after_another_completed_fails_the_whole_cycle() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    // g2 is created (without g1), then its completion fails: g1 is not a user.
    // g1, completed first with g2 as a member, must not be kept with a group
    // that does not exist.
    let results = bulk_ops(
        &s,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"displayName": "g1", "members": [{"value": "bulkId:g2"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "g2",
             "data": {"displayName": "g2", "members": [{"type": "User", "value": "bulkId:g1"}]}}
        ]),
    )
    .await;
    assert_eq!(results.len(), 2, "{results:?}");
    op_error(by_bulk_id(&results, "g2"), 400, Some("invalidValue"));
    let detail = op_error(by_bulk_id(&results, "g1"), 409, None);
    assert!(detail.contains("bulkId:g2"), "{detail}");
    assert_eq!(count(&s, "/Groups").await, 0);
    assert!(event_types(&s).await.is_empty());
}

#[tokio::test]
async fn a_reference_to_a_failed_or_unknown_bulk_id_fails_only_that_operation() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    s.user("existing").await;
    let results = bulk_ops(
        &s,
        json!([
            // Forward reference to a create that is invalid before it runs.
            {"method": "POST", "path": "/Groups", "bulkId": "g-bad",
             "data": {"displayName": "g-bad", "members": [{"value": "bulkId:invalid"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "invalid", "data": {"displayName": "no userName"}},
            // Reference to a create that fails when it runs (uniqueness).
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "existing"}},
            {"method": "PATCH", "path": "/Users/bulkId:dup", "bulkId": "p-dup",
             "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "x"}]}},
            // Reference to a bulkId nothing defines.
            {"method": "POST", "path": "/Groups", "bulkId": "g-missing",
             "data": {"displayName": "g-missing", "members": [{"value": "bulkId:nowhere"}]}},
            {"method": "DELETE", "path": "/Users/bulkId:nowhere2", "bulkId": "d-missing"},
            {"method": "POST", "path": "/Users", "bulkId": "fine", "data": {"userName": "fine"}},
            {"method": "POST", "path": "/Groups", "bulkId": "g-ok",
             "data": {"displayName": "g-ok", "members": [{"value": "bulkId:fine"}]}}
        ]),
    )
    .await;
    assert_eq!(results.len(), 8, "{results:?}");
    op_error(by_bulk_id(&results, "invalid"), 400, Some("invalidValue"));
    op_error(by_bulk_id(&results, "dup"), 409, Some("uniqueness"));
    for (b, name) in [("g-bad", "invalid"), ("p-dup", "dup")] {
        let detail = op_error(by_bulk_id(&results, b), 409, None);
        assert!(
            detail.contains(&format!("bulkId:{name}")) && detail.contains("failed"),
            "{b}: {detail}"
        );
    }
    for (b, name) in [("g-missing", "nowhere"), ("d-missing", "nowhere2")] {
        let detail = op_error(by_bulk_id(&results, b), 409, None);
        assert!(detail.contains(&format!("bulkId:{name}")), "{b}: {detail}");
    }
    let fine = ok_id(by_bulk_id(&results, "fine"), "201");
    let g_ok = ok_id(by_bulk_id(&results, "g-ok"), "201");
    assert_eq!(member_ids(&s, &g_ok).await, vec![fine]);
    assert_eq!(user_names(&s).await, vec!["existing", "fine"]);
    assert_eq!(count(&s, "/Groups").await, 1);
}

#[tokio::test]
async fn duplicate_bulk_ids_reject_the_whole_request() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s
        .post(
            "/Bulk",
            request(json!([
                {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "one"}},
                {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "two"}},
                {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"displayName": "g"}}
            ])),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(
        r.body["detail"].as_str().unwrap().contains("\"a\""),
        "{:?}",
        r.body
    );
    assert_eq!(count(&s, "/Users").await, 0);
    assert_eq!(count(&s, "/Groups").await, 0);
}

fn fail_on_errors_ops() -> Value {
    json!([
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "a"}},
        {"method": "POST", "path": "/Users", "bulkId": "bad1", "data": {"displayName": "no userName"}},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "b"}},
        {"method": "POST", "path": "/Users", "bulkId": "bad2", "data": {"userName": "a"}},
        {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"userName": "c"}},
        {"method": "POST", "path": "/Users", "bulkId": "bad3", "data": {"userName": "b"}},
        {"method": "POST", "path": "/Users", "bulkId": "d", "data": {"userName": "d"}}
    ])
}

#[tokio::test]
async fn fail_on_errors_stops_after_that_many_errors() {
    for (limit, performed, users) in [
        (1, vec!["a", "bad1"], vec!["a"]),
        (2, vec!["a", "bad1", "b", "bad2"], vec!["a", "b"]),
        (
            3,
            vec!["a", "bad1", "b", "bad2", "c", "bad3"],
            vec!["a", "b", "c"],
        ),
    ] {
        let Some(s) = TestServer::start().await else {
            return;
        };
        let results = bulk(
            &s,
            json!({"schemas": [BULK_REQUEST], "failOnErrors": limit, "Operations": fail_on_errors_ops()}),
        )
        .await;
        let listed: Vec<&str> = results
            .iter()
            .map(|r| r["bulkId"].as_str().unwrap())
            .collect();
        assert_eq!(listed, performed, "failOnErrors={limit}: {results:?}");
        assert_eq!(user_names(&s).await, users, "failOnErrors={limit}");
    }
    // Without failOnErrors every operation runs.
    let Some(s) = TestServer::start().await else {
        return;
    };
    let results = bulk_ops(&s, fail_on_errors_ops()).await;
    assert_eq!(results.len(), 7);
    assert_eq!(user_names(&s).await, vec!["a", "b", "c", "d"]);
}

#[tokio::test]
async fn fail_on_errors_inside_a_reference_cycle_leaves_no_half_made_resource() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    group(&s, "taken").await;
    let results = bulk(
        &s,
        json!({"schemas": [BULK_REQUEST], "failOnErrors": 1, "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"displayName": "g1", "members": [{"value": "bulkId:g2"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "g2",
             "data": {"displayName": "taken", "members": [{"value": "bulkId:g1"}]}}
        ]}),
    )
    .await;
    // The cycle is one unit for failOnErrors: both members are reported, and
    // g1, made before g2 failed, must not exist.
    assert_eq!(results.len(), 2, "{results:?}");
    op_error(by_bulk_id(&results, "g1"), 409, None);
    op_error(by_bulk_id(&results, "g2"), 409, Some("uniqueness"));
    let r = s.get("/Groups").await;
    assert_eq!(r.body["totalResults"], 1, "{:?}", r.body);
    assert_eq!(r.body["Resources"][0]["displayName"], "taken");
}

#[tokio::test]
async fn one_invalid_operation_in_300_leaves_the_other_299_applied() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let ops: Vec<Value> = (0..300)
        .map(|i| {
            let data = if i == 149 {
                json!({"displayName": "u149 without a userName"})
            } else {
                json!({"userName": format!("u{i:03}")})
            };
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": data})
        })
        .collect();
    let results = bulk_ops(&s, Value::Array(ops)).await;
    assert_eq!(results.len(), 300);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["bulkId"], format!("b{i}"));
        if i == 149 {
            op_error(r, 400, Some("invalidValue"));
            assert!(r.get("location").is_none(), "{r:?}");
        } else {
            ok_id(r, "201");
        }
    }
    assert_eq!(count(&s, "/Users").await, 299);
    let r = s
        .get(&format!("/Users?filter={}", enc("displayName sw \"u149\"")))
        .await;
    assert_eq!(r.body["totalResults"], 0, "{:?}", r.body);
}

#[tokio::test]
async fn version_is_checked_like_if_match() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let u = s.user("v").await;
    let gone = s.user("stays").await;
    let results = bulk_ops(
        &s,
        json!([
            {"method": "PUT", "path": format!("/Users/{u}"), "version": "W/\"1\"",
             "data": {"userName": "v", "displayName": "one"}},
            // Now at version 2: the same precondition must fail.
            {"method": "PUT", "path": format!("/Users/{u}"), "version": "W/\"1\"",
             "data": {"userName": "v", "displayName": "stale"}},
            {"method": "PATCH", "path": format!("/Users/{u}"), "version": "W/\"2\"",
             "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "three"}]}},
            {"method": "PATCH", "path": format!("/Users/{u}"), "version": "W/\"2\"",
             "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "stale"}]}},
            {"method": "DELETE", "path": format!("/Users/{gone}"), "version": "W/\"7\""},
            {"method": "DELETE", "path": format!("/Users/{gone}"), "version": "garbage"}
        ]),
    )
    .await;
    assert_eq!(results.len(), 6, "{results:?}");
    assert_eq!(ok_id(&results[0], "200"), u);
    assert_eq!(results[0]["version"], "W/\"2\"");
    assert_eq!(ok_id(&results[2], "200"), u);
    assert_eq!(results[2]["version"], "W/\"3\"");
    let location = format!("{}/Users/{u}", s.base());
    for i in [1, 3] {
        op_error(&results[i], 412, None);
        // RFC 7644 §3.7.3 shows a failed PUT with the location of its target.
        assert_eq!(
            results[i]["location"],
            location.as_str(),
            "{:?}",
            results[i]
        );
    }
    for i in [4, 5] {
        op_error(&results[i], 412, None);
    }
    let r = s.get(&format!("/Users/{u}")).await;
    assert_eq!(r.body["displayName"], "three");
    assert_eq!(r.headers["etag"], "W/\"3\"");
    assert_eq!(
        s.get(&format!("/Users/{gone}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn malformed_operations_fail_alone() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let u = s.user("target").await;
    let g = group(&s, "grp").await;
    let results = bulk_ops(
        &s,
        json!([
            {"method": "FETCH", "path": "/Users", "bulkId": "m1", "data": {"userName": "x1"}},
            {"method": "POST", "bulkId": "m2", "data": {"userName": "x2"}},
            {"method": "POST", "path": format!("/Users/{u}"), "bulkId": "m3", "data": {"userName": "x3"}},
            {"method": "POST", "path": "/Users", "bulkId": "m4"},
            {"method": "PUT", "path": format!("/Users/{u}"), "bulkId": "m5"},
            {"method": "PATCH", "path": format!("/Users/{u}"), "bulkId": "m6"},
            {"method": "DELETE", "path": "/Users", "bulkId": "m7"},
            {"method": "POST", "path": "/Widgets", "bulkId": "m8", "data": {"name": "w"}},
            {"method": "PATCH", "path": format!("/Groups/{g}"), "bulkId": "m9",
             "data": {"Operations": [{"op": "remove", "path": "members[value eq"}]}},
            {"method": "PUT", "path": "/Users/00000000-0000-0000-0000-000000000000", "bulkId": "m10",
             "data": {"userName": "ghost"}},
            {"method": "PUT", "path": format!("/Users/{u}"), "bulkId": "m11",
             "data": {"userName": "ok-1"}},
            {"method": "POST", "path": "/Users", "bulkId": "m12", "data": {"userName": "OK-1"}},
            "not an object",
            {"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"userName": "ok-2"}},
            {"method": "PATCH", "path": format!("/Groups/{g}"), "bulkId": "ok-patch",
             "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": u}]}]}}
        ]),
    )
    .await;
    assert_eq!(results.len(), 15, "{results:?}");
    assert_eq!(results[0]["method"], "FETCH");
    op_error(&results[0], 400, Some("invalidSyntax"));
    op_error(&results[1], 400, Some("invalidPath"));
    op_error(&results[2], 400, Some("invalidPath"));
    op_error(&results[3], 400, Some("invalidSyntax"));
    op_error(&results[4], 400, Some("invalidSyntax"));
    op_error(&results[5], 400, Some("invalidSyntax"));
    op_error(&results[6], 400, Some("invalidPath"));
    let detail = op_error(&results[7], 404, None);
    assert!(detail.contains("/Widgets"), "{detail}");
    let status = results[8]["status"].as_str().unwrap();
    assert!(status == "400", "{:?}", results[8]);
    op_error(&results[9], 404, None);
    assert_eq!(ok_id(&results[10], "200"), u);
    // A uniqueness conflict with a change earlier in the same request.
    op_error(&results[11], 409, Some("uniqueness"));
    op_error(&results[12], 400, Some("invalidSyntax"));
    ok_id(&results[13], "201");
    assert_eq!(ok_id(&results[14], "200"), g);
    assert_eq!(user_names(&s).await, vec!["ok-1", "ok-2"]);
    assert_eq!(member_ids(&s, &g).await, vec![u]);
}

#[tokio::test]
async fn bulk_created_resources_match_single_created_ones() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let single = s
        .post(
            "/Users",
            json!({"userName": "single", "password": "s3cret-Pass", "emails": [{"value": "s@example.com"}]}),
        )
        .await;
    assert_eq!(single.status, StatusCode::CREATED);
    let single_group = s
        .post(
            "/Groups",
            json!({"displayName": "sg", "members": [{"value": single.body["id"]}]}),
        )
        .await;
    assert_eq!(single_group.status, StatusCode::CREATED);
    let results = bulk_ops(
        &s,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "u",
             "data": {"userName": "bulky", "password": "s3cret-Pass", "emails": [{"value": "b@example.com"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "bg", "members": [{"value": "bulkId:u"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "SINGLE"}},
            {"method": "POST", "path": "/Groups", "bulkId": "gdup", "data": {"displayName": "sg"}}
        ]),
    )
    .await;
    let u = ok_id(by_bulk_id(&results, "u"), "201");
    let g = ok_id(by_bulk_id(&results, "g"), "201");
    op_error(by_bulk_id(&results, "dup"), 409, Some("uniqueness"));
    op_error(by_bulk_id(&results, "gdup"), 409, Some("uniqueness"));

    let bulky = s.get(&format!("/Users/{u}")).await;
    let single = s
        .get(&format!("/Users/{}", single.body["id"].as_str().unwrap()))
        .await;
    shape_matches(&single, &bulky);
    assert_eq!(
        by_bulk_id(&results, "u")["location"],
        bulky.body["meta"]["location"]
    );
    assert_eq!(
        by_bulk_id(&results, "u")["version"],
        bulky.body["meta"]["version"]
    );
    assert!(bulky.body.get("password").is_none());
    let bg = s.get(&format!("/Groups/{g}")).await;
    let sg = s
        .get(&format!(
            "/Groups/{}",
            single_group.body["id"].as_str().unwrap()
        ))
        .await;
    shape_matches(&sg, &bg);
    assert_eq!(bg.body["members"][0]["value"], u.as_str());

    // Stored alike: same document keys, password hashed the same way, never plaintext.
    let s = &s;
    let stored = |id: String| async move {
        s.store
            .get(&s.directory, roster_store::Kind::User, &id)
            .await
            .unwrap()
            .unwrap()
            .doc
    };
    let (sd, bd) = (
        stored(single.body["id"].as_str().unwrap().to_owned()).await,
        stored(u.clone()).await,
    );
    assert_eq!(keys(&sd), keys(&bd));
    for d in [&sd, &bd] {
        assert!(
            d["password"].as_str().unwrap().starts_with("$argon2"),
            "{d:?}"
        );
    }
    // And the uniqueness rule holds the other way: a single request against a bulk-made user.
    let r = s.post("/Users", json!({"userName": "BULKY"})).await;
    assert_scim_error(&r, 409, Some("uniqueness"));
}

#[tokio::test]
async fn a_resent_password_in_a_bulk_put_changes_nothing_like_a_single_put() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s
        .post(
            "/Users",
            json!({"userName": "okta", "password": "s3cret-Pass"}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let results = bulk_ops(
        &s,
        json!([{"method": "PUT", "path": format!("/Users/{id}"),
                "data": {"userName": "okta", "password": "s3cret-Pass"}}]),
    )
    .await;
    assert_eq!(ok_id(&results[0], "200"), id);
    assert_eq!(results[0]["version"], "W/\"1\"", "{results:?}");
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn shape_matches(single: &Reply, bulky: &Reply) {
    assert_eq!(single.status, StatusCode::OK);
    assert_eq!(bulky.status, StatusCode::OK);
    let (a, b) = (&single.body, &bulky.body);
    assert_eq!(keys(a), keys(b), "{a:?}\n{b:?}");
    assert_eq!(a["schemas"], b["schemas"]);
    assert_eq!(keys(&a["meta"]), keys(&b["meta"]), "{a:?}\n{b:?}");
    assert_eq!(a["meta"]["resourceType"], b["meta"]["resourceType"]);
    assert_eq!(a["meta"]["version"], b["meta"]["version"]);
    let id = b["id"].as_str().unwrap();
    assert!(
        b["meta"]["location"].as_str().unwrap().ends_with(id),
        "{b:?}"
    );
    assert_eq!(b["meta"]["created"], b["meta"]["lastModified"]);
    assert_eq!(
        bulky.headers["etag"],
        b["meta"]["version"].as_str().unwrap()
    );
}

async fn event_types(s: &TestServer) -> Vec<String> {
    let key = s
        .store
        .create_admin_key(&roster_store::Actor::Cli, "test", &Default::default())
        .await
        .unwrap()
        .1;
    let r = s
        .client
        .get(format!("http://{}/api/v1/events", s.addr))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        // Every test server's directory starts with one; bulk tests look at resources.
        .filter(|t| t != "dsync.activated")
        .collect()
}

#[tokio::test]
async fn bulk_changes_emit_the_events_of_the_same_single_requests_and_failures_none() {
    let Some(single) = TestServer::start().await else {
        return;
    };
    let a = single.user("a").await;
    let b = single.user("b").await;
    let r = single
        .post(
            "/Groups",
            json!({"displayName": "g", "members": [{"value": a}]}),
        )
        .await;
    let g = r.body["id"].as_str().unwrap().to_owned();
    let r = single
        .patch(
            &format!("/Groups/{g}"),
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": b}]}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        single.delete(&format!("/Users/{a}")).await.status,
        StatusCode::NO_CONTENT
    );

    let Some(s) = TestServer::start().await else {
        return;
    };
    let results = bulk_ops(
        &s,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "a"}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "b"}},
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": "a"}},
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "g", "members": [{"value": "bulkId:a"}]}},
            {"method": "PATCH", "path": "/Groups/bulkId:g",
             "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:b"}]}]}},
            {"method": "PATCH", "path": "/Groups/bulkId:g",
             "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": "nobody"}]}]}},
            {"method": "DELETE", "path": "/Users/bulkId:a"}
        ]),
    )
    .await;
    op_error(by_bulk_id(&results, "x"), 409, Some("uniqueness"));
    op_error(&results[5], 400, Some("invalidValue"));
    assert_eq!(event_types(&s).await, event_types(&single).await);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_apply_once() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let body = request(json!([
        {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "once"}},
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"displayName": "once", "members": [{"value": "bulkId:u"}]}}
    ]));
    let sends = (0..6).map(|_| {
        s.call_with(
            Method::POST,
            "/Bulk",
            Some(body.clone()),
            &s.token,
            &[("Idempotency-Key", "same")],
        )
    });
    // All in flight at once, so they race for the writer.
    let replies = futures_util::future::join_all(sends).await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body, replies[0].body);
    }
    ok_id(
        by_bulk_id(replies[0].body["Operations"].as_array().unwrap(), "u"),
        "201",
    );
    assert_eq!(count(&s, "/Users").await, 1);
    assert_eq!(count(&s, "/Groups").await, 1);
}
