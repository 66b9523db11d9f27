//! The webhook dispatcher inside `roster serve`.
//!
//! Delivery is at-least-once from the event log: each endpoint has a cursor
//! in the store, and a lease makes exactly one dispatcher (of however many
//! Roster processes) deliver to an endpoint at a time. Under its lease a
//! dispatcher runs a [`session`] for the endpoint: events about one resource
//! go out in commit order, one at a time; events about different resources
//! go out side by side, up to the endpoint's in-flight limit ([`order`]). A
//! failure is retried with exponential backoff and jitter, holding back only
//! its own resource's later events, until the retry window passes and the
//! event is given up on (the endpoint is marked failing). A receiver
//! answering 410 Gone disables its endpoint; a 429's `Retry-After` pauses
//! it. The cursor only passes an event once it and every earlier one are
//! done, so a crash re-sends, never loses; and the store learns how far
//! events may have been sent before they are, so a re-sent event carries an
//! attempt number above 1.

pub mod format;
mod js_json;
pub mod order;
pub mod request;
mod session;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roster_store::{DirectoryStore, EventLog, WebhookStore};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::ServerConfig;
use session::Shared;

/// Most endpoints leased in one round.
const CLAIM: usize = 256;

/// Starts the dispatcher; it stops when `shutdown` turns true, once every
/// endpoint's session has saved its state and given up its lease. It beats
/// `liveness` each time its loop goes round, for `/health/ready`.
pub fn spawn<S>(
    store: Arc<S>,
    cfg: Arc<ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
    liveness: Arc<crate::health::Liveness>,
) -> tokio::task::JoinHandle<()>
where
    S: WebhookStore + EventLog + DirectoryStore + ?Sized,
{
    crate::install_crypto_provider();
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.webhook_timeout_secs))
            .user_agent(concat!("Roster-Webhooks/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhooks disabled: cannot build the HTTP client");
                return;
            }
        };
        let sh = Arc::new(Shared {
            store,
            client,
            owner: uuid::Uuid::now_v7().to_string(),
            permits: Arc::new(Semaphore::new(cfg.webhook_concurrency.max(1))),
            cfg,
            stopping: shutdown.clone(),
        });
        let running: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut sessions = JoinSet::new();
        loop {
            liveness.webhooks_beat();
            while sessions.try_join_next().is_some() {}
            if *shutdown.borrow() {
                break;
            }
            claim(&sh, &running, &mut sessions).await;
            tokio::select! {
                r = shutdown.changed() => if r.is_err() { break },
                _ = tokio::time::sleep(Duration::from_millis(sh.cfg.webhook_poll_ms)) => {}
                // A session ended: its endpoint may have more already.
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        while sessions.join_next().await.is_some() {}
    })
}

/// Leases the endpoints that have work and starts a session for each.
async fn claim<S>(
    sh: &Arc<Shared<S>>,
    running: &Arc<Mutex<HashSet<String>>>,
    sessions: &mut JoinSet<()>,
) where
    S: WebhookStore + EventLog + DirectoryStore + ?Sized,
{
    let leased = match sh
        .store
        .claim_webhooks(&sh.owner, sh.lease_ms(), CLAIM)
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e.chain(), "webhook dispatcher cannot claim endpoints");
            return;
        }
    };
    for l in leased {
        let id = l.endpoint.id.clone();
        let fresh = running
            .lock()
            .map(|mut r| r.insert(id.clone()))
            .unwrap_or(false);
        if !fresh {
            // Its session is still at work (its lease had run out): it goes on.
            continue;
        }
        tracing::debug!(endpoint = %id, "webhook dispatcher leased an endpoint");
        let (sh, running) = (sh.clone(), running.clone());
        sessions.spawn(async move {
            let held = session::run(sh.clone(), l).await;
            // Forgotten here before the lease is given up: a claim in
            // between finds the lease still held and leaves the endpoint be,
            // a claim after it starts a new session.
            if let Ok(mut r) = running.lock() {
                r.remove(&id);
            }
            if held {
                let _ = sh.store.release_webhook(&id, &sh.owner).await;
            }
        });
    }
}
