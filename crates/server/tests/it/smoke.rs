use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_scim_error};

#[tokio::test]
async fn create_read_filter_and_delete_a_user() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s
        .post(
            "/Users",
            json!({"userName": "bjensen", "emails": [{"value": "BJ@example.com", "type": "work"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["etag"], "W/\"1\"");
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/Users/{id}"))
    );

    let r = s
        .get("/Users?filter=emails.value%20eq%20%22bj@EXAMPLE.com%22")
        .await;
    assert_eq!(r.body["totalResults"], 1, "{:?}", r.body);
    assert_eq!(r.body["Resources"][0]["id"], id.as_str());

    let r = s.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_scim_error(&s.get(&format!("/Users/{id}")).await, 404, None);
}

#[tokio::test]
async fn another_directorys_token_sees_404() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = s.user("alice").await;
    let (_, other_token) = s.other_directory().await;
    let r = s
        .call_with(
            reqwest::Method::GET,
            &format!("/Users/{id}"),
            None,
            &other_token,
            &[],
        )
        .await;
    assert_scim_error(&r, 404, None);
    let r = s
        .call_with(reqwest::Method::GET, "/Users", None, "rst_wrong", &[])
        .await;
    assert_scim_error(&r, 401, None);
    assert!(r.headers.contains_key("www-authenticate"));
}
