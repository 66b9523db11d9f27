//! `roster webhook add --format`: the endpoint's payload and signature format.

use crate::support::Roster;

#[test]
fn webhook_add_takes_a_format_and_list_shows_it() {
    let r = Roster::new();
    let workos = r.json(&[
        "webhook",
        "add",
        "http://127.0.0.1:9/w",
        "--format",
        "workos",
    ]);
    assert!(
        workos["id"].is_string() && workos["secret"].is_string(),
        "{workos}"
    );
    let roster = r.json(&["webhook", "add", "http://127.0.0.1:9/r"]);
    let list = r.json(&["webhook", "list"]);
    let format_of = |id: &serde_json::Value| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == *id)
            .map(|e| e["format"].clone())
            .unwrap()
    };
    assert_eq!(format_of(&workos["id"]), "workos");
    assert_eq!(format_of(&roster["id"]), "roster");

    let bad = r.run(&["webhook", "add", "http://127.0.0.1:9/x", "--format", "svix"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("roster, workos"), "{err}");
}
