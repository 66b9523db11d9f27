//! Google Workspace directories: Roster pulls their users and groups from
//! Google's Admin SDK Directory API instead of receiving SCIM.
//!
//! - [`account`]: the service-account key file and its signed JWT assertion;
//! - [`client`]: the token exchange, paged listings and Google's errors;
//! - [`poll`]: one poll, diffed against the store and applied through the
//!   SCIM write path;
//! - this module: the loop that leases due directories and records outcomes.

pub mod account;
pub mod client;
pub mod poll;
pub mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use roster_store::google::{GoogleJob, PollRecord, failure};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::account::ServiceAccount;
use self::client::DirectoryClient;
use crate::state::AppState;

/// How often the loop looks for a due directory (a "sync now" waits at most this).
const TICK: Duration = Duration::from_secs(1);
/// How long a poller holds a directory without renewing (it renews after every page).
const LEASE_MS: i64 = 120_000;
/// After a failed poll the next one comes after this, or the interval if shorter.
const RETRY_AFTER_FAILURE_MS: i64 = 60_000;

struct Held<'a> {
    state: &'a AppState,
    directory: &'a str,
    owner: &'a str,
}

impl poll::Lease for Held<'_> {
    async fn renew(&self) -> bool {
        self.state
            .store
            .renew_google_lease(self.directory, self.owner, LEASE_MS)
            .await
            .unwrap_or(false)
    }
}

/// The clients of the directories this process polled, kept so their access
/// tokens are reused until they expire.
#[derive(Default)]
struct Clients(HashMap<String, (String, Arc<DirectoryClient>)>);

impl Clients {
    fn get(
        &mut self,
        http: &reqwest::Client,
        config: &crate::config::ServerConfig,
        job: &GoogleJob,
    ) -> Result<Arc<DirectoryClient>, String> {
        let fingerprint = format!("{}\n{}", job.source.admin_email, job.credentials);
        if let Some((f, c)) = self.0.get(&job.source.directory_id)
            && *f == fingerprint
        {
            return Ok(c.clone());
        }
        let account = ServiceAccount::parse(&job.credentials)?;
        let client = Arc::new(DirectoryClient::new(
            http.clone(),
            &config.google_api_url,
            account,
            &job.source.admin_email,
            Duration::from_secs(1),
            config.google_requests_per_minute,
        ));
        self.0.insert(
            job.source.directory_id.clone(),
            (fingerprint, client.clone()),
        );
        Ok(client)
    }
}

/// Polls due Google directories until `stopped` turns true. Several
/// processes may run it against one database: the lease lets one poll a
/// directory at a time.
pub fn spawn(state: AppState, mut stopped: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let owner = uuid::Uuid::now_v7().to_string();
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("Roster/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "google: cannot build the HTTP client; Google directories are not polled");
                return;
            }
        };
        let mut clients = Clients::default();
        loop {
            if *stopped.borrow() {
                return;
            }
            match state.store.claim_google_poll(&owner, LEASE_MS).await {
                Ok(Some(job)) => {
                    let run = run_job(&state, &http, &mut clients, &owner, &job);
                    tokio::select! {
                        () = run => continue,
                        _ = stopped.changed() => return,
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "google: cannot look for due directories"),
            }
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                _ = stopped.changed() => {}
            }
        }
    })
}

async fn run_job(
    state: &AppState,
    http: &reqwest::Client,
    clients: &mut Clients,
    owner: &str,
    job: &GoogleJob,
) {
    let dir = job.source.directory_id.as_str();
    let started = std::time::Instant::now();
    let (summary, outcome) = match clients.get(http, &state.config, job) {
        Ok(client) => {
            let held = Held {
                state,
                directory: dir,
                owner,
            };
            let (summary, outcome) = poll::run(state, &client, &job.source, &held).await;
            (
                summary,
                outcome.map_err(|e| (failure_kind(&e), e.to_string())),
            )
        }
        // The stored key no longer reads as one: as good as a refused key.
        Err(e) => (poll::Summary::default(), Err((failure::UNAUTHORIZED, e))),
    };
    crate::metrics::google_poll(
        state.config.metrics_directory_labels.then_some(dir),
        outcome.is_ok(),
        started.elapsed(),
        crate::metrics::PollSeen {
            users: summary.users_listed,
            groups: summary.groups_listed,
            members: summary.members_listed,
        },
    );
    let interval_ms = job.source.interval_secs.max(1).saturating_mul(1000);
    let now = roster_store::now_ms();
    let (error, next) = match outcome {
        Ok(()) => {
            tracing::info!(directory = dir, ?summary, "google: poll done");
            (None, now.saturating_add(interval_ms))
        }
        Err((kind, e)) => {
            tracing::warn!(directory = dir, ?summary, error = %e, "google: poll failed");
            (
                Some((kind.to_owned(), e)),
                now.saturating_add(interval_ms.min(RETRY_AFTER_FAILURE_MS)),
            )
        }
    };
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let record = PollRecord {
        error,
        users_seen: count(summary.users_listed),
        groups_seen: count(summary.groups_listed),
        changes: count(summary.created + summary.updated + summary.deleted + summary.memberships),
        next_poll_at: next,
    };
    if let Err(e) = state.store.finish_google_poll(dir, owner, record).await {
        tracing::warn!(directory = dir, error = %e, "google: cannot record the poll's outcome");
    }
}

/// What kind of failure stopped a poll, for the fix a page names.
fn failure_kind(e: &poll::PollError) -> &'static str {
    use client::GoogleError;
    match e {
        poll::PollError::Google(GoogleError::Forbidden(_)) => failure::FORBIDDEN,
        poll::PollError::Google(GoogleError::Unauthorized(_)) => failure::UNAUTHORIZED,
        poll::PollError::Google(GoogleError::Unavailable { .. } | GoogleError::Transport(_)) => {
            failure::UNAVAILABLE
        }
        _ => failure::OTHER,
    }
}

/// Checks a service-account key file and how it is used (the key is parsed
/// and loaded now, not at the first poll) and returns them ready to store.
pub fn settings(
    credentials: &str,
    admin_email: &str,
    customer: &str,
    domain: Option<&str>,
    interval_secs: Option<i64>,
) -> Result<roster_store::google::GoogleSettings, String> {
    let account = ServiceAccount::parse(credentials)?;
    let admin_email = admin_email.trim();
    if !admin_email.contains('@') {
        return Err(
            "admin_email must be the email of a Google Workspace administrator the service account acts as"
                .to_owned(),
        );
    }
    let customer = customer.trim();
    if customer.is_empty() {
        return Err("customer must be the Google customer id, or my_customer".to_owned());
    }
    let domain = domain.map(str::trim).filter(|d| !d.is_empty());
    Ok(roster_store::google::GoogleSettings {
        credentials: credentials.to_owned(),
        client_id: account.client_id,
        admin_email: admin_email.to_owned(),
        customer: customer.to_owned(),
        domain: domain.map(str::to_owned),
        interval_secs: match interval_secs {
            Some(secs) => roster_store::google::check_interval(secs)?,
            None => roster_store::google::DEFAULT_INTERVAL_SECS,
        },
    })
}

/// Checks what creating a Google Workspace directory takes (see
/// [`settings`]) and returns it ready to store.
pub fn new_directory(
    name: &str,
    credentials: &str,
    admin_email: &str,
    customer: &str,
    domain: Option<&str>,
    interval_secs: Option<i64>,
) -> Result<roster_store::google::NewGoogleDirectory, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the name is empty".to_owned());
    }
    Ok(roster_store::google::NewGoogleDirectory {
        name: name.to_owned(),
        settings: settings(credentials, admin_email, customer, domain, interval_secs)?,
    })
}

/// A Google directory's settings and last poll, as `/api/v1` and
/// `roster directory list --json` show them (never the credentials).
pub fn source_json(s: &roster_store::google::GoogleSource) -> serde_json::Value {
    let ts = |ms: i64| roster_scim::values::format_unix_millis(ms);
    serde_json::json!({
        "admin_email": s.admin_email,
        "customer": s.customer,
        "domain": s.domain,
        "poll_interval_secs": s.interval_secs,
        "last_poll_at": s.last_poll_at.map(ts),
        "last_poll_result": s.last_result,
        "last_poll_error": s.last_error,
        "last_poll_error_kind": s.last_error_kind,
        "last_poll_started_at": s.last_poll_started_at.map(ts),
        "users_seen": s.users_seen,
        "groups_seen": s.groups_seen,
        "changes_applied": s.changes_applied,
        "client_id": s.client_id,
        "sync_requested": s.next_poll_at == 0,
    })
}
