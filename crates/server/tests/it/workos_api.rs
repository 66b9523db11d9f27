//! The WorkOS-compatible Directory Sync API at the root of the listener:
//! every route, both orders page by page in both directions, the filters,
//! every bad input, and isolation.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use roster_testkit::poll;
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use crate::support::{Reply, TestServer};

/// Calls a WorkOS route (at the root) with `key` as the bearer.
async fn wk(s: &TestServer, key: &str, method: Method, path: &str) -> Reply {
    let url = format!("http://{}{path}", s.addr);
    s.call_with(method, &url, None, key, &[]).await
}

async fn ok(s: &TestServer, key: &str, path: &str) -> Value {
    let r = wk(s, key, Method::GET, path).await;
    assert_eq!(r.status, StatusCode::OK, "GET {path}: {:?}", r.body);
    r.body
}

/// A WorkOS error: the status, `code` and `message`, and never `error`.
async fn refused(s: &TestServer, key: &str, path: &str, status: u16, names: &str) -> Value {
    let r = wk(s, key, Method::GET, path).await;
    assert_eq!(r.status.as_u16(), status, "GET {path}: {:?}", r.body);
    assert!(r.body["code"].is_string(), "GET {path}: {:?}", r.body);
    assert!(r.body.get("error").is_none(), "GET {path}: {:?}", r.body);
    let message = r.body["message"].as_str().unwrap_or_default();
    assert!(message.contains(names), "GET {path}: {message}");
    r.body
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

fn cursor(page: &Value, which: &str) -> Option<String> {
    page["list_metadata"][which].as_str().map(str::to_owned)
}

/// Walks a list forwards with `after`, then back with `before` from the last
/// page, checking that both walks see the same pages; the ids in order.
async fn walk_both_ways(s: &TestServer, key: &str, path: &str, limit: u64) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut pages: Vec<(Vec<String>, Option<String>)> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cur = after
            .as_deref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let page = ok(s, key, &format!("{path}{sep}limit={limit}{cur}")).await;
        assert_eq!(page["object"], "list");
        let got = ids(&page);
        assert!(got.len() as u64 <= limit);
        assert_eq!(
            cursor(&page, "before").is_none(),
            pages.is_empty(),
            "{page}"
        );
        pages.push((got, cursor(&page, "before")));
        match cursor(&page, "after") {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    let mut before = pages.last().unwrap().1.clone();
    for (want, _) in pages.iter().rev().skip(1) {
        let b = before
            .clone()
            .expect("a before cursor on every page but the first");
        let page = ok(s, key, &format!("{path}{sep}limit={limit}&before={b}")).await;
        assert_eq!(&ids(&page), want, "{path} backwards");
        before = cursor(&page, "before");
    }
    assert_eq!(before, None, "{path}: the first page has no before");
    pages.into_iter().flat_map(|(p, _)| p).collect()
}

async fn group(s: &TestServer, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    s.create(
        "/Groups",
        json!({"displayName": name, "externalId": format!("ext-{name}"), "members": members}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn user(s: &TestServer, name: &str, email: &str) -> String {
    s.create(
        "/Users",
        json!({"userName": name, "externalId": format!("idp-{name}"),
               "name": {"givenName": "G", "familyName": name},
               "emails": [{"value": email, "type": "work", "primary": true}]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn directories_carry_organization_type_state_and_counts() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let r = api(
        &s,
        &key,
        Method::POST,
        "/directories",
        Some(json!({"name": "Acme Okta", "organization_id": "org_acme", "domain": "acme.test", "type": "okta scim v2.0"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let acme = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["organization_id"], "org_acme");
    // The default directory: two users (one inactive) and a group.
    let a = user(&s, "a", "a@x.test").await;
    user(&s, "b", "b@x.test").await;
    s.patch(
        &format!("/Users/{a}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "active", "value": false}]}),
    )
    .await;
    group(&s, "eng", &[&a]).await;

    let d = ok(&s, &key, &format!("/directories/{}", s.directory)).await;
    assert_eq!(d["object"], "directory");
    assert_eq!(d["state"], "linked");
    assert_eq!(d["type"], "generic scim v2.0");
    assert!(d["organization_id"].is_null());
    assert_eq!(
        d["metadata"],
        json!({"users": {"active": 1, "inactive": 1}, "groups": 1})
    );
    for k in ["external_key", "name", "created_at", "updated_at"] {
        assert!(d[k].is_string(), "{k}: {d}");
    }

    let page = ok(&s, &key, "/directories?organization_id=org_acme").await;
    assert_eq!(ids(&page), vec![acme.clone()]);
    assert_eq!(page["data"][0]["type"], "okta scim v2.0");
    assert_eq!(page["data"][0]["domain"], "acme.test");
    assert_eq!(
        ids(&ok(&s, &key, "/directories?domain=ACME.test").await),
        vec![acme.clone()]
    );
    assert_eq!(
        ids(&ok(&s, &key, "/directories?search=cme%20ok").await),
        vec![acme.clone()]
    );
    assert!(ids(&ok(&s, &key, "/directories?organization_id=org_none").await).is_empty());
    // Newest first by default.
    assert_eq!(
        ids(&ok(&s, &key, "/directories").await),
        [acme.clone(), s.directory.clone()]
    );
    assert_eq!(
        ids(&ok(&s, &key, "/directories?order=asc").await),
        [s.directory.clone(), acme.clone()]
    );

    // PATCH on /api/v1 moves it to another organization; null clears the domain.
    let r = api(
        &s,
        &key,
        Method::PATCH,
        &format!("/directories/{acme}"),
        Some(json!({"organization_id": "org_new", "domain": null})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let d = ok(&s, &key, &format!("/directories/{acme}")).await;
    assert_eq!(d["organization_id"], "org_new");
    assert!(d["domain"].is_null());
    let r = api(
        &s,
        &key,
        Method::PATCH,
        &format!("/directories/{acme}"),
        Some(json!({"type": "fax scim"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    // Deleted: gone from every route, with its users.
    let r = wk(
        &s,
        &key,
        Method::DELETE,
        &format!("/directories/{}", s.directory),
    )
    .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    refused(
        &s,
        &key,
        &format!("/directories/{}", s.directory),
        404,
        &s.directory,
    )
    .await;
    refused(&s, &key, &format!("/directory_users/{a}"), 404, &a).await;
    refused(
        &s,
        &key,
        &format!("/directory_users?directory={}", s.directory),
        404,
        &s.directory,
    )
    .await;
    refused(
        &s,
        &key,
        &format!("/directories/{}/users", s.directory),
        404,
        &s.directory,
    )
    .await;
    let r = wk(
        &s,
        &key,
        Method::DELETE,
        &format!("/directories/{}", s.directory),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_provider_is_detected_from_its_requests_unless_set() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let r = s
        .call_with(
            Method::GET,
            "/Users",
            None,
            &s.token,
            &[("user-agent", "Okta SCIM Client 1.0.0")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let d = ok(&s, &key, &format!("/directories/{}", s.directory)).await;
    assert_eq!(d["type"], "okta scim v2.0");
    // A type set by an administrator stays.
    let r = api(
        &s,
        &key,
        Method::PATCH,
        &format!("/directories/{}", s.directory),
        Some(json!({"type": "azure scim v2.0"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    s.call_with(
        Method::GET,
        "/Users",
        None,
        &s.token,
        &[("user-agent", "OneLogin SCIM")],
    )
    .await;
    let d = ok(&s, &key, &format!("/directories/{}", s.directory)).await;
    assert_eq!(d["type"], "azure scim v2.0");
    // The administrator's change is audited with what it changed; the
    // detection, which no administrator made, is not.
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!("/audit_log?target_id={}", s.directory),
        None,
    )
    .await;
    let updates: Vec<&Value> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "directory.updated")
        .collect();
    assert_eq!(updates.len(), 1, "{:?}", r.body);
    assert_eq!(
        updates[0]["details"],
        json!({"changes": {"type": "azure scim v2.0"}, "previous": {"type": "okta scim v2.0"}})
    );
}

/// A Google Workspace pull directory has WorkOS's type for Google
/// directories, in the directory objects and in `dsync.activated`.
#[tokio::test]
async fn a_google_workspace_directory_is_a_gsuite_directory() {
    let (_google, base) = roster_testkit::google::stand_in().await;
    let Some(s) = super::google::server(&base).await else {
        return;
    };
    let key = admin_key(&s).await;
    let id = super::google::create(&s, &key, &base).await;
    let d = ok(&s, &key, &format!("/directories/{id}")).await;
    assert_eq!(d["type"], "gsuite directory");
    let listed = ok(&s, &key, "/directories?limit=100").await;
    let mine: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"] == id.as_str())
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["type"], "gsuite directory");
    // The SCIM directory beside it keeps the generic type.
    let scim = ok(&s, &key, &format!("/directories/{}", s.directory)).await;
    assert_eq!(scim["type"], "generic scim v2.0");
    // An administrator cannot make it look like a SCIM provider.
    let r = api(
        &s,
        &key,
        Method::PATCH,
        &format!("/directories/{id}"),
        Some(json!({"type": "okta scim v2.0"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let d = ok(&s, &key, &format!("/directories/{id}")).await;
    assert_eq!(d["type"], "gsuite directory");
    // On PostgreSQL an event shows once every transaction that began before
    // it has ended: read until it does.
    let path = format!("/events?events=dsync.activated&directory_id={id}");
    let events = poll::until_or_last(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || ok(&s, &key, &path),
        |page| page["data"].as_array().is_some_and(|d| !d.is_empty()),
    )
    .await;
    assert_eq!(events["data"][0]["data"]["type"], "gsuite directory");
}

#[tokio::test]
async fn users_and_groups_page_in_both_orders_both_ways() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let mut users = Vec::new();
    for i in 0..7 {
        users.push(user(&s, &format!("u{i}"), &format!("u{i}@x.test")).await);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let mut groups = Vec::new();
    for i in 0..5 {
        groups.push(group(&s, &format!("g{i}"), &refs[..=i]).await);
    }
    let mut newest_first = users.clone();
    newest_first.reverse();
    let dir = &s.directory;
    for (path, asc) in [
        (format!("/directory_users?directory={dir}"), &users),
        (format!("/directories/{dir}/users"), &users),
        (format!("/directory_groups?directory={dir}"), &groups),
        (format!("/directories/{dir}/groups"), &groups),
    ] {
        let mut desc = asc.clone();
        desc.reverse();
        let sep = if path.contains('?') { '&' } else { '?' };
        let with = |extra: &str| format!("{path}{sep}{extra}");
        assert_eq!(walk_both_ways(&s, &key, &path, 2).await, desc, "{path}");
        assert_eq!(
            walk_both_ways(&s, &key, &with("order=desc"), 3).await,
            desc,
            "{path}"
        );
        assert_eq!(
            walk_both_ways(&s, &key, &with("order=normal"), 3).await,
            desc,
            "{path}"
        );
        assert_eq!(
            walk_both_ways(&s, &key, &with("order=asc"), 2).await,
            *asc,
            "{path}"
        );
        // The default page is 10, the largest 100.
        assert_eq!(ids(&ok(&s, &key, &path).await).len(), asc.len().min(10));
        assert_eq!(
            ids(&ok(&s, &key, &with("limit=100")).await).len(),
            asc.len()
        );
    }
    let path = format!("/directory_users?directory={dir}&order=asc&limit=100");
    let page = ok(&s, &key, &path).await;
    assert_eq!(ids(&page), users);
    // Each user with its groups, as full DirectoryGroups.
    let first = &page["data"][0];
    assert_eq!(first["groups"].as_array().unwrap().len(), 5);
    assert_eq!(first["groups"][0]["object"], "directory_group");
    assert_eq!(first["groups"][0]["name"], "g0");
    assert_eq!(page["data"][6]["groups"], json!([]));
    for k in [
        "object",
        "id",
        "directory_id",
        "organization_id",
        "idp_id",
        "email",
        "first_name",
        "last_name",
        "state",
        "custom_attributes",
        "raw_attributes",
        "created_at",
        "updated_at",
    ] {
        assert!(first.get(k).is_some(), "{k}: {first}");
    }
    assert_eq!(first["email"], "u0@x.test");
    assert_eq!(first["idp_id"], "idp-u0");
    // The directory-scoped list leaves groups out.
    let scoped = ok(&s, &key, &format!("/directories/{dir}/users?order=asc")).await;
    assert!(scoped["data"][0].get("groups").is_none());
    let _ = newest_first;
}

#[tokio::test]
async fn filters_and_single_objects() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let a = user(&s, "ann", "Ann@X.test").await;
    let b = user(&s, "bob", "bob@x.test").await;
    let g = group(&s, "eng", &[&a]).await;
    let h = group(&s, "ops", &[&a, &b]).await;
    let dir = &s.directory;

    let by_group = ok(&s, &key, &format!("/directory_users?group={g}")).await;
    assert_eq!(ids(&by_group), vec![a.clone()]);
    let both = ok(
        &s,
        &key,
        &format!("/directory_users?directory={dir}&group={h}&order=asc"),
    )
    .await;
    assert_eq!(ids(&both), [a.clone(), b.clone()]);
    assert_eq!(
        ids(&ok(&s, &key, &format!("/directories/{dir}/users?group={g}")).await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&ok(
            &s,
            &key,
            &format!("/directory_users?directory={dir}&email=ann@x.test")
        )
        .await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&ok(
            &s,
            &key,
            &format!("/directories/{dir}/users?idp_id=idp-bob")
        )
        .await),
        vec![b.clone()]
    );
    assert!(
        ids(&ok(
            &s,
            &key,
            &format!("/directory_users?directory={dir}&idp_id=nobody")
        )
        .await)
        .is_empty()
    );
    assert_eq!(
        ids(&ok(&s, &key, &format!("/directory_groups?user={b}")).await),
        vec![h.clone()]
    );
    assert_eq!(
        ids(&ok(
            &s,
            &key,
            &format!("/directories/{dir}/groups?user={a}&order=asc")
        )
        .await),
        [g.clone(), h.clone()]
    );

    let u = ok(&s, &key, &format!("/directory_users/{a}")).await;
    assert_eq!(u["id"], a.as_str());
    assert_eq!(u["groups"].as_array().unwrap().len(), 2);
    let u = ok(&s, &key, &format!("/directories/{dir}/users/{a}")).await;
    assert!(u.get("groups").is_none());
    assert_eq!(
        ok(&s, &key, &format!("/directory_groups/{g}")).await["name"],
        "eng"
    );
    assert_eq!(
        ok(&s, &key, &format!("/directories/{dir}/groups/{g}")).await["idp_id"],
        "ext-eng"
    );
    // A group is not a user, and objects are found only in their directory.
    refused(&s, &key, &format!("/directory_users/{g}"), 404, &g).await;
    refused(&s, &key, &format!("/directory_groups/{a}"), 404, &a).await;
    let (other, _) = s.other_directory().await;
    refused(
        &s,
        &key,
        &format!("/directories/{other}/users/{a}"),
        404,
        &a,
    )
    .await;
    refused(
        &s,
        &key,
        &format!("/directories/{other}/groups/{g}"),
        404,
        &g,
    )
    .await;
    refused(
        &s,
        &key,
        &format!("/directory_users?directory={other}&group={g}"),
        404,
        &g,
    )
    .await;
}

/// The `email` filter finds an address by what the user has now, and a long
/// address (longer than an index entry holds) only by all of it.
#[tokio::test]
async fn the_email_filter_follows_changes_and_reads_long_addresses_whole() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let dir = &s.directory;
    let head = "u".repeat(200);
    let a = user(&s, "ann", &format!("{head}a@x.test")).await;
    let b = user(&s, "bob", &format!("{head}b@x.test")).await;
    let c = user(&s, "cat", "cat@x.test").await;
    let r = s
        .patch(
            &format!("/Users/{c}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "emails[type eq \"work\"].value",
                                   "value": "Cat.New@x.test"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (s, key) = (&s, &key);
    let by_email = |email: String| async move {
        ids(&ok(
            s,
            key,
            &format!("/directory_users?directory={dir}&email={email}"),
        )
        .await)
    };
    assert_eq!(by_email("cat@x.test".into()).await, Vec::<String>::new());
    assert_eq!(by_email("cat.new@X.test".into()).await, vec![c.clone()]);
    assert_eq!(by_email(format!("{head}a@x.test")).await, vec![a]);
    assert_eq!(
        by_email(format!("{}B@X.TEST", head.to_uppercase())).await,
        vec![b]
    );
    assert_eq!(
        by_email(format!("{head}c@x.test")).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_parameter() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let a = user(&s, "ann", "a@x.test").await;
    let g = group(&s, "eng", &[&a]).await;
    let (other, other_token) = s.other_directory().await;
    let theirs = s
        .call_with(
            Method::POST,
            &format!("http://{}/scim/v2/{other}/Users", s.addr),
            Some(json!({"userName": "z"})),
            &other_token,
            &[],
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = &s.directory;
    let users = format!("/directory_users?directory={dir}");
    for (q, names) in [
        ("&limit=0", "limit"),
        ("&limit=101", "limit"),
        ("&limit=ten", "limit"),
        ("&after=nope", "after"),
        ("&before=nope", "before"),
        ("&order=sideways", "order"),
    ] {
        refused(&s, &key, &format!("{users}{q}"), 400, names).await;
    }
    refused(
        &s,
        &key,
        &format!("{users}&after={a}&before={a}"),
        400,
        "before",
    )
    .await;
    // A cursor from another list: another directory's user, or a group.
    let body = refused(&s, &key, &format!("{users}&after={theirs}"), 400, &theirs).await;
    assert_eq!(body["code"], "invalid_cursor");
    refused(&s, &key, &format!("{users}&before={g}"), 400, &g).await;
    refused(&s, &key, "/directory_users", 400, "directory").await;
    refused(&s, &key, "/directory_groups", 400, "directory").await;
    let body = refused(
        &s,
        &key,
        "/directory_users/00000000-0000-7000-8000-000000000000",
        404,
        "0000",
    )
    .await;
    assert_eq!(body["code"], "entity_not_found");
    refused(&s, &key, "/directories/nope", 404, "nope").await;
    refused(&s, &key, "/directory_groups?user=nope", 404, "nope").await;
    refused(&s, &key, "/events", 400, "events").await;
    refused(
        &s,
        &key,
        "/events?events=dsync.user.created&range_start=yesterday",
        400,
        "range_start",
    )
    .await;
    refused(
        &s,
        &key,
        "/events?events=dsync.user.created&range_end=2026-13-01",
        400,
        "range_end",
    )
    .await;
    refused(
        &s,
        &key,
        "/events?events=dsync.user.created&after=evt_zz",
        400,
        "after",
    )
    .await;
    refused(
        &s,
        &key,
        "/events?events=dsync.user.created&limit=500",
        400,
        "limit",
    )
    .await;
    refused(&s, &key, "/events?events=DROP%20TABLE", 400, "events").await;

    // A directory's SCIM token opens none of these routes; nor does nothing.
    for path in [
        "/directories",
        &format!("/directory_users?directory={dir}"),
        "/events?events=dsync.user.created",
    ] {
        let r = wk(&s, &s.token, Method::GET, path).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            r.body["code"].is_string() && r.body.get("error").is_none(),
            "{:?}",
            r.body
        );
        let r = s
            .client
            .get(format!("http://{}{path}", s.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn events_in_workos_shapes_by_type_organization_and_time() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let r = api(
        &s,
        &key,
        Method::POST,
        "/directories",
        Some(json!({"name": "Org dir", "organization_id": "org_1"})),
    )
    .await;
    let org_dir = r.body["id"].as_str().unwrap().to_owned();
    let org_token = r.body["token"].as_str().unwrap().to_owned();
    let a = user(&s, "ann", "a@x.test").await;
    let g = group(&s, "eng", &[]).await;
    s.patch(
        &format!("/Groups/{g}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": a}]}]}),
    )
    .await;
    s.patch(
        &format!("/Users/{a}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "name.givenName", "value": "Anna"}]}),
    )
    .await;
    s.call_with(
        Method::POST,
        &format!("http://{}/scim/v2/{org_dir}/Users", s.addr),
        Some(json!({"userName": "org-user"})),
        &org_token,
        &[],
    )
    .await;

    let all = "dsync.activated,dsync.user.created,dsync.user.updated,dsync.group.created,dsync.group.user_added";
    let wait = |path: String, n: usize| {
        let s = &s;
        let key = &key;
        async move {
            poll::until_or_last(
                Duration::from_secs(5),
                Duration::from_millis(50),
                || ok(s, key, &path),
                |page| page["data"].as_array().unwrap().len() >= n,
            )
            .await
        }
    };
    let page = wait(format!("/events?events={all}&limit=100"), 7).await;
    let types: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "dsync.activated",
            "dsync.activated",
            "dsync.user.created",
            "dsync.group.created",
            "dsync.group.user_added",
            "dsync.user.updated",
            "dsync.user.created"
        ]
    );
    for e in page["data"].as_array().unwrap() {
        assert_eq!(
            e.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["object", "id", "event", "data", "created_at"]
        );
    }
    let added = &page["data"][4]["data"];
    assert_eq!(added["user"]["id"], a.as_str());
    assert_eq!(added["group"]["id"], g.as_str());
    assert_eq!(added["directory_id"], s.directory.as_str());
    let updated = &page["data"][5]["data"];
    assert_eq!(updated["first_name"], "Anna");
    assert_eq!(updated["previous_attributes"]["first_name"], "G");
    assert_eq!(page["data"][1]["data"]["organization_id"], "org_1");
    assert_eq!(page["data"][6]["data"]["organization_id"], "org_1");
    let last = page["data"][6]["id"].as_str().unwrap().to_owned();
    assert_eq!(cursor(&page, "after").as_deref(), Some(last.as_str()));

    // The same types repeated or as events[]: the same events.
    let repeated = all
        .split(',')
        .map(|t| format!("events={t}"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        ids(&ok(&s, &key, &format!("/events?{repeated}&limit=100")).await),
        ids(&page)
    );
    let brackets = all
        .split(',')
        .map(|t| format!("events%5B%5D={t}"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        ids(&ok(&s, &key, &format!("/events?{brackets}&limit=100")).await),
        ids(&page)
    );
    // One type; by organization; polling at the head keeps the cursor.
    let created = ok(&s, &key, "/events?events=dsync.user.created").await;
    assert_eq!(created["data"].as_array().unwrap().len(), 2);
    let org = ok(
        &s,
        &key,
        &format!("/events?events={all}&organization_id=org_1"),
    )
    .await;
    assert_eq!(org["data"].as_array().unwrap().len(), 2);
    let head = ok(&s, &key, &format!("/events?events={all}&after={last}")).await;
    assert!(head["data"].as_array().unwrap().is_empty());
    assert_eq!(cursor(&head, "after").as_deref(), Some(last.as_str()));
    // Pages of two, forwards; newest first with order=desc.
    let first = ok(&s, &key, &format!("/events?events={all}&limit=2")).await;
    let second = ok(
        &s,
        &key,
        &format!(
            "/events?events={all}&limit=2&after={}",
            cursor(&first, "after").unwrap()
        ),
    )
    .await;
    assert_eq!([ids(&first), ids(&second)].concat(), ids(&page)[..4]);
    let back = ok(
        &s,
        &key,
        &format!("/events?events={all}&limit=2&before={}", ids(&second)[0]),
    )
    .await;
    assert_eq!(ids(&back), ids(&first));
    let mut newest = ids(&page);
    newest.reverse();
    assert_eq!(
        ids(&ok(
            &s,
            &key,
            &format!("/events?events={all}&limit=100&order=desc")
        )
        .await),
        newest
    );
    // A time window: everything is after 2000 and before 2100, nothing after 2100.
    let window = ok(&s, &key, &format!("/events?events={all}&limit=100&range_start=2000-01-01T00:00:00.000Z&range_end=2100-01-01T00:00:00Z")).await;
    assert_eq!(ids(&window), ids(&page));
    assert!(
        ids(&ok(
            &s,
            &key,
            &format!("/events?events={all}&range_start=2100-01-01T00:00:00Z")
        )
        .await)
        .is_empty()
    );

    // A deleted directory's events stay findable by its organization.
    let r = wk(&s, &key, Method::DELETE, &format!("/directories/{org_dir}")).await;
    assert!(r.status.is_success());
    let gone = wait(
        "/events?events=dsync.deleted&organization_id=org_1".to_owned(),
        1,
    )
    .await;
    let d = &gone["data"][0]["data"];
    assert_eq!(d["state"], "deleting");
    assert_eq!(d["organization_id"], "org_1");
    assert_eq!(d["name"], "Org dir");
}

#[tokio::test]
async fn api_v1_lists_take_before_and_order_too() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(user(&s, &format!("u{i}"), &format!("u{i}@x.test")).await);
    }
    let path = format!("/directories/{}/users", s.directory);
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!("{path}?limit=2&order=desc"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(ids(&r.body), [users[4].clone(), users[3].clone()]);
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!("{path}?limit=2&before={}", users[3]),
        None,
    )
    .await;
    assert_eq!(ids(&r.body), [users[1].clone(), users[2].clone()]);
    assert_eq!(
        cursor(&r.body, "before").as_deref(),
        Some(users[1].as_str())
    );
    let r = api(&s, &key, Method::GET, &format!("{path}?order=up"), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_request");
}
