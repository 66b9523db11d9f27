//! Google Workspace directories against the test kit's local stand-in of
//! Google's token endpoint and Directory API (no test reaches Google; see
//! `roster_testkit::google`).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use roster_server::ServerConfig;
use roster_store::Kind;
use roster_testkit::google::{ADMIN, group, key_file, member, stand_in, user};
use roster_testkit::poll;
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use crate::support::TestServer;

pub(crate) async fn server(base: &str) -> Option<TestServer> {
    let config = ServerConfig {
        google_api_url: base.to_owned(),
        ..ServerConfig::default()
    };
    TestServer::start_with(config).await
}

/// Creates the Google directory through `/api/v1`; returns its id.
pub(crate) async fn create(s: &TestServer, key: &str, base: &str) -> String {
    let r = api(
        s,
        key,
        Method::POST,
        "/directories",
        Some(json!({"name": "Acme Google", "provider": "google-workspace", "credentials": key_file(base),
                    "admin_email": ADMIN, "customer": "my_customer"})),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["provider"], "google-workspace");
    assert!(r.body.get("token").is_none() && !r.body.to_string().contains("PRIVATE KEY"));
    r.body["id"].as_str().unwrap().to_owned()
}

/// Asks for a sync and waits for the poll after `after` (its last_poll_at); returns the directory.
async fn sync(s: &TestServer, key: &str, id: &str) -> Value {
    let before = api(s, key, Method::GET, &format!("/directories/{id}"), None)
        .await
        .body;
    let r = api(
        s,
        key,
        Method::POST,
        &format!("/directories/{id}/sync"),
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let path = format!("/directories/{id}");
    poll::until(
        "a poll after the sync request",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let d = api(s, key, Method::GET, &path, None).await.body;
            if d["google"]["last_poll_at"] != before["google"]["last_poll_at"]
                && d["google"]["sync_requested"] == false
            {
                Ok(d)
            } else {
                Err(d)
            }
        },
    )
    .await
}

/// The directory's events once two reads 200 ms apart agree (the last read
/// after 5 s if they never do). On PostgreSQL an event shows only once no
/// Roster transaction that began before it is still running, so a background
/// write (the request log, a webhook claim) can hold the newest back for a
/// moment; several checks here compare a count before and after a poll that
/// must write nothing.
async fn events(s: &TestServer, id: &str) -> Vec<String> {
    let read = || async {
        s.store
            .list_events(0, 10_000, &[], Some(&[id.to_owned()]))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect::<Vec<String>>()
    };
    let previous = RefCell::new(None);
    let settled = poll::until_or_last(
        Duration::from_secs(5),
        Duration::from_millis(200),
        || async {
            let now = read().await;
            let agreed = previous.borrow().as_ref() == Some(&now);
            previous.replace(Some(now.clone()));
            (agreed, now)
        },
        |(agreed, _)| *agreed,
    );
    settled.await.1
}

fn count(events: &[String], name: &str) -> usize {
    events.iter().filter(|e| *e == name).count()
}

async fn stored_user(s: &TestServer, dir: &str, google_id: &str) -> Option<Value> {
    s.store
        .by_external_ids(dir, Kind::User, vec![google_id.to_owned()])
        .await
        .unwrap()
        .pop()
        .map(|u| u.doc)
}

#[tokio::test]
async fn polls_users_groups_and_memberships_like_a_scim_push() {
    let (g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    let key = admin_key(&s).await;
    {
        let mut g = g.lock();
        g.users = vec![
            user("1", "ada@example.com", "Ada"),
            user("2", "bob@example.com", "Bob"),
            user("3", "cy@example.com", "Cy"),
        ];
        g.groups = vec![json!({"id": "g1", "email": "eng@example.com", "name": "Engineering"})];
        g.members
            .insert("g1".into(), vec![member("1"), member("2")]);
    }
    let id = create(&s, &key, &base).await;
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    let ev = events(&s, &id).await;
    assert_eq!(count(&ev, "dsync.user.created"), 3, "{ev:?}");
    assert_eq!(count(&ev, "dsync.group.created"), 1, "{ev:?}");
    assert_eq!(count(&ev, "dsync.group.user_added"), 2, "{ev:?}");
    let ada = stored_user(&s, &id, "1").await.unwrap();
    assert_eq!(ada["userName"], "ada@example.com");
    assert_eq!(ada["title"], "Engineer");
    assert_eq!(
        ada["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "R&D"
    );
    // The directory's users through the app-facing API, as for a SCIM directory.
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!("/directories/{id}/users"),
        None,
    )
    .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 3, "{:?}", r.body);

    // Nothing changed at Google: nothing is written, no event.
    sync(&s, &key, &id).await;
    assert_eq!(events(&s, &id).await.len(), ev.len());
    assert_eq!(g.lock().token_grants, 1, "the access token is reused");

    // A suspension, a deletion, a rename and a membership move.
    {
        let mut g = g.lock();
        g.users[1]["suspended"] = json!(true);
        g.users[0]["name"]["familyName"] = json!("Lovelace");
        g.users.remove(2);
        g.members.insert("g1".into(), vec![member("2")]);
        g.groups
            .push(json!({"id": "g2", "email": "ops@example.com", "name": "Ops"}));
        g.members.insert("g2".into(), vec![member("1")]);
    }
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    let after: Vec<String> = events(&s, &id).await.split_off(ev.len());
    assert_eq!(count(&after, "dsync.user.deleted"), 1, "{after:?}");
    assert_eq!(count(&after, "dsync.user.updated"), 2, "{after:?}");
    assert_eq!(count(&after, "dsync.group.created"), 1, "{after:?}");
    assert_eq!(count(&after, "dsync.group.user_removed"), 1, "{after:?}");
    assert_eq!(count(&after, "dsync.group.user_added"), 1, "{after:?}");
    assert_eq!(stored_user(&s, &id, "2").await.unwrap()["active"], false);
    assert!(stored_user(&s, &id, "3").await.is_none());
    assert_eq!(
        stored_user(&s, &id, "1").await.unwrap()["name"]["familyName"],
        "Lovelace"
    );
}

#[tokio::test]
async fn a_cut_short_listing_deletes_nothing_and_quota_errors_are_retried() {
    let (g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    let key = admin_key(&s).await;
    {
        let mut g = g.lock();
        g.users = (1..=5)
            .map(|i| user(&i.to_string(), &format!("u{i}@example.com"), "U"))
            .collect();
    }
    let id = create(&s, &key, &base).await;
    assert_eq!(
        sync(&s, &key, &id).await["google"]["last_poll_result"],
        "ok"
    );
    let before = events(&s, &id).await.len();

    // User 5 leaves, but the listing fails on its second page.
    {
        let mut g = g.lock();
        g.users.pop();
        g.fail_from = Some(2);
    }
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "error", "{d}");
    assert!(
        d["google"]["last_poll_error"]
            .as_str()
            .unwrap()
            .contains("400"),
        "{d}"
    );
    let listed = s.store.external_index(&id, Kind::User).await.unwrap();
    assert_eq!(listed.len(), 5, "nothing deleted on a cut-short listing");
    assert_eq!(events(&s, &id).await.len(), before);
    // The error shows in `roster directory list`'s source too: the API list.
    let all = api(&s, &key, Method::GET, "/directories", None).await.body;
    let mine = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["google"]["last_poll_result"], "error");

    // Quota: two 429s with Retry-After, then the listing goes through.
    {
        let mut g = g.lock();
        g.fail_from = None;
        g.throttle = 2;
    }
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    assert_eq!(d["google"]["last_poll_error"], Value::Null);
    assert_eq!(g.lock().throttled, 2);
    assert_eq!(
        s.store.external_index(&id, Kind::User).await.unwrap().len(),
        4
    );
    assert_eq!(count(&events(&s, &id).await, "dsync.user.deleted"), 1);

    // Google's per-user quota answers 403 userRateLimitExceeded: retried
    // with backoff too, not taken for missing delegation.
    {
        let mut g = g.lock();
        g.throttle = 2;
        g.throttle_403 = true;
    }
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    assert_eq!(g.lock().throttled, 4);
}

#[tokio::test]
async fn bad_keys_missing_delegation_and_bad_requests_are_reported() {
    let (g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    let key = admin_key(&s).await;
    // Missing delegation: the token endpoint refuses the admin.
    let r = api(&s, &key, Method::POST, "/directories", Some(json!({"name": "No delegation", "provider": "google-workspace",
        "credentials": key_file(&base), "admin_email": "someone@example.com", "customer": "my_customer"}))).await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let d = sync(&s, &key, &id).await;
    let err = d["google"]["last_poll_error"].as_str().unwrap();
    assert!(
        err.contains("403") && err.contains("unauthorized_client"),
        "{err}"
    );

    // A key the stand-in does not know: the signature fails (401).
    g.lock().public_key = roster_testkit::google::new_key().1;
    let id = create(&s, &key, &base).await;
    let d = sync(&s, &key, &id).await;
    let err = d["google"]["last_poll_error"].as_str().unwrap();
    assert!(
        err.contains("401") && err.contains("Invalid JWT Signature"),
        "{err}"
    );

    // Bad input is a 400 naming the problem; nothing is created.
    for (body, want) in [
        (
            json!({"name": "x", "provider": "google-workspace", "credentials": {"client_email": "a@b"}, "admin_email": ADMIN}),
            "private_key",
        ),
        (
            json!({"name": "x", "provider": "google-workspace", "credentials": key_file(&base), "admin_email": "nobody"}),
            "admin_email",
        ),
        (
            json!({"name": "x", "provider": "okta-pull"}),
            "unknown provider",
        ),
        (
            json!({"name": "x", "admin_email": ADMIN}),
            "google-workspace",
        ),
    ] {
        let r = api(&s, &key, Method::POST, "/directories", Some(body)).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert!(r.body.to_string().contains(want), "{:?}", r.body);
    }
    // A SCIM directory is not synced; an unknown one is 404.
    let r = api(
        &s,
        &key,
        Method::POST,
        &format!("/directories/{}/sync", s.directory),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = api(&s, &key, Method::POST, "/directories/nope/sync", None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
}

#[tokio::test]
async fn two_instances_poll_a_directory_once() {
    if crate::STORE != crate::support::StoreKind::Postgres {
        return;
    }
    let (g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    let config = ServerConfig {
        google_api_url: base.clone(),
        ..ServerConfig::default()
    };
    // A second instance on the same database, with its own poller.
    let reg = Arc::new(roster_server::build_registry(&config).unwrap());
    let store2 = s.place().open(reg.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(roster_server::serve(listener, store2, reg, config, async {
        let _ = stopped.await;
    }));
    let key = admin_key(&s).await;
    {
        let mut g = g.lock();
        g.users = (1..=20)
            .map(|i| user(&i.to_string(), &format!("u{i}@example.com"), "U"))
            .collect();
    }
    let id = create(&s, &key, &base).await;
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    // Both pollers looked every second; only one listed the directory.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(g.lock().user_snapshots, 1);
    assert_eq!(count(&events(&s, &id).await, "dsync.user.created"), 20);
    drop(stop);
}

/// Everything a poll may change in a directory: its users and groups
/// (documents with their versions) and each group's members.
async fn snapshot(s: &TestServer, dir: &str) -> Value {
    let mut out = json!({});
    for kind in [Kind::User, Kind::Group] {
        let ext: Vec<String> = s
            .store
            .external_index(dir, kind)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|(_, e)| e)
            .collect();
        let mut docs: Vec<(String, Value)> = s
            .store
            .by_external_ids(dir, kind, ext)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.doc))
            .collect();
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        if kind == Kind::Group {
            let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).collect();
            let members = s.store.members(dir, &ids).await.unwrap();
            let mut m: Vec<(String, Vec<String>)> = members
                .into_iter()
                .map(|(g, list)| {
                    let mut l: Vec<String> = list.into_iter().map(|m| m.id).collect();
                    l.sort();
                    (g, l)
                })
                .collect();
            m.sort();
            out["members"] = json!(m);
        }
        out[kind.name()] = json!(docs);
    }
    out
}

#[tokio::test]
async fn a_listing_cut_short_on_page_three_leaves_the_directory_as_it_was() {
    let (g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    let key = admin_key(&s).await;
    {
        let mut g = g.lock();
        g.users = (1..=8)
            .map(|i| user(&i.to_string(), &format!("u{i}@example.com"), "U"))
            .collect();
        g.groups = vec![
            group("g1", "eng@example.com", "Engineering"),
            group("g2", "ops@example.com", "Ops"),
        ];
        g.members
            .insert("g1".into(), vec![member("1"), member("2"), member("3")]);
        g.members.insert("g2".into(), vec![member("4")]);
    }
    let id = create(&s, &key, &base).await;
    assert_eq!(
        sync(&s, &key, &id).await["google"]["last_poll_result"],
        "ok"
    );
    let before = snapshot(&s, &id).await;
    let events_before = events(&s, &id).await;
    assert_eq!(before["members"].as_array().unwrap().len(), 2, "{before}");

    // Changes on every page and in every listing; the third users page fails
    // (two users a page: offsets 4 and later).
    {
        let mut g = g.lock();
        g.users[0]["name"]["familyName"] = json!("Renamed");
        g.users[1]["suspended"] = json!(true);
        g.users.retain(|u| u["id"] != "8");
        g.users.push(user("9", "u9@example.com", "New"));
        g.groups.retain(|x| x["id"] != "g2");
        g.groups.push(group("g3", "sales@example.com", "Sales"));
        g.members
            .insert("g1".into(), vec![member("1"), member("4")]);
        g.members.insert("g3".into(), vec![member("9")]);
        g.fail_from = Some(4);
    }
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "error", "{d}");
    assert_eq!(snapshot(&s, &id).await, before);
    assert_eq!(events(&s, &id).await, events_before);

    // The listing completes: every change lands in one poll.
    g.lock().fail_from = None;
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    let after: Vec<String> = events(&s, &id).await.split_off(events_before.len());
    assert_eq!(count(&after, "dsync.user.created"), 1, "{after:?}");
    assert_eq!(count(&after, "dsync.user.deleted"), 1, "{after:?}");
    assert_eq!(count(&after, "dsync.user.updated"), 2, "{after:?}");
    assert_eq!(count(&after, "dsync.group.created"), 1, "{after:?}");
    assert_eq!(count(&after, "dsync.group.deleted"), 1, "{after:?}");
    // g1 loses 2 and 3 and gains 4; g3 gains 9.
    assert_eq!(count(&after, "dsync.group.user_removed"), 2, "{after:?}");
    assert_eq!(count(&after, "dsync.group.user_added"), 2, "{after:?}");
    let now = snapshot(&s, &id).await;
    assert_eq!(now["User"].as_array().unwrap().len(), 8, "{now}");
    assert_eq!(now["Group"].as_array().unwrap().len(), 2, "{now}");
    // A poll with nothing new writes nothing.
    sync(&s, &key, &id).await;
    assert_eq!(snapshot(&s, &id).await, now);
}

#[tokio::test]
async fn the_poll_interval_is_set_at_create_and_in_the_settings_and_audited() {
    let (_g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    let key = admin_key(&s).await;
    let body = |interval: Value| {
        json!({"name": "Interval", "provider": "google-workspace", "credentials": key_file(&base),
               "admin_email": ADMIN, "poll_interval_secs": interval})
    };
    let r = api(
        &s,
        &key,
        Method::POST,
        "/directories",
        Some(body(json!(120))),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["google"]["poll_interval_secs"], 120);
    let id = r.body["id"].as_str().unwrap().to_owned();
    for bad in [json!(59), json!(86_401)] {
        let r = api(&s, &key, Method::POST, "/directories", Some(body(bad))).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert!(
            r.body
                .to_string()
                .contains("poll_interval_secs must be 60 to 86400"),
            "{:?}",
            r.body
        );
    }
    let r = api(
        &s,
        &key,
        Method::POST,
        "/directories",
        Some(body(json!("600"))),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    // Left out: ten minutes.
    let r = api(
        &s,
        &key,
        Method::POST,
        "/directories",
        Some(json!({"name": "Default",
        "provider": "google-workspace", "credentials": key_file(&base), "admin_email": ADMIN})),
    )
    .await;
    assert_eq!(r.body["google"]["poll_interval_secs"], 600, "{:?}", r.body);

    let settings = format!("/directories/{id}/settings");
    let r = api(&s, &key, Method::GET, &settings, None).await;
    assert_eq!(r.body["poll_interval_secs"], 120, "{:?}", r.body);
    let r = api(
        &s,
        &key,
        Method::PUT,
        &settings,
        Some(json!({"poll_interval_secs": 3600})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["poll_interval_secs"], 3600);
    let d = api(&s, &key, Method::GET, &format!("/directories/{id}"), None).await;
    assert_eq!(d.body["google"]["poll_interval_secs"], 3600, "{:?}", d.body);
    for bad in [json!(10), json!(null), json!(1.5)] {
        let r = api(
            &s,
            &key,
            Method::PUT,
            &settings,
            Some(json!({"poll_interval_secs": bad})),
        )
        .await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert!(
            r.body.to_string().contains("poll_interval_secs"),
            "{:?}",
            r.body
        );
    }
    // A SCIM directory has no poll: a 400 naming why, and nothing changes.
    let scim = format!("/directories/{}/settings", s.directory);
    let r = api(
        &s,
        &key,
        Method::PUT,
        &scim,
        Some(json!({"poll_interval_secs": 600, "deactivation": "delete"})),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.body.to_string().contains("google-workspace"),
        "{:?}",
        r.body
    );
    let r = api(&s, &key, Method::GET, &scim, None).await;
    assert_eq!(r.body["deactivation"], "update", "{:?}", r.body);
    assert!(r.body.get("poll_interval_secs").is_none(), "{:?}", r.body);
    let r = api(
        &s,
        &key,
        Method::POST,
        "/directories",
        Some(json!({"name": "scim", "poll_interval_secs": 600})),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);

    // The change is in the audit log with its value.
    let log = api(
        &s,
        &key,
        Method::GET,
        &format!("/audit_log?target_id={id}"),
        None,
    )
    .await;
    let changed = log.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "settings.updated")
        .unwrap_or_else(|| panic!("no settings.updated record: {:?}", log.body));
    assert!(
        changed.to_string().contains("\"poll_interval_secs\":3600"),
        "{changed}"
    );
}

#[tokio::test]
async fn polls_are_counted_timed_and_labelled_in_metrics() {
    let (g, base) = stand_in().await;
    let Some(s) = TestServer::start_with(ServerConfig {
        google_api_url: base.clone(),
        metrics_listen: Some(([127, 0, 0, 1], 0).into()),
        metrics_directory_labels: true,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let key = admin_key(&s).await;
    {
        let mut g = g.lock();
        g.users = (1..=3)
            .map(|i| user(&i.to_string(), &format!("u{i}@example.com"), "U"))
            .collect();
        g.groups = vec![group("g1", "eng@example.com", "Engineering")];
        g.members
            .insert("g1".into(), vec![member("1"), member("2")]);
    }
    let id = create(&s, &key, &base).await;
    assert_eq!(
        sync(&s, &key, &id).await["google"]["last_poll_result"],
        "ok"
    );
    g.lock().fail_from = Some(2);
    assert_eq!(
        sync(&s, &key, &id).await["google"]["last_poll_result"],
        "error"
    );
    let addr = s.metrics_addr().expect("metrics_listen was set");
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |name: &str, labels: &[&str]| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    let dir = format!("directory=\"{id}\"");
    assert_eq!(
        line("roster_google_polls_total", &["result=\"success\"", &dir]),
        1.0
    );
    assert_eq!(
        line("roster_google_polls_total", &["result=\"error\"", &dir]),
        1.0
    );
    assert_eq!(
        line("roster_google_poll_duration_seconds_count", &[&dir]),
        2.0
    );
    // The first poll listed 3 users; the second 2 before its listing failed.
    assert_eq!(
        line("roster_google_listed_total", &["kind=\"user\"", &dir]),
        5.0
    );
    assert_eq!(
        line("roster_google_listed_total", &["kind=\"group\"", &dir]),
        1.0
    );
    assert_eq!(
        line("roster_google_listed_total", &["kind=\"membership\"", &dir]),
        2.0
    );
    let last = line("roster_google_last_success_timestamp_seconds", &[&dir]);
    let now = roster_store::now_ms() as f64 / 1000.0;
    assert!(last <= now && last > now - 120.0, "{last} vs {now}");
    assert!(
        text.contains("# TYPE roster_google_poll_duration_seconds histogram"),
        "{text}"
    );
}

#[tokio::test]
async fn a_poll_keeps_within_its_request_budget() {
    let (g, base) = stand_in().await;
    // 300 a minute: one request every 200 ms.
    let Some(s) = TestServer::start_with(ServerConfig {
        google_api_url: base.clone(),
        google_requests_per_minute: 300,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let key = admin_key(&s).await;
    g.lock().users = (1..=6)
        .map(|i| user(&i.to_string(), &format!("u{i}@example.com"), "U"))
        .collect();
    let id = create(&s, &key, &base).await;
    assert_eq!(
        sync(&s, &key, &id).await["google"]["last_poll_result"],
        "ok"
    );
    let g = g.lock();
    // Three pages of users and one (empty) of groups.
    assert_eq!(g.requests, 4);
    let times: Vec<_> = g.request_times.iter().collect();
    for w in times.windows(2) {
        let gap = w[1].duration_since(*w[0]);
        assert!(gap >= Duration::from_millis(190), "{gap:?}");
    }
}
