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
