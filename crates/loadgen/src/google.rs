//! `roster-loadgen google`: the Google Workspace scale run. The test kit's
//! stand-in of Google's Directory API serves a generated directory (users,
//! groups, memberships spread over every group) on 127.0.0.1; a `roster
//! serve` on a fresh SQLite database, run under `/usr/bin/time -v`, polls it
//! once in full, then again with nothing changed. Reported: each poll's wall
//! time (from its first users.list request to the end the server records,
//! and the server's own `roster_google_poll_duration_seconds`), the Directory API requests it made and their rate against Google's
//! default quota, the events each wrote (`roster_events_written_total`),
//! and the server's peak RSS.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::server::Server;

/// Google's default Directory API quota: queries per minute per user.
const QUOTA_PER_MINUTE: f64 = 2400.0;

#[derive(clap::Args, Debug)]
pub struct GoogleArgs {
    /// The `roster` binary to run (a release build).
    #[arg(long)]
    roster_bin: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    #[arg(long, default_value_t = 5_000)]
    groups: usize,
    /// The server's `google_requests_per_minute` (its default when left
    /// out; 0 measures Roster's own cost, unpaced).
    #[arg(long)]
    requests_per_minute: Option<u32>,
    /// Most seconds one poll may take before the run gives up.
    #[arg(long, default_value_t = 3_600)]
    poll_timeout: u64,
    /// Where the temp database folder goes.
    #[arg(long, default_value = "/tmp")]
    work_dir: PathBuf,
    /// Keep the temp database folder afterwards.
    #[arg(long)]
    keep_db: bool,
    /// Write the JSON report here too.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the stand-in counted, read between polls.
struct Counts {
    requests: usize,
    token_grants: usize,
}

fn counts(g: &roster_testkit::google::Shared) -> Counts {
    let g = g.lock();
    Counts {
        requests: g.requests,
        token_grants: g.token_grants,
    }
}

/// Waits until the directory's `last_poll_at` differs from `before`; returns its `google` object.
async fn wait_for_poll(server: &Server, id: &str, before: &Value, timeout: u64) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let list = server.cli_json(&["directory", "list"]).await?;
        let google = list
            .as_array()
            .and_then(|l| l.iter().find(|d| d["id"] == id))
            .map(|d| d["google"].clone())
            .with_context(|| format!("directory {id} is not listed"))?;
        if google["last_poll_at"] != *before && google["sync_requested"] == false {
            return Ok(google);
        }
        if Instant::now() > deadline {
            bail!("no poll of {id} within {timeout} s: {google}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The server's `/metrics`: events it committed, polls it finished and
/// their total duration (seconds).
struct Scrape {
    events: f64,
    polls: f64,
    poll_secs: f64,
}

async fn scrape(client: &reqwest::Client, metrics: std::net::SocketAddr) -> Result<Scrape> {
    let text = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let value = |name: &str| -> f64 {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split([' ', '{']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(Scrape {
        events: value("roster_events_written_total"),
        polls: value("roster_google_polls_total"),
        poll_secs: value("roster_google_poll_duration_seconds_sum"),
    })
}

fn last_poll_ms(google: &Value) -> Result<i64> {
    let at = google["last_poll_at"].as_str().context("no last_poll_at")?;
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("last_poll_at {at:?} is not RFC 3339"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

pub async fn run(a: GoogleArgs) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let built = Instant::now();
    let mut directory = roster_testkit::google::generated(a.users, a.groups);
    directory.page = 500;
    let memberships: usize = directory.members.values().map(Vec::len).sum();
    let (g, base) = roster_testkit::google::start(directory).await;
    eprintln!(
        "stand-in: {} users, {} groups, {memberships} memberships at {base} ({:.1} s)",
        a.users,
        a.groups,
        built.elapsed().as_secs_f64()
    );

    let mut server = Server::prepare(&a.roster_bin, &a.work_dir)?;
    server.set_env("ROSTER_GOOGLE_API_URL", &base);
    if let Some(n) = a.requests_per_minute {
        server.set_env("ROSTER_GOOGLE_REQUESTS_PER_MINUTE", &n.to_string());
    }
    let metrics = crate::server::free_loopback_port()?;
    server.set_env("ROSTER_METRICS_LISTEN", &metrics.to_string());
    server.time_v = true;
    let key = server.dir.join("key.json");
    std::fs::write(&key, roster_testkit::google::key_file(&base).to_string())?;
    let created = server
        .cli_json(&[
            "directory",
            "create",
            "google-scale",
            "--provider",
            "google-workspace",
            "--credentials",
            &key.display().to_string(),
            "--admin-email",
            roster_testkit::google::ADMIN,
            "--poll-interval",
            "86400",
        ])
        .await?;
    let id = created["id"]
        .as_str()
        .with_context(|| format!("no id in {created}"))?
        .to_owned();

    // A new directory is due at once: the server's first tick polls it.
    let probe = reqwest::Client::builder().no_proxy().build()?;
    server.start(&probe, "/health/live").await?;
    let first = wait_for_poll(&server, &id, &Value::Null, a.poll_timeout).await?;
    let snapshot_started = || g.lock().snapshot_started_at.map(unix_ms).unwrap_or(0);
    let first_ms = last_poll_ms(&first)? - snapshot_started();
    let after_first = counts(&g);
    let m1 = scrape(&probe, metrics).await?;
    let events_first = m1.events as usize;
    let rss_after_first = server.served_memory_kib();
    eprintln!(
        "poll 1: {:.1} s, {} requests, {events_first} events: {first}",
        first_ms as f64 / 1000.0,
        after_first.requests
    );

    // Nothing changed at Google: the second poll must write no event.
    let out = server.cli_text(&["directory", "sync", &id]).await?;
    eprintln!("{}", out.trim());
    let second = wait_for_poll(&server, &id, &first["last_poll_at"], a.poll_timeout).await?;
    let second_ms = last_poll_ms(&second)? - snapshot_started();
    let after_second = counts(&g);
    let m2 = scrape(&probe, metrics).await?;
    let events_second = m2.events as usize;
    let second_requests = after_second.requests - after_first.requests;
    eprintln!(
        "poll 2: {:.1} s, {second_requests} requests, {} new events",
        second_ms as f64 / 1000.0,
        events_second - events_first
    );

    let (peak_kib, time_v) = server.stop_timed().await?;
    let per_minute = |requests: usize, ms: i64| requests as f64 * 60_000.0 / ms.max(1) as f64;
    let report = json!({
        "users": a.users,
        "groups": a.groups,
        "requests_per_minute_setting": a.requests_per_minute,
        "memberships": memberships,
        "first_poll": {
            "result": first["last_poll_result"],
            "error": first["last_poll_error"],
            "wall_secs": first_ms as f64 / 1000.0,
            "server_poll_secs": m1.poll_secs,
            "directory_api_requests": after_first.requests,
            "token_exchanges": after_first.token_grants,
            "requests_per_minute": per_minute(after_first.requests, first_ms),
            "events": events_first,
            "rss_kib_after": rss_after_first,
        },
        "second_poll": {
            "result": second["last_poll_result"],
            "error": second["last_poll_error"],
            "wall_secs": second_ms as f64 / 1000.0,
            "server_poll_secs": m2.poll_secs - m1.poll_secs,
            "directory_api_requests": second_requests,
            "token_exchanges": after_second.token_grants - after_first.token_grants,
            "requests_per_minute": per_minute(second_requests, second_ms),
            "events": events_second - events_first,
        },
        "polls": m2.polls,
        "quota_per_minute": QUOTA_PER_MINUTE,
        "server_peak_rss_kib": peak_kib,
        "time_v": time_v,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(path) = &a.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if a.keep_db {
        eprintln!("database kept in {}", server.dir.display());
    } else {
        server.remove_files();
    }
    if events_second != events_first {
        bail!(
            "the second poll wrote {} events; a poll with no change must write none",
            events_second - events_first
        );
    }
    Ok(())
}
