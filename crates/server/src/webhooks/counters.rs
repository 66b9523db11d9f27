//! Counts of webhook deliveries by result, for this process: every attempt
//! at an event is counted here and nowhere else.

use std::sync::atomic::{AtomicU64, Ordering};

use roster_store::webhooks::DeliveryStatus;

/// Events by the result of an attempt at delivering them.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    succeeded: AtomicU64,
    /// Failed attempts that will be retried.
    retrying: AtomicU64,
    /// Events given up on once their retry window passed.
    failed: AtomicU64,
    /// Failed attempts the receiver answered 429 (counted in `retrying` too).
    rate_limited: AtomicU64,
}

/// A reading of [`DeliveryCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub succeeded: u64,
    pub retrying: u64,
    pub failed: u64,
    pub rate_limited: u64,
}

static COUNTERS: DeliveryCounters = DeliveryCounters {
    succeeded: AtomicU64::new(0),
    retrying: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    rate_limited: AtomicU64::new(0),
};

/// This process's counters.
pub fn counters() -> &'static DeliveryCounters {
    &COUNTERS
}

impl DeliveryCounters {
    /// Counts one attempt at one event.
    pub fn record(&self, status: DeliveryStatus, response_code: Option<u16>) {
        let c = match status {
            DeliveryStatus::Succeeded => &self.succeeded,
            DeliveryStatus::Retrying => &self.retrying,
            DeliveryStatus::Failed => &self.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
        if response_code == Some(429) {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn read(&self) -> Counts {
        Counts {
            succeeded: self.succeeded.load(Ordering::Relaxed),
            retrying: self.retrying.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
        }
    }
}
