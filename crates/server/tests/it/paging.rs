//! Listing: index paging, sorting, RFC 9865 cursors.

use std::collections::HashSet;

use reqwest::StatusCode;
use roster_server::ServerConfig;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_scim_error, enc, ids};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

async fn users(s: &TestServer, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(s.user(&format!("user{i:02}")).await);
    }
    out
}

#[tokio::test]
async fn start_index_and_count() {
    let Some(s) = TestServer::start_with(ServerConfig {
        default_page_size: 4,
        max_page_size: 6,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let all = users(&s, 10).await;
    let r = s.get("/Users").await;
    assert_eq!(r.body["totalResults"], 10);
    assert_eq!(r.body["itemsPerPage"], 4);
    assert_eq!(r.body["startIndex"], 1);
    assert_eq!(ids(&r.body), all[..4]);

    let r = s.get("/Users?startIndex=3&count=2").await;
    assert_eq!(ids(&r.body), all[2..4]);
    assert_eq!(r.body["startIndex"], 3);
    assert_eq!(r.body["itemsPerPage"], 2);

    // count=0: only the total.
    let r = s.get("/Users?count=0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 10);
    assert_eq!(r.body["itemsPerPage"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    // Negative count is 0.
    let r = s.get("/Users?count=-5").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["Resources"], json!([]));
    assert_eq!(r.body["totalResults"], 10);
    // Above the maximum: clamped, not an error.
    let r = s.get("/Users?count=1000").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ids(&r.body), all[..6]);
    // Even a count too large for 64 bits.
    let r = s.get("/Users?count=99999999999999999999").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(ids(&r.body), all[..6]);
    let r = s
        .raw(
            reqwest::Method::POST,
            "/Users/.search",
            br#"{"count": 99999999999999999999}"#.to_vec(),
            "application/scim+json",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(ids(&r.body), all[..6]);
    // startIndex below 1 is 1.
    for si in ["0", "-3", "-99999999999999999999"] {
        let r = s.get(&format!("/Users?startIndex={si}&count=2")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(ids(&r.body), all[..2]);
        assert_eq!(r.body["startIndex"], 1);
    }
    // Past the end: empty page, total intact.
    let r = s.get("/Users?startIndex=11").await;
    assert_eq!(r.body["Resources"], json!([]));
    assert_eq!(r.body["totalResults"], 10);
    assert_scim_error(&s.get("/Users?count=ten").await, 400, Some("invalidValue"));
    // The same through a SearchRequest.
    let r = s
        .post(
            "/Users/.search",
            json!({"schemas": [SEARCH], "startIndex": 9, "count": 5}),
        )
        .await;
    assert_eq!(ids(&r.body), all[8..]);
    assert_eq!(r.body["startIndex"], 9);
}

#[tokio::test]
async fn default_order_is_stable_and_pages_cover_everything_once() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let all = users(&s, 25).await;
    // Updates must not reorder the default listing.
    s.put(
        &format!("/Users/{}", all[0]),
        json!({"userName": "user00", "title": "x"}),
    )
    .await;
    let mut seen = Vec::new();
    let mut start = 1;
    while start <= 25 {
        let r = s.get(&format!("/Users?startIndex={start}&count=7")).await;
        assert_eq!(r.body["totalResults"], 25);
        seen.extend(ids(&r.body));
        start += 7;
    }
    assert_eq!(seen, all);
    // The root search pages the same way, Users before Groups.
    let g = s.group("g", &[]).await;
    let mut seen = Vec::new();
    let mut start = 1;
    while start <= 26 {
        let r = s
            .post(
                "/.search",
                json!({"schemas": [SEARCH], "startIndex": start, "count": 7}),
            )
            .await;
        assert_eq!(r.body["totalResults"], 26, "{:?}", r.body);
        seen.extend(ids(&r.body));
        start += 7;
    }
    let mut want = all.clone();
    want.push(g);
    assert_eq!(seen, want);
}

async fn sorted_fixture(s: &TestServer) -> Vec<(String, String)> {
    let specs = [
        ("delta", Some("Zeta"), Some("30")),
        ("Alpha", Some("yates"), None),
        ("charlie", None, Some("10")),
        ("bravo", Some("Xu"), Some("20")),
    ];
    let mut out = Vec::new();
    for (name, family, number) in specs {
        let mut body = json!({"userName": name});
        if let Some(f) = family {
            body["name"] = json!({"familyName": f});
        }
        if let Some(n) = number {
            body[ENT] = json!({"employeeNumber": n});
        }
        let b = s.create("/Users", body).await;
        out.push((name.to_owned(), b["id"].as_str().unwrap().to_owned()));
    }
    out
}

fn names(body: &Value) -> Vec<String> {
    body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sort_by_attributes_with_missing_values_last() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    sorted_fixture(&s).await;
    let q = |by: &str, order: &str| format!("/Users?sortBy={}&sortOrder={order}", enc(by));
    let r = s.get(&q("userName", "ascending")).await;
    assert_eq!(names(&r.body), ["Alpha", "bravo", "charlie", "delta"]);
    let r = s.get(&q("userName", "descending")).await;
    assert_eq!(names(&r.body), ["delta", "charlie", "bravo", "Alpha"]);
    let r = s.get("/Users?sortBy=USERNAME").await;
    assert_eq!(names(&r.body), ["Alpha", "bravo", "charlie", "delta"]);

    // RFC 7644 §3.4.2.3: missing values sort last ascending, first descending.
    let r = s.get(&q("name.familyName", "ascending")).await;
    assert_eq!(names(&r.body), ["bravo", "Alpha", "delta", "charlie"]);
    let r = s.get(&q("name.familyName", "descending")).await;
    assert_eq!(names(&r.body), ["charlie", "delta", "Alpha", "bravo"]);

    let r = s
        .get(&q(&format!("{ENT}:employeeNumber"), "ascending"))
        .await;
    assert_eq!(names(&r.body), ["charlie", "bravo", "delta", "Alpha"]);

    // Sorted paging through a SearchRequest.
    let r = s
        .post(
            "/Users/.search",
            json!({"schemas": [SEARCH], "sortBy": "userName", "sortOrder": "descending", "startIndex": 2, "count": 2}),
        )
        .await;
    assert_eq!(names(&r.body), ["charlie", "bravo"]);

    assert_scim_error(
        &s.get(&q("userName", "sideways")).await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &s.get("/Users?sortBy=nosuch").await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &s.get("/Users?sortBy=emails").await,
        400,
        Some("invalidValue"),
    );
}

#[tokio::test]
async fn sort_by_last_modified() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let fx = sorted_fixture(&s).await;
    // Touch the first-created user so it becomes the most recent. Timestamps
    // have millisecond resolution and ties are ordered by id, so step past the
    // millisecond the fixture was created in.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (name, id) = &fx[0];
    let r = s
        .put(
            &format!("/Users/{id}"),
            json!({"userName": name, "title": "t"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s
        .get("/Users?sortBy=meta.lastModified&sortOrder=descending")
        .await;
    assert_eq!(names(&r.body)[0], "delta");
    let r = s.get("/Users?sortBy=meta.lastModified").await;
    assert_eq!(names(&r.body)[3], "delta");
    let stamps: Vec<String> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["meta"]["lastModified"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted);
}

/// Follows nextCursor from the first page to the end; returns each page's ids and the raw pages.
async fn walk(s: &TestServer, query: &str, count: u64) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut url = format!("/Users?{query}&count={count}&cursor=");
    loop {
        let r = s.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {:?}", r.body);
        let next = r.body["nextCursor"].as_str().map(str::to_owned);
        pages.push(r.body);
        match next {
            Some(c) => url = format!("/Users?{query}&count={count}&cursor={}", enc(&c)),
            None => break,
        }
        assert!(pages.len() < 100, "cursor paging does not end");
    }
    pages
}

#[tokio::test]
async fn cursor_paging_walks_forward_and_back() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let all = users(&s, 11).await;
    let pages = walk(&s, "filter=userName+sw+%22user%22", 4).await;
    assert_eq!(pages.len(), 3);
    let first = &pages[0];
    assert!(first.get("previousCursor").is_none(), "{first:?}");
    assert!(first.get("startIndex").is_none());
    assert_eq!(first["totalResults"], 11);
    assert_eq!(first["itemsPerPage"], 4);
    let seen: Vec<String> = pages.iter().flat_map(ids).collect();
    assert_eq!(seen, all);
    assert!(pages[2].get("nextCursor").is_none());

    // previousCursor of page 2 leads back to page 1; of page 3 to page 2.
    for (i, page) in pages.iter().enumerate().skip(1) {
        let prev = page["previousCursor"].as_str().unwrap();
        let r = s
            .get(&format!(
                "/Users?filter=userName+sw+%22user%22&count=4&cursor={}",
                enc(prev)
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(ids(&r.body), ids(&pages[i - 1]), "back from page {}", i + 1);
        // And forward again from there.
        let next = r.body["nextCursor"].as_str().unwrap();
        let r = s
            .get(&format!(
                "/Users?filter=userName+sw+%22user%22&count=4&cursor={}",
                enc(next)
            ))
            .await;
        assert_eq!(ids(&r.body), ids(page));
    }
}

#[tokio::test]
async fn cursor_paging_sorted_descending_with_missing_values() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let fx = sorted_fixture(&s).await;
    for order in ["ascending", "descending"] {
        let q = format!("sortBy=name.familyName&sortOrder={order}");
        let full = s.get(&format!("/Users?{q}")).await;
        for count in [1, 2, 3] {
            let pages = walk(&s, &q, count).await;
            let seen: Vec<String> = pages.iter().flat_map(ids).collect();
            assert_eq!(seen, ids(&full.body), "{q} count={count}");
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), fx.len());
        }
    }
}

#[tokio::test]
async fn cursor_paging_sees_each_user_once_even_with_a_page_boundary_on_equal_keys() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    for i in 0..9 {
        let family = if i % 2 == 0 { "Same" } else { "Other" };
        s.create(
            "/Users",
            json!({"userName": format!("u{i}"), "name": {"familyName": family}}),
        )
        .await;
    }
    let pages = walk(&s, "sortBy=name.familyName", 2).await;
    let seen: Vec<String> = pages.iter().flat_map(ids).collect();
    let full = s.get("/Users?sortBy=name.familyName").await;
    assert_eq!(seen, ids(&full.body));
}

#[tokio::test]
async fn bad_cursors_are_invalid_cursor() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    users(&s, 5).await;
    assert_scim_error(
        &s.get("/Users?cursor=garbage!!&count=2").await,
        400,
        Some("invalidCursor"),
    );
    assert_scim_error(
        &s.get("/Users?cursor=eyJmIjp0cnVlfQ&count=2").await,
        400,
        Some("invalidCursor"),
    );
    let r = s
        .get("/Users?filter=userName+sw+%22user%22&count=2&cursor=")
        .await;
    let next = r.body["nextCursor"].as_str().unwrap().to_owned();
    let r = s
        .get(&format!(
            "/Users?filter=userName+sw+%22u%22&count=2&cursor={}",
            enc(&next)
        ))
        .await;
    assert_scim_error(&r, 400, Some("invalidCursor"));
    let r = s
        .get(&format!(
            "/Users?filter=userName+sw+%22user%22&sortBy=userName&count=2&cursor={}",
            enc(&next)
        ))
        .await;
    assert_scim_error(&r, 400, Some("invalidCursor"));
    // A user cursor on groups.
    let r = s
        .get(&format!("/Groups?count=2&cursor={}", enc(&next)))
        .await;
    assert_scim_error(&r, 400, Some("invalidCursor"));
    // The same cursor with its own query still works.
    let r = s
        .get(&format!(
            "/Users?filter=userName+sw+%22user%22&count=2&cursor={}",
            enc(&next)
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Through a SearchRequest.
    let r = s
        .post(
            "/Users/.search",
            json!({"schemas": [SEARCH], "filter": "userName sw \"user\"", "count": 2, "cursor": next}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(ids(&r.body).len(), 2);
}

#[tokio::test]
async fn cursor_with_count_zero_and_in_a_search_request() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let all = users(&s, 3).await;
    let r = s.get("/Users?cursor=&count=0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 3);
    assert_eq!(r.body["Resources"], json!([]));
    let r = s
        .post(
            "/Users/.search",
            json!({"schemas": [SEARCH], "cursor": "", "count": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(ids(&r.body), all[..2]);
    assert!(r.body["nextCursor"].is_string());
}

#[tokio::test]
async fn previous_cursor_returns_the_same_pages_in_a_sorted_descending_walk() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    for i in 0..7 {
        let mut body = json!({"userName": format!("p{i}")});
        // Some users without the sort attribute, so a page boundary falls among missing values.
        if i % 3 != 0 {
            body["name"] = json!({"familyName": format!("F{}", i % 4)});
        }
        s.create("/Users", body).await;
    }
    let q = "sortBy=name.familyName&sortOrder=descending";
    let pages = walk(&s, q, 2).await;
    assert_eq!(pages.len(), 4);
    let full = s.get(&format!("/Users?{q}")).await;
    let seen: Vec<String> = pages.iter().flat_map(ids).collect();
    assert_eq!(seen, ids(&full.body));
    for (i, page) in pages.iter().enumerate().skip(1) {
        let prev = page["previousCursor"].as_str().unwrap();
        let r = s
            .get(&format!("/Users?{q}&count=2&cursor={}", enc(prev)))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(ids(&r.body), ids(&pages[i - 1]), "back from page {}", i + 1);
    }
}

#[tokio::test]
async fn a_cursor_survives_the_deletion_of_its_boundary_row() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let all = users(&s, 6).await;
    let r = s.get("/Users?count=3&cursor=").await;
    let next = r.body["nextCursor"].as_str().unwrap().to_owned();
    assert_eq!(s.delete(&format!("/Users/{}", all[2])).await.status, 204);
    let r = s
        .get(&format!("/Users?count=3&cursor={}", enc(&next)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(ids(&r.body), all[3..]);
    // totalResults is counted once, when the traversal began (RFC 9865);
    // a new traversal counts again.
    assert_eq!(r.body["totalResults"], 6);
    assert_eq!(
        s.get("/Users?count=3&cursor=").await.body["totalResults"],
        5
    );
}

/// A traversal counts on its first page only: later pages carry that count
/// in their cursor (RFC 9865 lets totalResults be the count when the
/// traversal began), with or without a filter, forward and back; index
/// paging counts every page.
#[tokio::test]
async fn a_cursor_traversal_counts_once() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    users(&s, 6).await;
    for query in ["", &format!("&filter={}", enc("userName sw \"user\""))] {
        let first = s.get(&format!("/Users?count=2&cursor={query}")).await;
        assert_eq!(first.body["totalResults"], 6, "{:?}", first.body);
        // Users created during the walk are reached (ids grow with time) but
        // not counted by it.
        let late = s.user(&format!("late{}", query.len())).await;
        let mut next = first.body["nextCursor"].as_str().map(str::to_owned);
        let mut seen = ids(&first.body);
        let mut last = first.body.clone();
        while let Some(cursor) = next {
            let r = s
                .get(&format!("/Users?count=2&cursor={}{query}", enc(&cursor)))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            assert_eq!(r.body["totalResults"], 6, "{:?}", r.body);
            seen.extend(ids(&r.body));
            next = r.body["nextCursor"].as_str().map(str::to_owned);
            last = r.body;
        }
        if query.is_empty() {
            assert!(seen.contains(&late), "{seen:?}");
        }
        // Back from the end, still the traversal's count.
        let back = last["previousCursor"].as_str().unwrap();
        let r = s
            .get(&format!("/Users?count=2&cursor={}{query}", enc(back)))
            .await;
        assert_eq!(r.body["totalResults"], 6, "{:?}", r.body);
        // A new traversal and index paging count again.
        let fresh = s.get(&format!("/Users?count=2&cursor={query}")).await;
        let index = s.get(&format!("/Users?count=2&startIndex=3{query}")).await;
        let now = if query.is_empty() { 7 } else { 6 };
        assert_eq!(fresh.body["totalResults"], now, "{:?}", fresh.body);
        assert_eq!(index.body["totalResults"], now, "{:?}", index.body);
        s.delete(&format!("/Users/{late}")).await;
    }
}
