//! `roster-loadgen google`: the Google Workspace scale run. The test kit's
//! stand-in of Google's Directory API serves a generated directory (users,
//! groups, memberships spread over every group) on 127.0.0.1; a `roster
//! serve` on a fresh SQLite database, run under `/usr/bin/time -v`, polls it
//! once in full, then again with nothing changed. Reported: each poll's wall
//! time (from its first users.list request to the end the server records), the Directory API requests it made and their rate against Google's
//! default quota, the events each wrote, and the server's peak RSS.

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

/// Events of the directory so far (`roster events tail` prints one a line).
async fn events(server: &Server, id: &str) -> Result<usize> {
    let text = server
        .cli_text(&["events", "tail", "--directory", id])
        .await?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).count())
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
    let events_first = events(&server, &id).await?;
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
    let events_second = events(&server, &id).await?;
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
        "memberships": memberships,
        "first_poll": {
            "result": first["last_poll_result"],
            "error": first["last_poll_error"],
            "wall_secs": first_ms as f64 / 1000.0,
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
            "directory_api_requests": second_requests,
            "token_exchanges": after_second.token_grants - after_first.token_grants,
            "requests_per_minute": per_minute(second_requests, second_ms),
            "events": events_second - events_first,
        },
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
