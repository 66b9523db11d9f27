//! `roster-loadgen soak`: the soak test.
//!
//! One `roster serve` on SQLite in a temp folder, D directories, and for W
//! warm-up minutes then N measured minutes mixed SCIM traffic at a fixed total
//! rate (open loop: every client sends on its own clock, whatever the replies
//! take). Every minute it prints and records requests, errors by status,
//! latency and the server's memory; at the end, verdicts: no request errors
//! (warm-up included), flat memory (RSS at the end against RSS at the end of
//! the warm-up, and the least-squares slope of RSS over the measured minutes),
//! p99 of each measured minute within a bound. Loopback only, bounded in
//! minutes and by a hard timeout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::{Value, json};
use tokio::time::MissedTickBehavior;

use crate::server::{Server, load_average, memory_kib};
use crate::stats::{Latencies, round3};
use crate::users;

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Measured minutes of traffic (warm-up plus measured: at most 60).
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Minutes of the same traffic before the measured ones: reported, but
    /// only their errors count in the verdicts. RSS at their end is the
    /// memory baseline.
    #[arg(long, default_value_t = 3)]
    warmup_minutes: u64,
    /// Directories (tenants), each with its own token.
    #[arg(long, default_value_t = 5)]
    directories: usize,
    /// Total requests per second over all clients.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Concurrent clients per directory.
    #[arg(long, default_value_t = 2)]
    clients_per_directory: usize,
    /// Users each client creates before the timed traffic starts.
    #[arg(long, default_value_t = 100)]
    seed_users: u64,
    /// Verdict: every measured minute's p99 must be below this many milliseconds.
    #[arg(long, default_value_t = 50.0)]
    p99_bound_ms: f64,
    /// Verdict: RSS at the end must be at most this factor times the baseline
    /// (RSS at the end of the warm-up) ...
    #[arg(long, default_value_t = 1.25)]
    rss_factor: f64,
    /// ... or at most this many MiB above it (whichever is larger).
    #[arg(long, default_value_t = 32.0)]
    rss_slack_mib: f64,
    /// Verdict: the least-squares slope of RSS over the measured minutes
    /// (baseline included) must be at most this many MiB per minute.
    #[arg(long, default_value_t = 1.0)]
    rss_slope_mib_per_min: f64,
    /// The `roster` binary (default: beside this one).
    #[arg(long)]
    roster_bin: Option<PathBuf>,
    /// Where the temp database folder goes.
    #[arg(long, default_value = "/tmp")]
    work_dir: PathBuf,
    /// Keep the temp database folder afterwards.
    #[arg(long)]
    keep_db: bool,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Seed for the choice of operations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The traffic mix, in percent of requests.
const MIX: &[(Op, u32)] = &[
    (Op::Create, 14),
    (Op::Lookup, 22),
    (Op::PatchUser, 14),
    (Op::Put, 8),
    (Op::GroupAdd, 8),
    (Op::GroupRemove, 6),
    (Op::ListPage, 16),
    (Op::Get, 5),
    (Op::Delete, 5),
    (Op::Bulk, 2),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Lookup,
    PatchUser,
    Put,
    GroupAdd,
    GroupRemove,
    ListPage,
    Get,
    Delete,
    Bulk,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Lookup => "lookup",
            Op::PatchUser => "patch_user",
            Op::Put => "put",
            Op::GroupAdd => "group_add",
            Op::GroupRemove => "group_remove",
            Op::ListPage => "list_page",
            Op::Get => "get",
            Op::Delete => "delete",
            Op::Bulk => "bulk",
        }
    }
}

fn pick_op(rng: &mut StdRng) -> Op {
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut r = rng.random_range(0..total);
    for (op, w) in MIX {
        if r < *w {
            return *op;
        }
        r -= w;
    }
    Op::Lookup
}

/// One minute's worth of results, shared by all clients.
struct Minute {
    sent: u64,
    errors: BTreeMap<String, u64>,
    first_errors: Vec<String>,
    by_op: BTreeMap<&'static str, u64>,
    lat: Latencies,
}

impl Minute {
    fn new() -> Self {
        Minute {
            sent: 0,
            errors: BTreeMap::new(),
            first_errors: Vec::new(),
            by_op: BTreeMap::new(),
            lat: Latencies::new(),
        }
    }
}

type Shared = Arc<Mutex<Minute>>;

fn record(shared: &Shared, op: Op, took: Duration, error: Option<(String, String)>) {
    if let Ok(mut m) = shared.lock() {
        m.sent += 1;
        *m.by_op.entry(op.label()).or_default() += 1;
        m.lat.record(took);
        if let Some((key, detail)) = error {
            *m.errors.entry(key).or_default() += 1;
            if m.first_errors.len() < 5 {
                m.first_errors.push(detail);
            }
        }
    }
}

/// A client's own users and group, so clients never race on one resource.
struct Client1 {
    http: Client,
    base: String,
    auth: String,
    /// Index offset of this client's users (unique within the directory).
    next_index: u64,
    /// (index, id) of live users this client created.
    users: Vec<(u64, String)>,
    /// Ids of users this client put in its group.
    members: Vec<String>,
    group: String,
    cursor: Option<String>,
    rng: StdRng,
}

impl Client1 {
    /// Sends one request; Ok(status, body, latency); transport errors are Err.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>, Duration)> {
        let mut url = Url::parse(&format!("{}{path}", self.base))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self
            .http
            .request(method, url)
            .header("Authorization", &self.auth);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/scim+json")
                .body(serde_json::to_vec(b)?);
        }
        let t0 = Instant::now();
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        Ok((status, bytes.to_vec(), t0.elapsed()))
    }

    async fn create_user(&mut self) -> Result<(StatusCode, Vec<u8>, Duration)> {
        let i = self.next_index;
        self.next_index += 1;
        let r = self
            .send(
                Method::POST,
                "/Users",
                &[],
                Some(&users::user_body(i, None)),
            )
            .await?;
        if r.0 == StatusCode::CREATED {
            let v: Value = serde_json::from_slice(&r.1)?;
            if let Some(id) = v["id"].as_str() {
                self.users.push((i, id.to_owned()));
            }
        }
        Ok(r)
    }

    fn random_user(&mut self) -> Option<(u64, String)> {
        if self.users.is_empty() {
            return None;
        }
        let k = self.rng.random_range(0..self.users.len());
        Some(self.users[k].clone())
    }

    /// One operation: what it was, the status it got, whether that status was
    /// the expected one, and the latency.
    async fn step(&mut self, op: Op) -> Result<(Op, StatusCode, bool, Duration, String)> {
        // Too few users of our own for the write operations: create instead.
        let op = match op {
            Op::Delete if self.users.len() < 20 => Op::Create,
            Op::GroupRemove if self.members.is_empty() => Op::GroupAdd,
            o => o,
        };
        let op = if self.users.is_empty() && op != Op::ListPage && op != Op::Bulk {
            Op::Create
        } else {
            op
        };
        let ok2xx = |s: StatusCode, want: &[StatusCode]| want.contains(&s);
        let (status, body, took, expected) = match op {
            Op::Create => {
                let (s, b, t) = self.create_user().await?;
                (s, b, t, ok2xx(s, &[StatusCode::CREATED]))
            }
            Op::Lookup => {
                let Some((i, _)) = self.random_user() else {
                    bail!("no user of this client's own");
                };
                let f = format!("userName eq \"{}\"", users::user_name(i));
                let (s, b, t) = self
                    .send(Method::GET, "/Users", &[("filter", &f)], None)
                    .await?;
                let found = s == StatusCode::OK
                    && serde_json::from_slice::<Value>(&b)
                        .ok()
                        .and_then(|v| v["totalResults"].as_u64())
                        == Some(1);
                (s, b, t, found)
            }
            Op::Get => {
                let Some((_, id)) = self.random_user() else {
                    bail!("no user of this client's own");
                };
                let (s, b, t) = self
                    .send(Method::GET, &format!("/Users/{id}"), &[], None)
                    .await?;
                (s, b, t, ok2xx(s, &[StatusCode::OK]))
            }
            Op::PatchUser => {
                let Some((_, id)) = self.random_user() else {
                    bail!("no user of this client's own");
                };
                let title = format!("Title {}", self.rng.random_range(0..1000u32));
                let active = self.rng.random_range(0..4u32) != 0;
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [
                        {"op": "replace", "path": "title", "value": title},
                        {"op": "replace", "path": "active", "value": active},
                    ],
                });
                let (s, b, t) = self
                    .send(Method::PATCH, &format!("/Users/{id}"), &[], Some(&body))
                    .await?;
                (s, b, t, ok2xx(s, &[StatusCode::OK, StatusCode::NO_CONTENT]))
            }
            Op::Put => {
                let Some((i, id)) = self.random_user() else {
                    bail!("no user of this client's own");
                };
                let mut body = users::user_body(i, None);
                body["title"] = json!(format!("Put {}", self.rng.random_range(0..1000u32)));
                body["id"] = json!(id);
                let (s, b, t) = self
                    .send(Method::PUT, &format!("/Users/{id}"), &[], Some(&body))
                    .await?;
                (s, b, t, ok2xx(s, &[StatusCode::OK]))
            }
            Op::GroupAdd => {
                let Some((_, id)) = self.random_user() else {
                    bail!("no user of this client's own");
                };
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}],
                });
                let path = format!("/Groups/{}", self.group);
                let (s, b, t) = self.send(Method::PATCH, &path, &[], Some(&body)).await?;
                let ok = ok2xx(s, &[StatusCode::OK, StatusCode::NO_CONTENT]);
                if ok && !self.members.contains(&id) {
                    self.members.push(id);
                }
                (s, b, t, ok)
            }
            Op::GroupRemove => {
                let k = self.rng.random_range(0..self.members.len());
                let id = self.members.swap_remove(k);
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}],
                });
                let path = format!("/Groups/{}", self.group);
                let (s, b, t) = self.send(Method::PATCH, &path, &[], Some(&body)).await?;
                (s, b, t, ok2xx(s, &[StatusCode::OK, StatusCode::NO_CONTENT]))
            }
            Op::ListPage => {
                let cursor = self.cursor.clone().unwrap_or_default();
                let (s, b, t) = self
                    .send(
                        Method::GET,
                        "/Users",
                        &[("cursor", cursor.as_str()), ("count", "50")],
                        None,
                    )
                    .await?;
                if s == StatusCode::OK {
                    let v: Value = serde_json::from_slice(&b)?;
                    // Walk the directory page by page; start over at its end.
                    self.cursor = v["nextCursor"].as_str().map(str::to_owned);
                }
                (s, b, t, ok2xx(s, &[StatusCode::OK]))
            }
            Op::Delete => {
                let k = self.rng.random_range(0..self.users.len());
                let (_, id) = self.users.swap_remove(k);
                self.members.retain(|m| *m != id);
                let (s, b, t) = self
                    .send(Method::DELETE, &format!("/Users/{id}"), &[], None)
                    .await?;
                (s, b, t, ok2xx(s, &[StatusCode::NO_CONTENT]))
            }
            Op::Bulk => {
                // Three creates and a PATCH of one of them by bulkId reference.
                let first = self.next_index;
                self.next_index += 3;
                let mut ops: Vec<Value> = (first..first + 3)
                    .map(|i| {
                        json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                               "data": users::user_body(i, None)})
                    })
                    .collect();
                ops.push(
                    json!({"method": "PATCH", "path": format!("/Users/bulkId:b{first}"),
                    "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                             "Operations": [{"op": "replace", "path": "title", "value": "Bulk"}]}}),
                );
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": ops,
                });
                let (s, b, t) = self.send(Method::POST, "/Bulk", &[], Some(&body)).await?;
                let mut ok = s == StatusCode::OK;
                if ok {
                    let v: Value = serde_json::from_slice(&b)?;
                    let results = v["Operations"].as_array().cloned().unwrap_or_default();
                    ok = results.len() == 4;
                    for (n, r) in results.iter().enumerate() {
                        let st = match &r["status"] {
                            Value::String(x) => x.clone(),
                            other => other.to_string(),
                        };
                        if !st.starts_with('2') {
                            ok = false;
                        }
                        if n < 3
                            && st == "201"
                            && let Some(id) =
                                r["location"].as_str().and_then(|l| l.rsplit('/').next())
                        {
                            self.users.push((first + n as u64, id.to_owned()));
                        }
                    }
                }
                (s, b, t, ok)
            }
        };
        let detail = if expected {
            String::new()
        } else {
            let text = String::from_utf8_lossy(&body);
            format!(
                "{} {}: {}",
                op.label(),
                status.as_u16(),
                text.chars().take(300).collect::<String>()
            )
        };
        Ok((op, status, expected, took, detail))
    }
}

pub async fn run(args: SoakArgs) -> Result<()> {
    if args.minutes == 0 || args.minutes.saturating_add(args.warmup_minutes) > 60 {
        bail!(
            "--minutes must be at least 1 and --warmup-minutes plus --minutes at most 60 (a soak test is bounded)"
        );
    }
    if !(args.rss_factor >= 1.0 && args.rss_slack_mib >= 0.0 && args.rss_slope_mib_per_min >= 0.0) {
        bail!(
            "--rss-factor must be at least 1, --rss-slack-mib and --rss-slope-mib-per-min at least 0"
        );
    }
    if args.directories == 0 || args.clients_per_directory == 0 {
        bail!("--directories and --clients-per-directory must be at least 1");
    }
    if !(args.rate > 0.0 && args.rate <= 5000.0) {
        bail!("--rate must be in (0, 5000] requests/s");
    }
    let bin = match &args.roster_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("roster"),
    };
    if !bin.exists() {
        bail!("no roster binary at {}; give --roster-bin", bin.display());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let clients_total = args.directories * args.clients_per_directory;
    let http = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(clients_total * 2)
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()?;

    let mut server = Server::prepare(&bin, &args.work_dir)?;
    let mut dirs = Vec::new();
    for d in 0..args.directories {
        dirs.push(server.create_directory(&format!("soak-{d}")).await?);
    }
    server
        .start(
            &http,
            &format!("{}/ServiceProviderConfig", dirs[0].base_path),
        )
        .await?;
    let pid = server.pid();
    println!(
        "server: {} pid {} database {}",
        server.addr,
        pid.unwrap_or(0),
        server.dir.display()
    );
    let result = soak(&args, &http, &server, &dirs, pid).await;
    let _ = server.kill().await;
    if !args.keep_db {
        server.remove_files();
    }
    let (report, pass) = result?;
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("report: {}", path.display());
    }
    if !pass {
        bail!("soak test FAILED (see the verdicts above)");
    }
    Ok(())
}

async fn soak(
    args: &SoakArgs,
    http: &Client,
    server: &Server,
    dirs: &[crate::server::Directory],
    pid: Option<u32>,
) -> Result<(Value, bool)> {
    let clients_total = dirs.len() * args.clients_per_directory;
    // Seed: each client's group and first users, untimed.
    let mut clients = Vec::new();
    for (d, dir) in dirs.iter().enumerate() {
        for c in 0..args.clients_per_directory {
            let mut cl = Client1 {
                http: http.clone(),
                base: format!("http://{}{}", server.addr, dir.base_path),
                auth: format!("Bearer {}", dir.token),
                next_index: (c as u64) * 100_000_000,
                users: Vec::new(),
                members: Vec::new(),
                group: String::new(),
                cursor: None,
                rng: StdRng::seed_from_u64(args.seed ^ ((d * 1000 + c) as u64 + 1)),
            };
            let g = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": format!("soak-group-{c}"),
            });
            let (s, b, _) = cl.send(Method::POST, "/Groups", &[], Some(&g)).await?;
            if s != StatusCode::CREATED {
                bail!("POST /Groups: {s}: {}", String::from_utf8_lossy(&b));
            }
            let v: Value = serde_json::from_slice(&b)?;
            cl.group = v["id"].as_str().unwrap_or_default().to_owned();
            for _ in 0..args.seed_users {
                let (s, b, _) = cl.create_user().await?;
                if s != StatusCode::CREATED {
                    bail!("seed POST /Users: {s}: {}", String::from_utf8_lossy(&b));
                }
            }
            clients.push(cl);
        }
    }
    let seeded = clients_total as u64 * args.seed_users;
    println!(
        "seeded {seeded} users and {clients_total} groups in {} directories; {clients_total} clients at {} req/s total for {} warm-up + {} measured min",
        dirs.len(),
        args.rate,
        args.warmup_minutes,
        args.minutes
    );
    let mem_start = pid.and_then(memory_kib);
    let load_start = load_average();

    let shared: Shared = Arc::new(Mutex::new(Minute::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let period = Duration::from_secs_f64(clients_total as f64 / args.rate);
    let started = Instant::now();
    let total_minutes = args.warmup_minutes + args.minutes;
    let total = Duration::from_secs(total_minutes * 60);
    let mut tasks = Vec::new();
    for (k, mut cl) in clients.into_iter().enumerate() {
        let (shared, stop) = (shared.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            // Stagger the clients across one period so the load is smooth.
            let offset = period.mul_f64(k as f64 / clients_total as f64);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            // Open loop: a slow reply delays this client's next sends, which then
            // go out back to back to catch up with the schedule.
            tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let op = pick_op(&mut cl.rng);
                let t0 = Instant::now();
                match cl.step(op).await {
                    Ok((op, _, true, took, _)) => record(&shared, op, took, None),
                    Ok((op, status, false, took, detail)) => record(
                        &shared,
                        op,
                        took,
                        Some((status.as_u16().to_string(), detail)),
                    ),
                    Err(e) => record(
                        &shared,
                        op,
                        t0.elapsed(),
                        Some(("transport".into(), format!("{}: {e:#}", op.label()))),
                    ),
                }
            }
        }));
    }

    let mut minutes = Vec::new();
    // Warm-up and measured minutes are kept apart: the verdicts on latency and
    // memory use only the measured ones; errors count in both.
    let mut warm = Phase::new();
    let mut measured = Phase::new();
    let mut baseline_kib = mem_start.map_or(0, |(_, r)| r);
    let mut measured_rss = Vec::new();
    let mut timed_out = false;
    // Hard stop: warm-up and measured traffic, plus two minutes' grace for the
    // last requests.
    let hard_deadline = started + total + Duration::from_secs(120);
    for minute in 1..=total_minutes {
        let due = started + Duration::from_secs(minute * 60);
        tokio::time::sleep_until(due.into()).await;
        let m = match shared.lock() {
            Ok(mut g) => std::mem::replace(&mut *g, Minute::new()),
            Err(_) => bail!("a client panicked"),
        };
        let is_warmup = minute <= args.warmup_minutes;
        let (phase, k) = if is_warmup {
            ("warmup", minute)
        } else {
            ("measured", minute - args.warmup_minutes)
        };
        let mem = pid.and_then(memory_kib);
        let (hwm, rss) = mem.unwrap_or((0, 0));
        let detail = pid.map(memory_detail_kib).unwrap_or_default();
        let db_kib = db_size_kib(&server.dir);
        let errs: u64 = m.errors.values().sum();
        println!(
            "{} {k:>2}: sent {:>6} ({:.1}/s)  errors {errs}{}  {}  RSS {:.1} MiB (anon {:.1}, file {:.1}, huge pages {:.1})  peak {:.1} MiB  db {:.1} MiB  load {:.2}",
            if is_warmup { "warm-up" } else { "minute " },
            m.sent,
            m.sent as f64 / 60.0,
            if m.errors.is_empty() {
                String::new()
            } else {
                format!(" {:?}", m.errors)
            },
            m.lat.line(),
            rss as f64 / 1024.0,
            detail.get("RssAnon").copied().unwrap_or(0) as f64 / 1024.0,
            detail.get("RssFile").copied().unwrap_or(0) as f64 / 1024.0,
            detail.get("AnonHugePages").copied().unwrap_or(0) as f64 / 1024.0,
            hwm as f64 / 1024.0,
            db_kib as f64 / 1024.0,
            load_average().unwrap_or(0.0)
        );
        for e in &m.first_errors {
            println!("  error: {e}");
        }
        if is_warmup {
            warm.add(&m);
            if minute == args.warmup_minutes {
                baseline_kib = rss;
                println!(
                    "warm-up over: memory baseline (RSS) {:.1} MiB",
                    rss as f64 / 1024.0
                );
            }
        } else {
            measured.add(&m);
            measured_rss.push(rss);
        }
        minutes.push(json!({
            "minute": minute,
            "phase": phase,
            "phase_minute": k,
            "warmup": is_warmup,
            "sent": m.sent,
            "per_s": round3(m.sent as f64 / 60.0),
            "errors": errs,
            "errors_by_status": m.errors,
            "first_errors": m.first_errors,
            "by_op": m.by_op,
            "p50_ms": round3(m.lat.ms(0.50)),
            "p99_ms": round3(m.lat.ms(0.99)),
            "max_ms": round3(m.lat.max_ms()),
            "rss_kib": rss,
            "peak_kib": hwm,
            "status_kib": detail,
            "db_files_kib": db_kib,
            "load_average_1m": load_average(),
        }));
        if Instant::now() > hard_deadline {
            timed_out = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let left = hard_deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left.max(Duration::from_secs(1)), t)
            .await
            .is_err()
        {
            timed_out = true;
        }
    }
    // The requests in flight when the last minute closed.
    if let Ok(g) = shared.lock() {
        measured.add(&g);
    }
    let elapsed = started.elapsed();
    let mem_end = pid.and_then(memory_kib);
    let load_end = load_average();

    // Verdicts.
    let mut errors_total = warm.errors.clone();
    for (k, v) in &measured.errors {
        *errors_total.entry(k.clone()).or_default() += v;
    }
    let errors_sum: u64 = errors_total.values().sum();
    let no_errors = errors_sum == 0 && !timed_out;
    let rss_end = mem_end.map_or(0, |(_, r)| r);
    let memv = memory_verdict(
        baseline_kib,
        &measured_rss,
        rss_end,
        args.rss_factor,
        args.rss_slack_mib,
        args.rss_slope_mib_per_min,
    );
    let measured_p99 = |m: &&Value| m["phase"] == "measured";
    let worst_p99 = minutes
        .iter()
        .filter(measured_p99)
        .filter_map(|m| m["p99_ms"].as_f64())
        .fold(0.0, f64::max);
    let worst_p99_warmup = minutes
        .iter()
        .filter(|m| m["phase"] == "warmup")
        .filter_map(|m| m["p99_ms"].as_f64())
        .fold(0.0, f64::max);
    let p99_ok = worst_p99 <= args.p99_bound_ms && minutes.iter().any(|m| measured_p99(&m));
    let sent_total = warm.sent + measured.sent;
    let target = args.rate * total_minutes as f64 * 60.0;
    let verdict = |b: bool| if b { "PASS" } else { "FAIL" };
    println!(
        "summary: {sent_total} requests in {:.1} s ({:.1}/s, target {} /s, {:.1}% of schedule); warm-up {} requests, {}; measured {} requests, {}",
        elapsed.as_secs_f64(),
        sent_total as f64 / elapsed.as_secs_f64().max(1e-9),
        args.rate,
        100.0 * sent_total as f64 / target.max(1.0),
        warm.sent,
        warm.lat.line(),
        measured.sent,
        measured.lat.line()
    );
    println!(
        "verdict no request errors:       {}  ({errors_sum} errors {:?}: {} in warm-up, {} measured{})",
        verdict(no_errors),
        errors_total,
        warm.errors.values().sum::<u64>(),
        measured.errors.values().sum::<u64>(),
        if timed_out { ", TIMED OUT" } else { "" }
    );
    println!(
        "verdict flat memory (end):       {}  (baseline RSS {} {:.1} MiB, at end {:.1} MiB, bound max({}x, +{} MiB) = {:.1} MiB; peak {:.1} MiB)",
        verdict(memv.end_ok),
        if args.warmup_minutes > 0 {
            "at end of warm-up"
        } else {
            "when the traffic started (no warm-up)"
        },
        baseline_kib as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        args.rss_factor,
        args.rss_slack_mib,
        memv.bound_kib / 1024.0,
        mem_end.map_or(0, |(h, _)| h) as f64 / 1024.0
    );
    println!(
        "verdict flat memory (slope):     {}  (least-squares slope of RSS over the {} measured minutes {} MiB/min, bound {} MiB/min)",
        verdict(memv.slope_ok),
        measured_rss.len(),
        memv.slope_mib_per_min
            .map_or("n/a".to_owned(), |s| format!("{s:+.3}")),
        args.rss_slope_mib_per_min
    );
    println!(
        "verdict p99 per minute < {} ms:  {}  (worst measured minute p99 {worst_p99:.2} ms; worst warm-up minute {worst_p99_warmup:.2} ms)",
        args.p99_bound_ms,
        verdict(p99_ok)
    );
    println!("load average (1 min) at start {load_start:?}, at end {load_end:?} (2 shared cores)");
    let memory_flat = memv.end_ok && memv.slope_ok;
    let pass = no_errors && memory_flat && p99_ok;
    let report = json!({
        "mode": "soak",
        "database": "sqlite",
        "warmup_minutes": args.warmup_minutes,
        "minutes": args.minutes,
        "directories": dirs.len(),
        "clients": clients_total,
        "rate_per_s": args.rate,
        "seed_users_per_client": args.seed_users,
        "mix_percent": MIX.iter().map(|(o, w)| (o.label(), *w)).collect::<BTreeMap<_, _>>(),
        "elapsed_s": round3(elapsed.as_secs_f64()),
        "sent": sent_total,
        "sent_warmup": warm.sent,
        "sent_measured": measured.sent,
        "achieved_per_s": round3(sent_total as f64 / elapsed.as_secs_f64().max(1e-9)),
        "errors": errors_sum,
        "errors_warmup": warm.errors.values().sum::<u64>(),
        "errors_measured": measured.errors.values().sum::<u64>(),
        "errors_by_status": errors_total,
        "timed_out": timed_out,
        "latency": measured.lat.summary(),
        "latency_warmup": warm.lat.summary(),
        "memory": {
            "start": mem_start.map(|(h, r)| json!({"peak_kib": h, "rss_kib": r})),
            "baseline_rss_kib": baseline_kib,
            "baseline": if args.warmup_minutes > 0 { "RSS at the end of the warm-up" } else { "RSS when the traffic started (no warm-up)" },
            "end": mem_end.map(|(h, r)| json!({"peak_kib": h, "rss_kib": r})),
            "bound_kib": memv.bound_kib.round(),
            "slope_mib_per_min": memv.slope_mib_per_min.map(round3),
            "slope_bound_mib_per_min": args.rss_slope_mib_per_min,
        },
        "load_average_start": load_start,
        "load_average_end": load_end,
        "per_minute": minutes,
        "verdicts": {
            "no_request_errors": no_errors,
            "memory_flat": memory_flat,
            "memory_end_within_bound": memv.end_ok,
            "memory_bound": format!("RSS at end <= max({}x, +{} MiB) of RSS at the end of the warm-up", args.rss_factor, args.rss_slack_mib),
            "memory_slope_within_bound": memv.slope_ok,
            "memory_slope_bound": format!("least-squares slope of RSS over the measured minutes (baseline at minute 0) <= {} MiB/min", args.rss_slope_mib_per_min),
            "p99_within_bound": p99_ok,
            "p99_bound_ms": args.p99_bound_ms,
            "worst_minute_p99_ms": worst_p99,
            "worst_warmup_minute_p99_ms": worst_p99_warmup,
            "pass": pass,
        },
    });
    Ok((report, pass))
}

/// Sums of the minutes of one phase (warm-up or measured).
struct Phase {
    sent: u64,
    errors: BTreeMap<String, u64>,
    lat: Latencies,
}

impl Phase {
    fn new() -> Self {
        Phase {
            sent: 0,
            errors: BTreeMap::new(),
            lat: Latencies::new(),
        }
    }

    fn add(&mut self, m: &Minute) {
        self.sent += m.sent;
        for (k, v) in &m.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.lat.merge(&m.lat);
    }
}

/// The memory verdicts, from RSS samples in KiB.
#[derive(Debug, PartialEq)]
struct MemoryVerdict {
    /// max(factor × baseline, baseline + slack), KiB.
    bound_kib: f64,
    /// RSS at the end within `bound_kib` (and a baseline was measured).
    end_ok: bool,
    /// Least-squares slope of RSS in MiB per minute over the measured minutes.
    slope_mib_per_min: Option<f64>,
    /// The slope is known and at most the bound.
    slope_ok: bool,
}

/// `baseline_kib`: RSS when the measured minutes begin (end of warm-up);
/// `measured_kib[k]`: RSS at the end of measured minute k + 1; `end_kib`: RSS
/// after the traffic stopped. The slope is fitted to (0, baseline),
/// (1, measured[0]), …, so one measured minute is enough for it.
fn memory_verdict(
    baseline_kib: u64,
    measured_kib: &[u64],
    end_kib: u64,
    factor: f64,
    slack_mib: f64,
    slope_bound_mib_per_min: f64,
) -> MemoryVerdict {
    let base = baseline_kib as f64;
    let bound_kib = (base * factor).max(base + slack_mib * 1024.0);
    let end_ok = baseline_kib > 0 && end_kib > 0 && (end_kib as f64) <= bound_kib;
    let points: Vec<(f64, f64)> = std::iter::once(baseline_kib)
        .chain(measured_kib.iter().copied())
        .enumerate()
        .map(|(x, kib)| (x as f64, kib as f64 / 1024.0))
        .collect();
    let slope = if baseline_kib > 0 && measured_kib.iter().all(|&k| k > 0) {
        ls_slope(&points)
    } else {
        None
    };
    MemoryVerdict {
        bound_kib,
        end_ok,
        slope_mib_per_min: slope,
        slope_ok: slope.is_some_and(|s| s <= slope_bound_mib_per_min),
    }
}

/// The least-squares slope of y over x; None without two distinct x.
fn ls_slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    Some(sxy / sxx)
}

/// Where the server's memory is: the resident (RssAnon, RssFile, RssShmem),
/// VmData and Threads lines of /proc/PID/status, and AnonHugePages of
/// /proc/PID/smaps_rollup (anonymous memory in transparent huge pages, which
/// khugepaged can grow long after the allocations were made), in KiB
/// (Threads: a count).
fn memory_detail_kib(pid: u32) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    let sources: [(&str, &[&'static str]); 2] = [
        (
            "status",
            &["RssAnon", "RssFile", "RssShmem", "VmData", "Threads"],
        ),
        ("smaps_rollup", &["AnonHugePages"]),
    ];
    for (file, names) in sources {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/{file}")) else {
            continue;
        };
        for &name in names {
            let v = text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(v) = v {
                out.insert(name, v);
            }
        }
    }
    out
}

/// The size of the database files (roster.db, its WAL and shared memory), KiB.
fn db_size_kib(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("roster.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
                / 1024
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024;

    #[test]
    fn slope_of_a_line_and_of_too_few_points() {
        let line: Vec<(f64, f64)> = (0..11)
            .map(|x| (x as f64, 100.0 + 0.5 * x as f64))
            .collect();
        assert!((ls_slope(&line).unwrap() - 0.5).abs() < 1e-12);
        let flat: Vec<(f64, f64)> = (0..5).map(|x| (x as f64, 96.0)).collect();
        assert_eq!(ls_slope(&flat), Some(0.0));
        assert_eq!(ls_slope(&[(0.0, 1.0)]), None);
        assert_eq!(ls_slope(&[]), None);
        assert_eq!(ls_slope(&[(2.0, 1.0), (2.0, 5.0)]), None);
    }

    #[test]
    fn slope_ignores_noise_around_a_level() {
        // Up one minute, down the next: no trend.
        let zigzag: Vec<(f64, f64)> = (0..10)
            .map(|x| (x as f64, if x % 2 == 0 { 97.0 } else { 99.0 }))
            .chain(std::iter::once((10.0, 98.0)))
            .collect();
        assert!(ls_slope(&zigzag).unwrap().abs() < 0.2);
    }

    #[test]
    fn flat_memory_passes_both_verdicts() {
        // Minutes 4-10 of a run without warm-up, as if minutes 1-3 had been it.
        let measured = [97.8, 97.8, 97.0, 97.7, 99.4, 99.4].map(|m| (m * 1024.0) as u64);
        let v = memory_verdict(96 * MIB, &measured, 99 * MIB, 1.25, 32.0, 1.0);
        assert_eq!(v.bound_kib, (128 * MIB) as f64);
        assert!(v.end_ok);
        let s = v.slope_mib_per_min.unwrap();
        assert!(s > 0.3 && s < 0.7, "{s}");
        assert!(v.slope_ok);
    }

    #[test]
    fn steady_growth_fails_the_slope_though_the_end_is_within_bound() {
        // 2 MiB a minute for 10 minutes: +20 MiB, inside +32 MiB, but a leak.
        let measured: Vec<u64> = (1..=10).map(|k| (100 + 2 * k) * MIB).collect();
        let v = memory_verdict(100 * MIB, &measured, 120 * MIB, 1.25, 32.0, 1.0);
        assert!(v.end_ok);
        assert!((v.slope_mib_per_min.unwrap() - 2.0).abs() < 1e-9);
        assert!(!v.slope_ok);
    }

    #[test]
    fn end_above_bound_fails() {
        // Factor wins for a large baseline: 1.25 × 200 = 250 > 200 + 32.
        let v = memory_verdict(200 * MIB, &[200 * MIB], 251 * MIB, 1.25, 32.0, 1.0);
        assert_eq!(v.bound_kib, (250 * MIB) as f64);
        assert!(!v.end_ok);
        // Slack wins for a small one: 40 + 32 = 72 > 1.25 × 40.
        let v = memory_verdict(40 * MIB, &[40 * MIB], 72 * MIB, 1.25, 32.0, 1.0);
        assert!(v.end_ok);
    }

    #[test]
    fn unknown_memory_fails() {
        let v = memory_verdict(0, &[], 0, 1.25, 32.0, 1.0);
        assert!(!v.end_ok);
        assert!(!v.slope_ok);
        assert_eq!(v.slope_mib_per_min, None);
        let v = memory_verdict(100 * MIB, &[0, 100 * MIB], 100 * MIB, 1.25, 32.0, 1.0);
        assert!(!v.slope_ok);
    }
}
