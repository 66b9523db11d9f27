//! The provider request log: every SCIM request a directory's provider
//! makes, with what Roster answered, kept so that an operator or the
//! customer's IT admin can see why provisioning fails.
//!
//! Recording stays off the write path: the middleware ([`capture`]) hands
//! each record to a bounded channel and never waits; one writer task takes
//! them in batches, one transaction per batch. When the writer falls
//! behind, records are dropped and counted
//! (`roster_request_log_dropped_total`) rather than slowing requests.
//!
//! Cutting a directory's log to its bound walks that many index entries, so
//! the writer cuts a directory only once it has gained a sixteenth of its
//! bound since the last cut (and every directory at each prune): a log holds
//! at most `request_log_max_per_directory` plus that slice, and a batch of a
//! few requests costs its inserts, not a walk of a thousand entries.

pub mod capture;
pub mod redact;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roster_store::Store;
use roster_store::portal::{RequestLogBounds, RequestRecord};
use tokio::sync::mpsc;

use crate::config::ServerConfig;

/// Records waiting for the writer; more are dropped.
const QUEUE: usize = 8192;
/// Records per transaction at most.
const BATCH: usize = 512;
/// How long the writer gathers a batch after its first record.
const GATHER: Duration = Duration::from_millis(50);
/// How often records past the age bound are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Where requests are recorded: a sender to the writer task.
#[derive(Clone)]
pub struct RequestLog {
    tx: Option<mpsc::Sender<RequestRecord>>,
}

impl RequestLog {
    /// Starts the writer on the current runtime; without a runtime (or
    /// with `request_log_max_per_directory` 0) nothing is recorded.
    pub fn start(store: Arc<dyn Store>, config: &ServerConfig) -> Self {
        let bounds = RequestLogBounds {
            max_per_directory: i64::try_from(config.request_log_max_per_directory)
                .unwrap_or(i64::MAX),
            max_age_ms: i64::try_from(config.request_log_max_age_secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
        };
        if bounds.max_per_directory == 0 || tokio::runtime::Handle::try_current().is_err() {
            return RequestLog { tx: None };
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, bounds, rx));
        RequestLog { tx: Some(tx) }
    }

    /// Queues a record without waiting; counts it when there is no room.
    pub fn push(&self, record: RequestRecord) {
        if let Some(tx) = &self.tx
            && tx.try_send(record).is_err()
        {
            crate::metrics::request_log_dropped();
        }
    }
}

/// Takes records in batches until every sender is gone.
async fn write(
    store: Arc<dyn Store>,
    bounds: RequestLogBounds,
    mut rx: mpsc::Receiver<RequestRecord>,
) {
    let mut last_prune: Option<Instant> = None;
    let slice = (bounds.max_per_directory / 16).max(1);
    let mut since_cut: HashMap<String, i64> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + GATHER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        let prune = last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
        for r in &batch {
            *since_cut.entry(r.directory_id.clone()).or_default() += 1;
        }
        let trim: Vec<String> = if prune {
            since_cut.drain().map(|(d, _)| d).collect()
        } else {
            let full: Vec<String> = since_cut
                .iter()
                .filter(|(_, n)| **n >= slice)
                .map(|(d, _)| d.clone())
                .collect();
            for d in &full {
                since_cut.remove(d);
            }
            full
        };
        if let Err(e) = store.record_requests(batch, trim, bounds).await {
            tracing::warn!(error = %e, "could not write the provider request log");
        }
        if prune {
            last_prune = Some(Instant::now());
            let cutoff = roster_store::now_ms().saturating_sub(bounds.max_age_ms);
            if let Err(e) = store.prune_requests(cutoff).await {
                tracing::warn!(error = %e, "could not prune the provider request log");
            }
        }
    }
}
