//! `roster admin-key` (create with scopes, list, rotate, revoke) and `roster
//! audit tail`: the CLI's changes are audited with the actor `cli`, and no
//! secret reaches the log.

use serde_json::Value;

use crate::support::Roster;

/// `roster audit tail --json` with `extra` arguments, one record per line.
fn audit(r: &Roster, extra: &[&str]) -> (Vec<Value>, String) {
    let out = r.run(&[&["audit", "tail", "--json"], extra].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (records, text)
}

#[test]
fn admin_keys_have_a_lifecycle_and_every_change_is_audited() {
    let r = Roster::new();
    let d = r.json(&["directory", "create", "acme"]);
    let dir = d["id"].as_str().unwrap().to_owned();
    let full = r.json(&["admin-key", "create", "ops"]);
    assert_eq!(full["access"], "full");
    let limited = r.json(&[
        "admin-key",
        "create",
        "tenant",
        "--read-only",
        "--directory",
        &dir,
    ]);
    assert_eq!(limited["access"], "read_only");
    assert_eq!(limited["directories"], serde_json::json!([dir]));
    let id = limited["id"].as_str().unwrap().to_owned();

    let bad = r.run(&["admin-key", "create", "x", "--directory", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no directory nope"));

    let rotated = r.json(&["admin-key", "rotate", &id]);
    assert_eq!(rotated["id"], id.as_str());
    assert_ne!(rotated["key"], limited["key"]);
    let revoked = r.json(&["admin-key", "revoke", &id]);
    assert!(revoked["revoked_at"].is_string());
    assert!(!r.run(&["admin-key", "revoke", &id]).status.success());

    let list = r.json(&["admin-key", "list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|k| k.get("key").is_none()));

    let (records, text) = audit(&r, &[]);
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "directory.created",
            "admin_key.created",
            "admin_key.created",
            "admin_key.rotated",
            "admin_key.revoked"
        ]
    );
    assert!(records.iter().all(|r| r["actor"] == "cli"));
    for secret in [&d["token"], &full["key"], &limited["key"], &rotated["key"]] {
        assert!(!text.contains(secret.as_str().unwrap()));
    }
    // The newest two, and one target's.
    let (last, _) = audit(&r, &["-n", "2"]);
    assert_eq!(last, records[3..].to_vec());
    let (about, _) = audit(&r, &["--target", &id]);
    assert_eq!(about.len(), 3);
    // Text lines too.
    let out = r.run(&["audit", "tail"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert!(text.contains("cli  admin_key.revoked  admin_key"), "{text}");
}
