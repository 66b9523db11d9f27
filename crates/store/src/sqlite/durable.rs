//! Making commits durable off the writer thread.
//!
//! The writer commits with `synchronous = NORMAL` (the WAL frames reach the OS,
//! not the disk) and hands the batch's replies here; this thread syncs the WAL
//! file and only then sends them. While it waits on the disk, the writer runs
//! the next batch, so the fsync overlaps useful work instead of stalling it. An
//! acknowledged write is exactly as durable as with `synchronous = FULL`: its
//! reply leaves after an fsync that began after its COMMIT returned, and the WAL
//! is one sequential file, so that fsync also covers every earlier commit.
//!
//! What readers may see early are commits not yet synced. For events that
//! matters: a webhook or an Events API reader that saw event N, followed by a
//! power loss that took N away, would later be sent a different event under the
//! same number. So events above the [`Horizon`] (those of transactions still
//! waiting for their fsync) stay hidden, through the SQL function
//! `roster_event_horizon()` that `rows::visible_events` calls.
//!
//! If the fsync fails, the state of the file on disk is unknown and retrying
//! cannot tell (the kernel may have dropped the dirty pages): the store stops
//! taking writes and says to restart, which recovers from the WAL on disk.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use crate::error::Source;
use crate::{StoreError, StoreResult};

/// Replies of one committed (or rolled back) batch, with the outcome to give them.
pub(super) type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// The highest event `seq` readers may see, shared by the writer, the syncer
/// and every connection's `roster_event_horizon()`.
#[derive(Clone)]
pub(crate) struct Horizon {
    value: Arc<AtomicI64>,
    /// Batches committed but not yet synced: (generation, events seq before it).
    pending: Arc<Mutex<VecDeque<(u64, i64)>>>,
}

impl Default for Horizon {
    /// Nothing waits for a sync: every event is visible.
    fn default() -> Self {
        Horizon {
            value: Arc::new(AtomicI64::new(i64::MAX)),
            pending: Arc::default(),
        }
    }
}

impl Horizon {
    pub(crate) fn get(&self) -> i64 {
        self.value.load(Ordering::SeqCst)
    }

    /// Called by the writer before it commits batch `generation`, whose
    /// transaction found the events sequence at `base`: its events, and any
    /// committed after it, stay hidden until it is synced.
    fn committing(&self, generation: u64, base: i64) {
        if let Ok(mut p) = self.pending.lock() {
            p.push_back((generation, base));
            self.publish(&p);
        }
    }

    /// Called by the syncer once everything up to `generation` is on disk.
    fn synced(&self, generation: u64) {
        if let Ok(mut p) = self.pending.lock() {
            while p.front().is_some_and(|(g, _)| *g <= generation) {
                p.pop_front();
            }
            self.publish(&p);
        }
    }

    fn publish(&self, pending: &VecDeque<(u64, i64)>) {
        let v = pending.front().map_or(i64::MAX, |(_, base)| *base);
        self.value.store(v, Ordering::SeqCst);
    }
}

/// One batch for the syncer.
struct Synced {
    generation: u64,
    outcome: Result<(), StoreError>,
    completions: Vec<Completion>,
}

/// The writer's handle on the syncer thread.
pub(super) struct Syncer {
    tx: mpsc::Sender<Synced>,
    horizon: Horizon,
    failed: Arc<AtomicBool>,
    generation: u64,
}

impl Syncer {
    /// Opens the database's WAL file, syncs it (a previous process may have
    /// left commits in the OS cache only) and starts the thread.
    pub(super) fn start(db_path: &Path, horizon: Horizon) -> StoreResult<Syncer> {
        let wal_path = {
            let mut p = db_path.as_os_str().to_owned();
            p.push("-wal");
            p
        };
        let wal = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&wal_path)
            .map_err(|e| {
                StoreError::internal_from(
                    format!(
                        "cannot open the SQLite WAL file {}",
                        Path::new(&wal_path).display()
                    ),
                    e,
                )
            })?;
        wal.sync_data()
            .map_err(|e| StoreError::internal_from("cannot sync the SQLite WAL file", e))?;
        let (tx, rx) = mpsc::channel::<Synced>();
        let failed = Arc::new(AtomicBool::new(false));
        let (h, f) = (horizon.clone(), failed.clone());
        std::thread::Builder::new()
            .name("roster-sqlite-sync".into())
            .spawn(move || sync_loop(wal, rx, h, f))
            .map_err(|e| StoreError::internal_from("cannot start the sync thread", e))?;
        Ok(Syncer {
            tx,
            horizon,
            failed,
            generation: 0,
        })
    }

    /// Why writes are refused, once a sync has failed.
    pub(super) fn failure(&self) -> Option<StoreError> {
        self.failed.load(Ordering::SeqCst).then(|| {
            StoreError::internal(
                "the database could not be synced to disk, so Roster stopped taking writes; \
                 check the disk and restart Roster (it recovers from the write-ahead log)"
                    .to_owned(),
            )
        })
    }

    /// Marks the batch about to commit; `base` is the events sequence before it.
    /// Returns its generation for [`Syncer::finish`].
    pub(super) fn committing(&mut self, base: i64) -> u64 {
        self.generation += 1;
        self.horizon.committing(self.generation, base);
        self.generation
    }

    /// The generation of the last batch committed: a batch that committed
    /// nothing need only wait for it.
    pub(super) fn last(&self) -> u64 {
        self.generation
    }

    /// Hands the replies of a finished batch over: they are sent once
    /// everything up to `generation` is on disk.
    pub(super) fn finish(
        &self,
        generation: u64,
        outcome: Result<(), StoreError>,
        completions: Vec<Completion>,
    ) {
        let batch = Synced {
            generation,
            outcome,
            completions,
        };
        if let Err(mpsc::SendError(batch)) = self.tx.send(batch) {
            for c in batch.completions {
                c(Err(StoreError::internal("the sync thread stopped")));
            }
        }
    }
}

fn sync_loop(wal: File, rx: mpsc::Receiver<Synced>, horizon: Horizon, failed: Arc<AtomicBool>) {
    let mut synced = 0u64;
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        let newest = batches.iter().map(|b| b.generation).max().unwrap_or(0);
        // Shared: every batch waiting on this sync gets the same failure.
        let result: Result<(), Source> = if failed.load(Ordering::SeqCst) {
            Err(Arc::new(std::io::Error::other("an earlier sync failed")))
        } else if newest > synced {
            wal.sync_data().map_err(|e| Arc::new(e) as Source)
        } else {
            Ok(())
        };
        match &result {
            Ok(()) => {
                synced = synced.max(newest);
                horizon.synced(synced);
            }
            Err(e) => {
                if !failed.swap(true, Ordering::SeqCst) {
                    tracing::error!(error = %e, "syncing the SQLite WAL failed; refusing writes until restart");
                }
            }
        }
        for b in batches {
            let outcome = match &result {
                Ok(()) => b.outcome,
                Err(e) => Err(StoreError::Internal {
                    context:
                        "the change was written but could not be synced to disk; restart Roster"
                            .to_owned(),
                    source: Some(e.clone()),
                }),
            };
            for c in b.completions {
                c(outcome.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_hides_what_waits_for_its_fsync_and_nothing_else() {
        let h = Horizon::default();
        assert_eq!(h.get(), i64::MAX);
        h.committing(1, 10);
        assert_eq!(h.get(), 10);
        h.committing(2, 15);
        assert_eq!(h.get(), 10, "the oldest unsynced batch bounds what is seen");
        h.synced(1);
        assert_eq!(h.get(), 15);
        h.synced(2);
        assert_eq!(h.get(), i64::MAX);
    }

    #[test]
    fn a_sync_covering_several_batches_releases_them_all() {
        let h = Horizon::default();
        h.committing(1, 3);
        h.committing(2, 4);
        h.committing(3, 9);
        h.synced(3);
        assert_eq!(h.get(), i64::MAX);
    }
}
