//! Pattern operators (`co`, `sw`, `ew`) match their value literally, whatever
//! wildcard or escape character of SQL LIKE or SQLite GLOB it contains, and no
//! filter value can change the query around it. Written against the HTTP API
//! so that it holds for every store.

use serde_json::json;

use crate::support::{TestServer, enc};

const NAMES: [&str; 10] = [
    "a%b", "axb", "a_b", "a\\b", "a*b", "a?b", "a[b]c", "abc", "a'b", "a\"b",
];

async fn setup() -> Option<TestServer> {
    let s = TestServer::start().await?;
    for (i, name) in NAMES.iter().enumerate() {
        s.create(
            "/Users",
            json!({
                "userName": name,
                "title": format!("t-{name}"),
                "emails": [{"value": format!("{name}{i}@x.example"), "type": "work"}],
            }),
        )
        .await;
    }
    Some(s)
}

/// The userNames a filter selects, sorted.
async fn names(s: &TestServer, filter: &str) -> Vec<String> {
    let r = s
        .get(&format!("/Users?count=100&filter={}", enc(filter)))
        .await;
    assert_eq!(r.status, 200, "{filter}: {:?}", r.body);
    let mut out: Vec<String> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn quoted(v: &str) -> String {
    serde_json::to_string(v).unwrap()
}

#[tokio::test]
async fn like_and_glob_wildcards_match_literally() {
    let Some(s) = setup().await else {
        return;
    };
    // (value, operator) → the only name(s) containing / starting / ending with it literally.
    let cases: [(&str, &str, &[&str]); 12] = [
        ("co", "%", &["a%b"]),
        ("co", "_", &["a_b"]),
        ("co", "\\", &["a\\b"]),
        ("co", "*", &["a*b"]),
        ("co", "?", &["a?b"]),
        ("co", "[b]", &["a[b]c"]),
        ("sw", "a%", &["a%b"]),
        ("sw", "a_", &["a_b"]),
        ("sw", "a\\", &["a\\b"]),
        ("ew", "%b", &["a%b"]),
        ("ew", "_b", &["a_b"]),
        ("ew", "\\b", &["a\\b"]),
    ];
    for (op, value, want) in cases {
        for attr in ["userName", "title", "emails.value"] {
            let (v, want): (String, Vec<String>) = match (attr, op) {
                // title is "t-<name>": a prefix must start with "t-".
                ("title", "sw") => (
                    format!("t-{value}"),
                    want.iter().map(|w| w.to_string()).collect(),
                ),
                // emails end in "<i>@x.example": test their prefix only.
                ("emails.value", "ew") => continue,
                _ => (
                    value.to_owned(),
                    want.iter().map(|w| w.to_string()).collect(),
                ),
            };
            let filter = format!("{attr} {op} {}", quoted(&v));
            assert_eq!(names(&s, &filter).await, want, "{filter}");
        }
    }
    // The same operators in a value filter.
    assert_eq!(
        names(&s, r#"emails[value sw "a%" and type eq "work"]"#).await,
        ["a%b"]
    );
}

#[tokio::test]
async fn quotes_and_sql_in_filter_values_are_only_values() {
    let Some(s) = setup().await else {
        return;
    };
    assert_eq!(names(&s, r#"userName eq "a'b""#).await, ["a'b"]);
    assert_eq!(names(&s, r#"userName eq "a\"b""#).await, ["a\"b"]);
    assert_eq!(names(&s, r#"title co "'""#).await, ["a'b"]);
    for injection in [
        r#"userName eq "x' OR '1'='1""#,
        r#"userName co "') OR 1=1 --""#,
        r#"title sw "t-a%' OR 'x'='x""#,
        r#"emails.value ew "\" OR 1=1; DROP TABLE resources; --""#,
        r#"userName eq "a%b' UNION SELECT token_hash FROM tokens --""#,
    ] {
        assert!(names(&s, injection).await.is_empty(), "{injection}");
    }
    // Everything is still there.
    assert_eq!(names(&s, "userName pr").await.len(), NAMES.len());
}
