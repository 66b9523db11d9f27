//! The tenant isolation matrix: directory A's token against directory B's
//! resources on every endpoint (by id, by filter, by /.search, by /Bulk
//! reference, by cursor), SCIM tokens against the admin, events and app API,
//! admin keys against SCIM, and revoked and rotated tokens. One test per
//! family; each is a table. After every family B's data is checked unchanged.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Reply, TestServer, enc};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// One directory: its id, token, and a user and group in it.
struct Tenant {
    dir: String,
    token: String,
    user: String,
    user_name: String,
    email: String,
    external_id: String,
    group: String,
    group_name: String,
}

/// A server with directories A and B (each with a user in a group, and two
/// more users in B for paging) and an admin key.
struct World {
    s: TestServer,
    a: Tenant,
    b: Tenant,
    admin: String,
}

impl World {
    async fn new() -> Option<World> {
        let s = TestServer::start().await?;
        let (bdir, btoken) = s.other_directory().await;
        let a = Self::fill(&s, s.directory.clone(), s.token.clone(), "a").await;
        let b = Self::fill(&s, bdir, btoken, "b").await;
        for i in 0..2 {
            let r = s
                .call_with(
                    Method::POST,
                    &Self::url(&s, &b.dir, "/Users"),
                    Some(json!({"schemas": [USER], "userName": format!("b-extra-{i}")})),
                    &b.token,
                    &[],
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
        let (_, admin) = s
            .store
            .create_admin_key(&roster_store::Actor::Cli, "matrix", &Default::default())
            .await
            .unwrap();
        Some(World { s, a, b, admin })
    }

    fn url(s: &TestServer, dir: &str, path: &str) -> String {
        format!("http://{}/scim/v2/{dir}{path}", s.addr)
    }

    async fn fill(s: &TestServer, dir: String, token: String, tag: &str) -> Tenant {
        let user_name = format!("{tag}-alice");
        let email = format!("{tag}-alice@example.com");
        let external_id = format!("{tag}-ext-1");
        let r = s
            .call_with(
                Method::POST,
                &Self::url(s, &dir, "/Users"),
                Some(
                    json!({"schemas": [USER], "userName": user_name, "externalId": external_id,
                            "emails": [{"value": email, "primary": true}]}),
                ),
                &token,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let user = r.body["id"].as_str().unwrap().to_owned();
        let group_name = format!("{tag}-admins");
        let r = s
            .call_with(
                Method::POST,
                &Self::url(s, &dir, "/Groups"),
                Some(json!({"schemas": [GROUP], "displayName": group_name,
                            "members": [{"value": user}]})),
                &token,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        Tenant {
            dir,
            token,
            user,
            user_name,
            email,
            external_id,
            group: r.body["id"].as_str().unwrap().to_owned(),
            group_name,
        }
    }

    /// A SCIM request with `token` under directory `dir`.
    async fn scim(
        &self,
        token: &str,
        dir: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.s
            .call_with(method, &Self::url(&self.s, dir, path), body, token, &[])
            .await
    }

    /// A request to `/api/v1…` with `key` as the bearer credential.
    async fn api(&self, key: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .s
            .client
            .request(method, format!("http://{}{path}", self.s.addr))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Reply {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    /// B's user and group are as B left them: version 1 (the group's, 1),
    /// the same members, nothing added to B.
    async fn assert_b_untouched(&self) {
        let b = &self.b;
        let r = self
            .scim(
                &b.token,
                &b.dir,
                Method::GET,
                &format!("/Users/{}", b.user),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["meta"]["version"], "W/\"1\"", "{}", r.body);
        assert_eq!(r.body["userName"], b.user_name.as_str());
        let r = self
            .scim(
                &b.token,
                &b.dir,
                Method::GET,
                &format!("/Groups/{}", b.group),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["meta"]["version"], "W/\"1\"", "{}", r.body);
        let members: Vec<&str> = r.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap())
            .collect();
        assert_eq!(members, [b.user.as_str()]);
        let r = self
            .scim(&b.token, &b.dir, Method::GET, "/Users", None)
            .await;
        assert_eq!(r.body["totalResults"], 3, "{}", r.body);
        let r = self
            .scim(&b.token, &b.dir, Method::GET, "/Groups", None)
            .await;
        assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    }
}

fn patch_title() -> Value {
    json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "pwned"}]})
}

fn assert_status(r: &Reply, want: u16, what: &str) {
    assert_eq!(r.status.as_u16(), want, "{what}: {}", r.body);
}

/// By id: A's token on A's path with B's ids, and A's token on B's path
/// (any resource, any method) are 404, never 401 or 403 (no existence leak).
#[tokio::test]
async fn by_id_a_token_never_reaches_b() {
    let Some(w) = World::new().await else {
        return;
    };
    let (a, b) = (&w.a, &w.b);
    let user_put = json!({"schemas": [USER], "userName": "pwned"});
    let group_put = json!({"schemas": [GROUP], "displayName": "pwned"});
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/Users/{}", b.user), None),
        (
            Method::PUT,
            format!("/Users/{}", b.user),
            Some(user_put.clone()),
        ),
        (
            Method::PATCH,
            format!("/Users/{}", b.user),
            Some(patch_title()),
        ),
        (Method::DELETE, format!("/Users/{}", b.user), None),
        (Method::GET, format!("/Groups/{}", b.group), None),
        (
            Method::PUT,
            format!("/Groups/{}", b.group),
            Some(group_put.clone()),
        ),
        (
            Method::PATCH,
            format!("/Groups/{}", b.group),
            Some(json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]})),
        ),
        (Method::DELETE, format!("/Groups/{}", b.group), None),
        // A user id under /Groups and a group id under /Users: still nothing.
        (Method::GET, format!("/Groups/{}", b.user), None),
        (Method::GET, format!("/Users/{}", b.group), None),
    ];
    // B's ids under A's path, with A's token.
    for (m, p, body) in &cases {
        let r = w.scim(&a.token, &a.dir, m.clone(), p, body.clone()).await;
        assert_status(&r, 404, &format!("A's path: {m} {p}"));
    }
    // B's path with A's token: every endpoint, every id, even discovery.
    let mut on_b = cases.clone();
    on_b.extend([
        (Method::GET, "/Users".to_owned(), None),
        (Method::GET, "/Groups".to_owned(), None),
        (Method::POST, "/Users".to_owned(), Some(user_put)),
        (Method::POST, "/Groups".to_owned(), Some(group_put)),
        (Method::POST, "/.search".to_owned(), Some(json!({}))),
        (Method::POST, "/Users/.search".to_owned(), Some(json!({}))),
        (
            Method::POST,
            "/Bulk".to_owned(),
            Some(json!({"schemas": [BULK], "Operations": [
                {"method": "DELETE", "path": format!("/Users/{}", b.user)}]})),
        ),
        (Method::GET, "/ServiceProviderConfig".to_owned(), None),
        (Method::GET, "/Schemas".to_owned(), None),
        (Method::GET, "/ResourceTypes".to_owned(), None),
        // A's own ids on B's path are not A's way in either.
        (Method::GET, format!("/Users/{}", a.user), None),
    ]);
    for (m, p, body) in &on_b {
        let r = w.scim(&a.token, &b.dir, m.clone(), p, body.clone()).await;
        assert_status(&r, 404, &format!("B's path with A's token: {m} {p}"));
    }
    w.assert_b_untouched().await;
}

/// By filter and /.search: nothing of B is found from A, whatever is matched.
#[tokio::test]
async fn by_filter_and_search_a_finds_nothing_of_b() {
    let Some(w) = World::new().await else {
        return;
    };
    let (a, b) = (&w.a, &w.b);
    let user_filters = [
        format!("id eq \"{}\"", b.user),
        format!("userName eq \"{}\"", b.user_name),
        format!("userName eq \"{}\"", b.user_name.to_uppercase()),
        "userName sw \"b-\"".to_owned(),
        "userName co \"extra\"".to_owned(),
        format!("externalId eq \"{}\"", b.external_id),
        format!("emails.value eq \"{}\"", b.email),
        format!("emails[value eq \"{}\"]", b.email),
        format!("groups.value eq \"{}\"", b.group),
        format!("id eq \"{}\" or userName eq \"{}\"", b.user, b.user_name),
        format!(
            "not (userName eq \"{}\") and userName sw \"b\"",
            a.user_name
        ),
    ];
    let group_filters = [
        format!("id eq \"{}\"", b.group),
        format!("displayName eq \"{}\"", b.group_name),
        "displayName sw \"b-\"".to_owned(),
        format!("members.value eq \"{}\"", b.user),
        format!("members[value eq \"{}\"]", b.user),
    ];
    let mut cases: Vec<(Method, String, Option<Value>)> = Vec::new();
    for f in &user_filters {
        cases.push((Method::GET, format!("/Users?filter={}", enc(f)), None));
        cases.push((
            Method::POST,
            "/Users/.search".into(),
            Some(json!({"filter": f})),
        ));
        cases.push((Method::POST, "/.search".into(), Some(json!({"filter": f}))));
    }
    for f in &group_filters {
        cases.push((Method::GET, format!("/Groups?filter={}", enc(f)), None));
        cases.push((
            Method::POST,
            "/Groups/.search".into(),
            Some(json!({"filter": f})),
        ));
    }
    for (m, p, body) in &cases {
        let r = w.scim(&a.token, &a.dir, m.clone(), p, body.clone()).await;
        assert_status(&r, 200, &format!("{m} {p} {body:?}"));
        assert_eq!(
            r.body["totalResults"], 0,
            "{m} {p} {body:?} found something: {}",
            r.body
        );
    }
    // Unfiltered listings hold A's resources only.
    for p in ["/Users", "/Groups", "/Users?count=1000&cursor="] {
        let r = w.scim(&a.token, &a.dir, Method::GET, p, None).await;
        let text = r.body.to_string();
        for secret in [&b.user, &b.group, &b.user_name, &b.email] {
            assert!(
                !text.contains(secret.as_str()),
                "{p} shows {secret}: {text}"
            );
        }
    }
    let r = w
        .scim(&a.token, &a.dir, Method::POST, "/.search", Some(json!({})))
        .await;
    assert_eq!(r.body["totalResults"], 2, "A's user and group: {}", r.body);
    w.assert_b_untouched().await;
}

/// By /Bulk: A's bulk operations naming B's resources fail one by one (404
/// for a path to B's resource, 400 for B's id as a member value), and none
/// of them touches B.
#[tokio::test]
async fn by_bulk_reference_a_cannot_touch_b() {
    let Some(w) = World::new().await else {
        return;
    };
    let (a, b) = (&w.a, &w.b);
    let cases: Vec<(Value, u16)> = vec![
        (
            json!({"method": "PATCH", "path": format!("/Users/{}", b.user), "data": patch_title()}),
            404,
        ),
        (
            json!({"method": "PUT", "path": format!("/Users/{}", b.user),
                "data": {"schemas": [USER], "userName": "pwned"}}),
            404,
        ),
        (
            json!({"method": "DELETE", "path": format!("/Users/{}", b.user)}),
            404,
        ),
        (
            json!({"method": "PATCH", "path": format!("/Groups/{}", b.group),
                "data": {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]}}),
            404,
        ),
        (
            json!({"method": "DELETE", "path": format!("/Groups/{}", b.group)}),
            404,
        ),
        // B's user as a member value (no bulkId): refused as a value that does not exist.
        (
            json!({"method": "POST", "path": "/Groups", "bulkId": "g1",
                "data": {"schemas": [GROUP], "displayName": "with-b", "members": [{"value": b.user}]}}),
            400,
        ),
        (
            json!({"method": "PATCH", "path": format!("/Groups/{}", a.group),
                "data": {"schemas": [PATCH], "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": b.user}]}]}}),
            400,
        ),
        (
            json!({"method": "PUT", "path": format!("/Groups/{}", a.group),
                "data": {"schemas": [GROUP], "displayName": a.group_name, "members": [{"value": b.user}]}}),
            400,
        ),
        // B's group nested into A's group.
        (
            json!({"method": "PATCH", "path": format!("/Groups/{}", a.group),
                "data": {"schemas": [PATCH], "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": b.group}]}]}}),
            400,
        ),
    ];
    // Each operation alone, then all of them in one request.
    for (op, want) in &cases {
        let r = w
            .scim(
                &a.token,
                &a.dir,
                Method::POST,
                "/Bulk",
                Some(json!({"schemas": [BULK], "Operations": [op]})),
            )
            .await;
        assert_status(&r, 200, &format!("{op}"));
        let status = r.body["Operations"][0]["status"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(status, want.to_string(), "{op}: {}", r.body);
        assert!(
            !r.body.to_string().contains(&b.user_name),
            "{op} leaked B's data: {}",
            r.body
        );
    }
    let ops: Vec<Value> = cases.iter().map(|(op, _)| op.clone()).collect();
    let r = w
        .scim(
            &a.token,
            &a.dir,
            Method::POST,
            "/Bulk",
            Some(json!({"schemas": [BULK], "Operations": ops})),
        )
        .await;
    assert_status(&r, 200, "all operations at once");
    let got: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    let want: Vec<String> = cases.iter().map(|(_, s)| s.to_string()).collect();
    assert_eq!(got, want, "{}", r.body);
    w.assert_b_untouched().await;
    // A's group kept its one member.
    let r = w
        .scim(
            &a.token,
            &a.dir,
            Method::GET,
            &format!("/Groups/{}", a.group),
            None,
        )
        .await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1, "{}", r.body);
}

/// By cursor: a cursor from B's listing is `invalidCursor` on A's listing of
/// the same query, and the other way round.
#[tokio::test]
async fn by_cursor_b_s_cursor_is_invalid_on_a() {
    let Some(w) = World::new().await else {
        return;
    };
    let (a, b) = (&w.a, &w.b);
    for (path, query) in [
        ("/Users", "count=1&cursor="),
        ("/Groups", "count=1&cursor="),
        ("/Users", "count=1&sortBy=userName&cursor="),
        (
            "/Users",
            &*format!("count=1&filter={}&cursor=", enc("userName pr")),
        ),
    ] {
        // A second page exists in each directory where there is more than one row.
        let first = w
            .scim(
                &b.token,
                &b.dir,
                Method::GET,
                &format!("{path}?{query}"),
                None,
            )
            .await;
        assert_status(&first, 200, path);
        let Some(cursor) = first.body["nextCursor"].as_str() else {
            // B has one group: take a cursor from A instead and replay it on B.
            let mine = w
                .scim(
                    &a.token,
                    &a.dir,
                    Method::GET,
                    &format!("{path}?{query}"),
                    None,
                )
                .await;
            assert!(mine.body.get("nextCursor").is_none(), "{}", mine.body);
            continue;
        };
        let replay = format!("{path}?{query}{}", enc(cursor));
        // The cursor is good where it was issued...
        let r = w.scim(&b.token, &b.dir, Method::GET, &replay, None).await;
        assert_status(&r, 200, &replay);
        // ...and refused in A.
        let r = w.scim(&a.token, &a.dir, Method::GET, &replay, None).await;
        assert_status(&r, 400, &format!("B's cursor on A: {replay}"));
        assert_eq!(r.body["scimType"], "invalidCursor", "{}", r.body);
    }
    // One the other way: A's listing has a second page once A has two users.
    let r = w
        .scim(
            &a.token,
            &a.dir,
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "a-bob"})),
        )
        .await;
    assert_status(&r, 201, "a second user in A");
    let first = w
        .scim(
            &a.token,
            &a.dir,
            Method::GET,
            "/Users?count=1&cursor=",
            None,
        )
        .await;
    let cursor = first.body["nextCursor"].as_str().unwrap();
    let r = w
        .scim(
            &b.token,
            &b.dir,
            Method::GET,
            &format!("/Users?count=1&cursor={}", enc(cursor)),
            None,
        )
        .await;
    assert_status(&r, 400, "A's cursor on B");
    assert_eq!(r.body["scimType"], "invalidCursor", "{}", r.body);
}

/// Credentials: a SCIM token is not an admin key (admin, events, webhooks
/// and app API all 401), an admin key is not a SCIM token, and revoked or
/// rotated-out tokens are 401 everywhere.
#[tokio::test]
async fn by_credential_tokens_and_admin_keys_do_not_cross() {
    let Some(w) = World::new().await else {
        return;
    };
    let (a, b) = (&w.a, &w.b);
    let api: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/events".into(), None),
        (
            Method::GET,
            format!("/api/v1/events?directory_id={}", b.dir),
            None,
        ),
        (Method::GET, "/api/v1/directories".into(), None),
        (
            Method::POST,
            "/api/v1/directories".into(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, format!("/api/v1/directories/{}", b.dir), None),
        (
            Method::PATCH,
            format!("/api/v1/directories/{}", b.dir),
            Some(json!({"name": "x"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/directories/{}", b.dir),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/directories/{}/settings", b.dir),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/directories/{}/tokens", b.dir),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/directories/{}/tokens", b.dir),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/directories/{}/users", b.dir),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/directories/{}/users", a.dir),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/directories/{}/groups", b.dir),
            None,
        ),
        (Method::GET, format!("/api/v1/users/{}", b.user), None),
        (Method::GET, format!("/api/v1/users/{}", a.user), None),
        (Method::GET, format!("/api/v1/groups/{}", b.group), None),
        (
            Method::GET,
            format!("/api/v1/groups/{}/users", b.group),
            None,
        ),
        (Method::GET, "/api/v1/webhooks".into(), None),
        (
            Method::POST,
            "/api/v1/webhooks".into(),
            Some(json!({"url": "http://127.0.0.1:9/x"})),
        ),
        (Method::GET, "/api/v1/admin_keys".into(), None),
        (
            Method::POST,
            "/api/v1/admin_keys".into(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/api/v1/audit_log".into(), None),
    ];
    for token in [&a.token, &b.token] {
        for (m, p, body) in &api {
            let r = w.api(token, m.clone(), p, body.clone()).await;
            assert_status(&r, 401, &format!("SCIM token on {m} {p}"));
            let www = r
                .headers
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap());
            assert!(
                www.is_some_and(|v| v.starts_with("Bearer")),
                "{m} {p}: {www:?}"
            );
        }
    }
    // The admin key does work there (the table is not 401 for another reason).
    for (m, p) in [
        (Method::GET, "/api/v1/events".to_owned()),
        (Method::GET, format!("/api/v1/directories/{}/users", b.dir)),
        (Method::GET, format!("/api/v1/users/{}", b.user)),
    ] {
        let r = w.api(&w.admin, m.clone(), &p, None).await;
        assert_status(&r, 200, &format!("admin key on {m} {p}"));
    }
    // The admin key is no SCIM token, on either directory.
    for dir in [&a.dir, &b.dir] {
        for (m, p, body) in [
            (Method::GET, "/Users".to_owned(), None),
            (Method::GET, format!("/Users/{}", b.user), None),
            (Method::DELETE, format!("/Users/{}", b.user), None),
            (
                Method::POST,
                "/Users".to_owned(),
                Some(json!({"schemas": [USER], "userName": "k"})),
            ),
            (
                Method::POST,
                "/Bulk".to_owned(),
                Some(json!({"schemas": [BULK], "Operations": []})),
            ),
            (Method::GET, "/ServiceProviderConfig".to_owned(), None),
        ] {
            let r = w.scim(&w.admin, dir, m.clone(), &p, body).await;
            assert_status(&r, 401, &format!("admin key on SCIM {m} {p}"));
        }
    }

    // Rotation: the old token works during the overlap, then is 401.
    let tokens = w.s.store.list_tokens(&b.dir).await.unwrap();
    let rotated = w
        .api(
            &w.admin,
            Method::POST,
            &format!(
                "/api/v1/directories/{}/tokens/{}/rotate",
                b.dir, tokens[0].id
            ),
            Some(json!({"overlap_seconds": 1})),
        )
        .await;
    assert_status(&rotated, 201, "rotate B's token");
    let new_token = rotated.body["token"].as_str().unwrap().to_owned();
    let r = w.scim(&b.token, &b.dir, Method::GET, "/Users", None).await;
    assert_status(&r, 200, "the old token within its overlap");
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    for (m, p) in [
        (Method::GET, "/Users".to_owned()),
        (Method::GET, format!("/Users/{}", b.user)),
        (Method::DELETE, format!("/Users/{}", b.user)),
    ] {
        let r = w.scim(&b.token, &b.dir, m.clone(), &p, None).await;
        assert_status(&r, 401, &format!("the rotated-out token: {m} {p}"));
    }
    let r = w
        .scim(&new_token, &b.dir, Method::GET, "/Users", None)
        .await;
    assert_status(&r, 200, "the new token");
    // ...and the new token is B's alone.
    let r = w
        .scim(&new_token, &a.dir, Method::GET, "/Users", None)
        .await;
    assert_status(&r, 404, "B's new token on A");

    // Revocation: A's token is 401 at once, on every path.
    let tokens = w.s.store.list_tokens(&a.dir).await.unwrap();
    let r = w
        .api(
            &w.admin,
            Method::DELETE,
            &format!("/api/v1/directories/{}/tokens/{}", a.dir, tokens[0].id),
            None,
        )
        .await;
    assert_status(&r, 204, "revoke A's token");
    for (dir, p) in [
        (&a.dir, "/Users".to_owned()),
        (&a.dir, format!("/Users/{}", a.user)),
        (&b.dir, format!("/Users/{}", b.user)),
    ] {
        let r = w.scim(&a.token, dir, Method::GET, &p, None).await;
        assert_status(&r, 401, &format!("revoked token on {p}"));
    }
    // B (with its new token) still has everything.
    let r = w
        .scim(
            &new_token,
            &b.dir,
            Method::GET,
            &format!("/Users/{}", b.user),
            None,
        )
        .await;
    assert_status(&r, 200, "B's user");
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
}
