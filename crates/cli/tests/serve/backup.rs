//! `roster backup` and `roster restore`: a backup taken while a real
//! `roster serve` takes writes holds every write acknowledged before it
//! began; a restore checks what it installs and where.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roster_testkit::poll;
use serde_json::{Value, json};

use crate::support::{Roster, create, request};

/// What the writer has seen acknowledged: users, and each group's members.
#[derive(Default, Clone)]
struct Acked {
    users: Vec<String>,
    members: BTreeMap<String, BTreeSet<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_every_acknowledged_write() {
    let r = Roster::new();
    let d = r.json(&["directory", "create", "acme"]);
    let (dir, token) = (
        d["id"].as_str().unwrap().to_owned(),
        d["token"].as_str().unwrap().to_owned(),
    );
    let admin = r.json(&["admin-key", "create", "ops"]);
    let admin_key = admin["key"].as_str().unwrap().to_owned();
    let server = r.serve(None, "info");
    let addr = server.addr();
    let scim = move |p: &str| format!("/scim/v2/{dir}{p}");

    let mut groups = Vec::new();
    for g in 0..3 {
        let body = json!({"displayName": format!("team-{g}")});
        groups.push(create(addr, &scim("/Groups"), &token, &body).await);
    }

    // The writer: 300 users, and every 10 users a PATCH adding them to a group.
    let acked = Arc::new(Mutex::new(Acked::default()));
    let writer = {
        let (acked, token, groups, scim) =
            (acked.clone(), token.clone(), groups.clone(), scim.clone());
        tokio::spawn(async move {
            let mut batch = Vec::new();
            for i in 0..300 {
                let body = json!({"userName": format!("user-{i}@example.com")});
                let id = create(addr, &scim("/Users"), &token, &body).await;
                acked.lock().unwrap().users.push(id.clone());
                batch.push(id);
                if batch.len() == 10 {
                    let group = &groups[(i / 10) % groups.len()];
                    let members: Vec<Value> = batch.iter().map(|m| json!({"value": m})).collect();
                    let (status, body) = request(
                        addr,
                        "PATCH",
                        &scim(&format!("/Groups/{group}")),
                        &token,
                        Some(&json!({
                            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "add", "path": "members", "value": members}],
                        })),
                    )
                    .await;
                    assert!(status == 200 || status == 204, "{status} {body}");
                    acked
                        .lock()
                        .unwrap()
                        .members
                        .entry(group.clone())
                        .or_default()
                        .extend(batch.drain(..));
                }
            }
        })
    };

    // Back up in the middle of the load.
    poll::until(
        "100 users written (the writer is too slow)",
        Duration::from_secs(10),
        Duration::from_millis(5),
        || async {
            let users = acked.lock().unwrap().users.len();
            if users >= 100 { Ok(()) } else { Err(users) }
        },
    )
    .await;
    let before = acked.lock().unwrap().clone();
    let file = r.dir.path().join("backups").join("roster-backup.db");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let out = {
        let args = ["backup", "--to", file.to_str().unwrap(), "--json"].map(str::to_owned);
        let cmd_db = r.db();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
                .args(&args)
                .env("ROSTER_DATABASE_URL", cmd_db)
                .env_remove("ROSTER_CONFIG")
                .env_remove("ROSTER_LOG")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(
        out.status.success(),
        "roster backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["schema_version"],
        roster_store::sqlite::SCHEMA_VERSION,
        "{report}"
    );
    assert!(report["pages"].as_i64().unwrap() > 0, "{report}");
    assert_eq!(
        report["bytes"].as_u64().unwrap(),
        std::fs::metadata(&file).unwrap().len()
    );
    tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the writer finished")
        .unwrap();
    // Only the backup is in the folder: its temporary file was renamed.
    let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [file.file_name().unwrap()]);
    server.terminate();
    server.wait_exit(Duration::from_secs(10)).unwrap();

    // Restore into a fresh place and serve it.
    let fresh = Roster::new();
    let out = fresh.run(&["restore", "--from", file.to_str().unwrap(), "--yes"]);
    assert!(
        out.status.success(),
        "roster restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = fresh.serve(None, "info");
    let addr = server.addr();

    // Every acknowledged user and membership is there.
    let mut listed = BTreeSet::new();
    let mut start = 1;
    loop {
        let (status, body) = request(
            addr,
            "GET",
            &scim(&format!("/Users?startIndex={start}&count=100")),
            &token,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        if resources.is_empty() {
            break;
        }
        listed.extend(
            resources
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned()),
        );
        start += resources.len();
    }
    for u in &before.users {
        assert!(
            listed.contains(u),
            "user {u} acknowledged before the backup is missing"
        );
    }
    for (group, members) in &before.members {
        let (status, body) = request(
            addr,
            "GET",
            &scim(&format!("/Groups/{group}")),
            &token,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let g: Value = serde_json::from_str(&body).unwrap();
        let have: BTreeSet<String> = g["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            members.is_subset(&have),
            "group {group} lost members: {:?}",
            members.difference(&have).collect::<Vec<_>>()
        );
    }

    // And their events: one dsync.user.created per user, one user_added per membership.
    let mut created = BTreeSet::new();
    let mut added = BTreeSet::new();
    let mut groups_created = BTreeSet::new();
    let mut after = String::new();
    for _ in 0..20 {
        let path = if after.is_empty() {
            "/api/v1/events?limit=1000".to_owned()
        } else {
            format!("/api/v1/events?limit=1000&after={after}")
        };
        let (status, body) = request(addr, "GET", &path, &admin_key, None).await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let data = page["data"].as_array().unwrap();
        if data.is_empty() {
            break;
        }
        for e in data {
            match e["event"].as_str().unwrap() {
                "dsync.user.created" => {
                    created.insert(e["data"]["id"].as_str().unwrap().to_owned());
                }
                "dsync.group.created" => {
                    groups_created.insert(e["data"]["id"].as_str().unwrap().to_owned());
                }
                "dsync.group.user_added" => {
                    added.insert((
                        e["data"]["group"]["id"].as_str().unwrap().to_owned(),
                        e["data"]["user"]["id"].as_str().unwrap().to_owned(),
                    ));
                }
                _ => {}
            }
        }
        after = page["list_metadata"]["after"].as_str().unwrap().to_owned();
    }
    for g in &groups {
        assert!(groups_created.contains(g), "no dsync.group.created for {g}");
    }
    for u in &before.users {
        assert!(created.contains(u), "no dsync.user.created for {u}");
    }
    for (group, members) in &before.members {
        for m in members {
            assert!(
                added.contains(&(group.clone(), m.clone())),
                "no dsync.group.user_added for {m} in {group}"
            );
        }
    }
    server.assert_no_panic();
}

#[test]
fn restore_refuses_a_file_that_is_not_a_roster_database() {
    let r = Roster::new();
    r.json(&["directory", "create", "acme"]);
    let junk = r.dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just some bytes").unwrap();
    let out = r.run(&["restore", "--from", junk.to_str().unwrap(), "--yes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a Roster database"), "{err}");

    // A SQLite database, but not Roster's.
    let other = r.dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let out = r.run(&["restore", "--from", other.to_str().unwrap(), "--yes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a Roster database"), "{err}");

    // A Roster database from a newer Roster.
    let file = r.dir.path().join("backup.db");
    let out = r.run(&["backup", "--to", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let newer = r.dir.path().join("newer.db");
    std::fs::copy(&file, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 999;")
        .unwrap();
    let out = r.run(&["restore", "--from", newer.to_str().unwrap(), "--yes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer than this Roster"), "{err}");

    // Without --yes and without a terminal, nothing is replaced.
    let out = r.run(&["restore", "--from", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pass --yes"), "{err}");
}

#[test]
fn restore_refuses_while_a_server_runs_on_the_target() {
    let r = Roster::new();
    r.json(&["directory", "create", "acme"]);
    let file = r.dir.path().join("backup.db");
    let out = r.run(&["backup", "--to", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = r.serve(None, "info");
    let out = r.run(&["restore", "--from", file.to_str().unwrap(), "--yes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stop the server before restoring"), "{err}");
    assert!(server.exited().is_none(), "the server still runs");
    server.terminate();
    server.wait_exit(Duration::from_secs(10)).unwrap();

    // Stopped, the same restore goes through.
    let out = r.run(&["restore", "--from", file.to_str().unwrap(), "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dirs = r.json(&["directory", "list"]);
    assert_eq!(dirs.as_array().unwrap().len(), 1, "{dirs}");
}

#[test]
fn backup_and_restore_refuse_postgres() {
    let r = Roster::new();
    let file = r.dir.path().join("backup.db");
    let pg = [(
        "ROSTER_DATABASE_URL",
        "postgres://roster@127.0.0.1:1/roster",
    )];
    let out = r.run_with(&["backup", "--to", file.to_str().unwrap()], &pg);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pg_dump") && err.contains("docs/deployment.md"),
        "{err}"
    );
    assert!(!file.exists());
    let out = r.run_with(&["restore", "--from", file.to_str().unwrap(), "--yes"], &pg);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pg_restore") && err.contains("docs/deployment.md"),
        "{err}"
    );
}
