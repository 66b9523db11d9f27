//! The webhook dispatcher inside `roster serve`.
//!
//! Delivery is at-least-once from the event log: each endpoint has a cursor
//! in the store, and a lease makes exactly one dispatcher (of however many
//! Roster processes) deliver to an endpoint at a time. Events go out in order,
//! one at a time per endpoint; a failure is retried with exponential backoff
//! and jitter, blocking that endpoint's later events so order holds, until the
//! retry window passes and the endpoint is marked failing and moves on. A
//! receiver answering 410 Gone disables its endpoint. The cursor only moves
//! after a delivery succeeded, so a crash re-sends, never loses.

pub mod format;
mod js_json;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngExt;
use roster_store::events::Event;
use roster_store::webhooks::WebhookFormat;
use roster_store::webhooks::{Delivery, DeliveryStatus, Leased, Progress};
use roster_store::{DirectoryStore, EventLog, WebhookStore, now_ms};
use tokio::sync::watch;

use crate::config::ServerConfig;

/// Events delivered per lease before the state is saved.
const BATCH: u64 = 100;

/// Reads the event log and keeps the endpoints' delivery state: the two
/// roles of the store it needs, and all it is given.
pub struct Dispatcher<S: ?Sized> {
    store: Arc<S>,
    client: reqwest::Client,
    owner: String,
    cfg: Arc<ServerConfig>,
    /// Turns true on shutdown: a batch in progress stops after the attempt
    /// under way, saves its progress and releases its lease, so another
    /// Roster takes the endpoint over at once instead of after the lease.
    stopping: watch::Receiver<bool>,
}

/// Starts the dispatcher; it stops when `shutdown` turns true, after saving
/// its state. It beats `liveness` each time its loop goes round, for
/// `/health/ready`.
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
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhooks disabled: cannot build the HTTP client");
                return;
            }
        };
        let d = Dispatcher {
            store,
            client,
            owner: uuid::Uuid::now_v7().to_string(),
            cfg,
            stopping: shutdown.clone(),
        };
        // Behind the head (a batch went out whole), deliver again at once:
        // the poll interval is for waiting on new events, not a pause
        // between batches of a backlog (it capped one endpoint at
        // BATCH / poll interval, 400 events/s).
        let mut backlog = false;
        loop {
            liveness.webhooks_beat();
            if !backlog {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(Duration::from_millis(d.cfg.webhook_poll_ms)) => {}
                }
            }
            if *shutdown.borrow() {
                break;
            }
            backlog = d.tick().await;
        }
    })
}

impl<S: WebhookStore + EventLog + DirectoryStore + ?Sized> Dispatcher<S> {
    /// Lease length (`webhook_lease_secs`): renewed on progress; after a crash
    /// the endpoint waits this long before another dispatcher takes it.
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.cfg.webhook_lease_secs.max(1))
            .unwrap_or(i64::MAX / 2_000)
            .saturating_mul(1000)
    }

    /// One round over the endpoints that have work; true when one of them
    /// delivered a whole batch and so may have more waiting.
    async fn tick(&self) -> bool {
        let leased = match self
            .store
            .claim_webhooks(
                &self.owner,
                self.lease_ms(),
                self.cfg.webhook_concurrency.max(1),
            )
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e.chain(), "webhook dispatcher cannot claim endpoints");
                return false;
            }
        };
        if !leased.is_empty() {
            tracing::debug!(
                endpoints = leased.len(),
                "webhook dispatcher leased endpoints"
            );
        }
        // Endpoints are independent: deliver to the leased ones concurrently.
        futures_util::future::join_all(leased.into_iter().map(|l| self.deliver(l)))
            .await
            .into_iter()
            .any(|more| more)
    }

    /// Delivers a batch to one leased endpoint; true when the whole batch
    /// went out and was saved, so more events may be waiting.
    async fn deliver(&self, leased: Leased) -> bool {
        let ep = &leased.endpoint;
        let mut p = Progress {
            cursor: ep.cursor,
            attempts: ep.attempts,
            first_failure: ep.first_failure,
            retry_at: 0,
            state: ep.state.clone(),
            enabled: true,
            deliveries: Vec::new(),
        };
        for seq in &leased.redeliveries {
            if self.is_stopping() {
                break;
            }
            if let Ok(Some(event)) = self.store.event(*seq).await {
                let mut d = self.attempt(&leased, &event, 1).await;
                d.redelivery = true;
                p.deliveries.push(d);
            }
        }
        let events = match self
            .store
            .list_events(
                ep.cursor,
                BATCH,
                &ep.event_types,
                ep.directory_id.as_deref(),
            )
            .await
        {
            Ok(events) if events.is_empty() => {
                // Nothing up to the head matches this endpoint's subscription.
                p.cursor = p.cursor.max(leased.head);
                events
            }
            Ok(events) => events,
            Err(roster_store::StoreError::CursorExpired { floor }) => {
                // Re-enabled after retention removed what it missed: resume after the gap.
                tracing::warn!(endpoint = %ep.id, "webhook endpoint missed events removed by retention");
                p.cursor = p.cursor.max(floor);
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(endpoint = %ep.id, error = %e.chain(), "cannot read events for a webhook");
                Vec::new()
            }
        };
        let mut delivered = 0u64;
        for event in &events {
            if self.is_stopping() {
                break;
            }
            let d = self.attempt(&leased, event, p.attempts + 1).await;
            let status = d.status;
            let code = d.response_code;
            p.deliveries.push(d);
            if status == DeliveryStatus::Succeeded {
                p.cursor = event.seq;
                p.attempts = 0;
                p.first_failure = None;
                p.state = "healthy".into();
                delivered += 1;
                continue;
            }
            if code == Some(410) {
                // The receiver says the endpoint is gone for good.
                p.enabled = false;
                p.state = "disabled".into();
                // The id, not the URL: receivers often put a secret in their URL.
                tracing::warn!(endpoint = %ep.id, "webhook receiver answered 410 Gone: endpoint disabled");
                break;
            }
            let now = now_ms();
            p.attempts += 1;
            let first = *p.first_failure.get_or_insert(now);
            if now - first >= self.cfg.webhook_retry_window_secs.saturating_mul(1000) {
                if let Some(last) = p.deliveries.last_mut() {
                    last.status = DeliveryStatus::Failed;
                }
                tracing::warn!(endpoint = %ep.id, event = %event.id(), "webhook retries exhausted: endpoint marked failing");
                p.cursor = event.seq;
                p.attempts = 0;
                p.first_failure = None;
                p.state = "failing".into();
                continue;
            }
            p.retry_at = now + self.backoff_ms(p.attempts);
            break;
        }
        let saved = match self
            .store
            .webhook_progress(&ep.id, &self.owner, self.lease_ms(), p)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(endpoint = %ep.id, "lost the webhook lease; another dispatcher took over");
                false
            }
            Err(e) => {
                tracing::warn!(endpoint = %ep.id, error = %e.chain(), "cannot save webhook progress; events will be re-sent");
                false
            }
        };
        let _ = self.store.release_webhook(&ep.id, &self.owner).await;
        saved && delivered == BATCH
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Exponential backoff with full jitter in the upper half, capped.
    fn backoff_ms(&self, attempts: i64) -> i64 {
        let base = self.cfg.webhook_backoff_base_ms.max(1);
        let exp = base.saturating_mul(1u64 << attempts.clamp(1, 30).saturating_sub(1));
        let capped = exp
            .min(self.cfg.webhook_backoff_max_secs.saturating_mul(1000))
            .max(1);
        let jittered = capped / 2 + rand::rng().random_range(0..=capped / 2);
        i64::try_from(jittered).unwrap_or(i64::MAX)
    }

    async fn attempt(&self, leased: &Leased, event: &Event, attempt: i64) -> Delivery {
        let fmt = leased.endpoint.format;
        // A WorkOS event carries its directory's organization and type.
        let directory = match fmt {
            WebhookFormat::Roster => None,
            WebhookFormat::Workos => match self.store.get_directory(&event.directory_id).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(endpoint = %leased.endpoint.id, error = %e.chain(), "cannot read an event's directory for a webhook");
                    return Delivery {
                        event_seq: event.seq,
                        attempt,
                        status: DeliveryStatus::Retrying,
                        response_code: None,
                        latency_ms: 0,
                        error: Some("cannot read the event's directory".to_owned()),
                        redelivery: false,
                    };
                }
            },
        };
        let body = format::payload(fmt, event, directory.as_ref());
        let request = format::request(fmt, &leased.secret, &body, now_ms());
        let started = Instant::now();
        let mut post = self.client.post(&leased.endpoint.url);
        for (name, value) in request.headers {
            post = post.header(name, value);
        }
        let result = post
            .header("roster-event-id", event.id())
            .header("roster-delivery-attempt", attempt.to_string())
            .body(request.body)
            .send()
            .await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status, response_code, error) = match result {
            Ok(resp) => {
                let code = resp.status().as_u16();
                if resp.status().is_success() {
                    (DeliveryStatus::Succeeded, Some(code), None)
                } else {
                    (
                        DeliveryStatus::Retrying,
                        Some(code),
                        Some(format!("HTTP {code}")),
                    )
                }
            }
            Err(e) => {
                let why = if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "connection failed".to_owned()
                } else {
                    "request failed".to_owned()
                };
                (DeliveryStatus::Retrying, None, Some(why))
            }
        };
        Delivery {
            event_seq: event.seq,
            attempt,
            status,
            response_code,
            latency_ms,
            error,
            redelivery: false,
        }
    }
}
