//! Google Workspace directories against a local stand-in of Google's token
//! endpoint and Directory API (no test reaches Google). The stand-in follows
//! Google's published reference: the JWT-bearer grant, whose RS256 signature
//! it verifies with the key's public half, paged listings with `pageToken`
//! and `maxResults` limits, and Google's error bodies. Its answers are
//! checked against `tests/data/admin_directory_v1_excerpt.json`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use roster_server::ServerConfig;
use roster_store::Kind;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use crate::support::TestServer;

const ADMIN: &str = "admin@example.com";
const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// A test RSA key: (PKCS#8 PEM, PKCS#1 DER of the public half). Made once per binary.
fn test_key() -> &'static (String, Vec<u8>) {
    static KEY: OnceLock<(String, Vec<u8>)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = key
            .to_public_key()
            .to_pkcs1_der()
            .unwrap()
            .as_bytes()
            .to_vec();
        (pem, public)
    })
}

fn discovery() -> Value {
    serde_json::from_str(include_str!("../data/admin_directory_v1_excerpt.json")).unwrap()
}

/// Every key of `v` is a property of discovery schema `schema` (recursively
/// for the listed items).
fn check_shape(doc: &Value, schema: &str, v: &Value) {
    let props = doc["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {schema}"));
    for (k, val) in v.as_object().unwrap() {
        let p = props
            .get(k)
            .unwrap_or_else(|| panic!("{schema} has no property {k}"));
        if let Some(item) = p["items"]["$ref"].as_str() {
            for x in val.as_array().unwrap() {
                check_shape(doc, item, x);
            }
        }
        if let Some(r) = p["$ref"].as_str() {
            check_shape(doc, r, val);
        }
    }
}

#[derive(Default)]
pub(crate) struct Google {
    users: Vec<Value>,
    groups: Vec<Value>,
    members: HashMap<String, Vec<Value>>,
    /// Items per page the stand-in returns (below maxResults, to make paging happen).
    page: usize,
    tokens: Vec<String>,
    token_grants: usize,
    /// users.list requests without a pageToken: how many snapshots were started.
    user_snapshots: usize,
    /// The next this many users.list requests are answered 429 with Retry-After.
    throttle: usize,
    throttled: usize,
    /// users.list pages at or after this offset fail with 400.
    fail_from: Option<usize>,
    /// The public half of the key the service account signs with.
    public_key: Vec<u8>,
    token_uri: String,
}

pub(crate) type Shared = Arc<Mutex<Google>>;

fn google_error(status: u16, reason: &str, message: &str) -> Response {
    let status_text = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        429 => "RESOURCE_EXHAUSTED",
        _ => "INTERNAL",
    };
    (
        AxStatus::from_u16(status).unwrap(),
        axum::Json(json!({"error": {"code": status, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status_text}})),
    )
        .into_response()
}

/// `POST /token`: the JWT-bearer grant (RFC 7523) as Google's token endpoint answers it.
async fn token(State(g): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let oauth = |code: &str, d: &str| {
        (
            AxStatus::BAD_REQUEST,
            axum::Json(json!({"error": code, "error_description": d})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth("unsupported_grant_type", "Invalid grant_type");
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth("invalid_request", "Missing required parameter: assertion");
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return oauth("invalid_grant", "Invalid JWT");
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
    let mut g = g.lock().unwrap();
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        g.public_key.clone(),
    );
    if header["alg"] != "RS256"
        || key
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .is_err()
    {
        return oauth("invalid_grant", "Invalid JWT Signature.");
    }
    let now = roster_store::now_ms() / 1000;
    let scopes: Vec<&str> = claims["scope"].as_str().unwrap_or("").split(' ').collect();
    if claims["aud"] != g.token_uri.as_str()
        || claims["iss"] != "roster@project.iam.gserviceaccount.com"
        || claims["exp"].as_i64().unwrap_or(0) <= now
        || claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0) > 3600
    {
        return oauth(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    if claims["sub"] != ADMIN || SCOPES.iter().any(|s| !scopes.contains(s)) {
        return oauth(
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }
    g.token_grants += 1;
    let t = format!("ya29.test-{}", g.token_grants);
    g.tokens.push(t.clone());
    axum::Json(json!({"access_token": t, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn authorized(g: &Google, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| g.tokens.iter().any(|k| k == t))
}

/// One page of `items` as Google pages it (the pageToken is an offset here).
fn page(
    items: &[Value],
    q: &HashMap<String, String>,
    max: usize,
    per_page: usize,
    key: &str,
) -> Result<(Value, usize), Box<Response>> {
    let want: usize = q
        .get("maxResults")
        .map(|m| m.parse().unwrap_or(0))
        .unwrap_or(100);
    if want == 0 || want > max {
        return Err(Box::new(google_error(
            400,
            "invalid",
            "Invalid value for: maxResults",
        )));
    }
    let from: usize = match q.get("pageToken") {
        Some(t) => t
            .parse()
            .map_err(|_| Box::new(google_error(400, "invalid", "Invalid page token")))?,
        None => 0,
    };
    let n = want.min(per_page);
    let slice: Vec<Value> = items.iter().skip(from).take(n).cloned().collect();
    let mut out = json!({"kind": format!("admin#directory#{key}"), key: slice});
    if from + n < items.len() {
        out["nextPageToken"] = json!((from + n).to_string());
    }
    Ok((out, from))
}

async fn users(
    State(g): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut g = g.lock().unwrap();
    if !authorized(&g, &headers) {
        return google_error(401, "authError", "Invalid Credentials");
    }
    if g.throttle > 0 {
        g.throttle -= 1;
        g.throttled += 1;
        let mut r = google_error(
            429,
            "rateLimitExceeded",
            "Quota exceeded for quota metric 'Queries' of service 'admin.googleapis.com'",
        );
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
        return r;
    }
    if !q.contains_key("customer") && !q.contains_key("domain") {
        return google_error(400, "badRequest", "Bad Request");
    }
    assert_eq!(q.get("projection").map(String::as_str), Some("full"));
    assert!(q.get("fields").is_some_and(|f| f.contains("nextPageToken")));
    if !q.contains_key("pageToken") {
        g.user_snapshots += 1;
    }
    match page(&g.users, &q, 500, g.page, "users") {
        Ok((_, from)) if g.fail_from.is_some_and(|f| from >= f) => {
            google_error(400, "invalid", "Invalid page token")
        }
        Ok((v, _)) => {
            check_shape(&discovery(), "Users", &v);
            axum::Json(v).into_response()
        }
        Err(r) => *r,
    }
}

async fn groups(
    State(g): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let g = g.lock().unwrap();
    if !authorized(&g, &headers) {
        return google_error(401, "authError", "Invalid Credentials");
    }
    match page(&g.groups, &q, 200, g.page, "groups") {
        Ok((v, _)) => {
            check_shape(&discovery(), "Groups", &v);
            axum::Json(v).into_response()
        }
        Err(r) => *r,
    }
}

async fn members(
    State(g): State<Shared>,
    headers: HeaderMap,
    Path(group): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let g = g.lock().unwrap();
    if !authorized(&g, &headers) {
        return google_error(401, "authError", "Invalid Credentials");
    }
    let Some(list) = g.members.get(&group) else {
        return google_error(404, "notFound", "Resource Not Found: groupKey");
    };
    match page(list, &q, 200, g.page, "members") {
        Ok((v, _)) => {
            check_shape(&discovery(), "Members", &v);
            axum::Json(v).into_response()
        }
        Err(r) => *r,
    }
}

/// Starts the stand-in on a loopback port; returns its state and base URL.
pub(crate) async fn stand_in() -> (Shared, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let g: Shared = Arc::new(Mutex::new(Google {
        page: 2,
        public_key: test_key().1.clone(),
        token_uri: format!("{base}/token"),
        ..Default::default()
    }));
    let app = axum::Router::new()
        .route("/token", post(token))
        .route("/admin/directory/v1/users", get(users))
        .route("/admin/directory/v1/groups", get(groups))
        .route("/admin/directory/v1/groups/{group}/members", get(members))
        .with_state(g.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (g, base)
}

fn key_file(base: &str) -> Value {
    json!({
        "type": "service_account",
        "project_id": "project",
        "private_key_id": "k1",
        "private_key": test_key().0,
        "client_email": "roster@project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": format!("{base}/token"),
    })
}

fn user(id: &str, email: &str, name: &str) -> Value {
    json!({"id": id, "primaryEmail": email, "name": {"givenName": name, "familyName": "Test", "fullName": format!("{name} Test")},
           "suspended": false, "orgUnitPath": "/", "organizations": [{"title": "Engineer", "department": "R&D", "primary": true}]})
}

fn member(id: &str) -> Value {
    json!({"id": id, "email": format!("{id}@example.com"), "role": "MEMBER", "type": "USER", "status": "ACTIVE"})
}

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
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = api(s, key, Method::GET, &format!("/directories/{id}"), None)
            .await
            .body;
        if d["google"]["last_poll_at"] != before["google"]["last_poll_at"]
            && d["google"]["sync_requested"] == false
        {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "no poll: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn events(s: &TestServer, id: &str) -> Vec<String> {
    s.store
        .list_events(0, 10_000, &[], Some(&[id.to_owned()]))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
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
        let mut g = g.lock().unwrap();
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
    assert_eq!(
        g.lock().unwrap().token_grants,
        1,
        "the access token is reused"
    );

    // A suspension, a deletion, a rename and a membership move.
    {
        let mut g = g.lock().unwrap();
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
        let mut g = g.lock().unwrap();
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
        let mut g = g.lock().unwrap();
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
        let mut g = g.lock().unwrap();
        g.fail_from = None;
        g.throttle = 2;
    }
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    assert_eq!(d["google"]["last_poll_error"], Value::Null);
    assert_eq!(g.lock().unwrap().throttled, 2);
    assert_eq!(
        s.store.external_index(&id, Kind::User).await.unwrap().len(),
        4
    );
    assert_eq!(count(&events(&s, &id).await, "dsync.user.deleted"), 1);
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
    g.lock().unwrap().public_key = {
        let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        other
            .to_public_key()
            .to_pkcs1_der()
            .unwrap()
            .as_bytes()
            .to_vec()
    };
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
        let mut g = g.lock().unwrap();
        g.users = (1..=20)
            .map(|i| user(&i.to_string(), &format!("u{i}@example.com"), "U"))
            .collect();
    }
    let id = create(&s, &key, &base).await;
    let d = sync(&s, &key, &id).await;
    assert_eq!(d["google"]["last_poll_result"], "ok", "{d}");
    // Both pollers looked every second; only one listed the directory.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(g.lock().unwrap().user_snapshots, 1);
    assert_eq!(count(&events(&s, &id).await, "dsync.user.created"), 20);
    drop(stop);
}
