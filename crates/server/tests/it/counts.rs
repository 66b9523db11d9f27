//! A directory's counts (what unfiltered lists, the directory objects and the
//! dashboard show) stay equal to counting the resources, through every way
//! resources come and go: creates, deletes, PUT and PATCH of `active`, bulk
//! requests (with refused operations and a reference cycle that fails and
//! rolls back), and the deletion of another directory.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A small deterministic generator: each seed is one reproducible run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

async fn total(s: &TestServer, path: &str) -> i64 {
    let r = s.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
    r.body["totalResults"].as_i64().unwrap()
}

/// The counters against `count(*)` (a filter every resource matches is
/// counted through the filter, never through the counters).
async fn check(s: &TestServer, step: &str) {
    let counts = s
        .store
        .directory_counts(std::slice::from_ref(&s.directory))
        .await
        .unwrap()
        .remove(&s.directory)
        .unwrap();
    let users = total(s, &format!("/Users?count=0&filter={}", enc("userName pr"))).await;
    let inactive = total(
        s,
        &format!("/Users?count=0&filter={}", enc("active eq false")),
    )
    .await;
    let groups = total(
        s,
        &format!("/Groups?count=0&filter={}", enc("displayName pr")),
    )
    .await;
    assert_eq!(
        (
            counts.active_users + counts.inactive_users,
            counts.inactive_users,
            counts.groups
        ),
        (users, inactive, groups),
        "after {step}"
    );
    assert_eq!(total(s, "/Users?count=0").await, users, "after {step}");
    assert_eq!(total(s, "/Groups?count=0").await, groups, "after {step}");
}

fn active(rng: &mut Rng) -> Value {
    match rng.below(3) {
        0 => json!(false),
        1 => json!(true),
        _ => Value::Null,
    }
}

fn user_doc(name: &str, active: Value) -> Value {
    let mut doc = json!({"userName": name});
    if !active.is_null() {
        doc["active"] = active;
    }
    doc
}

fn created_id(r: &Reply) -> Option<String> {
    (r.status == StatusCode::CREATED).then(|| r.body["id"].as_str().unwrap().to_owned())
}

async fn run(seed: u64) {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let mut rng = Rng(seed);
    let (mut users, mut groups): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    // Another directory, filled and then deleted along the way.
    let (other, other_token) = s.other_directory().await;
    for i in 0..5 {
        let url = format!("http://{}/scim/v2/{other}/Users", s.addr);
        let r = s
            .call_with(
                reqwest::Method::POST,
                &url,
                Some(user_doc(&format!("o{i}"), json!(i % 2 == 0))),
                &other_token,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    // Names come from a small pool, so creates also collide.
    let name = |rng: &mut Rng| format!("u{}", rng.below(40));
    for step in 0..60 {
        if step == 30 {
            let before = s
                .store
                .directory_counts(std::slice::from_ref(&other))
                .await
                .unwrap();
            assert_eq!(
                (before[&other].active_users, before[&other].inactive_users),
                (3, 2)
            );
            assert!(
                s.store
                    .delete_directory(&roster_store::Actor::Cli, &other)
                    .await
                    .unwrap()
            );
            let gone = s
                .store
                .directory_counts(std::slice::from_ref(&other))
                .await
                .unwrap();
            assert_eq!(gone[&other], Default::default());
            check(&s, "another directory's deletion").await;
        }
        let what = match rng.below(8) {
            0 | 1 => {
                let r = s
                    .post("/Users", user_doc(&name(&mut rng), active(&mut rng)))
                    .await;
                users.extend(created_id(&r));
                "create user"
            }
            2 if !users.is_empty() => {
                let id = users.swap_remove(rng.below(users.len()));
                assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
                "delete user"
            }
            3 if !users.is_empty() => {
                let id = &users[rng.below(users.len())];
                let value = rng.below(2) == 0;
                let r = s
                    .patch(
                        &format!("/Users/{id}"),
                        json!({"schemas": [PATCH],
                               "Operations": [{"op": "replace", "path": "active", "value": value}]}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
                "patch active"
            }
            4 if !users.is_empty() => {
                let id = users[rng.below(users.len())].clone();
                let current = s.get(&format!("/Users/{id}")).await.body;
                let doc = user_doc(current["userName"].as_str().unwrap(), active(&mut rng));
                let r = s.put(&format!("/Users/{id}"), doc).await;
                assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
                "replace user"
            }
            5 => {
                let members: Vec<Value> = users
                    .iter()
                    .take(rng.below(4))
                    .map(|u| json!({"value": u}))
                    .collect();
                let r = s
                    .post(
                        "/Groups",
                        json!({"displayName": format!("g{}", rng.below(10)), "members": members}),
                    )
                    .await;
                groups.extend(created_id(&r));
                "create group"
            }
            6 if !groups.is_empty() => {
                let id = groups.swap_remove(rng.below(groups.len()));
                assert_eq!(s.delete(&format!("/Groups/{id}")).await.status, 204);
                "delete group"
            }
            7 => {
                // A bulk request: creates (some refused), PATCHes, deletes, and
                // a reference cycle that fails and rolls back.
                let mut ops = Vec::new();
                for i in 0..rng.below(6) + 1 {
                    ops.push(
                        json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                                    "data": user_doc(&name(&mut rng), active(&mut rng))}),
                    );
                }
                if !users.is_empty() {
                    let id = &users[rng.below(users.len())];
                    ops.push(json!({"method": "PATCH", "path": format!("/Users/{id}"),
                        "data": {"schemas": [PATCH], "Operations":
                            [{"op": "replace", "path": "active", "value": rng.below(2) == 0}]}}));
                }
                if rng.below(2) == 0 && !users.is_empty() {
                    let id = users.swap_remove(rng.below(users.len()));
                    ops.push(json!({"method": "DELETE", "path": format!("/Users/{id}")}));
                }
                if rng.below(2) == 0 {
                    let n = step;
                    ops.push(json!({"method": "POST", "path": "/Groups", "bulkId": "c1",
                        "data": {"displayName": format!("c1-{n}"), "members": [{"value": "bulkId:c2"}]}}));
                    ops.push(json!({"method": "POST", "path": "/Groups", "bulkId": "c2",
                        "data": {"displayName": format!("c2-{n}"),
                                 "members": [{"type": "User", "value": "bulkId:c1"}]}}));
                }
                let r = s
                    .post(
                        "/Bulk",
                        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                               "Operations": ops}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
                for op in r.body["Operations"].as_array().unwrap() {
                    let created = op["method"] == "POST" && op["status"] == "201";
                    if let (true, Some(loc)) = (created, op["location"].as_str()) {
                        let id = loc.rsplit('/').next().unwrap().to_owned();
                        if loc.contains("/Groups/") {
                            groups.push(id);
                        } else {
                            users.push(id);
                        }
                    }
                }
                "bulk"
            }
            _ => continue,
        };
        check(&s, &format!("step {step} ({what}), seed {seed}")).await;
    }
}

#[tokio::test]
async fn counters_equal_counting_after_a_random_mix_of_writes() {
    for seed in [0x9e37_79b9_7f4a_7c15, 0x2545_f491_4f6c_dd1d, 7] {
        run(seed).await;
    }
}
