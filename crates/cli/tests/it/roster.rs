//! `roster sync` between two Roster directories: bulk on, bulk off, small
//! limits, incremental runs, reconcile, file sources, dry runs, conflicts.

use roster_server::ServerConfig;
use serde_json::{Value, json};

use crate::support::*;

fn small_bulk() -> ServerConfig {
    ServerConfig {
        bulk_max_operations: 25,
        bulk_max_payload_bytes: 12 * 1024,
        ..ServerConfig::default()
    }
}

/// Source: `n` users, a group of the first five, and a group holding a user and that group.
async fn seed(src: &Dir, n: usize) -> Vec<String> {
    let ids = src.seed_users("user", n).await;
    let eng = src
        .group(
            "eng",
            &ids[..5].iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    src.group("all", &[&ids[7], &eng]).await;
    ids
}

#[tokio::test]
async fn bulk_with_small_limits_full_incremental_and_reconcile() {
    let r = Roster::start(small_bulk()).await;
    let (src, dst) = (r.directory("src").await, r.directory("dst").await);
    let ids = seed(&src, 120).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");

    let run = sync(&src, &dst, &state, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report["mode"], "bulk");
    assert_eq!(run.report["listing"]["mode"], "full");
    assert_eq!(run.count("created"), 122);
    // 122 operations at most 25 per request, plus the 12 KiB cap: at least 5 /Bulk requests.
    let requests = run.report["requests"]["target"].as_u64().unwrap();
    assert!((6..=20).contains(&requests), "{requests} requests");
    assert_eq!(dst.users_by_name().await.len(), 120);
    let m = dst.memberships().await;
    assert_eq!(m["eng"], vec!["user0", "user1", "user2", "user3", "user4"]);
    assert_eq!(m["all"], vec!["group:eng", "user7"]);
    let cp = run.report["checkpoint"]["after"]
        .as_str()
        .unwrap()
        .to_owned();

    // Someone edits user50 in the target (the state holds the version we wrote).
    let t50 = dst.users_by_name().await["user50"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    dst.patch(
        &format!("/Users/{t50}"),
        json!([{"op": "replace", "path": "title", "value": "Edited in the target"}]),
    )
    .await;
    // Change three users and a membership; delete two users in the source.
    for i in [3, 50, 99] {
        src.patch(
            &format!("/Users/{}", ids[i]),
            json!([{"op": "replace", "path": "title", "value": "Boss"}]),
        )
        .await;
    }
    let eng = dst.all("Groups").await;
    assert_eq!(eng.len(), 2);
    let src_groups = src.all("Groups").await;
    let eng_src = src_groups
        .iter()
        .find(|g| g["displayName"] == "eng")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    src.patch(
        &format!("/Groups/{eng_src}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
               {"op": "add", "path": "members", "value": [{"value": ids[10]}]}]),
    )
    .await;
    src.delete(&format!("/Users/{}", ids[110])).await;
    src.delete(&format!("/Users/{}", ids[111])).await;

    let run = sync(&src, &dst, &state, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report["listing"]["mode"], "incremental");
    assert_eq!(run.report["checkpoint"]["before"], cp.as_str());
    assert_eq!(run.count("created"), 0);
    assert_eq!(run.count("updated"), 4, "{}", run.report);
    assert_eq!(run.count("deleted"), 0, "deletions wait for --reconcile");
    // If-Match with the version of our last write caught the edit; the source won.
    assert_eq!(run.count("target_drift"), 1, "{}", run.report);
    let users = dst.users_by_name().await;
    assert_eq!(users["user50"]["title"], "Boss");
    assert_eq!(users.len(), 120);
    assert_eq!(
        dst.memberships().await["eng"],
        vec!["user1", "user10", "user2", "user3", "user4"]
    );

    let run = sync(&src, &dst, &state, &["--reconcile"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.count("deleted"), 2);
    let users = dst.users_by_name().await;
    assert_eq!(users.len(), 118);
    assert!(!users.contains_key("user110") && !users.contains_key("user111"));

    // Nothing left to do: no writes at all.
    let run = sync(&src, &dst, &state, &["--reconcile"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.count("planned"), 0, "{}", run.report);
    assert_eq!(run.report["bytes"]["target_sent"], 0);

    // Most of the source vanishes at once: a reconcile refuses until told.
    for chunk in ids[20..100].chunks(20) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|id| json!({"method": "DELETE", "path": format!("/Users/{id}")}))
            .collect();
        src.post("/Bulk", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}))
            .await;
    }
    let run = sync(&src, &dst, &state, &["--reconcile"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--allow-mass-delete"), "{}", run.stderr);
    assert_eq!(dst.users_by_name().await.len(), 118);
    let run = sync(&src, &dst, &state, &["--reconcile", "--allow-mass-delete"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.count("deleted"), 80);
    assert_eq!(dst.users_by_name().await.len(), 38);
}

#[tokio::test]
async fn single_requests_when_the_target_turns_bulk_off() {
    let src_server = Roster::start(ServerConfig::default()).await;
    let dst_server = Roster::start(ServerConfig {
        bulk_enabled: false,
        ..ServerConfig::default()
    })
    .await;
    let (src, dst) = (
        src_server.directory("src").await,
        dst_server.directory("dst").await,
    );
    let (s, spc) = dst
        .call(reqwest::Method::GET, "/ServiceProviderConfig", None)
        .await;
    assert_eq!((s, &spc["bulk"]["supported"]), (200, &json!(false)));
    let (s, _) = dst
        .call(
            reqwest::Method::POST,
            "/Bulk",
            Some(json!({"Operations": []})),
        )
        .await;
    assert_eq!(s, 501);

    let ids = seed(&src, 40).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let run = sync(&src, &dst, &state, &["--concurrency", "4"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report["mode"], "single");
    assert_eq!(run.count("created"), 42);
    // Discovery, one count per type (the target is empty: nothing to match),
    // then one request per resource.
    assert_eq!(run.report["requests"]["target"], 1 + 2 + 42);
    assert_eq!(dst.memberships().await["all"], vec!["group:eng", "user7"]);

    // An edit in the target is noticed through If-Match, then overwritten.
    let t5 = dst.users_by_name().await["user5"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    dst.patch(
        &format!("/Users/{t5}"),
        json!([{"op": "replace", "path": "nickName", "value": "x"}]),
    )
    .await;
    src.patch(
        &format!("/Users/{}", ids[5]),
        json!([{"op": "replace", "path": "title", "value": "Lead"}]),
    )
    .await;
    let run = sync(&src, &dst, &state, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (run.count("updated"), run.count("target_drift")),
        (1, 1),
        "{}",
        run.report
    );
    let u5 = &dst.users_by_name().await["user5"];
    assert_eq!(u5["title"], "Lead");
    assert!(
        u5.get("nickName").is_none(),
        "the source's version replaces the target's"
    );

    // Deactivate instead of delete.
    src.delete(&format!("/Users/{}", ids[20])).await;
    let run = sync(
        &src,
        &dst,
        &state,
        &["--reconcile", "--delete-mode", "deactivate"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.count("deactivated"), 1);
    let users = dst.users_by_name().await;
    assert_eq!(users["user20"]["active"], false);
    assert_eq!(users["user21"]["active"], true);
    // Already deactivated: a second reconcile leaves it alone.
    let run = sync(
        &src,
        &dst,
        &state,
        &["--reconcile", "--delete-mode", "deactivate"],
    )
    .await;
    assert_eq!(run.count("planned"), 0, "{}", run.report);
}

#[tokio::test]
async fn a_lost_state_file_matches_instead_of_duplicating() {
    let r = Roster::start(ServerConfig::default()).await;
    let (src, dst) = (r.directory("src").await, r.directory("dst").await);
    seed(&src, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    assert_eq!(sync(&src, &dst, &state, &[]).await.code, 0);
    std::fs::remove_file(&state).unwrap();
    let run = sync(&src, &dst, &state, &["--match-by", "userName"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.count("created"), 0);
    assert_eq!(run.count("updated"), 32);
    assert_eq!(dst.users_by_name().await.len(), 30);
    assert_eq!(dst.all("Groups").await.len(), 2);
    let st = state_json(&state);
    assert_eq!(st["users"].as_object().unwrap().len(), 30);
    // A state file is bound to its source and target.
    let other = r.directory("other").await;
    let run = sync(&src, &other, &state, &[]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("another pair"), "{}", run.stderr);
}

#[tokio::test]
async fn a_409_on_create_becomes_an_update_and_bad_items_fail_alone() {
    let r = Roster::start(ServerConfig::default()).await;
    let dst = r.directory("dst").await;
    // The target already has ann, under another externalId.
    dst.post(
        "/Users",
        json!({"schemas": [USER], "userName": "ann@x.com", "externalId": "old", "title": "Old"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.jsonl");
    std::fs::write(
        &file,
        [
            json!({"externalId": "e1", "userName": "ann@x.com", "title": "New"}),
            json!({"externalId": "e2", "userName": "bob@x.com", "emails": [{"value": "not an email", "type": 7}]}),
            json!({"externalId": "e3", "userName": "cy@x.com"}),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n"),
    )
    .unwrap();
    let state = dir.path().join("state.json");
    let run = sync_file(&file, &dst, &state, &["--match-by", "externalId"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.count("conflicts_resolved"), 1, "{}", run.report);
    assert_eq!(run.count("failed"), 1);
    let f = &run.report["failures"][0];
    assert_eq!(f["key"], "e2");
    assert_eq!(f["status"], 400);
    assert!(!f["detail"].as_str().unwrap().is_empty());
    assert!(
        run.stderr.contains("bob@x.com (source e2)"),
        "{}",
        run.stderr
    );
    let users = dst.users_by_name().await;
    assert_eq!(users.len(), 2);
    assert_eq!(users["ann@x.com"]["title"], "New");
    assert_eq!(users["ann@x.com"]["externalId"], "e1");
    assert!(users.contains_key("cy@x.com"));
}

#[tokio::test]
async fn csv_source_with_groups_dry_run_and_reconcile() {
    let r = Roster::start(small_bulk()).await;
    let dst = r.directory("dst").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("hr.csv");
    std::fs::write(
        &csv,
        "userName,externalId,givenName,familyName,email,department,manager,groups\n\
         ann@x.com,e1,Ann,Lee,ann@x.com,R&D,,Eng;All\n\
         bob@x.com,e2,Bob,Ray,bob@x.com,R&D,e1,Eng;All\n\
         cy@x.com,e3,Cy,Oh,,Sales,e1,All\n",
    )
    .unwrap();
    let state = dir.path().join("state.json");

    let run = sync_file(&csv, &dst, &state, &["--dry-run"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("create user ann@x.com"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("create group Eng"), "{}", run.stdout);
    assert!(run.stdout.contains("plan: 5 creates"), "{}", run.stdout);
    assert!(dst.all("Users").await.is_empty(), "a dry run wrote");
    assert!(!state.exists(), "a dry run wrote the state");

    let run = sync_file(&csv, &dst, &state, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.count("created"), 5);
    let users = dst.users_by_name().await;
    let ann_id = users["ann@x.com"]["id"].as_str().unwrap();
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert_eq!(users["bob@x.com"][ent]["manager"]["value"], ann_id);
    assert_eq!(users["cy@x.com"][ent]["department"], "Sales");
    let m = dst.memberships().await;
    assert_eq!(m["All"], vec!["ann@x.com", "bob@x.com", "cy@x.com"]);
    assert_eq!(m["Eng"], vec!["ann@x.com", "bob@x.com"]);

    // Bob leaves, Cy joins Eng.
    std::fs::write(
        &csv,
        "userName,externalId,givenName,familyName,email,department,manager,groups\n\
         ann@x.com,e1,Ann,Lee,ann@x.com,R&D,,Eng;All\n\
         cy@x.com,e3,Cy,Oh,,Sales,e1,All;Eng\n",
    )
    .unwrap();
    let run = sync_file(&csv, &dst, &state, &["--reconcile", "--dry-run"]).await;
    assert!(run.stdout.contains("delete user e2"), "{}", run.stdout);
    assert!(run.stdout.contains("+ member e3"), "{}", run.stdout);
    assert!(run.stdout.contains("- member e2"), "{}", run.stdout);
    let run = sync_file(&csv, &dst, &state, &["--reconcile"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.count("deleted"), 1);
    let m = dst.memberships().await;
    assert_eq!(m["Eng"], vec!["ann@x.com", "cy@x.com"]);
    assert_eq!(m["All"], vec!["ann@x.com", "cy@x.com"]);
    assert_eq!(dst.users_by_name().await.len(), 2);
}
