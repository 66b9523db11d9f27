//! Hostile connections on real sockets: slow and idle clients, huge uploads,
//! broken framing, too many connections. None of them may cost the server a
//! hang, a 500 or unbounded memory.

use std::time::{Duration, Instant};

use roster_server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestServer;

pub use roster_testkit::http::read_reply;

pub async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.addr).await.unwrap()
}

/// Waits until the server closes the connection; returns how long that took,
/// or None if it stayed open for `wait`.
pub async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        let left = wait.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

fn head(s: &TestServer, method: &str, path: &str, extra: &str) -> String {
    format!(
        "{method} /scim/v2/{}{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{extra}\r\n",
        s.directory, s.addr, s.token
    )
}

fn quick() -> ServerConfig {
    ServerConfig {
        header_read_timeout_secs: 1,
        body_read_timeout_secs: 1,
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn a_slowloris_head_is_cut_off_at_the_header_read_timeout() {
    let Some(s) = TestServer::start_with(quick()).await else {
        return;
    };
    let mut c = connect(&s).await;
    c.write_all(b"GET /scim/v2/x/Users HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    // Keep trickling header bytes: trickling must not extend the deadline.
    let writer = async {
        for i in 0..8 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if c.write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    writer.await;
    let took = closed_within(&mut c, Duration::from_secs(5)).await;
    assert!(
        took.is_some(),
        "a connection sending headers slowly stayed open"
    );
    // The server still answers everyone else.
    assert_eq!(s.get("/Users").await.status, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let Some(s) = TestServer::start_with(quick()).await else {
        return;
    };
    let mut c = connect(&s).await;
    c.write_all(head(&s, "GET", "/Users", "").as_bytes())
        .await
        .unwrap();
    let r = read_reply(&mut c, Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.status, 200);
    let took = closed_within(&mut c, Duration::from_secs(5))
        .await
        .expect("an idle keep-alive connection stayed open");
    assert!(
        took >= Duration::from_millis(500),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn a_slow_body_is_answered_408_with_a_scim_error() {
    let Some(s) = TestServer::start_with(quick()).await else {
        return;
    };
    let mut c = connect(&s).await;
    let req = head(
        &s,
        "POST",
        "/Users",
        "Content-Type: application/scim+json\r\nContent-Length: 100\r\n",
    );
    c.write_all(req.as_bytes()).await.unwrap();
    c.write_all(b"{\"userName\":").await.unwrap();
    let r = read_reply(&mut c, Duration::from_secs(5))
        .await
        .expect("no answer to a stalled body");
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/scim+json")
    );
    let v = r.json();
    assert_eq!(
        v["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("body_read_timeout_secs"),
        "{v}"
    );
    assert!(s.ids("/Users").await.is_empty());
}

#[tokio::test]
async fn a_huge_declared_upload_is_refused_before_it_is_sent() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    for path in ["/Users", "/Bulk"] {
        let mut c = connect(&s).await;
        let req = head(
            &s,
            "POST",
            path,
            "Content-Type: application/scim+json\r\nContent-Length: 10000000000\r\n",
        );
        c.write_all(req.as_bytes()).await.unwrap();
        let r = read_reply(&mut c, Duration::from_secs(5))
            .await
            .expect("no answer before the body");
        assert_eq!(r.status, 413, "{path}: {r:?}");
        assert_eq!(r.json()["status"], "413");
    }
}

#[tokio::test]
async fn an_endless_chunked_upload_is_cut_at_the_limit() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_body_bytes: 64 * 1024,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let mut c = connect(&s).await;
    let req = head(
        &s,
        "POST",
        "/Users",
        "Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n",
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
    // Up to 8 MiB; the answer must come long before that.
    let mut sent = 0;
    for _ in 0..1024 {
        if c.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
        sent += 8192;
        if sent > 256 * 1024 {
            break;
        }
    }
    let r = read_reply(&mut c, Duration::from_secs(5))
        .await
        .expect("no answer to an endless upload");
    assert_eq!(r.status, 413, "{r:?}");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes")
    );
}

#[tokio::test]
async fn broken_framing_is_a_400_and_a_closed_connection_never_a_hang() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    for framing in [
        "Content-Length: abc\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
    ] {
        let mut c = connect(&s).await;
        let req = head(&s, "POST", "/Users", framing);
        c.write_all(req.as_bytes()).await.unwrap();
        c.write_all(b"{}").await.unwrap();
        let r = read_reply(&mut c, Duration::from_secs(5)).await;
        // hyper refuses the framing before any request exists: a bare 400.
        assert_eq!(r.map(|r| r.status), Some(400), "{framing:?}");
        assert!(
            closed_within(&mut c, Duration::from_secs(5))
                .await
                .is_some(),
            "{framing:?}: connection left open"
        );
    }
    // A body shorter than its Content-Length, then EOF: a SCIM 400, nothing stored.
    let mut c = connect(&s).await;
    let req = head(&s, "POST", "/Users", "Content-Length: 50\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    c.write_all(b"{\"userName\":\"cut\"}").await.unwrap();
    c.shutdown().await.unwrap();
    let r = read_reply(&mut c, Duration::from_secs(5))
        .await
        .expect("no answer to a truncated body");
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json()["scimType"], "invalidSyntax");
    assert!(s.ids("/Users").await.is_empty());
}

#[tokio::test]
async fn connections_past_max_connections_wait_for_a_free_slot() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let mut a = connect(&s).await;
    let mut b = connect(&s).await;
    for c in [&mut a, &mut b] {
        c.write_all(head(&s, "GET", "/Users", "").as_bytes())
            .await
            .unwrap();
        assert_eq!(
            read_reply(c, Duration::from_secs(5)).await.unwrap().status,
            200
        );
    }
    // A third connection is not served while both slots are held...
    let mut third = connect(&s).await;
    third
        .write_all(head(&s, "GET", "/Users", "").as_bytes())
        .await
        .unwrap();
    assert!(
        read_reply(&mut third, Duration::from_millis(700))
            .await
            .is_none(),
        "served past max_connections"
    );
    // ...and is as soon as one closes.
    drop(a);
    let r = read_reply(&mut third, Duration::from_secs(5)).await;
    assert_eq!(r.map(|r| r.status), Some(200));
}
