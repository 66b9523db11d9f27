//! The accept loop: HTTP/1.1 connections with the timeouts and caps that
//! `axum::serve` does not expose, and a shutdown with a deadline.
//!
//! - `header_read_timeout_secs`: hyper closes a connection that has not sent
//!   a complete request head in time — whether it trickles headers
//!   (slowloris) or sits idle between keep-alive requests.
//! - hyper's read buffer (and so the largest request head it parses) is
//!   capped at a few times `max_url_bytes + max_header_bytes`; heads between
//!   those settings and the cap get SCIM 414/431 answers from
//!   [`crate::limits::frame_limits`], heads past the cap a bare 431 from
//!   hyper, which then closes the connection.
//! - `max_connections`: past it the loop stops accepting, so further clients
//!   wait in the kernel's backlog instead of costing memory here.
//! - A connection closes lingering ([`crate::linger`]): after the answer,
//!   what the client still sends is drained (at most `close_drain_max_bytes`,
//!   `close_drain_secs`), so an early answer (413, 401) is not lost to a reset.
//! - On shutdown the listener closes at once (new connections are refused),
//!   idle connections close, requests in flight get `shutdown_grace_secs` to
//!   finish, and whatever is still open then is closed.
//!
//! Roster speaks HTTP/1.1; terminate TLS and HTTP/2 at the proxy in front.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::ServerConfig;
use crate::linger::{Drain, Lingering};

/// The most hyper buffers for one request head.
pub fn head_buffer_cap(cfg: &ServerConfig) -> usize {
    cfg.max_url_bytes
        .saturating_add(cfg.max_header_bytes)
        .saturating_mul(4)
        .max(16 * 1024)
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    app: Router,
    cfg: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(cfg.header_read_timeout_secs.max(1)))
        .max_buf_size(head_buffer_cap(cfg))
        .keep_alive(true);
    let drain = Drain {
        max_bytes: cfg.close_drain_max_bytes,
        max_time: Duration::from_secs(cfg.close_drain_secs),
    };
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let stream = Lingering::new(stream, drain);
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let watched = graceful.watch(conn);
        tasks.spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    // Closing the listener refuses new connections at once.
    drop(listener);
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                connections = tasks.len(),
                "shutdown_grace_secs passed with requests still in flight; closing their connections"
            );
            tasks.abort_all();
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}
