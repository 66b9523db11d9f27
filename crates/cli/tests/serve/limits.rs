//! Per-directory rate limits from the config file.

use crate::support::{Roster, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_override_in_the_config_file_limits_only_that_directory() {
    let r = Roster::new();
    let slow = r.json(&["directory", "create", "slow"]);
    let fast = r.json(&["directory", "create", "fast"]);
    let config = r.config(&format!(
        "webhooks_enabled = false\nrate_limit_per_sec = 1000.0\nrate_limit_burst = 1000.0\n\
         [[rate_limit_overrides]]\ndirectory = {:?}\nper_sec = 0.1\nburst = 2.0\n",
        slow["id"].as_str().unwrap()
    ));
    let server = r.serve(Some(&config), "info");
    let get = |d: &serde_json::Value| {
        let path = format!("/scim/v2/{}/Users", d["id"].as_str().unwrap());
        let token = d["token"].as_str().unwrap().to_owned();
        let addr = server.addr();
        async move { request(addr, "GET", &path, &token, None).await }
    };
    assert_eq!(get(&slow).await.0, 200);
    assert_eq!(get(&slow).await.0, 200);
    let (status, body) = get(&slow).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("urn:ietf:params:scim:api:messages:2.0:Error"),
        "{body}"
    );
    for _ in 0..5 {
        assert_eq!(get(&fast).await.0, 200);
    }
}
