//! A local stand-in of Google's OAuth token endpoint and Admin SDK Directory
//! API, so that no test (and no benchmark) reaches Google. It follows
//! Google's published reference: the JWT-bearer grant (RFC 7523), whose
//! RS256 signature it verifies with the key's public half; `users.list`,
//! `groups.list` and `members.list` with `pageToken` paging and Google's
//! `maxResults` limits; and Google's error bodies. Its answers are checked
//! against the discovery document excerpt in `data/admin_directory_v1_excerpt.json`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};

/// The administrator the stand-in lets the service account act as.
pub const ADMIN: &str = "admin@example.com";
/// The service account of [`key_file`].
pub const CLIENT_EMAIL: &str = "roster@project.iam.gserviceaccount.com";
/// The scopes a token must be asked for.
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// A 2048-bit RSA key pair: (PKCS#8 PEM, PKCS#1 DER of the public half).
pub fn new_key() -> (String, Vec<u8>) {
    let key =
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key is generated");
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("the key is PEM-encoded")
        .to_string();
    let public = key
        .to_public_key()
        .to_pkcs1_der()
        .expect("the public key is DER-encoded")
        .as_bytes()
        .to_vec();
    (pem, public)
}

/// The key pair of [`key_file`], made once per process.
pub fn test_key() -> &'static (String, Vec<u8>) {
    static KEY: OnceLock<(String, Vec<u8>)> = OnceLock::new();
    KEY.get_or_init(new_key)
}

fn discovery() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(include_str!("../data/admin_directory_v1_excerpt.json"))
            .expect("the discovery excerpt is JSON")
    })
}

/// Panics unless every key of `v` is a property of discovery schema
/// `schema` (recursively for nested and listed objects).
pub fn check_shape(schema: &str, v: &Value) {
    let doc = discovery();
    let props = doc["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("the discovery document has no schema {schema}"));
    let Some(obj) = v.as_object() else {
        panic!("{schema} must be an object: {v}")
    };
    for (k, val) in obj {
        let p = props
            .get(k)
            .unwrap_or_else(|| panic!("{schema} has no property {k}"));
        if let (Some(item), Some(list)) = (p["items"]["$ref"].as_str(), val.as_array()) {
            for x in list {
                check_shape(item, x);
            }
        }
        if let Some(r) = p["$ref"].as_str() {
            check_shape(r, val);
        }
    }
}

/// The directory the stand-in serves, and what it saw. Tests change it
/// between polls.
#[derive(Default)]
pub struct Google {
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
    /// Group id -> its members.
    pub members: HashMap<String, Vec<Value>>,
    /// Items per page the stand-in returns at most (below maxResults, to make paging happen).
    pub page: usize,
    pub tokens: Vec<String>,
    pub token_grants: usize,
    /// users.list requests without a pageToken: how many snapshots were started.
    pub user_snapshots: usize,
    /// Every Directory API request answered (token exchanges not counted).
    pub requests: usize,
    /// When each of the last 1,000 Directory API requests came.
    pub request_times: std::collections::VecDeque<std::time::Instant>,
    /// When the last users.list without a pageToken (a poll's first listing) came.
    pub snapshot_started_at: Option<std::time::SystemTime>,
    /// The next this many users.list requests are answered 429 with
    /// Retry-After (403 `userRateLimitExceeded` with `throttle_403`).
    pub throttle: usize,
    pub throttle_403: bool,
    pub throttled: usize,
    /// users.list pages at or after this offset fail with 400.
    pub fail_from: Option<usize>,
    /// Every Directory API request is refused with Google's 403 for an
    /// admin or client without the directory scopes.
    pub forbid: bool,
    /// Whether answers are checked against the discovery document.
    pub check_shapes: bool,
    /// The public half of the key the service account signs with.
    pub public_key: Vec<u8>,
    pub token_uri: String,
}

impl Google {
    fn count_request(&mut self) {
        self.requests += 1;
        if self.request_times.len() == 1000 {
            self.request_times.pop_front();
        }
        self.request_times.push_back(std::time::Instant::now());
    }
}

/// The stand-in's state, shared with its handlers.
#[derive(Clone)]
pub struct Shared(Arc<Mutex<Google>>);

impl Shared {
    /// The state; a handler that panicked does not hide it from the test.
    pub fn lock(&self) -> MutexGuard<'_, Google> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn google_error(status: u16, reason: &str, message: &str) -> Response {
    let status_text = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        _ => "INTERNAL",
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(json!({"error": {"code": status, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status_text}})),
    )
        .into_response()
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// `POST /token`: the JWT-bearer grant as Google's token endpoint answers it.
async fn token(State(g): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let oauth = |code: &str, d: &str| {
        (
            StatusCode::BAD_REQUEST,
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
    let (Some(header), Some(claims), [head, body, sig]) = (
        parts.first().and_then(|p| decode_json(p)),
        parts.get(1).and_then(|p| decode_json(p)),
        parts.as_slice(),
    ) else {
        return oauth("invalid_grant", "Invalid JWT");
    };
    let signature = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
    let mut g = g.lock();
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        g.public_key.clone(),
    );
    if header["alg"] != "RS256"
        || key
            .verify(format!("{head}.{body}").as_bytes(), &signature)
            .is_err()
    {
        return oauth("invalid_grant", "Invalid JWT Signature.");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let scopes: Vec<&str> = claims["scope"].as_str().unwrap_or("").split(' ').collect();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if claims["aud"] != g.token_uri.as_str()
        || claims["iss"] != CLIENT_EMAIL
        || exp <= now
        || exp - claims["iat"].as_i64().unwrap_or(0) > 3600
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

/// One page of `items` as Google pages it (the pageToken is an offset here);
/// also returns the offset.
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
    let n = want.min(per_page.max(1));
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
    let mut g = g.lock();
    g.count_request();
    if !authorized(&g, &headers) {
        return google_error(401, "authError", "Invalid Credentials");
    }
    if g.forbid {
        return google_error(
            403,
            "forbidden",
            "Not Authorized to access this resource/api",
        );
    }
    if g.throttle > 0 {
        g.throttle -= 1;
        g.throttled += 1;
        if g.throttle_403 {
            return google_error(
                403,
                "userRateLimitExceeded",
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com'",
            );
        }
        let mut r = google_error(
            429,
            "rateLimitExceeded",
            "Quota exceeded for quota metric 'Queries' of service 'admin.googleapis.com'",
        );
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return r;
    }
    if !q.contains_key("customer") && !q.contains_key("domain") {
        return google_error(400, "badRequest", "Bad Request");
    }
    if q.get("projection").map(String::as_str) != Some("full")
        || !q.get("fields").is_some_and(|f| f.contains("nextPageToken"))
    {
        return google_error(
            400,
            "invalid",
            "the poller asks for projection=full and nextPageToken",
        );
    }
    if !q.contains_key("pageToken") {
        g.user_snapshots += 1;
        g.snapshot_started_at = Some(std::time::SystemTime::now());
    }
    match page(&g.users, &q, 500, g.page, "users") {
        Ok((_, from)) if g.fail_from.is_some_and(|f| from >= f) => {
            google_error(400, "invalid", "Invalid page token")
        }
        Ok((v, _)) => {
            if g.check_shapes {
                check_shape("Users", &v);
            }
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
    let mut g = g.lock();
    g.count_request();
    if !authorized(&g, &headers) {
        return google_error(401, "authError", "Invalid Credentials");
    }
    match page(&g.groups, &q, 200, g.page, "groups") {
        Ok((v, _)) => {
            if g.check_shapes {
                check_shape("Groups", &v);
            }
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
    let mut g = g.lock();
    g.count_request();
    if !authorized(&g, &headers) {
        return google_error(401, "authError", "Invalid Credentials");
    }
    let empty = Vec::new();
    let list = match g.members.get(&group) {
        Some(list) => list,
        None if g.groups.iter().any(|x| x["id"] == group.as_str()) => &empty,
        None => return google_error(404, "notFound", "Resource Not Found: groupKey"),
    };
    match page(list, &q, 200, g.page, "members") {
        Ok((v, _)) => {
            if g.check_shapes {
                check_shape("Members", &v);
            }
            axum::Json(v).into_response()
        }
        Err(r) => *r,
    }
}

/// Starts the stand-in on a loopback port with `google` (its `token_uri`
/// and, when empty, its key are filled in); returns its state and base URL.
pub async fn start(mut google: Google) -> (Shared, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the Google stand-in");
    let base = format!(
        "http://{}",
        listener.local_addr().expect("the stand-in's address")
    );
    google.token_uri = format!("{base}/token");
    if google.public_key.is_empty() {
        google.public_key = test_key().1.clone();
    }
    let g = Shared(Arc::new(Mutex::new(google)));
    let app = axum::Router::new()
        .route("/token", post(token))
        .route("/admin/directory/v1/users", get(users))
        .route("/admin/directory/v1/groups", get(groups))
        .route("/admin/directory/v1/groups/{group}/members", get(members))
        .with_state(g.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (g, base)
}

/// The stand-in for tests: two items a page, answers checked against the
/// discovery document.
pub async fn stand_in() -> (Shared, String) {
    start(Google {
        page: 2,
        check_shapes: true,
        ..Google::default()
    })
    .await
}

/// A service-account key file for the stand-in at `base`, signed with [`test_key`].
pub fn key_file(base: &str) -> Value {
    key_file_with(base, &test_key().0)
}

/// A service-account key file for the stand-in at `base` with private key `pem`.
pub fn key_file_with(base: &str, pem: &str) -> Value {
    json!({
        "type": "service_account",
        "project_id": "project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": format!("{base}/token"),
    })
}

/// A user as `users.list` returns it.
pub fn user(id: &str, email: &str, name: &str) -> Value {
    json!({"id": id, "primaryEmail": email, "name": {"givenName": name, "familyName": "Test", "fullName": format!("{name} Test")},
           "suspended": false, "orgUnitPath": "/", "organizations": [{"title": "Engineer", "department": "R&D", "primary": true}]})
}

/// A group as `groups.list` returns it.
pub fn group(id: &str, email: &str, name: &str) -> Value {
    json!({"id": id, "email": email, "name": name})
}

/// An active user member as `members.list` returns it.
pub fn member(id: &str) -> Value {
    json!({"id": id, "email": format!("{id}@example.com"), "role": "MEMBER", "type": "USER", "status": "ACTIVE"})
}

/// A directory of `users` users and `groups` groups; user `i` is a member
/// of groups `i % groups` and `(i * 7 + 3) % groups`, so memberships spread
/// over every group (about `2 * users / groups` members each).
pub fn generated(users: usize, groups: usize) -> Google {
    let mut members: HashMap<String, Vec<Value>> = HashMap::new();
    if groups > 0 {
        for i in 0..users {
            let id = format!("1{i:011}");
            for j in [i % groups, (i * 7 + 3) % groups] {
                let list = members.entry(format!("0g{j:08}")).or_default();
                if !list.iter().any(|m| m["id"] == id.as_str()) {
                    list.push(member(&id));
                }
            }
        }
    }
    Google {
        users: (0..users)
            .map(|i| {
                user(
                    &format!("1{i:011}"),
                    &format!("user{i}@example.com"),
                    &format!("User{i}"),
                )
            })
            .collect(),
        groups: (0..groups)
            .map(|j| {
                group(
                    &format!("0g{j:08}"),
                    &format!("group{j}@example.com"),
                    &format!("Group {j}"),
                )
            })
            .collect(),
        members,
        ..Google::default()
    }
}
