//! How a run reports how far it is: one meter per phase. The `roster` binary
//! draws them as progress bars on a terminal; [`NoProgress`] ignores them.

/// The phases of a run that report progress, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the source (total: what the source announced, once it has).
    Source,
    /// Comparing the records with the state and matching them in the target.
    Plan,
    /// Creating and updating.
    Apply,
    /// Sending again what named a resource that did not exist yet.
    References,
    /// Deleting or deactivating what vanished from the source.
    Delete,
}

impl Phase {
    /// A short label: "source", "plan", "apply", "refs" or "delete".
    pub fn label(self) -> &'static str {
        match self {
            Phase::Source => "source",
            Phase::Plan => "plan",
            Phase::Apply => "apply",
            Phase::References => "refs",
            Phase::Delete => "delete",
        }
    }
}

/// Receives a run's progress.
pub trait Progress: Send + Sync {
    /// A phase begins; `total` is how many steps it has, when known.
    fn begin(&self, phase: Phase, total: Option<u64>) -> Box<dyn Meter>;
}

/// The progress of one phase.
pub trait Meter: Send + Sync {
    /// The phase has `total` steps (learnt after it began, or changed).
    fn set_total(&self, total: u64);
    /// `n` more steps are done.
    fn inc(&self, n: u64);
    /// The phase is over.
    fn finish(&self);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: Phase, _: Option<u64>) -> Box<dyn Meter> {
        Box::new(NoProgress)
    }
}

impl Meter for NoProgress {
    fn set_total(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}
