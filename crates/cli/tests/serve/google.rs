//! Google Workspace directories through the `roster` binary, against the
//! test kit's stand-in of Google's Directory API: `directory create
//! --provider google-workspace` (with its poll interval), a running `roster
//! serve` polling it, `directory sync` and `directory set-poll-interval`,
//! and `secret-key rotate` re-sealing the stored credentials.

use std::time::Duration;

use roster_testkit::google::{self, ADMIN, key_file, member, user};
use roster_testkit::poll;
use serde_json::Value;

use crate::support::Roster;

const KEY: &str = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
const OTHER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn write_key_file(r: &Roster, base: &str) -> String {
    let path = r.dir.path().join("key.json");
    std::fs::write(&path, key_file(base).to_string()).unwrap();
    path.display().to_string()
}

fn create_google(r: &Roster, key_path: &str, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let mut args = vec![
        "directory",
        "create",
        "Acme Google",
        "--provider",
        "google-workspace",
        "--credentials",
        key_path,
        "--admin-email",
        ADMIN,
    ];
    args.extend_from_slice(extra);
    r.json_with(&args, env)
}

/// The directory as `roster directory list --json` shows it.
fn listed(r: &Roster, id: &str) -> Value {
    r.json(&["directory", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("directory {id} is not listed"))
}

/// Waits until the directory's last poll is not `before` and no sync is pending.
async fn polled(r: &Roster, id: &str, before: &Value) -> Value {
    poll::until(
        "a poll of the directory",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let d = listed(r, id);
            if d["google"]["last_poll_at"] != *before && d["google"]["sync_requested"] == false {
                Ok(d)
            } else {
                Err(d)
            }
        },
    )
    .await
}

/// Users and groups pulled into the directory (they carry Google's ids as externalId).
fn pulled(r: &Roster, id: &str) -> i64 {
    let c = rusqlite::Connection::open(r.dir.path().join("roster.db")).unwrap();
    c.query_row(
        "SELECT count(*) FROM resources WHERE directory_id = ? AND external_id IS NOT NULL",
        [id],
        |row| row.get(0),
    )
    .unwrap()
}

fn stored_credentials(r: &Roster) -> Vec<String> {
    let c = rusqlite::Connection::open(r.dir.path().join("roster.db")).unwrap();
    let mut q = c
        .prepare("SELECT credentials FROM google_sources ORDER BY directory_id")
        .unwrap();
    q.query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_directories_are_created_polled_and_synced_from_the_command_line() {
    roster_server::install_crypto_provider();
    let (g, base) = google::stand_in().await;
    {
        let mut g = g.lock();
        g.users = vec![
            user("1", "ada@example.com", "Ada"),
            user("2", "bob@example.com", "Bob"),
        ];
        g.groups = vec![google::group("g1", "eng@example.com", "Engineering")];
        g.members.insert("g1".into(), vec![member("1")]);
    }
    let r = Roster::new();
    let key_path = write_key_file(&r, &base);

    // Bad input is refused before anything is stored.
    for (extra, want) in [
        (
            &["--poll-interval", "30"][..],
            "poll_interval_secs must be 60",
        ),
        (&["--poll-interval", "90000"][..], "86400"),
    ] {
        let mut args = vec![
            "directory",
            "create",
            "x",
            "--provider",
            "google-workspace",
            "--credentials",
            &key_path,
            "--admin-email",
            ADMIN,
        ];
        args.extend_from_slice(extra);
        let out = r.run(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
    }
    let out = r.run(&["directory", "create", "scim", "--poll-interval", "600"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--poll-interval"));
    let out = r.run(&[
        "directory",
        "create",
        "x",
        "--provider",
        "google-workspace",
        "--admin-email",
        ADMIN,
    ]);
    assert!(!out.status.success(), "--credentials is required");
    assert_eq!(r.json(&["directory", "list"]), serde_json::json!([]));

    let d = create_google(&r, &key_path, &["--poll-interval", "120"], &[]);
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(d["provider"], "google-workspace");
    assert_eq!(d["google"]["poll_interval_secs"], 120);
    assert!(!d.to_string().contains("PRIVATE KEY") && d.get("token").is_none());
    let scim = r.json(&["directory", "create", "pushed"]);

    // A running server polls the new directory at once.
    let _server = r.serve_with(None, "info", &[("ROSTER_GOOGLE_API_URL", &base)]);
    let d = polled(&r, &id, &Value::Null).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    assert_eq!(pulled(&r, &id), 3);

    // `directory sync` has it polled again within a second or so.
    g.lock().users.push(user("3", "cy@example.com", "Cy"));
    let before = d["google"]["last_poll_at"].clone();
    let out = r.run(&["directory", "sync", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sync requested"));
    let d = polled(&r, &id, &before).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    assert_eq!(pulled(&r, &id), 4);
    assert_eq!(g.lock().user_snapshots, 2);

    // Only Google directories sync; an unknown one is named.
    let out = r.run(&["directory", "sync", scim["id"].as_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only google-workspace"));
    let out = r.run(&["directory", "sync", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no directory nope"));

    // The interval changes from the command line, within its bounds.
    let out = r.run(&["directory", "set-poll-interval", &id, "3600"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listed(&r, &id)["google"]["poll_interval_secs"], 3600);
    let out = r.run(&["directory", "set-poll-interval", &id, "5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("60 to 86400"));
    let out = r.run(&[
        "directory",
        "set-poll-interval",
        scim["id"].as_str().unwrap(),
        "600",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("google-workspace"));
    assert_eq!(listed(&r, &id)["google"]["poll_interval_secs"], 3600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_key_rotation_reseals_google_credentials() {
    roster_server::install_crypto_provider();
    let (g, base) = google::stand_in().await;
    g.lock().users = vec![user("1", "ada@example.com", "Ada")];
    let r = Roster::new();
    let key_path = write_key_file(&r, &base);
    let d = create_google(&r, &key_path, &[], &[("ROSTER_SECRET_KEY", KEY)]);
    let id = d["id"].as_str().unwrap().to_owned();
    let under_key = stored_credentials(&r);
    assert!(
        under_key[0].starts_with("enc:v1:") && !under_key[0].contains("PRIVATE KEY"),
        "{under_key:?}"
    );

    let rotate = || {
        r.run_with(
            &["secret-key", "rotate", "--json"],
            &[
                ("ROSTER_SECRET_KEY", OTHER_KEY),
                ("ROSTER_PREVIOUS_SECRET_KEYS", KEY),
            ],
        )
    };
    let out = rotate();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counted: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(counted["google_credentials"], 1, "{counted}");
    assert_eq!(counted["reencrypted"], 1, "{counted}");
    let under_other = stored_credentials(&r);
    assert_ne!(under_other, under_key);
    assert!(under_other[0].starts_with("enc:v1:"));
    let again: Value = serde_json::from_slice(&rotate().stdout).unwrap();
    assert_eq!(again["google_credentials"], 0, "{again}");
    assert_eq!(stored_credentials(&r), under_other);

    // The new key alone opens them: a server with only it polls the directory.
    let _server = r.serve_with(
        None,
        "info",
        &[
            ("ROSTER_GOOGLE_API_URL", &base),
            ("ROSTER_SECRET_KEY", OTHER_KEY),
        ],
    );
    let d = polled(&r, &id, &Value::Null).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    assert_eq!(pulled(&r, &id), 1);
}

#[test]
fn the_old_key_alone_no_longer_opens_resealed_credentials() {
    let r = Roster::new();
    let key_path = write_key_file(&r, "http://127.0.0.1:9");
    create_google(&r, &key_path, &[], &[("ROSTER_SECRET_KEY", KEY)]);
    let out = r.run_with(
        &["secret-key", "rotate"],
        &[
            ("ROSTER_SECRET_KEY", OTHER_KEY),
            ("ROSTER_PREVIOUS_SECRET_KEYS", KEY),
        ],
    );
    assert!(out.status.success());
    let file = r.config(&format!("secret_key = \"{KEY}\"\n"));
    let (ok, log) = r.serve_fails(Some(&file));
    assert!(!ok && log.contains("Google Workspace credentials"), "{log}");
}
