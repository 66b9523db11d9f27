//! HTTP/1.1 on raw sockets, for tests that must see the bytes a client sees
//! (no client library to retry, reconnect or hide a close): one reply read off
//! a socket, one request on a fresh connection, and a webhook receiver.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 response read off a raw socket.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawReply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.head, name)
    }
}

/// The value of header `name` (any case) in a message head.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Reads one message (head and `Content-Length` body) off `stream`; None
/// when the peer closed the connection first or nothing came before
/// `deadline` (never, when `None`).
async fn read_message(
    stream: &mut TcpStream,
    deadline: Option<Instant>,
) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = header(&head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                return Some((head, body));
            }
        }
        let read = match deadline {
            Some(deadline) => {
                let left = deadline.checked_duration_since(Instant::now())?;
                tokio::time::timeout(left, stream.read(&mut chunk))
                    .await
                    .ok()?
            }
            None => stream.read(&mut chunk).await,
        };
        match read {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads one response; None when the server closed the connection first or
/// nothing came within `wait`.
pub async fn read_reply(stream: &mut TcpStream, wait: Duration) -> Option<RawReply> {
    let (head, body) = read_message(stream, Some(Instant::now() + wait)).await?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(RawReply { status, head, body })
}

/// A complete request on a fresh connection (`Connection: close`), with a
/// bearer token and a SCIM JSON body; its reply, read within 10 s.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> RawReply {
    let wait = Duration::from_secs(10);
    try_request(addr, method, path, token, body, wait)
        .await
        .unwrap_or_else(|| panic!("no reply to {method} {path} from {addr} within {wait:?}"))
}

/// [`request`], None when the connection fails or no reply comes within `wait`.
pub async fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
    wait: Duration,
) -> Option<RawReply> {
    let mut c = tokio::time::timeout(wait, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).await.ok()?;
    read_reply(&mut c, wait).await
}

/// Reads one request (head and body, as sent); None when the peer closed.
pub async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let (head, body) = read_message(stream, None).await?;
    Some(format!("{head}\r\n\r\n{body}"))
}

/// One request a [`Receiver`] answered: its `Roster-Event-Id` and the raw
/// request as sent.
pub type Delivery = (String, String);

/// A webhook receiver on loopback: answers each request 200 after `delay`
/// and records it once answered (the sender may count it delivered).
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`
    pub url: String,
    /// Where it listens, for tests that speak to it directly.
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub async fn start(delay: Duration) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("no loopback port for the receiver: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the receiver's address: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    while let Some(raw) = read_request(&mut conn).await {
                        tokio::time::sleep(delay).await;
                        let id = header(&raw, "roster-event-id").unwrap_or_default();
                        if conn
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                        if let Ok(mut seen) = record.lock() {
                            seen.push((id, raw));
                        }
                    }
                });
            }
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            addr,
            seen,
        }
    }

    /// The event ids delivered so far, in order.
    pub fn ids(&self) -> Vec<String> {
        self.deliveries().into_iter().map(|(id, _)| id).collect()
    }

    /// The deliveries so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        match self.seen.lock() {
            Ok(seen) => seen.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Waits until `n` or more deliveries came, for at most `within`, and
    /// returns them; panics with how many came when time runs out.
    pub async fn at_least(&self, n: usize, within: Duration) -> Vec<Delivery> {
        crate::poll::until(
            &format!("{n} webhook deliveries"),
            within,
            Duration::from_millis(20),
            || async {
                let seen = self.count();
                if seen >= n {
                    Ok(())
                } else {
                    Err(format!("{seen} delivered"))
                }
            },
        )
        .await;
        self.deliveries()
    }

    /// How many deliveries came, without copying them.
    fn count(&self) -> usize {
        match self.seen.lock() {
            Ok(seen) => seen.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that answers each connection with `reply` and closes it.
    async fn answering(reply: &'static [u8]) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move {
            while let Ok((mut c, _)) = listener.accept().await {
                let _ = read_request(&mut c).await;
                let _ = c.write_all(reply).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_reply_is_read_with_its_status_headers_and_body() {
        let addr = answering(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/scim+json\r\nContent-Length: 11\r\n\r\n{\"id\": \"1\"}",
        )
        .await;
        let r = request(addr, "POST", "/Users", "t", Some(&serde_json::json!({}))).await;
        assert_eq!(r.status, 201);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/scim+json")
        );
        assert_eq!(r.json()["id"], "1");
    }

    #[tokio::test]
    async fn a_receiver_waits_for_deliveries_and_says_how_many_came() {
        let receiver = Receiver::start(Duration::ZERO).await;
        let addr = receiver.addr;
        for _ in 0..2 {
            let r = request(addr, "POST", "/hook", "t", Some(&serde_json::json!({}))).await;
            assert_eq!(r.status, 200);
        }
        assert_eq!(receiver.at_least(2, Duration::from_secs(5)).await.len(), 2);
        let short = tokio::spawn(async move {
            receiver.at_least(3, Duration::from_millis(100)).await;
        })
        .await
        .expect_err("a third delivery never came");
        let message = short.into_panic();
        let message = message
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        assert!(
            message.contains("3 webhook deliveries") && message.contains("2 delivered"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_connection_closed_before_a_whole_reply_is_none() {
        let addr = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").await;
        let r = try_request(addr, "GET", "/", "t", None, Duration::from_secs(5)).await;
        assert!(r.is_none(), "{r:?}");
    }

    #[tokio::test]
    async fn the_receiver_records_each_delivery_once_answered() {
        let receiver = Receiver::start(Duration::ZERO).await;
        let addr = receiver.addr;
        let mut c = TcpStream::connect(addr).await.expect("a connection");
        for id in ["evt_1", "evt_2"] {
            let req = format!(
                "POST /hook HTTP/1.1\r\nRoster-Event-Id: {id}\r\nContent-Length: 2\r\n\r\n{{}}"
            );
            c.write_all(req.as_bytes()).await.expect("sent");
            let r = read_reply(&mut c, Duration::from_secs(5)).await;
            assert_eq!(r.map(|r| r.status), Some(200));
        }
        assert_eq!(receiver.ids(), ["evt_1", "evt_2"]);
        assert!(receiver.deliveries()[1].1.ends_with("\r\n\r\n{}"));
    }
}
