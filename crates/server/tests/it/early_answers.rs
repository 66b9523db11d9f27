//! Early answers are readable: a client that writes its whole request body
//! before reading (as Python's `http.client` and Java's `HttpURLConnection`
//! do) reads the 413 or 401 Roster sent before reading that body, instead of
//! a broken pipe or a reset.

use std::time::Duration;

use roster_server::ServerConfig;
use roster_testkit::http::{RawReply, read_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestServer;

/// Bigger than the kernel's socket buffers on both sides, so that the body
/// cannot sit in them: the server must read it, or the client's writes fail.
const BODY: usize = 24 * 1024 * 1024;

/// Writes a POST with a `len`-byte body (all of it, erroring if the
/// connection breaks), then reads the answer; the error says what broke.
async fn write_all_then_read(
    s: &TestServer,
    path: &str,
    token: Option<&str>,
    len: usize,
) -> Result<(RawReply, TcpStream), String> {
    let mut c = TcpStream::connect(s.addr)
        .await
        .map_err(|e| e.to_string())?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/scim+json\r\n\
         Content-Length: {len}\r\n\r\n",
        s.addr
    );
    c.write_all(head.as_bytes())
        .await
        .map_err(|e| format!("writing the head: {e}"))?;
    let chunk = vec![b' '; 256 * 1024];
    let mut sent = 0;
    while sent < len {
        let n = chunk.len().min(len - sent);
        c.write_all(&chunk[..n])
            .await
            .map_err(|e| format!("writing the body after {sent} bytes: {e}"))?;
        sent += n;
    }
    let reply = read_reply(&mut c, Duration::from_secs(10))
        .await
        .ok_or_else(|| "no answer could be read".to_owned())?;
    Ok((reply, c))
}

/// After the answer the server closes its side: the client reads the end.
async fn closes_after(mut c: TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "the connection was not closed cleanly: {read:?}"
    );
}

#[tokio::test]
async fn a_413_before_the_body_is_read_reaches_a_client_that_writes_it_all() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_body_bytes: 64 * 1024,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let path = format!("/scim/v2/{}/Users", s.directory);
    let (reply, c) = write_all_then_read(&s, &path, Some(&s.token), BODY)
        .await
        .unwrap_or_else(|e| panic!("the 413 was lost: {e}"));
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.body.contains("max_body_bytes"), "{}", reply.body);
    closes_after(c).await;
}

#[tokio::test]
async fn a_401_before_the_body_is_read_reaches_a_client_that_writes_it_all() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_body_bytes: 2 * BODY,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let path = format!("/scim/v2/{}/Users", s.directory);
    let (reply, c) = write_all_then_read(&s, &path, None, BODY)
        .await
        .unwrap_or_else(|e| panic!("the 401 was lost: {e}"));
    assert_eq!(reply.status, 401, "{}", reply.body);
    closes_after(c).await;
    let (reply, _) = write_all_then_read(&s, &path, Some("not-a-token"), BODY)
        .await
        .unwrap_or_else(|e| panic!("the 401 was lost: {e}"));
    assert_eq!(reply.status, 401, "{}", reply.body);
}

#[tokio::test]
async fn draining_is_bounded_in_bytes() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_body_bytes: 64 * 1024,
        close_drain_max_bytes: 1024 * 1024,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    // Past the bound the server closes: a client still writing sees it break.
    let path = format!("/scim/v2/{}/Users", s.directory);
    let outcome = write_all_then_read(&s, &path, Some(&s.token), 8 * BODY).await;
    assert!(outcome.is_err(), "{:?}", outcome.map(|(r, _)| r.status));
}
