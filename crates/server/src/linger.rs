//! Closing a connection without losing the answer.
//!
//! When Roster answers before reading a whole request body (413 over a size
//! limit, 401 without a valid token), hyper stops reading and closes the
//! connection. A client that writes its whole body before reading (Python's
//! `http.client` and `requests`, Java's `HttpURLConnection`) would then get
//! a reset instead of the answer: data arriving at a closed socket makes the
//! kernel send RST, which discards the answer still unread on the client's
//! side. So the close is a lingering one: the write side is shut (the client
//! sees the answer end), then whatever the client still sends is read and
//! discarded until it closes, `close_drain_max_bytes` were read, or
//! `close_drain_secs` passed, and only then is the socket closed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long and how much a closing connection is drained.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub max_bytes: u64,
    pub max_time: Duration,
}

enum State {
    Open,
    Draining {
        read: u64,
        deadline: Pin<Box<Sleep>>,
    },
    Closed,
}

/// A connection whose shutdown drains what the peer still sends.
pub struct Lingering<IO> {
    io: IO,
    drain: Drain,
    state: State,
}

impl<IO> Lingering<IO> {
    pub fn new(io: IO, drain: Drain) -> Self {
        Lingering {
            io,
            drain,
            state: State::Open,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Lingering<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Open => {
                    let shut = ready!(Pin::new(&mut this.io).poll_shutdown(cx));
                    if shut.is_err() || this.drain.max_bytes == 0 {
                        this.state = State::Closed;
                        return Poll::Ready(shut);
                    }
                    this.state = State::Draining {
                        read: 0,
                        deadline: Box::pin(tokio::time::sleep(this.drain.max_time)),
                    };
                }
                State::Draining { read, deadline } => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.state = State::Closed;
                        continue;
                    }
                    let mut chunk = [0u8; 16 * 1024];
                    let mut buf = ReadBuf::new(&mut chunk);
                    match ready!(Pin::new(&mut this.io).poll_read(cx, &mut buf)) {
                        // The peer closed, or the connection broke: done.
                        Ok(()) if buf.filled().is_empty() => this.state = State::Closed,
                        Err(_) => this.state = State::Closed,
                        Ok(()) => {
                            *read = read.saturating_add(buf.filled().len() as u64);
                            if *read >= this.drain.max_bytes {
                                this.state = State::Closed;
                            }
                        }
                    }
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn drain(max_bytes: u64, secs: u64) -> Drain {
        Drain {
            max_bytes,
            max_time: Duration::from_secs(secs),
        }
    }

    #[tokio::test]
    async fn shutdown_reads_what_the_peer_still_sends_until_it_closes() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut server = Lingering::new(server, drain(1 << 20, 10));
        let writer = tokio::spawn(async move {
            client.write_all(&[7u8; 100_000]).await.unwrap();
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            rest
        });
        server.write_all(b"answer").await.unwrap();
        server.shutdown().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"answer");
    }

    #[tokio::test]
    async fn draining_stops_at_the_byte_bound() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut server = Lingering::new(server, drain(4096, 10));
        let writer = tokio::spawn(async move {
            // Never closes: only the bound ends the drain.
            let _ = client.write_all(&[7u8; 1_000_000]).await;
            client
        });
        tokio::time::timeout(Duration::from_secs(5), server.shutdown())
            .await
            .unwrap()
            .unwrap();
        drop(server);
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn draining_stops_at_the_time_bound() {
        // A peer that neither sends nor closes.
        let (server, _client) = tokio::io::duplex(1024);
        let mut server = Lingering::new(server, drain(1 << 20, 1));
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(20), server.shutdown())
            .await
            .unwrap()
            .unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
    }
}
