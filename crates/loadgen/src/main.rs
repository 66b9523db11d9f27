//! `roster-loadgen`: the SCIM core benchmark.
//!
//! Loads N users through single-request POST /Users, runs the lookups identity
//! providers make, pages the whole directory by index and by cursor, and reads
//! the server's peak memory. Every phase is bounded in requests and in time,
//! and traffic goes to 127.0.0.1 only.
//!
//! `roster-loadgen scale …` is the PostgreSQL scale benchmark instead: many
//! directories loaded through /Bulk (see [`scale`]); `roster-loadgen soak …`
//! is the soak test (see [`soak`]); `roster-loadgen receiver …` a webhook
//! receiver for the delivery benchmarks (see [`receiver`]); `roster-loadgen
//! google …` the Google Workspace scale run (see [`google`]); `roster-loadgen
//! filters …` the filter corpus on one directory at scale, on SQLite or
//! PostgreSQL (see [`filters`]).

mod filters;
mod google;
mod receiver;
mod scale;
mod server;
mod soak;
mod stats;
mod users;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Map, Value, json};

use crate::server::{Server, cpu_secs, load_average, memory_kib};
use crate::stats::{Latencies, ms, round3};

#[derive(Parser, Debug)]
#[command(
    name = "roster-loadgen",
    version,
    about = "SCIM load generator and benchmark for Roster (loopback only)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: the SCIM core benchmark (single-request creates on SQLite).
    #[command(flatten)]
    args: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The PostgreSQL scale benchmark: D directories, U users through /Bulk,
    /// database size, indexed lookups, a cursor export, EXPLAIN of the filters.
    Scale(Box<scale::ScaleArgs>),
    /// The soak test: N minutes of mixed SCIM traffic from D directories
    /// at a fixed rate on SQLite, checking errors, p99 per minute and flat memory.
    Soak(Box<soak::SoakArgs>),
    /// A webhook receiver for the delivery benchmarks (scripts/event-bench.sh).
    Receiver(receiver::ReceiverArgs),
    /// The Google Workspace scale run: a stand-in of Google's Directory API
    /// with U users and G groups, one full poll and one with no change.
    Google(Box<google::GoogleArgs>),
    /// The filter corpus on one directory of N users loaded through /Bulk,
    /// on SQLite or PostgreSQL: each filter's page latency and count, a cursor
    /// and an index page near the end, bytes per user; --check against the targets.
    Filters(Box<filters::FiltersArgs>),
}

#[derive(clap::Args, Debug)]
struct Args {
    /// Users to create.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Of those, how many are created by one client (C=1); the rest by --concurrency clients.
    #[arg(long, default_value_t = 2_000)]
    serial_users: u64,
    /// Concurrent clients for the bulk of the load.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Runs of each lookup filter.
    #[arg(long, default_value_t = 500)]
    lookups: u64,
    /// Page size for the paging phases.
    #[arg(long, default_value_t = 100)]
    page_size: u64,
    /// Most seconds any one phase may take; it stops there and reports what it did.
    #[arg(long, default_value_t = 900)]
    phase_timeout: u64,
    /// Write the full JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Self-contained mode: start this `roster` binary on a fresh temp database.
    #[arg(long, conflicts_with_all = ["base_url", "token"])]
    roster_bin: Option<PathBuf>,
    /// Where the temp database folder goes (self-contained mode).
    #[arg(long, default_value = "/tmp")]
    work_dir: PathBuf,
    /// Keep the temp database folder afterwards.
    #[arg(long)]
    keep_db: bool,
    /// Skip the check that SIGKILL loses no acknowledged write (self-contained mode).
    #[arg(long)]
    skip_durability: bool,
    /// External mode: the directory's SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2/ID.
    #[arg(long, requires = "token")]
    base_url: Option<String>,
    /// External mode: the directory's bearer token.
    #[arg(long)]
    token: Option<String>,
    /// External mode: the server's pid, to read its peak memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Index of the first user to create: lets repeated runs against one server make new users.
    #[arg(long, default_value_t = 0)]
    start_index: u64,
    /// Stop after the create phases (for profiling the write path).
    #[arg(long)]
    only_create: bool,
    /// Seed for the random choice of users to look up.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// What every phase needs to talk to the server.
#[derive(Clone)]
struct Target {
    client: Client,
    base: String,
    auth: String,
}

impl Target {
    fn users_url(&self) -> String {
        format!("{}/Users", self.base)
    }

    async fn list(&self, params: &[(&str, &str)]) -> Result<(Value, Duration)> {
        self.list_at("Users", params).await
    }

    /// GET `endpoint` (`Users`, `Groups`) with query `params`: the reply and its latency.
    async fn list_at(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<(Value, Duration)> {
        let mut url = Url::parse(&format!("{}/{endpoint}", self.base))?;
        url.query_pairs_mut().extend_pairs(params);
        let started = Instant::now();
        let resp = self
            .client
            .get(url)
            .header("Authorization", &self.auth)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let took = started.elapsed();
        if status != StatusCode::OK {
            bail!(
                "GET /{endpoint} {params:?}: {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok((serde_json::from_slice(&body)?, took))
    }
}

fn check_loopback(url: &str) -> Result<()> {
    let u = Url::parse(url).with_context(|| format!("bad --base-url {url}"))?;
    let host = u.host_str().unwrap_or_default();
    let ok = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !ok {
        bail!("roster-loadgen sends load to loopback addresses only, not {url}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Scale(a)) => return scale::run(*a).await,
        Some(Command::Soak(a)) => return soak::run(*a).await,
        Some(Command::Receiver(a)) => return receiver::run(a).await,
        Some(Command::Google(a)) => return google::run(*a).await,
        Some(Command::Filters(a)) => return filters::run(*a).await,
        None => {}
    }
    let args = cli.args;
    if args.users == 0 {
        bail!("--users must be at least 1");
    }
    // When Cargo builds this crate together with the server, reqwest's features
    // unify to `rustls-no-provider`, and building a Client without a provider panics.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.concurrency.max(1) * 2)
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()?;
    let mut report = Map::new();
    report.insert("users".into(), json!(args.users));
    report.insert("concurrency".into(), json!(args.concurrency));
    report.insert("page_size".into(), json!(args.page_size));

    let mut server = None;
    let (target, pid) = if let Some(bin) = &args.roster_bin {
        let mut s = Server::prepare(bin, &args.work_dir)?;
        let dir = s.create_directory("loadgen").await?;
        s.start(&client, &format!("{}/ServiceProviderConfig", dir.base_path))
            .await?;
        println!(
            "server: {} pid {} database {}",
            s.addr,
            s.pid().unwrap_or(0),
            s.dir.display()
        );
        let target = Target {
            client: client.clone(),
            base: format!("http://{}{}", s.addr, dir.base_path),
            auth: format!("Bearer {}", dir.token),
        };
        let pid = s.pid();
        server = Some(s);
        (target, pid)
    } else {
        let (Some(base), Some(token)) = (&args.base_url, &args.token) else {
            bail!("give --roster-bin PATH, or --base-url URL --token TOKEN");
        };
        check_loopback(base)?;
        let target = Target {
            client: client.clone(),
            base: base.trim_end_matches('/').to_owned(),
            auth: format!("Bearer {token}"),
        };
        (target, args.server_pid)
    };

    let result = run(&args, &target, pid, server.as_mut(), &mut report).await;
    if let Some(s) = server.as_mut() {
        let _ = s.kill().await;
        if !args.keep_db {
            s.remove_files();
        }
    }
    result?;
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Object(report))?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(())
}

async fn run(
    args: &Args,
    target: &Target,
    pid: Option<u32>,
    server: Option<&mut Server>,
    report: &mut Map<String, Value>,
) -> Result<()> {
    let timeout = Duration::from_secs(args.phase_timeout);
    let mut memory = Map::new();
    let mut sample_memory = |phase: &str| {
        if let Some((hwm, rss)) = pid.and_then(memory_kib) {
            println!(
                "memory after {phase}: peak {:.1} MiB, now {:.1} MiB",
                hwm as f64 / 1024.0,
                rss as f64 / 1024.0
            );
            memory.insert(phase.into(), json!({"peak_kib": hwm, "rss_kib": rss}));
        }
    };
    sample_memory("start");
    report.insert("load_average_start".into(), json!(load_average()));

    let first = args.start_index;
    let end = first + args.users;
    let serial = first + args.serial_users.min(args.users);
    let c1 = load(
        target,
        first..serial,
        1,
        timeout,
        &[],
        KeepReplies {
            below: serial.min(first + 50),
            from: end,
        },
        pid,
    )
    .await?;
    c1.print("create C=1");
    let managers: Vec<String> = c1.ids.iter().map(|(_, id, _)| id.clone()).collect();
    // The last creations carry the lastModified values the `gt` lookups start from.
    let recent_from = end.saturating_sub(40);
    let cn = load(
        target,
        serial..end,
        args.concurrency,
        timeout,
        &managers,
        KeepReplies {
            below: 0,
            from: recent_from,
        },
        pid,
    )
    .await?;
    cn.print(&format!("create C={}", args.concurrency));
    sample_memory("load");
    let created = c1.ok + cn.ok;
    report.insert(
        "create".into(),
        json!({"c1": c1.to_json(1), "cn": cn.to_json(args.concurrency)}),
    );
    if created == 0 {
        bail!("no user was created; see the errors above");
    }
    if args.only_create {
        report.insert("memory".into(), Value::Object(memory));
        return Ok(());
    }

    let mut recent: Vec<String> = c1
        .ids
        .iter()
        .chain(cn.ids.iter())
        .filter(|(i, _, _)| *i >= recent_from)
        .map(|(_, _, lm)| lm.clone())
        .collect();
    if recent.is_empty() {
        recent = c1.ids.iter().map(|(_, _, lm)| lm.clone()).collect();
    }
    let mut lookups = Map::new();
    let mut rng = StdRng::seed_from_u64(args.seed);
    for kind in [
        Lookup::UserName,
        Lookup::Email,
        Lookup::FamilySw,
        Lookup::LastModifiedGt,
    ] {
        let r = lookup(target, kind, args, &recent, &mut rng, timeout).await?;
        println!(
            "lookup {:<22} n={:<5} {}  (mean matches {:.1}, misses {})",
            kind.label(),
            r.lat.count(),
            r.lat.line(),
            r.mean_matches,
            r.misses
        );
        lookups.insert(kind.label().into(), r.to_json());
    }
    report.insert("lookups".into(), Value::Object(lookups));
    sample_memory("lookups");

    let mut paging = Map::new();
    for by_cursor in [false, true] {
        let p = page_all(target, args.page_size, by_cursor, created, timeout).await?;
        p.print();
        paging.insert(
            if by_cursor { "cursor" } else { "index" }.into(),
            p.to_json(),
        );
    }
    report.insert("paging".into(), Value::Object(paging));
    sample_memory("paging");
    report.insert("memory".into(), Value::Object(memory));
    report.insert("load_average_end".into(), json!(load_average()));
    println!(
        "load average (1 min) at start {:?}, at end {:?}: above ~1.5, other work on the 2 cores skewed these numbers",
        report["load_average_start"], report["load_average_end"]
    );

    if let Some(s) = server
        && !args.skip_durability
    {
        report.insert("durability".into(), durability(s, target, created).await?);
    }
    Ok(())
}

/// Kills the server with SIGKILL, restarts it on the same file and counts users:
/// every create that was answered 201 must still be there.
async fn durability(s: &mut Server, target: &Target, acknowledged: u64) -> Result<Value> {
    s.kill().await?;
    let probe = format!("{}/ServiceProviderConfig", Url::parse(&target.base)?.path());
    s.start(&target.client, &probe).await?;
    let (body, _) = target.list(&[("count", "0")]).await?;
    let total = body
        .get("totalResults")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    println!(
        "durability: {acknowledged} creates acknowledged, {total} users after SIGKILL and restart"
    );
    if total < acknowledged {
        bail!("{} acknowledged creates were lost", acknowledged - total);
    }
    Ok(json!({"acknowledged": acknowledged, "after_restart": total, "lost": 0}))
}

struct LoadResult {
    clients: usize,
    ok: u64,
    errors: u64,
    first_errors: Vec<String>,
    elapsed: Duration,
    timed_out: bool,
    lat: Latencies,
    /// Seconds at which each tenth of the phase's creates had completed.
    tenths: Vec<f64>,
    /// (index, id, meta.lastModified) of the users whose replies were kept.
    ids: Vec<(u64, String, String)>,
    /// CPU used meanwhile: on a shared 2-core machine, CPU per request is steadier than wall time.
    server_cpu_s: Option<f64>,
    loadgen_cpu_s: Option<f64>,
}

impl LoadResult {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Creates/s within each tenth of the phase, to show whether rate falls as the table grows.
    fn tenth_rates(&self, n: u64) -> Vec<f64> {
        let step = (n / 10).max(1) as f64;
        let mut prev = 0.0;
        self.tenths
            .iter()
            .map(|t| {
                let r = step / (t - prev).max(1e-9);
                prev = *t;
                r.round()
            })
            .collect()
    }

    fn cpu_us_per_create(&self, cpu: Option<f64>) -> Option<f64> {
        cpu.map(|c| (c * 1e6 / self.ok.max(1) as f64).round())
    }

    fn print(&self, label: &str) {
        let cpu = |c: Option<f64>| {
            self.cpu_us_per_create(c)
                .map_or("-".to_owned(), |us| format!("{us:.0}"))
        };
        println!(
            "{label:<14} {} ok, {} errors in {:.2} s: {:.0} creates/s  {}  CPU µs/create: server {}, loadgen {}{}",
            self.ok,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.lat.line(),
            cpu(self.server_cpu_s),
            cpu(self.loadgen_cpu_s),
            if self.timed_out { "  (TIMED OUT)" } else { "" }
        );
        for e in &self.first_errors {
            println!("  error: {e}");
        }
    }

    fn to_json(&self, clients: usize) -> Value {
        let n = self.ok + self.errors;
        json!({
            "clients": clients.max(self.clients),
            "created": self.ok,
            "errors": self.errors,
            "first_errors": self.first_errors,
            "seconds": round3(self.elapsed.as_secs_f64()),
            "timed_out": self.timed_out,
            "creates_per_s": self.rate().round(),
            "creates_per_s_by_tenth": self.tenth_rates(n),
            "latency": self.lat.summary(),
            "server_cpu_us_per_create": self.cpu_us_per_create(self.server_cpu_s),
            "loadgen_cpu_us_per_create": self.cpu_us_per_create(self.loadgen_cpu_s),
        })
    }
}

/// Which replies to parse and keep: users below `below` (their ids become managers)
/// and from `from` on (their lastModified feeds the `gt` lookups). Parsing every
/// reply would spend load-generator CPU that the server needs.
#[derive(Clone, Copy)]
struct KeepReplies {
    below: u64,
    from: u64,
}

/// Creates users `range` with `clients` concurrent clients.
async fn load(
    target: &Target,
    range: std::ops::Range<u64>,
    clients: usize,
    timeout: Duration,
    managers: &[String],
    keep: KeepReplies,
    pid: Option<u32>,
) -> Result<LoadResult> {
    let KeepReplies {
        below: keep_below,
        from: keep_from,
    } = keep;
    let n = range.end.saturating_sub(range.start);
    let cpu_before = (pid.and_then(|p| cpu_secs(Some(p))), cpu_secs(None));
    let next = Arc::new(AtomicU64::new(range.start));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let tenths = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = started + timeout;
    let managers = Arc::new(managers.to_vec());
    let step = (n / 10).max(1);
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (t, next, done, errors, tenths, managers) = (
            target.clone(),
            next.clone(),
            done.clone(),
            errors.clone(),
            tenths.clone(),
            managers.clone(),
        );
        let url = target.users_url();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::new();
            let mut kept = Vec::new();
            let mut first_errors = Vec::new();
            loop {
                // Both bounds: no more than the users asked for, no later than the deadline;
                // and a server failing every request stops the phase early.
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= range.end || Instant::now() >= deadline {
                    break;
                }
                if errors.load(Ordering::Relaxed) > 100 {
                    break;
                }
                let manager = (!managers.is_empty())
                    .then(|| managers[(i % managers.len() as u64) as usize].as_str());
                let body = serde_json::to_vec(&users::user_body(i, manager))?;
                let t0 = Instant::now();
                let resp = t
                    .client
                    .post(&url)
                    .header("Authorization", &t.auth)
                    .header("Content-Type", "application/scim+json")
                    .body(body)
                    .send()
                    .await;
                let outcome = match resp {
                    Ok(r) => {
                        let status = r.status();
                        r.bytes().await.map(|b| (status, b))
                    }
                    Err(e) => Err(e),
                };
                let took = t0.elapsed();
                match outcome {
                    Ok((StatusCode::CREATED, bytes)) => {
                        lat.record(took);
                        if i < keep_below || i >= keep_from {
                            let v: Value = serde_json::from_slice(&bytes)?;
                            let id = v["id"].as_str().unwrap_or_default().to_owned();
                            let lm = v["meta"]["lastModified"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned();
                            kept.push((i, id, lm));
                        }
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if d % step == 0
                            && let Ok(mut v) = tenths.lock()
                        {
                            v.push(started.elapsed().as_secs_f64());
                        }
                    }
                    Ok((status, bytes)) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if first_errors.len() < 3 {
                            first_errors.push(format!(
                                "user {i}: {status}: {}",
                                String::from_utf8_lossy(&bytes)
                            ));
                        }
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if first_errors.len() < 3 {
                            first_errors.push(format!("user {i}: {e}"));
                        }
                    }
                }
            }
            anyhow::Ok((lat, kept, first_errors))
        }));
    }
    let mut lat = Latencies::new();
    let mut ids = Vec::new();
    let mut first_errors = Vec::new();
    for t in tasks {
        let (l, k, e) = t.await??;
        lat.merge(&l);
        ids.extend(k);
        first_errors.extend(e);
    }
    first_errors.truncate(3);
    ids.sort_by_key(|(i, _, _)| *i);
    let elapsed = started.elapsed();
    let ok = done.load(Ordering::Relaxed);
    let used = |before: Option<f64>, after: Option<f64>| Some(after? - before?);
    let server_cpu_s = used(cpu_before.0, pid.and_then(|p| cpu_secs(Some(p))));
    let loadgen_cpu_s = used(cpu_before.1, cpu_secs(None));
    let tenths = tenths.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(LoadResult {
        clients,
        ok,
        errors: errors.load(Ordering::Relaxed),
        first_errors,
        elapsed,
        timed_out: ok + errors.load(Ordering::Relaxed) < n,
        lat,
        tenths,
        ids,
        server_cpu_s,
        loadgen_cpu_s,
    })
}

#[derive(Clone, Copy)]
enum Lookup {
    UserName,
    Email,
    FamilySw,
    LastModifiedGt,
}

impl Lookup {
    fn label(self) -> &'static str {
        match self {
            Lookup::UserName => "userName eq",
            Lookup::Email => "emails.value eq",
            Lookup::FamilySw => "name.familyName sw",
            Lookup::LastModifiedGt => "meta.lastModified gt",
        }
    }
}

struct LookupResult {
    lat: Latencies,
    mean_matches: f64,
    misses: u64,
    timed_out: bool,
}

impl LookupResult {
    fn to_json(&self) -> Value {
        let mut v = self.lat.summary();
        if let Value::Object(o) = &mut v {
            o.insert("mean_matches".into(), json!(round3(self.mean_matches)));
            o.insert("misses".into(), json!(self.misses));
            o.insert("timed_out".into(), json!(self.timed_out));
        }
        v
    }
}

/// One client, `args.lookups` runs on random users, after a few unrecorded
/// warm-up runs (the first run of a filter prepares its statement).
async fn lookup(
    target: &Target,
    kind: Lookup,
    args: &Args,
    recent: &[String],
    rng: &mut StdRng,
    timeout: Duration,
) -> Result<LookupResult> {
    let deadline = Instant::now() + timeout;
    let mut lat = Latencies::new();
    let mut matches = 0u64;
    let mut misses = 0u64;
    let warmup = 10;
    let mut runs = 0u64;
    for run in 0..args.lookups + warmup {
        if Instant::now() >= deadline {
            break;
        }
        let i = rng.random_range(args.start_index..args.start_index + args.users);
        let filter = match kind {
            Lookup::UserName => format!("userName eq \"{}\"", users::user_name(i)),
            Lookup::Email => format!("emails.value eq \"{}\"", users::work_email(i)),
            Lookup::FamilySw => format!("name.familyName sw \"{}\"", users::family_name(i)),
            Lookup::LastModifiedGt => {
                let t = &recent[rng.random_range(0..recent.len())];
                format!("meta.lastModified gt \"{t}\"")
            }
        };
        let (body, took) = target.list(&[("filter", &filter)]).await?;
        if run < warmup {
            continue;
        }
        runs += 1;
        lat.record(took);
        let total = body
            .get("totalResults")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        matches += total;
        if total == 0 && !matches!(kind, Lookup::LastModifiedGt) {
            misses += 1;
        }
    }
    Ok(LookupResult {
        lat,
        mean_matches: matches as f64 / runs.max(1) as f64,
        misses,
        timed_out: runs < args.lookups,
    })
}

struct PageResult {
    by_cursor: bool,
    pages: u64,
    resources: u64,
    total: Duration,
    first: Duration,
    last: Duration,
    lat: Latencies,
    /// Mean page time within each tenth of the pages, first to last.
    tenth_means_ms: Vec<f64>,
    timed_out: bool,
}

impl PageResult {
    fn label(&self) -> &'static str {
        if self.by_cursor { "cursor" } else { "index" }
    }

    fn print(&self) {
        println!(
            "paging by {:<6} {} pages, {} users in {:.2} s: first page {:.2} ms, last page {:.2} ms, {}{}",
            self.label(),
            self.pages,
            self.resources,
            self.total.as_secs_f64(),
            ms(self.first),
            ms(self.last),
            self.lat.line(),
            if self.timed_out { "  (TIMED OUT)" } else { "" }
        );
    }

    fn to_json(&self) -> Value {
        json!({
            "pages": self.pages,
            "resources": self.resources,
            "total_s": round3(self.total.as_secs_f64()),
            "first_page_ms": ms(self.first),
            "last_page_ms": ms(self.last),
            "mean_page_ms_by_tenth": self.tenth_means_ms,
            "latency": self.lat.summary(),
            "timed_out": self.timed_out,
        })
    }
}

/// Reads every user, page by page, as a sync client does.
async fn page_all(
    target: &Target,
    page_size: u64,
    by_cursor: bool,
    expected: u64,
    timeout: Duration,
) -> Result<PageResult> {
    let started = Instant::now();
    let deadline = started + timeout;
    let max_pages = expected / page_size.max(1) + 10;
    let count = page_size.max(1).to_string();
    let mut times = Vec::new();
    let mut resources = 0u64;
    let mut start_index = 1u64;
    let mut cursor = String::new();
    let mut timed_out = false;
    while (times.len() as u64) < max_pages {
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        let (body, took) = if by_cursor {
            target
                .list(&[("cursor", cursor.as_str()), ("count", &count)])
                .await?
        } else {
            let s = start_index.to_string();
            target
                .list(&[("startIndex", s.as_str()), ("count", &count)])
                .await?
        };
        times.push(took);
        let n = body
            .get("Resources")
            .and_then(Value::as_array)
            .map_or(0, Vec::len) as u64;
        resources += n;
        let total = body
            .get("totalResults")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if by_cursor {
            match body.get("nextCursor").and_then(Value::as_str) {
                Some(c) if n > 0 => cursor = c.to_owned(),
                _ => break,
            }
        } else {
            start_index += n;
            if n == 0 || start_index > total {
                break;
            }
        }
    }
    let mut lat = Latencies::new();
    for t in &times {
        lat.record(*t);
    }
    let tenth = times.len().div_ceil(10).max(1);
    let tenth_means_ms = times
        .chunks(tenth)
        .map(|c| round3(c.iter().map(|d| d.as_secs_f64()).sum::<f64>() * 1000.0 / c.len() as f64))
        .collect();
    Ok(PageResult {
        by_cursor,
        pages: times.len() as u64,
        resources,
        total: started.elapsed(),
        first: times.first().copied().unwrap_or_default(),
        last: times.last().copied().unwrap_or_default(),
        lat,
        tenth_means_ms,
        timed_out,
    })
}
