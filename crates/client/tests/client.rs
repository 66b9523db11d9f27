//! `ScimClient` against a real Roster on 127.0.0.1: discovery, paging both
//! ways, single-resource calls, /Bulk chunks and SCIM errors.

// A test crate of its own: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers beside them, which fail a test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use roster_client::{ChunkBuilder, ClientOptions, Error, ListQuery, ScimClient, schemas};
use roster_server::ServerConfig;
use roster_testkit::server::{Place, Spawned};
use serde_json::{Value, json};

struct Server {
    client: ScimClient,
    base: String,
    _server: Spawned,
}

/// Roster in this process over a SQLite file (webhooks off), one directory.
async fn start(config: ServerConfig) -> Server {
    let config = ServerConfig {
        webhooks_enabled: false,
        ..config
    };
    let server = Spawned::start(Place::sqlite(), config).await;
    let (d, token) = server.directory("t").await;
    let base = server.scim_base(&d);
    let client = ScimClient::new(&base, Some(token), &ClientOptions::default()).unwrap();
    Server {
        client,
        base,
        _server: server,
    }
}

fn user(name: &str) -> Value {
    json!({"schemas": [schemas::USER], "userName": name, "externalId": format!("x-{name}")})
}

#[tokio::test]
async fn discovery_and_single_resource_calls() {
    let s = start(ServerConfig {
        bulk_max_operations: 7,
        ..ServerConfig::default()
    })
    .await;
    let cfg = s.client.discover().await.unwrap();
    assert!(cfg.bulk.supported && cfg.filter && cfg.patch && cfg.etag && cfg.pagination.cursor);
    assert_eq!(cfg.bulk.max_operations, 7);

    let created = s.client.create("Users", &user("ann")).await.unwrap();
    let id = created.id().unwrap().to_owned();
    assert!(created.version().is_some());
    let mut doc = user("ann");
    doc["title"] = json!("Boss");
    let replaced = s.client.replace("Users", &id, &doc, None).await.unwrap();
    assert_eq!(replaced.body["title"], "Boss");
    let patched = s
        .client
        .patch(
            "Users",
            &id,
            &[json!({"op": "replace", "path": "title", "value": "CEO"})],
            replaced.version().as_deref(),
        )
        .await
        .unwrap();
    assert_eq!(patched.body["title"], "CEO");
    // A stale version is refused with 412.
    let stale = s
        .client
        .replace("Users", &id, &doc, created.version().as_deref())
        .await
        .unwrap_err();
    assert_eq!(stale.status(), Some(412), "{stale}");

    let dup = s.client.create("Users", &user("ANN")).await.unwrap_err();
    let body = dup.scim().unwrap();
    assert!(body.is_uniqueness(), "{dup}");
    assert!(!dup.is_retriable());

    s.client.delete("Users", &id, None).await.unwrap();
    let gone = s.client.get(&format!("/Users/{id}")).await.unwrap_err();
    assert_eq!(gone.status(), Some(404));
    assert!(s.client.stats().requests() >= 7);

    let wrong =
        ScimClient::new(&s.base, Some("rst_nope".into()), &ClientOptions::default()).unwrap();
    assert_eq!(wrong.discover().await.unwrap_err().status(), Some(401));
    let nobody =
        ScimClient::new("http://127.0.0.1:9/scim", None, &ClientOptions::default()).unwrap();
    match nobody.discover().await.unwrap_err() {
        Error::Transport { maybe_applied, .. } => {
            assert!(!maybe_applied, "connect errors are never applied")
        }
        other => panic!("{other}"),
    }
    assert!(ScimClient::new("ftp://x", None, &ClientOptions::default()).is_err());
}

#[tokio::test]
async fn bulk_chunks_and_paging_by_cursor_and_index() {
    let s = start(ServerConfig {
        bulk_max_operations: 40,
        bulk_max_payload_bytes: 4000,
        max_page_size: 30,
        ..ServerConfig::default()
    })
    .await;
    let cfg = s.client.discover().await.unwrap();
    let mut chunk = ChunkBuilder::new(cfg.bulk.max_operations, cfg.bulk.max_payload_size);
    let mut requests = 0;
    let mut created = 0;
    for i in 0..95 {
        let op = json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": user(&format!("u{i:03}"))})
            .to_string();
        if !chunk.fits(op.len()) {
            let r = s.client.bulk(chunk.take()).await.unwrap();
            requests += 1;
            created += r
                .operations
                .iter()
                .filter(|o| o.is_success() && o.id().is_some())
                .count();
        }
        chunk.push(op);
    }
    let r = s.client.bulk(chunk.take()).await.unwrap();
    requests += 1;
    created += r.operations.len();
    assert_eq!(created, 95);
    // 4000 bytes hold fewer than 40 of these operations: the byte limit split them.
    assert!(requests > 3, "{requests} requests");

    let q = ListQuery {
        filter: None,
        attributes: Some("userName".into()),
        count: cfg.page_size(1000),
    };
    assert_eq!(q.count, 30);
    for cursor in [true, false] {
        let mut pages = 0;
        let all = s
            .client
            .list_all("Users", &q, cursor, |_, _| pages += 1)
            .await
            .unwrap();
        let names: BTreeSet<&str> = all
            .iter()
            .map(|u| u["userName"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 95, "cursor={cursor}");
        assert!(pages >= 4, "cursor={cursor}: {pages} pages");
    }
    let q = ListQuery {
        filter: Some("userName sw \"u09\"".into()),
        attributes: None,
        count: 30,
    };
    let some = s
        .client
        .list_all("Users", &q, true, |_, _| {})
        .await
        .unwrap();
    assert_eq!(some.len(), 5);
    let bad = ListQuery {
        filter: Some("userName eq".into()),
        attributes: None,
        count: 30,
    };
    let e = s
        .client
        .list_all("Users", &bad, false, |_, _| {})
        .await
        .unwrap_err();
    assert_eq!(
        e.scim().unwrap().scim_type.as_deref(),
        Some("invalidFilter")
    );
}

/// The typed `/api/v1` client: directories with organizations, users and
/// groups by cursor in both orders, and events.
#[tokio::test]
async fn the_api_client_reads_directories_users_groups_and_events() {
    use roster_client::api::{
        ApiClient, DirectoryFields, EventFilter, Order, PageOptions, UserFilter,
    };
    let server = Spawned::start(
        Place::sqlite(),
        ServerConfig {
            webhooks_enabled: false,
            ..ServerConfig::default()
        },
    )
    .await;
    let key = server.store.create_admin_key("t").await.unwrap().1;
    let api = ApiClient::new(
        &format!("http://{}", server.addr),
        &key,
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let created = api
        .create_directory(&DirectoryFields {
            name: Some("Acme".into()),
            organization_id: Some("org_1".into()),
            provider: Some("okta scim v2.0".into()),
            ..DirectoryFields::default()
        })
        .await
        .unwrap();
    let dir = created.directory.id.clone();
    assert_eq!(created.directory.provider, "okta scim v2.0");
    let scim = ScimClient::new(
        &server.scim_base(&dir),
        Some(created.token),
        &ClientOptions::default(),
    )
    .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            scim.create("Users", &user(&format!("u{i}")))
                .await
                .unwrap()
                .id()
                .unwrap()
                .to_owned(),
        );
    }
    let g = scim
        .create("Groups", &json!({"schemas": [schemas::GROUP], "displayName": "eng", "members": [{"value": ids[0]}]}))
        .await
        .unwrap();

    let found = api
        .list_directories(Some("org_1"), &PageOptions::default())
        .await
        .unwrap();
    assert_eq!(found.data.len(), 1);
    assert_eq!(found.data[0].organization_id.as_deref(), Some("org_1"));

    let newest = PageOptions {
        order: Some(Order::Desc),
        limit: Some(2),
        ..PageOptions::default()
    };
    let first = api
        .list_users(&dir, &UserFilter::default(), &newest)
        .await
        .unwrap();
    let got: Vec<&str> = first.data.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()]);
    let next = PageOptions {
        after: first.list_metadata.after.clone(),
        ..newest.clone()
    };
    let second = api
        .list_users(&dir, &UserFilter::default(), &next)
        .await
        .unwrap();
    let back = PageOptions {
        before: second.list_metadata.before.clone(),
        ..newest.clone()
    };
    assert_eq!(
        api.list_users(&dir, &UserFilter::default(), &back)
            .await
            .unwrap()
            .data,
        first.data
    );

    let u0 = api.get_user(&ids[0]).await.unwrap();
    assert_eq!(u0.groups[0].name, "eng");
    assert_eq!(
        api.get_group(g.id().unwrap())
            .await
            .unwrap()
            .name
            .as_deref(),
        Some("eng")
    );
    let members = UserFilter {
        group: g.id().map(str::to_owned),
        ..UserFilter::default()
    };
    assert_eq!(
        api.list_users(&dir, &members, &PageOptions::default())
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    assert_eq!(
        api.list_groups(&dir, &PageOptions::default())
            .await
            .unwrap()
            .data
            .len(),
        1
    );

    let events = api
        .list_events(
            &EventFilter {
                types: vec!["dsync.user.created".into()],
                organization_id: Some("org_1".into()),
                ..EventFilter::default()
            },
            &PageOptions {
                limit: Some(100),
                ..PageOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.data.len(), 5);
    assert_eq!(events.data[0].directory_id, dir);

    let err = api.get_directory("nope").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.scim().unwrap().scim_type.as_deref(), Some("not_found"));
    api.delete_directory(&dir).await.unwrap();
    assert_eq!(
        api.get_directory(&dir).await.unwrap_err().status(),
        Some(404)
    );
}
