//! One dispatcher's work on one endpoint it has leased: it reads the events
//! past the cursor into [`Lanes`], sends what they allow (up to the
//! endpoint's in-flight limit, one event or one batch per request), retries
//! failures per resource, and saves progress (renewing the lease) as it
//! goes, until the endpoint has nothing left, the lease is lost, or Roster
//! stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::RngExt;
use roster_store::events::Event;
use roster_store::webhooks::{Delivery, DeliveryStatus, Leased, Progress, WebhookFormat};
use roster_store::{Directory, DirectoryStore, EventLog, StoreError, WebhookStore, now_ms};
use tokio::sync::{Semaphore, watch};

use super::order::Lanes;
use super::request;
use crate::config::ServerConfig;

/// Most events held past the cursor; more are read once half have gone.
const WINDOW: usize = 4096;
/// How often progress is saved while deliveries go out.
const SAVE_EVERY_MS: i64 = 200;
/// Progress is saved at once when this many attempts wait to be recorded.
const SAVE_DELIVERIES: usize = 2_000;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER_MS: i64 = 3_600_000;

/// What every endpoint's session shares.
pub struct Shared<S: ?Sized> {
    pub store: Arc<S>,
    pub client: reqwest::Client,
    pub owner: String,
    pub cfg: Arc<ServerConfig>,
    /// `webhook_concurrency`: requests in flight over all endpoints. Waiters
    /// are served in turn, so an endpoint whose requests hang holds at most
    /// its own in-flight limit and the others keep going.
    pub permits: Arc<Semaphore>,
    pub stopping: watch::Receiver<bool>,
}

impl<S: ?Sized> Shared<S> {
    /// Lease length (`webhook_lease_secs`): renewed with each save; after a
    /// crash the endpoint waits this long before another dispatcher takes it.
    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.cfg.webhook_lease_secs.max(1))
            .unwrap_or(i64::MAX / 2_000)
            .saturating_mul(1000)
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
}

/// Where and how an endpoint's requests go.
#[derive(Clone)]
struct Target {
    url: String,
    secret: String,
    format: WebhookFormat,
}

/// The events' directories as they are now (a WorkOS event carries its
/// directory's organization); a deleted directory is left out.
async fn directories_of<S: DirectoryStore + ?Sized>(
    store: &S,
    events: &[&Event],
) -> Result<HashMap<String, Directory>, StoreError> {
    let mut out = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for e in events {
        if seen.insert(e.directory_id.as_str())
            && let Some(d) = store.get_directory(&e.directory_id).await?
        {
            out.insert(d.id.clone(), d);
        }
    }
    Ok(out)
}

/// What came back from one request.
struct Answer {
    seqs: Vec<i64>,
    attempt: i64,
    status: DeliveryStatus,
    response_code: Option<u16>,
    error: Option<String>,
    latency_ms: i64,
    /// A 429's `Retry-After`, in milliseconds.
    retry_after_ms: Option<i64>,
    /// See [`excerpt`].
    excerpt: Option<String>,
}

/// How much of a receiver's answer is kept for the delivery log.
const EXCERPT_BYTES: usize = 512;

/// The start of a receiver's answer for the operator: at most
/// [`EXCERPT_BYTES`], read within the attempt's time, control characters
/// dropped, and anything of ours that a receiver might echo (the secret,
/// the signatures sent) replaced, so the log never holds a secret.
async fn excerpt(mut resp: reqwest::Response, secrets: &[String]) -> Option<String> {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < EXCERPT_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(EXCERPT_BYTES);
    let mut text: String = String::from_utf8_lossy(&buf)
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        text = text.replace(s.as_str(), "[redacted]");
    }
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Sends one request, under a permit of the process-wide limit.
async fn send<S: DirectoryStore + ?Sized>(
    sh: &Shared<S>,
    target: &Target,
    events: &[&Event],
    batch: bool,
    attempt: i64,
) -> Answer {
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let directories = match target.format {
        WebhookFormat::Roster => HashMap::new(),
        WebhookFormat::Workos => match directories_of(sh.store.as_ref(), events).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(url = %target.url, error = %e.chain(), "cannot read the directories of webhook events");
                return Answer {
                    seqs,
                    attempt,
                    status: DeliveryStatus::Retrying,
                    response_code: None,
                    error: Some("cannot read the events' directories".to_owned()),
                    latency_ms: 0,
                    retry_after_ms: None,
                    excerpt: None,
                };
            }
        },
    };
    let out = request::build(
        target.format,
        &target.secret,
        events,
        &directories,
        batch,
        attempt,
        now_ms(),
    );
    let url = target.url.as_str();
    let _permit = sh.permits.clone().acquire_owned().await;
    let started = Instant::now();
    let mut req = sh.client.post(url);
    let mut secrets = vec![target.secret.clone()];
    for (name, value) in out.headers {
        if name.to_ascii_lowercase().contains("signature") {
            secrets.push(value.clone());
            // Each `v1=…` part alone, as a receiver may echo just that.
            secrets.extend(
                value
                    .split(',')
                    .filter_map(|p| p.trim().strip_prefix("v1="))
                    .map(str::to_owned),
            );
        }
        req = req.header(name, value);
    }
    let result = req.body(out.body).send().await;
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status, response_code, error, retry_after_ms, excerpt) = match result {
        Ok(resp) => {
            let code = resp.status().as_u16();
            if resp.status().is_success() {
                let text = excerpt(resp, &secrets).await;
                (DeliveryStatus::Succeeded, Some(code), None, None, text)
            } else {
                let retry_after = (code == 429)
                    .then(|| retry_after_ms(resp.headers()))
                    .flatten();
                let text = excerpt(resp, &secrets).await;
                (
                    DeliveryStatus::Retrying,
                    Some(code),
                    Some(format!("HTTP {code}")),
                    retry_after,
                    text,
                )
            }
        }
        Err(e) => {
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            (
                DeliveryStatus::Retrying,
                None,
                Some(why.to_owned()),
                None,
                None,
            )
        }
    };
    Answer {
        seqs,
        attempt,
        status,
        response_code,
        error,
        latency_ms,
        retry_after_ms,
        excerpt,
    }
}

/// `Retry-After` in seconds (the form rate limiters send); an HTTP date
/// is read as well.
fn retry_after_ms(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let ms = match v.parse::<i64>() {
        Ok(secs) => secs.saturating_mul(1000),
        Err(_) => {
            let format = time::format_description::well_known::Rfc2822;
            let at = time::OffsetDateTime::parse(v, &format).ok()?;
            i64::try_from((at - time::OffsetDateTime::now_utc()).whole_milliseconds()).ok()?
        }
    };
    Some(ms.clamp(0, MAX_RETRY_AFTER_MS))
}

/// The state of one endpoint's session.
struct Session<'a, S: ?Sized> {
    sh: &'a Shared<S>,
    leased: Leased,
    lanes: Lanes,
    /// Attempts not yet recorded.
    log: Vec<Delivery>,
    state: String,
    enabled: bool,
    /// How far the store knows events may have been sent.
    sent_through: i64,
    last_save: i64,
    /// The lease is gone: another dispatcher has the endpoint.
    lost: bool,
    /// No request goes out before this (a 429's `Retry-After`).
    paused_until: i64,
}

/// Delivers to one leased endpoint until it has nothing left to send, the
/// lease is lost, or Roster stops; then saves. True when the lease is still
/// this dispatcher's, for the caller to give up.
pub async fn run<S>(sh: Arc<Shared<S>>, leased: Leased) -> bool
where
    S: WebhookStore + EventLog + DirectoryStore + ?Sized,
{
    let ep = &leased.endpoint;
    let mut s = Session {
        sh: sh.as_ref(),
        lanes: Lanes::new(ep.cursor),
        log: Vec::new(),
        state: ep.state.clone(),
        enabled: true,
        sent_through: ep.sent_through,
        last_save: now_ms(),
        lost: false,
        paused_until: 0,
        leased: leased.clone(),
    };
    s.redeliver().await;
    s.deliver().await;
    if s.lost {
        return false;
    }
    s.save(true).await
}

impl<S> Session<'_, S>
where
    S: WebhookStore + EventLog + DirectoryStore + ?Sized,
{
    fn target(&self) -> Target {
        Target {
            url: self.leased.endpoint.url.clone(),
            secret: self.leased.secret.clone(),
            format: self.leased.endpoint.format,
        }
    }

    fn batch(&self) -> usize {
        usize::try_from(self.leased.endpoint.options.batch_max_events)
            .unwrap_or(1)
            .max(1)
    }

    fn batched(&self) -> bool {
        self.batch() > 1
    }

    fn max_in_flight(&self) -> usize {
        self.leased
            .endpoint
            .options
            .max_in_flight
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(self.sh.cfg.webhook_max_in_flight)
            .max(1)
    }

    /// Events an operator asked to send again, one by one, ahead of the
    /// rest; as repeats (attempt 2), since the receiver may have them.
    async fn redeliver(&mut self) {
        for seq in self.leased.redeliveries.clone() {
            if self.sh.is_stopping() {
                break;
            }
            if let Ok(Some(event)) = self.sh.store.event(seq).await {
                let a = send(self.sh, &self.target(), &[&event], self.batched(), 2).await;
                self.record(&a, a.status, seq, true);
            }
        }
    }

    /// Records one event's part in an answer.
    fn record(&mut self, a: &Answer, status: DeliveryStatus, seq: i64, redelivery: bool) {
        crate::metrics::webhook_delivery(a.response_code, a.error.as_deref());
        self.log.push(Delivery {
            event_seq: seq,
            attempt: a.attempt,
            status,
            response_code: a.response_code,
            latency_ms: a.latency_ms,
            error: a.error.clone(),
            response_excerpt: a.excerpt.clone(),
            redelivery,
        });
    }

    /// Reads the next events into the lanes, saving first how far they go,
    /// so that after a crash they are sent again as repeats. False when
    /// there was nothing new.
    async fn read(&mut self) -> bool {
        let ep = &self.leased.endpoint;
        let room = WINDOW.saturating_sub(self.lanes.len()) as u64;
        let events = match self
            .sh
            .store
            .list_events(
                self.lanes.read_through(),
                room,
                &ep.event_types,
                ep.directory_id.as_ref().map(std::slice::from_ref),
            )
            .await
        {
            Ok(events) => events,
            Err(StoreError::CursorExpired { floor }) => {
                // Re-enabled after retention removed what it missed: resume after the gap.
                tracing::warn!(endpoint = %ep.id, "webhook endpoint missed events removed by retention");
                self.lanes.read_to(floor);
                return true;
            }
            Err(e) => {
                tracing::warn!(endpoint = %ep.id, error = %e.chain(), "cannot read events for a webhook");
                return false;
            }
        };
        let Some(last) = events.last().map(|e| e.seq) else {
            // Nothing up to the head matches this endpoint's subscription.
            self.lanes.read_to(self.leased.head);
            return false;
        };
        let resent_through = self.sent_through;
        if last > self.sent_through {
            let before = self.sent_through;
            self.sent_through = last;
            if !self.save(false).await {
                self.sent_through = before;
                return false;
            }
        }
        for e in events {
            // Possibly sent before a crash: a repeat, and marked as one.
            let tried = i64::from(e.seq <= resent_through);
            self.lanes.push(e, tried);
        }
        true
    }

    /// Saves progress and renews the lease; false when it could not.
    async fn save(&mut self, last: bool) -> bool {
        if self.lost {
            return false;
        }
        let (attempts, first_failure) = self.lanes.summary();
        let p = Progress {
            cursor: self.lanes.cursor(),
            sent_through: self.sent_through,
            attempts,
            first_failure,
            // Leaving with retries pending: no dispatcher takes the endpoint up before they are due.
            retry_at: if last {
                self.lanes.next_retry().unwrap_or(0).max(self.paused_until)
            } else {
                0
            },
            state: self.state.clone(),
            enabled: self.enabled,
            deliveries: std::mem::take(&mut self.log),
        };
        self.last_save = now_ms();
        let id = &self.leased.endpoint.id;
        match self
            .sh
            .store
            .webhook_progress(id, &self.sh.owner, self.sh.lease_ms(), p)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(endpoint = %id, "lost the webhook lease; another dispatcher took over");
                self.lost = true;
                false
            }
            Err(e) => {
                tracing::warn!(endpoint = %id, error = %e.chain(), "cannot save webhook progress; events will be re-sent");
                false
            }
        }
    }

    /// Takes in one answer.
    fn answered(&mut self, a: Answer) {
        let now = now_ms();
        if a.status == DeliveryStatus::Succeeded {
            for &seq in &a.seqs {
                self.record(&a, DeliveryStatus::Succeeded, seq, false);
                self.lanes.done(seq);
            }
            self.state = "healthy".into();
            return;
        }
        if a.response_code == Some(410) {
            // The receiver says the endpoint is gone for good.
            for &seq in &a.seqs {
                self.record(&a, DeliveryStatus::Retrying, seq, false);
            }
            if self.enabled {
                // The id, not the URL: receivers often put a secret in their URL.
                tracing::warn!(endpoint = %self.leased.endpoint.id, "webhook receiver answered 410 Gone: endpoint disabled");
            }
            self.enabled = false;
            self.state = "disabled".into();
            return;
        }
        let at = match a.retry_after_ms {
            Some(ms) => {
                // A rate limit is the receiver's, not one event's: the whole endpoint waits.
                self.paused_until = self.paused_until.max(now + ms);
                now + ms
            }
            None => {
                let tries = a
                    .seqs
                    .iter()
                    .filter_map(|s| self.lanes.get(*s))
                    .map(|i| i.attempts)
                    .max()
                    .unwrap_or(1);
                now + self.sh.backoff_ms(tries)
            }
        };
        let window = self.sh.cfg.webhook_retry_window_secs.saturating_mul(1000);
        for &seq in &a.seqs {
            if self.lanes.fail(seq, now, at, window) {
                tracing::warn!(endpoint = %self.leased.endpoint.id, event = %roster_store::events::event_id(seq), "webhook retries exhausted: event given up, endpoint marked failing");
                self.state = "failing".into();
                self.record(&a, DeliveryStatus::Failed, seq, false);
            } else {
                self.record(&a, DeliveryStatus::Retrying, seq, false);
            }
        }
    }

    /// The delivery loop.
    async fn deliver(&mut self) {
        let sh = self.sh;
        let mut stopping = sh.stopping.clone();
        let mut stop_seen = sh.is_stopping();
        let poll = i64::try_from(sh.cfg.webhook_poll_ms.max(1)).unwrap_or(i64::MAX);
        let renew = (sh.lease_ms() / 3).max(1);
        let wait_ms = i64::from(self.leased.endpoint.options.batch_max_wait_ms);
        let target = self.target();
        let batched = self.batched();
        let mut flying = FuturesUnordered::new();
        let mut caught_up = false;
        let mut next_read = 0i64;
        let mut batch_open: Option<i64> = None;
        loop {
            let mut now = now_ms();
            let active = !stop_seen && self.enabled && !self.lost;
            if active && self.lanes.len() <= WINDOW / 2 && now >= next_read {
                let got = self.read().await;
                caught_up = !got;
                next_read = if got { 0 } else { now + poll };
                now = now_ms();
            }
            if active {
                while flying.len() < self.max_in_flight() && now >= self.paused_until {
                    let ready = self.lanes.ready_count(now);
                    if ready == 0 {
                        break;
                    }
                    if batched && ready < self.batch() {
                        // Wait for the batch to fill, up to batch_max_wait_ms.
                        let opened = *batch_open.get_or_insert(now);
                        if now < opened + wait_ms && self.lanes.len() < WINDOW {
                            break;
                        }
                    }
                    batch_open = None;
                    let take = if batched { self.batch() } else { 1 };
                    let seqs = self.lanes.take(now, take);
                    let attempt = seqs
                        .iter()
                        .map(|s| self.lanes.attempted(*s))
                        .max()
                        .unwrap_or(1);
                    let events: Vec<Event> = seqs
                        .iter()
                        .filter_map(|s| self.lanes.get(*s))
                        .map(|i| i.event.clone())
                        .collect();
                    let target = target.clone();
                    flying.push(async move {
                        let refs: Vec<&Event> = events.iter().collect();
                        send(sh, &target, &refs, batched, attempt).await
                    });
                }
            }
            if flying.is_empty() && (!active || (self.lanes.is_empty() && caught_up)) {
                return;
            }
            let dirty = !self.log.is_empty();
            if (dirty
                && (now - self.last_save >= SAVE_EVERY_MS || self.log.len() >= SAVE_DELIVERIES))
                || now - self.last_save >= renew
            {
                self.save(false).await;
                continue;
            }
            // Sleep until the next thing to do, or an answer, or a stop.
            let mut wake = self.last_save + if dirty { SAVE_EVERY_MS } else { renew };
            if active {
                if self.lanes.len() <= WINDOW / 2 {
                    wake = wake.min(next_read);
                }
                // With every slot taken, only an answer frees one.
                if flying.len() < self.max_in_flight() {
                    if let Some(at) = self.lanes.next_retry() {
                        wake = wake.min(at.max(self.paused_until));
                    }
                    if let Some(opened) = batch_open {
                        wake = wake.min(opened + wait_ms);
                    }
                }
                if self.paused_until > now {
                    wake = wake.min(self.paused_until);
                }
            }
            let nap = Duration::from_millis(u64::try_from((wake - now).max(1)).unwrap_or(1));
            tokio::select! {
                Some(a) = flying.next(), if !flying.is_empty() => self.answered(a),
                _ = tokio::time::sleep(nap) => {}
                _ = stopping.changed(), if !stop_seen => stop_seen = true,
            }
            stop_seen = stop_seen || sh.is_stopping();
        }
    }
}
