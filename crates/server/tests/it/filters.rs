//! Filters through `GET ?filter=` and `POST /.search`, compiled to SQL.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_scim_error, enc, ids};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A small directory: names to ids.
struct Fixture {
    s: TestServer,
    ids: Vec<(String, String)>,
}

impl Fixture {
    async fn new() -> Option<Self> {
        let s = TestServer::start().await?;
        let users = [
            json!({"userName": "alice", "externalId": "EXT-A", "active": true,
                   "name": {"familyName": "Anders", "givenName": "Alice"},
                   "title": "Engineer",
                   "emails": [{"value": "alice@x.com", "type": "work"}, {"value": "alice@home.org", "type": "home"}],
                   ENT: {"department": "R&D", "employeeNumber": "3"}}),
            json!({"userName": "Bob", "externalId": "ext-b", "active": false,
                   "name": {"familyName": "Brown"},
                   "title": "Manager",
                   "emails": [{"value": "bob@home.org", "type": "work"}, {"value": "bob@x.com", "type": "home"}],
                   ENT: {"department": "Sales"}}),
            json!({"userName": "carol", "active": true,
                   "name": {"familyName": "Clark"},
                   "emails": [{"value": "carol@x.com", "type": "work"}]}),
            json!({"userName": "dave"}),
        ];
        let mut ids = Vec::new();
        for u in users {
            let b = s.create("/Users", u.clone()).await;
            ids.push((
                u["userName"].as_str().unwrap().to_owned(),
                b["id"].as_str().unwrap().to_owned(),
            ));
        }
        Some(Fixture { s, ids })
    }

    fn id(&self, name: &str) -> &str {
        &self.ids.iter().find(|(n, _)| n == name).unwrap().1
    }

    fn name(&self, id: &str) -> &str {
        &self.ids.iter().find(|(_, i)| i == id).unwrap().0
    }

    /// The userNames a filter selects, sorted, through GET and both searches (which must agree).
    async fn names(&self, filter: &str) -> BTreeSet<String> {
        let r = self.s.get(&format!("/Users?filter={}", enc(filter))).await;
        assert_eq!(r.status, StatusCode::OK, "{filter}: {:?}", r.body);
        assert_eq!(
            r.body["totalResults"].as_u64().unwrap() as usize,
            ids(&r.body).len()
        );
        let got: BTreeSet<String> = ids(&r.body)
            .iter()
            .map(|i| self.name(i).to_owned())
            .collect();
        let body = json!({"schemas": [SEARCH], "filter": filter});
        let r = self.s.post("/Users/.search", body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{filter}: {:?}", r.body);
        let via_search: BTreeSet<String> = ids(&r.body)
            .iter()
            .map(|i| self.name(i).to_owned())
            .collect();
        assert_eq!(got, via_search, "/Users/.search disagrees for {filter}");
        let r = self.s.post("/.search", body).await;
        assert_eq!(r.status, StatusCode::OK, "{filter}: {:?}", r.body);
        let via_root: BTreeSet<String> = ids(&r.body)
            .iter()
            .map(|i| self.name(i).to_owned())
            .collect();
        assert_eq!(got, via_root, "/.search disagrees for {filter}");
        got
    }

    async fn check(&self, filter: &str, want: &[&str]) {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(self.names(filter).await, want, "filter {filter}");
    }
}

#[tokio::test]
async fn every_operator() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.check("userName eq \"alice\"", &["alice"]).await;
    f.check("userName ne \"alice\"", &["Bob", "carol", "dave"])
        .await;
    f.check("userName co \"o\"", &["Bob", "carol"]).await;
    f.check("userName sw \"CA\"", &["carol"]).await;
    f.check("userName ew \"E\"", &["alice", "dave"]).await;
    f.check("title pr", &["alice", "Bob"]).await;
    f.check("name.familyName gt \"B\"", &["Bob", "carol"]).await;
    f.check("name.familyName ge \"brown\"", &["Bob", "carol"])
        .await;
    f.check("name.familyName lt \"brown\"", &["alice"]).await;
    f.check("name.familyName le \"BROWN\"", &["alice", "Bob"])
        .await;
    // ne also selects resources without the attribute.
    f.check("title ne \"Engineer\"", &["Bob", "carol", "dave"])
        .await;
    f.check("not (title pr)", &["carol", "dave"]).await;
}

#[tokio::test]
async fn logic_precedence_and_parentheses() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    // and binds tighter than or.
    f.check(
        "userName eq \"alice\" or userName eq \"Bob\" and active eq true",
        &["alice"],
    )
    .await;
    f.check(
        "(userName eq \"alice\" or userName eq \"Bob\") and active eq false",
        &["Bob"],
    )
    .await;
    f.check("not (userName eq \"alice\") and title pr", &["Bob"])
        .await;
    f.check(
        "not (userName eq \"alice\" or userName eq \"Bob\")",
        &["carol", "dave"],
    )
    .await;
    f.check("USERNAME EQ \"alice\" AND Active Eq True", &["alice"])
        .await;
}

#[tokio::test]
async fn booleans_and_missing_values() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.check("active eq false", &["Bob"]).await;
    f.check("active eq true", &["alice", "carol"]).await;
    f.check("active ne true", &["Bob", "dave"]).await;
    f.check("active pr", &["alice", "Bob", "carol"]).await;
}

#[tokio::test]
async fn value_paths_and_multi_valued_any_match() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.check(
        "emails[type eq \"work\" and value co \"@x\"]",
        &["alice", "carol"],
    )
    .await;
    // Any element may match each test separately without brackets.
    f.check(
        "emails.type eq \"work\" and emails.value co \"@home\"",
        &["alice", "Bob"],
    )
    .await;
    f.check("emails.value eq \"BOB@X.COM\"", &["Bob"]).await;
    f.check("emails.value ew \".org\"", &["alice", "Bob"]).await;
    f.check("emails co \"carol\"", &["carol"]).await;
    f.check("emails pr", &["alice", "Bob", "carol"]).await;
    f.check("emails[type eq \"home\"]", &["alice", "Bob"]).await;
    f.check("not (emails[type eq \"home\"])", &["carol", "dave"])
        .await;
    f.check("emails[value eq \"bob@x.com\" and type eq \"work\"]", &[])
        .await;
}

/// An update that changes an address moves its lookups: the new address
/// finds the user, the old one nobody, whether the index's candidates drive
/// the list or (sorted) the compiled filter reads the index on its own.
#[tokio::test]
async fn a_changed_address_is_found_by_its_new_value_only() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let alice = f.id("alice").to_owned();
    let r =
        f.s.patch(
            &format!("/Users/{alice}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "emails[type eq \"work\"].value",
                                   "value": "Alice.New@X.com"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let bob = f.id("Bob").to_owned();
    let r =
        f.s.put(
            &format!("/Users/{bob}"),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Bob",
                   "emails": [{"value": "robert@x.com", "type": "work"}],
                   "phoneNumbers": [{"value": "+1 555 0199", "type": "work"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for (filter, want) in [
        (r#"emails.value eq "alice@x.com""#, &[][..]),
        (r#"emails.value eq "alice.new@x.com""#, &["alice"][..]),
        (r#"emails[type eq "work"].value eq "alice@x.com""#, &[]),
        (
            r#"emails[type eq "work"].value eq "ALICE.NEW@x.com""#,
            &["alice"],
        ),
        (
            r#"emails[type eq "work" and value eq "Alice.New@X.com"]"#,
            &["alice"],
        ),
        (r#"emails.value eq "alice@home.org""#, &["alice"]),
        (r#"emails.value eq "bob@x.com""#, &[]),
        (r#"emails.value eq "bob@home.org""#, &[]),
        (r#"emails.value eq "robert@x.com""#, &["Bob"]),
        (r#"emails.value sw "rob""#, &["Bob"]),
        (r#"emails.value co "new@""#, &["alice"]),
        (r#"phoneNumbers.value eq "+1 555 0199""#, &["Bob"]),
    ] {
        f.check(filter, want).await;
        // Sorted, the list does without candidates: the filter alone decides.
        let r =
            f.s.get(&format!("/Users?sortBy=userName&filter={}", enc(filter)))
                .await;
        assert_eq!(r.status, StatusCode::OK, "{filter}: {:?}", r.body);
        let got: BTreeSet<&str> = ids(&r.body).iter().map(|i| f.name(i)).collect();
        let want: BTreeSet<&str> = want.iter().copied().collect();
        assert_eq!(got, want, "sorted, {filter}");
    }
}

#[tokio::test]
async fn urn_paths_and_extension_attributes() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.check(&format!("{ENT}:department eq \"r&d\""), &["alice"])
        .await;
    f.check(&format!("{ENT}:department pr"), &["alice", "Bob"])
        .await;
    f.check(
        "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"carol\"",
        &["carol"],
    )
    .await;
    f.check(
        "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName sw \"a\"",
        &["alice"],
    )
    .await;
    // A bare name that only the extension defines.
    f.check("department eq \"Sales\"", &["Bob"]).await;
}

#[tokio::test]
async fn case_exactness_follows_the_schema() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.check("externalId eq \"EXT-A\"", &["alice"]).await;
    f.check("externalId eq \"ext-a\"", &[]).await;
    f.check("externalId eq \"ext-b\"", &["Bob"]).await;
    f.check("userName eq \"BOB\"", &["Bob"]).await;
    let alice = f.id("alice").to_owned();
    f.check(&format!("id eq \"{alice}\""), &["alice"]).await;
    f.check(&format!("id eq \"{}\"", alice.to_uppercase()), &[])
        .await;
}

#[tokio::test]
async fn meta_attributes() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let r = f.s.get(&format!("/Users/{}", f.id("carol"))).await;
    let carol_modified = r.body["meta"]["lastModified"].as_str().unwrap().to_owned();
    let r = f.s.get(&format!("/Users/{}", f.id("dave"))).await;
    let dave_modified = r.body["meta"]["lastModified"].as_str().unwrap().to_owned();
    let later: BTreeSet<String> = f
        .names(&format!("meta.lastModified gt \"{carol_modified}\""))
        .await;
    // Created in order, and every create advances the clock by at least a millisecond?
    // Not guaranteed: compare with what the server reports instead.
    let mut want = BTreeSet::new();
    for (name, id) in &f.ids {
        let r = f.s.get(&format!("/Users/{id}")).await;
        if r.body["meta"]["lastModified"].as_str().unwrap() > carol_modified.as_str() {
            want.insert(name.clone());
        }
    }
    assert_eq!(later, want);
    assert!(
        f.names(&format!("meta.lastModified ge \"{dave_modified}\""))
            .await
            .contains("dave")
    );
    assert!(
        !f.names(&format!("meta.lastModified lt \"{dave_modified}\""))
            .await
            .contains("dave")
    );
    f.check(
        "meta.lastModified gt \"2000-01-01T00:00:00Z\"",
        &["alice", "Bob", "carol", "dave"],
    )
    .await;
    f.check("meta.created lt \"2000-01-01T00:00:00+01:00\"", &[])
        .await;
    f.check(
        "meta.resourceType eq \"User\"",
        &["alice", "Bob", "carol", "dave"],
    )
    .await;
}

#[tokio::test]
async fn group_members_and_user_groups() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let (a, b) = (f.id("alice").to_owned(), f.id("Bob").to_owned());
    let g1 = f.s.group("G1", &[&a]).await;
    let g2 = f.s.group("G2", &[&a, &b]).await;
    let q = |flt: String| format!("/Groups?filter={}", enc(&flt));
    let mut got = f.s.ids(&q(format!("members.value eq \"{a}\""))).await;
    got.sort();
    let mut want = vec![g1.clone(), g2.clone()];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        f.s.ids(&q(format!("members[value eq \"{b}\"]"))).await,
        [g2.as_str()]
    );
    assert_eq!(
        f.s.ids(&q("displayName eq \"g1\"".into())).await,
        [g1.as_str()]
    );
    assert_eq!(
        f.s.ids(&q("members.display eq \"Bob\"".into())).await,
        [g2.as_str()]
    );
    assert_eq!(
        f.s.ids(&q("not (members pr)".into())).await.len(),
        0,
        "both groups have members"
    );
    f.check(&format!("groups.value eq \"{g2}\""), &["alice", "Bob"])
        .await;
    f.check(&format!("groups.value eq \"{g1}\""), &["alice"])
        .await;
    f.check("groups pr", &["alice", "Bob"]).await;
}

#[tokio::test]
async fn plus_is_a_space_and_zero_matches_is_an_empty_list() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let r = f.s.get("/Users?filter=userName+eq+%22alice%22").await;
    assert_eq!(ids(&r.body), [f.id("alice")]);
    let r = f.s.get("/Users?filter=userName+eq+%22nobody%22").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
}

#[tokio::test]
async fn bad_filters_are_400_invalid_filter_with_a_position() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    for (bad, pos) in [
        ("userName eq", None),
        ("userName xx \"a\"", None),
        ("(userName eq \"a\"", None),
        ("userName eq \"a\" and", None),
        ("userName eq \"unterminated", None),
        ("emails[type eq \"work\"", None),
        ("userName eq \"a\" ) ", Some(17)),
    ] {
        let r = f.s.get(&format!("/Users?filter={}", enc(bad))).await;
        assert_scim_error(&r, 400, Some("invalidFilter"));
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("position"),
            "no position in {detail:?} for {bad:?}"
        );
        if let Some(p) = pos {
            assert!(detail.contains(&p.to_string()), "{detail:?}");
        }
        let body = json!({"schemas": [SEARCH], "filter": bad});
        assert_scim_error(
            &f.s.post("/Users/.search", body.clone()).await,
            400,
            Some("invalidFilter"),
        );
        assert_scim_error(
            &f.s.post("/.search", body).await,
            400,
            Some("invalidFilter"),
        );
    }
}

#[tokio::test]
async fn unknown_attributes_and_type_mismatches_are_invalid_filter() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    for bad in [
        "nosuch eq \"a\"",
        "name.nosuch eq \"a\"",
        "urn:example:nope:attr eq \"a\"",
        "active gt true",
        "active eq \"maybe\"",
        "userName eq 5",
        "meta.lastModified gt \"yesterday\"",
        "emails[nosuch eq \"a\"]",
        "userName[value eq \"a\"]",
    ] {
        let r = f.s.get(&format!("/Users?filter={}", enc(bad))).await;
        assert_scim_error(&r, 400, Some("invalidFilter"));
    }
    // On the root search an attribute one type lacks matches none of that type.
    let body = json!({"schemas": [SEARCH], "filter": "userName eq \"alice\""});
    let r = f.s.post("/.search", body).await;
    assert_eq!(ids(&r.body), [f.id("alice")]);
    let body = json!({"schemas": [SEARCH], "filter": "nosuch eq \"x\""});
    assert_scim_error(
        &f.s.post("/.search", body).await,
        400,
        Some("invalidFilter"),
    );
}

#[tokio::test]
async fn root_search_finds_users_and_groups() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let g = f.s.group("alpha", &[]).await;
    let body =
        json!({"schemas": [SEARCH], "filter": "displayName sw \"al\" or externalId eq \"ext-b\""});
    let r = f.s.post("/.search", body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(ids(&r.body), [f.id("Bob").to_owned(), g.clone()]);
    assert_eq!(r.body["totalResults"], 2);
    let types: Vec<&Value> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["meta"]["resourceType"])
        .collect();
    assert_eq!(types, [&json!("User"), &json!("Group")]);
    // Documented: a filter naming an attribute a type lacks matches none of that type,
    // even inside an `or` whose other branch would match.
    let body =
        json!({"schemas": [SEARCH], "filter": "userName eq \"dave\" or displayName eq \"alpha\""});
    let r = f.s.post("/.search", body).await;
    assert_eq!(ids(&r.body), [f.id("dave").to_owned()]);
    assert_eq!(r.body["totalResults"], 1);
}
