//! Event retention: prunes old events now and then.

use std::sync::Arc;
use std::time::Duration;

use roster_store::{EventLog, now_ms};
use tokio::sync::watch;

const EVERY: Duration = Duration::from_secs(3600);

pub fn spawn(
    store: Arc<dyn EventLog>,
    retention_days: i64,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let cutoff = now_ms() - retention_days.saturating_mul(86_400_000);
            match store.prune_events(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, retention_days, "pruned old events"),
                Err(e) => tracing::warn!(error = %e.chain(), "cannot prune old events"),
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    })
}
