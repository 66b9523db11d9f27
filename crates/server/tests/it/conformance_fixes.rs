//! Regressions found by the scim2-tester conformance run (scripts/conformance.py),
//! replayed as the checker sends them.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestServer;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[tokio::test]
async fn patch_by_extension_urn_accepts_the_extensions_own_schemas() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = s.user("bjensen").await;
    for op in ["add", "replace"] {
        let r = s
            .patch(
                &format!("/Users/{id}"),
                json!({
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": op, "path": ENT, "value": {
                        "schemas": [ENT],
                        "employeeNumber": format!("{op}-1"),
                        "department": "Tour Operations"
                    }}]
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{op}: {:?}", r.body);
        assert_eq!(r.body[ENT]["employeeNumber"], format!("{op}-1"));
        assert!(r.body[ENT].get("schemas").is_none(), "{:?}", r.body);
    }
}
