//! The attribute index belongs to the server's schemas: an administration
//! command run without the server's configuration (its extensions) leaves
//! it as the server built it.

use serde_json::{Value, json};

use crate::support::{Roster, create, request};

const EXT: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_without_the_servers_extensions_keeps_their_index() {
    let r = Roster::new();
    std::fs::write(
        r.dir.path().join("acme.json"),
        json!({
            "id": EXT,
            "name": "AcmeUser",
            "attributes": [{"name": "costCenter", "type": "string"}],
        })
        .to_string(),
    )
    .unwrap();
    let config = r.config("[[extensions]]\nfile = \"acme.json\"\nresource_type = \"User\"\n");
    let d = r.json(&["directory", "create", "acme"]);
    let (dir, token) = (d["id"].as_str().unwrap(), d["token"].as_str().unwrap());
    let users = format!("/scim/v2/{dir}/Users");
    let server = r.serve(Some(&config), "info");
    let addr = server.addr_async().await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
        "userName": "ada@example.com",
        EXT: {"costCenter": "cc-42"},
    });
    create(addr, &users, token, &body).await;
    let filter = format!("{users}?filter={EXT}:costCenter%20eq%20%22cc-42%22");
    let found = |text: &str| -> u64 {
        let v: Value = serde_json::from_str(text).unwrap();
        v["totalResults"].as_u64().unwrap()
    };
    let (status, text) = request(addr, "GET", &filter, token, None).await;
    assert_eq!((status, found(&text)), (200, 1), "{text}");

    // Core schemas only: this process must not rebuild the index for them.
    let out = r.run(&["token", "issue", dir]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, text) = request(addr, "GET", &filter, token, None).await;
    assert_eq!((status, found(&text)), (200, 1), "{text}");
    server.assert_no_panic();
}
