//! `roster-loadgen scale`: Roster on PostgreSQL at scale.
//!
//! Makes a fresh PostgreSQL database, creates D directories with the CLI,
//! starts one or more `roster serve` on it, loads U users through /Bulk with
//! several concurrent clients, then reports the load rate, the database's
//! size, lookup latencies against the largest directory, a full cursor export
//! of it, each Roster process's peak memory, where the CPU went, and the
//! `EXPLAIN (ANALYZE, BUFFERS)` of the filters' exact SQL (captured from the
//! PostgreSQL log of a traced Roster instance). Every phase is bounded in
//! count and in time; everything talks to 127.0.0.1.

mod explain;
pub mod load;
pub mod pg;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::{Map, Value, json};

use self::explain::Captured;
use self::load::{Dir, LoadOutcome};
use self::pg::{LogTail, Pg, PgCpu};
use crate::server::{Server, cpu_secs, load_average, machine_cpu, memory_kib};
use crate::stats::{Latencies, round3};
use crate::{Target, check_loopback, page_all, users};

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// Users to load, spread over the directories.
    #[arg(long, default_value_t = 1_000_000)]
    pub users: u64,
    /// Directories to create.
    #[arg(long, default_value_t = 100)]
    pub directories: u64,
    /// Directory k (from 0) gets users in proportion to 1/(k+1)^skew, as
    /// customers differ in size; 0 makes them all equal.
    #[arg(long, default_value_t = 1.0)]
    pub skew: f64,
    /// Concurrent /Bulk clients (each on its own directory at any moment).
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Roster processes to start on the database; clients are spread over them.
    #[arg(long, default_value_t = 2)]
    pub instances: usize,
    /// Most operations per /Bulk request (also capped by the advertised maxOperations).
    #[arg(long, default_value_t = 1000)]
    pub chunk: usize,
    /// PostgreSQL connections per Roster process (roster --database-pool-size).
    #[arg(long)]
    pub pool_size: Option<u32>,
    /// Groups to create in the largest directory, for `members.value eq`.
    #[arg(long, default_value_t = 1000)]
    pub groups: u64,
    /// Members of each of those groups (random users of that directory).
    #[arg(long, default_value_t = 20)]
    pub group_members: u64,
    /// Runs of each lookup filter (after 10 unrecorded warm-ups).
    #[arg(long, default_value_t = 500)]
    pub lookups: u64,
    /// Page size of the cursor export.
    #[arg(long, default_value_t = 1000)]
    pub page_size: u64,
    /// Most seconds the user load may take; it stops there and reports what it did.
    #[arg(long, default_value_t = 1800)]
    pub load_timeout: u64,
    /// Most seconds any other phase may take.
    #[arg(long, default_value_t = 600)]
    pub phase_timeout: u64,
    /// The `roster` binary [default: `roster` beside this program].
    #[arg(long)]
    pub roster_bin: Option<PathBuf>,
    /// A superuser connection to PostgreSQL, to create and drop the run's database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_admin: String,
    /// Attach mode: a running `roster serve` on PostgreSQL, e.g. http://127.0.0.1:8080
    /// (repeat for several instances); needs --database.
    #[arg(long = "url", requires = "database")]
    pub urls: Vec<String>,
    /// Attach mode: the pids of those servers, to read their memory and CPU.
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Attach mode (or --reuse): the postgres:// URL of the database.
    #[arg(long)]
    pub database: Option<String>,
    /// Keep the run's database (and the servers' logs) afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Measure again a database an earlier run kept (--keep), given by
    /// --database: no load; new tokens for its bench-* directories, then the
    /// trace, EXPLAIN, lookups and export. The database is left in place.
    #[arg(long, requires = "database")]
    pub reuse: bool,
    /// PostgreSQL's log file, read to capture the statements a traced Roster runs.
    #[arg(long, default_value = "/var/log/postgresql/postgresql-15-main.log")]
    pub pg_log: PathBuf,
    /// Skip the traced instance (statement counts and EXPLAIN).
    #[arg(long)]
    pub no_trace: bool,
    /// Skip `VACUUM (ANALYZE)` after the load (and the measurements after it).
    #[arg(long)]
    pub no_vacuum: bool,
    /// Experiment only: drop the pg_trgm GIN index before the load, to
    /// measure what it costs per user (`co`/`ew` on names then scan).
    #[arg(long)]
    pub drop_trigram_indexes: bool,
    /// Where the servers' logs go.
    #[arg(long, default_value = "/tmp")]
    pub work_dir: PathBuf,
    /// Write the full JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Seed for the random choice of users to look up and of group members.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The servers the benchmark talks to.
struct Fleet {
    /// Base URLs (`http://127.0.0.1:PORT`), one per instance.
    urls: Vec<String>,
    pids: Vec<Option<u32>>,
    /// Servers this run started (killed at the end).
    owned: Vec<Server>,
}

impl Fleet {
    fn memory(&self) -> Value {
        Value::Array(
            self.pids
                .iter()
                .enumerate()
                .map(|(i, pid)| match pid.and_then(memory_kib) {
                    Some((hwm, rss)) => {
                        json!({"instance": i, "pid": pid, "peak_kib": hwm, "rss_kib": rss})
                    }
                    None => json!({"instance": i, "pid": pid}),
                })
                .collect(),
        )
    }

    fn cpu(&self) -> Vec<Option<f64>> {
        self.pids
            .iter()
            .map(|p| p.and_then(|p| cpu_secs(Some(p))))
            .collect()
    }
}

/// What the run created, to clean up whatever happens.
struct Cleanup {
    admin_url: String,
    database: Option<String>,
    keep: bool,
    log_dir: PathBuf,
}

pub async fn run(args: ScaleArgs) -> Result<()> {
    if args.users == 0 || args.directories == 0 || args.users < args.directories {
        bail!("give at least one user per directory (--users ≥ --directories ≥ 1)");
    }
    if args.clients == 0 || args.instances == 0 {
        bail!("--clients and --instances must be at least 1");
    }
    pg::check_loopback_pg(&args.pg_admin)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.clients * 2 + 4)
        .timeout(Duration::from_secs(600))
        .tcp_nodelay(true)
        .build()?;
    let bin = match &args.roster_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("roster"),
    };
    if !bin.exists() {
        bail!(
            "no roster binary at {}; build it (cargo build --release -p roster) or give --roster-bin",
            bin.display()
        );
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let log_dir = args.work_dir.join(format!("roster-scale-{stamp}"));
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;

    let admin = Pg::connect(&args.pg_admin).await?;
    let mut cleanup = Cleanup {
        admin_url: args.pg_admin.clone(),
        database: None,
        keep: args.keep,
        log_dir: log_dir.clone(),
    };
    let db_url = match &args.database {
        Some(url) => {
            pg::check_loopback_pg(url)?;
            url.clone()
        }
        None => {
            let name = format!("roster_bench_{stamp}");
            admin
                .batch(&format!("CREATE DATABASE {}", pg::ident(&name)?))
                .await?;
            cleanup.database = Some(name.clone());
            pg::with_database(&args.pg_admin, &name)?
        }
    };
    println!("database: {db_url}   logs: {}", log_dir.display());
    let mut report = Map::new();
    let result = run_in(&args, &bin, &client, &db_url, &log_dir, &mut report).await;
    finish(&cleanup, &admin).await;
    drop(admin);
    if let Err(e) = &result {
        report.insert("error".into(), json!(format!("{e:#}")));
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Object(report))?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("report: {}", path.display());
    }
    result
}

async fn finish(c: &Cleanup, admin: &Pg) {
    if c.keep {
        if let Some(db) = &c.database {
            println!("kept database {db} (--keep); drop it with: DROP DATABASE {db} WITH (FORCE)");
        }
        return;
    }
    if let Some(db) = &c.database {
        match admin
            .batch(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await
        {
            Ok(()) => println!("dropped database {db}"),
            Err(e) => println!(
                "could not drop {db} ({e:#}); drop it by hand from {}",
                c.admin_url
            ),
        }
        let _ = std::fs::remove_dir_all(&c.log_dir);
    }
}

async fn run_in(
    args: &ScaleArgs,
    bin: &std::path::Path,
    client: &Client,
    db_url: &str,
    log_dir: &std::path::Path,
    report: &mut Map<String, Value>,
) -> Result<()> {
    let db_name = pg::database_of(db_url)?;
    let db = Pg::connect(db_url).await?;
    report.insert(
        "machine".into(),
        json!({
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "load_average_start": load_average(),
            "postgresql": pg::settings(&db).await?,
        }),
    );
    report.insert(
        "parameters".into(),
        json!({
            "users": args.users, "directories": args.directories, "skew": args.skew,
            "clients": args.clients, "instances": args.instances, "chunk": args.chunk,
            "pool_size": args.pool_size, "groups": args.groups, "group_members": args.group_members,
            "lookups": args.lookups, "page_size": args.page_size,
            "drop_trigram_indexes": args.drop_trigram_indexes,
        }),
    );
    let env: Vec<(String, String)> = args
        .pool_size
        .map(|n| ("ROSTER_DATABASE_POOL_SIZE".to_owned(), n.to_string()))
        .into_iter()
        .collect();

    // Directories, with the CLI (the first run migrates the schema).
    let cli = Server::on_database(bin, db_url, log_dir, "cli.log", env.clone())?;
    let started = Instant::now();
    let mut dirs = Vec::new();
    let sizes = if args.reuse {
        dirs = reuse_directories(&db, &cli).await?;
        dirs.iter().map(|d| d.size).collect()
    } else {
        load::directory_sizes(args.users, args.directories, args.skew)
    };
    let mut first = 0u64;
    for (k, size) in sizes.iter().enumerate().filter(|_| !args.reuse) {
        let d = cli
            .create_directory(&format!("bench-{k:03}"))
            .await
            .with_context(|| format!("roster directory create bench-{k:03}"))?;
        dirs.push(Dir {
            base_path: d.base_path,
            auth: format!("Bearer {}", d.token),
            first,
            size: *size,
        });
        first += size;
    }
    let dir_s = started.elapsed().as_secs_f64();
    println!(
        "{} directories created with the CLI in {dir_s:.1} s; sizes {} (largest) … {} (smallest)",
        dirs.len(),
        sizes.first().copied().unwrap_or(0),
        sizes.last().copied().unwrap_or(0)
    );
    report.insert(
        "directories".into(),
        json!({
            "count": dirs.len(),
            "create_s": round3(dir_s),
            "largest": sizes.first(),
            "median": sizes.get(sizes.len() / 2),
            "smallest": sizes.last(),
        }),
    );

    if args.drop_trigram_indexes && !args.reuse {
        db.batch("DROP INDEX IF EXISTS attr_text_values_trgm")
            .await
            .context("dropping the trigram index")?;
        println!(
            "dropped the pg_trgm index (--drop-trigram-indexes): an experiment, not the product"
        );
    }

    // The servers.
    let mut fleet = if args.urls.is_empty() {
        let mut owned = Vec::new();
        for i in 0..args.instances {
            let mut s =
                Server::on_database(bin, db_url, log_dir, &format!("serve-{i}.log"), env.clone())?;
            s.start(
                client,
                &format!("{}/ServiceProviderConfig", dirs[0].base_path),
            )
            .await?;
            owned.push(s);
        }
        Fleet {
            urls: owned.iter().map(|s| format!("http://{}", s.addr)).collect(),
            pids: owned.iter().map(Server::pid).collect(),
            owned,
        }
    } else {
        for u in &args.urls {
            check_loopback(u)?;
        }
        Fleet {
            urls: args
                .urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            pids: (0..args.urls.len())
                .map(|i| args.server_pids.get(i).copied())
                .collect(),
            owned: Vec::new(),
        }
    };
    println!("servers: {} (pids {:?})", fleet.urls.join(", "), fleet.pids);
    let result = measure(
        args, client, &db, &db_name, db_url, bin, log_dir, &env, &dirs, &fleet, report,
    )
    .await;
    for s in &mut fleet.owned {
        let _ = s.kill().await;
    }
    report.insert("load_average_end".into(), json!(load_average()));
    result
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &ScaleArgs,
    client: &Client,
    db: &Pg,
    db_name: &str,
    db_url: &str,
    bin: &std::path::Path,
    log_dir: &std::path::Path,
    env: &[(String, String)],
    dirs: &[Dir],
    fleet: &Fleet,
    report: &mut Map<String, Value>,
) -> Result<()> {
    let mut memory = Map::new();
    let sample = |phase: &str, memory: &mut Map<String, Value>| sample_memory(fleet, phase, memory);
    sample("start", &mut memory);

    // Discovery: how many operations one /Bulk request may carry.
    let spc = get_json(
        client,
        &format!(
            "{}{}/ServiceProviderConfig",
            fleet.urls[0], dirs[0].base_path
        ),
        &dirs[0].auth,
    )
    .await?;
    let max_ops = spc["bulk"]["maxOperations"].as_u64().unwrap_or(1000) as usize;
    let max_payload = spc["bulk"]["maxPayloadSize"].as_u64().unwrap_or(1 << 20) as usize;
    let chunk = args.chunk.min(max_ops).max(1);
    println!(
        "bulk: maxOperations {max_ops}, maxPayloadSize {max_payload}: {chunk} users per request"
    );

    if args.reuse {
        return remeasure(
            args, client, db, db_name, db_url, bin, log_dir, env, dirs, fleet, report, memory,
        )
        .await;
    }
    // The load, with CPU accounting around it.
    let before = Accounting::take(db, fleet).await?;
    let load = load::load_users(
        client,
        &fleet.urls,
        dirs,
        chunk,
        max_payload,
        args.clients,
        Duration::from_secs(args.load_timeout),
    )
    .await?;
    let after = Accounting::take(db, fleet).await?;
    load.print();
    let mut load_json = load.to_json();
    if let Value::Object(o) = &mut load_json {
        o.insert("cpu".into(), after.since(&before, load.created));
    }
    println!("{}", cpu_line(&load_json["cpu"]));
    report.insert("load".into(), load_json);
    sample("load", &mut memory);
    if load.created == 0 {
        report.insert("memory".into(), Value::Object(memory));
        bail!("no user was created; see the errors above");
    }

    // Groups in the largest directory, for members.value eq.
    let mut rng = StdRng::seed_from_u64(args.seed);
    let largest = &dirs[0];
    let groups = if args.groups > 0 {
        let g = load::load_groups(
            client,
            &fleet.urls[0],
            largest,
            &load.largest_ids,
            args.groups,
            args.group_members,
            chunk.min(100),
            &mut rng,
            Duration::from_secs(args.phase_timeout),
        )
        .await?;
        println!(
            "groups: {} groups with {} memberships in {:.2} s ({:.0} memberships/s), {} failed",
            g.created,
            g.memberships,
            g.seconds,
            g.memberships as f64 / g.seconds.max(1e-9),
            g.failed
        );
        report.insert("groups".into(), g.to_json());
        g.member_ids
    } else {
        Vec::new()
    };
    sample("groups", &mut memory);

    let picks_of = |recent| Picks {
        users: load.largest_ids.clone(),
        members: groups.clone(),
        recent,
    };
    let largest_target = Target {
        client: client.clone(),
        base: format!("{}{}", fleet.urls[0], largest.base_path),
        auth: largest.auth.clone(),
    };
    let picks = picks_of(recent_last_modified(&largest_target).await?);
    after_load(
        args, client, db, db_name, db_url, bin, log_dir, env, dirs, fleet, report, memory, picks,
        rng,
    )
    .await
}

/// Everything after the load: sizes, trace and EXPLAIN, lookups, VACUUM
/// (ANALYZE), EXPLAIN and lookups again, the export.
#[allow(clippy::too_many_arguments)]
async fn after_load(
    args: &ScaleArgs,
    client: &Client,
    db: &Pg,
    db_name: &str,
    db_url: &str,
    bin: &std::path::Path,
    log_dir: &std::path::Path,
    env: &[(String, String)],
    dirs: &[Dir],
    fleet: &Fleet,
    report: &mut Map<String, Value>,
    mut memory: Map<String, Value>,
    picks: Picks,
    mut rng: StdRng,
) -> Result<()> {
    let sample = |phase: &str, memory: &mut Map<String, Value>| sample_memory(fleet, phase, memory);
    let largest = &dirs[0];
    let sizes = pg::sizes(db).await?;
    print_sizes(&sizes);
    report.insert("database".into(), sizes);
    report.insert("statistics_after_load".into(), pg::analyze_state(db).await?);

    let largest_target = Target {
        client: client.clone(),
        base: format!("{}{}", fleet.urls[0], largest.base_path),
        auth: largest.auth.clone(),
    };

    // Trace: statement counts per create and the exact SQL of each filter.
    let captured = if args.no_trace {
        Vec::new()
    } else {
        let smallest = dirs.last().unwrap_or(largest);
        match trace(
            args, client, db_url, db_name, bin, log_dir, env, largest, smallest, &picks, &mut rng,
        )
        .await
        {
            Ok((t, captured)) => {
                report.insert("trace".into(), t);
                captured
            }
            Err(e) => {
                println!("trace skipped: {e:#}");
                report.insert("trace".into(), json!({"error": format!("{e:#}")}));
                Vec::new()
            }
        }
    };
    if !captured.is_empty() {
        let plans = explain_all(db, &captured, "as loaded").await?;
        report.insert("explain_as_loaded".into(), plans);
    }
    let timeout = Duration::from_secs(args.phase_timeout);
    let l = lookups(&largest_target, &picks, args.lookups, &mut rng, timeout).await?;
    report.insert("lookups_as_loaded".into(), l);
    sample("lookups", &mut memory);

    if !args.no_vacuum {
        let t = Instant::now();
        db.batch("VACUUM (ANALYZE)").await?;
        let s = t.elapsed().as_secs_f64();
        println!("VACUUM (ANALYZE) of the whole database: {s:.1} s");
        report.insert("vacuum_analyze_s".into(), json!(round3(s)));
        report.insert(
            "statistics_after_vacuum".into(),
            pg::analyze_state(db).await?,
        );
        if !captured.is_empty() {
            let plans = explain_all(db, &captured, "after VACUUM (ANALYZE)").await?;
            report.insert("explain".into(), plans);
        }
        let l = lookups(&largest_target, &picks, args.lookups, &mut rng, timeout).await?;
        report.insert("lookups".into(), l);
        sample("lookups after vacuum", &mut memory);
    }

    // The full export of the largest directory, by cursor.
    let cpu0 = fleet.cpu();
    let export = page_all(&largest_target, args.page_size, true, largest.size, timeout).await?;
    let cpu1 = fleet.cpu();
    export.print();
    let mut e = export.to_json();
    if let Value::Object(o) = &mut e {
        let rate = export.resources as f64 / export.total.as_secs_f64().max(1e-9);
        println!("export: {:.0} users/s", rate);
        o.insert("rows_per_s".into(), json!(rate.round()));
        o.insert("server_cpu_s".into(), json!(cpu_delta(&cpu0, &cpu1)));
    }
    report.insert("export".into(), e);
    sample("export", &mut memory);
    report.insert("memory".into(), Value::Object(memory));
    Ok(())
}

fn sample_memory(fleet: &Fleet, phase: &str, memory: &mut Map<String, Value>) {
    let m = fleet.memory();
    let peaks: Vec<String> = m
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["peak_kib"].as_u64())
        .map(|k| format!("{:.1}", k as f64 / 1024.0))
        .collect();
    println!(
        "memory after {phase}: peak MiB per instance {}",
        peaks.join(", ")
    );
    memory.insert(phase.into(), m);
}

/// The bench-* directories of a kept database, largest first, each with a new token.
async fn reuse_directories(db: &Pg, cli: &Server) -> Result<Vec<Dir>> {
    let rows = db
        .rows(
            "SELECT d.id, count(r.id) FROM directories d
             LEFT JOIN resources r ON r.directory_id = d.id AND r.rtype = 1
             WHERE d.name LIKE 'bench-%' GROUP BY d.id, d.name ORDER BY d.name",
        )
        .await?;
    if rows.is_empty() {
        bail!(
            "no bench-* directories in this database: was it made by `roster-loadgen scale --keep`?"
        );
    }
    let last = rows.len() - 1;
    let mut dirs = Vec::new();
    for (k, r) in rows.into_iter().enumerate() {
        let id = r.first().cloned().flatten().unwrap_or_default();
        let size: u64 = r
            .get(1)
            .cloned()
            .flatten()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // Only the largest and the smallest are measured.
        let auth = if k == 0 || k == last {
            format!("Bearer {}", cli.issue_token(&id).await?)
        } else {
            String::new()
        };
        dirs.push(Dir {
            base_path: format!("/scim/v2/{id}"),
            auth,
            first: 0,
            size,
        });
    }
    Ok(dirs)
}

/// --reuse: the kept database's largest directory, as the run left it.
#[allow(clippy::too_many_arguments)]
async fn remeasure(
    args: &ScaleArgs,
    client: &Client,
    db: &Pg,
    db_name: &str,
    db_url: &str,
    bin: &std::path::Path,
    log_dir: &std::path::Path,
    env: &[(String, String)],
    dirs: &[Dir],
    fleet: &Fleet,
    report: &mut Map<String, Value>,
    memory: Map<String, Value>,
) -> Result<()> {
    let largest = &dirs[0];
    let dir_id = largest.base_path.rsplit('/').next().unwrap_or_default();
    // Users' indexes are in their userNames (`given.family.INDEX@example.com`).
    let users: Vec<(u64, String)> = db
        .rows(&format!(
            "SELECT id, doc->>'userName' FROM resources WHERE directory_id = {} AND rtype = 1",
            pg::literal(dir_id)
        ))
        .await?
        .into_iter()
        .filter_map(|r| {
            let id = r.first().cloned().flatten()?;
            let name = r.get(1).cloned().flatten()?;
            let i = name.split('@').next()?.rsplit('.').next()?.parse().ok()?;
            Some((i, id))
        })
        .collect();
    let members: Vec<String> = db
        .rows(&format!(
            "SELECT DISTINCT member_id FROM group_members WHERE directory_id = {}",
            pg::literal(dir_id)
        ))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    println!(
        "reusing {db_name}: largest directory {} users ({} found by index), {} group members",
        largest.size,
        users.len(),
        members.len()
    );
    let largest_target = Target {
        client: client.clone(),
        base: format!("{}{}", fleet.urls[0], largest.base_path),
        auth: largest.auth.clone(),
    };
    let picks = Picks {
        users,
        members,
        recent: recent_last_modified(&largest_target).await?,
    };
    let rng = StdRng::seed_from_u64(args.seed);
    after_load(
        args, client, db, db_name, db_url, bin, log_dir, env, dirs, fleet, report, memory, picks,
        rng,
    )
    .await
}

/// CPU and system calls of every party, for "where does the time go".
struct Accounting {
    at: Instant,
    roster: Vec<Option<f64>>,
    pg: PgCpu,
    loadgen: Option<f64>,
    machine: Option<(f64, f64)>,
}

impl Accounting {
    async fn take(db: &Pg, fleet: &Fleet) -> Result<Accounting> {
        Ok(Accounting {
            at: Instant::now(),
            roster: fleet.cpu(),
            pg: PgCpu::sample(db).await?,
            loadgen: cpu_secs(None),
            machine: machine_cpu(),
        })
    }

    fn since(&self, before: &Accounting, users: u64) -> Value {
        let per_user_us = |s: Option<f64>| s.map(|s| (s * 1e6 / users.max(1) as f64).round());
        let roster_s = cpu_delta(&before.roster, &self.roster);
        let pg = self.pg.since(&before.pg);
        let backends = pg["backends_s"].as_f64();
        let loadgen = match (before.loadgen, self.loadgen) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let wall = self.at.duration_since(before.at).as_secs_f64();
        let machine = match (before.machine, self.machine) {
            (Some(a), Some(b)) => Some(json!({
                "busy_s": round3(b.0 - a.0),
                "cores_busy": round3((b.0 - a.0) / wall.max(1e-9)),
                "capacity_s": round3(b.1 - a.1),
            })),
            _ => None,
        };
        json!({
            "wall_s": round3(wall),
            "roster_s": roster_s,
            "roster_us_per_user": per_user_us(roster_s),
            "postgres": pg,
            "postgres_backends_us_per_user": per_user_us(backends),
            "loadgen_s": loadgen.map(round3),
            "loadgen_us_per_user": per_user_us(loadgen),
            "machine": machine,
        })
    }
}

fn cpu_delta(a: &[Option<f64>], b: &[Option<f64>]) -> Option<f64> {
    a.iter()
        .zip(b)
        .map(|(a, b)| Some(b.as_ref()? - a.as_ref()?))
        .sum::<Option<f64>>()
        .map(round3)
}

fn cpu_line(c: &Value) -> String {
    format!(
        "CPU during the load: Roster {}s ({} µs/user), PostgreSQL backends {}s ({} µs/user), WAL/checkpoint {}s, other postgres {}s, loadgen {}s; machine {} of the cores busy over {}s",
        c["roster_s"],
        c["roster_us_per_user"],
        c["postgres"]["backends_s"],
        c["postgres_backends_us_per_user"],
        c["postgres"]["wal_checkpoint_bgwriter_s"],
        c["postgres"]["other_postgres_s"],
        c["loadgen_s"],
        c["machine"]["cores_busy"],
        c["wall_s"],
    )
}

fn print_sizes(s: &Value) {
    let mib = |v: &Value| v.as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
    println!("database size: {:.1} MiB", mib(&s["database_bytes"]));
    if let Some(t) = s["tables"].as_object() {
        for (name, v) in t {
            println!(
                "  {name:<18} heap {:>8.1} MiB  indexes {:>8.1} MiB  total {:>8.1} MiB  rows {}",
                mib(&v["heap_bytes"]),
                mib(&v["index_bytes"]),
                mib(&v["total_bytes"]),
                s["rows"].get(name).unwrap_or(&v["estimated_rows"])
            );
        }
    }
}

async fn get_json(client: &Client, url: &str, auth: &str) -> Result<Value> {
    let resp = client.get(url).header("Authorization", auth).send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if status != StatusCode::OK {
        bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

/// What the lookups choose from.
struct Picks {
    /// (index, id) of users of the largest directory.
    users: Vec<(u64, String)>,
    /// Ids of users that belong to a group.
    members: Vec<String>,
    /// meta.lastModified of the directory's 40 most recent users.
    recent: Vec<String>,
}

impl Picks {
    fn user(&self, rng: &mut StdRng) -> Option<u64> {
        (!self.users.is_empty()).then(|| self.users[rng.random_range(0..self.users.len())].0)
    }
}

async fn recent_last_modified(t: &Target) -> Result<Vec<String>> {
    let (body, _) = t
        .list(&[
            ("sortBy", "meta.lastModified"),
            ("sortOrder", "descending"),
            ("count", "40"),
        ])
        .await?;
    Ok(body["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["meta"]["lastModified"].as_str().map(str::to_owned))
        .collect())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Query {
    UserNameEq,
    UserNameSw,
    EmailEq,
    EmailCo,
    ExternalIdEq,
    MembersEq,
    LastModifiedGt,
    /// A cursor page of the whole directory (no filter), as the export reads.
    CursorPage,
    /// The same in the smallest directory. PostgreSQL may page a directory by
    /// walking `resources_pkey` (id order) and skipping other directories'
    /// rows; its statistics decide per directory, so both ends are checked.
    CursorPageSmallest,
}

impl Query {
    fn label(self) -> &'static str {
        match self {
            Query::UserNameEq => "userName eq",
            Query::UserNameSw => "userName sw",
            Query::EmailEq => "emails.value eq",
            Query::EmailCo => "emails.value co",
            Query::ExternalIdEq => "externalId eq",
            Query::MembersEq => "members.value eq (Groups)",
            Query::LastModifiedGt => "meta.lastModified gt",
            Query::CursorPage => "cursor page (no filter)",
            Query::CursorPageSmallest => "cursor page (no filter), smallest directory",
        }
    }

    fn endpoint(self) -> &'static str {
        if self == Query::MembersEq {
            "Groups"
        } else {
            "Users"
        }
    }

    /// The filter for a random target, or None when there is nothing to pick from.
    fn filter(self, picks: &Picks, rng: &mut StdRng) -> Option<String> {
        let lower = |s: &str| {
            s.to_lowercase()
                .replace('é', "e")
                .chars()
                .filter(char::is_ascii)
                .collect::<String>()
        };
        Some(match self {
            Query::UserNameEq => format!("userName eq \"{}\"", users::user_name(picks.user(rng)?)),
            Query::UserNameSw => {
                // "amara.ka": a given name and a family name's first syllable, a
                // type-ahead search matching hundreds of users in a large directory.
                let i = picks.user(rng)?;
                let family = users::family_name(i).to_lowercase();
                let syllable: String = family.chars().take(2).collect();
                format!("userName sw \"{}.{syllable}\"", lower(users::given_name(i)))
            }
            Query::EmailEq => format!(
                "emails.value eq \"{}\"",
                users::work_email(picks.user(rng)?)
            ),
            Query::EmailCo => {
                let i = picks.user(rng)?;
                format!(
                    "emails.value co \"{}{i}@corp\"",
                    users::family_name(i).to_lowercase()
                )
            }
            Query::ExternalIdEq => {
                format!("externalId eq \"{}\"", users::external_id(picks.user(rng)?))
            }
            Query::MembersEq => {
                if picks.members.is_empty() {
                    return None;
                }
                let id = &picks.members[rng.random_range(0..picks.members.len())];
                format!("members.value eq \"{id}\"")
            }
            Query::LastModifiedGt => {
                if picks.recent.is_empty() {
                    return None;
                }
                let t = &picks.recent[rng.random_range(0..picks.recent.len())];
                format!("meta.lastModified gt \"{t}\"")
            }
            Query::CursorPage | Query::CursorPageSmallest => return None,
        })
    }
}

/// Lookup latencies against the largest directory: one client, bounded in
/// runs and in time, after 10 unrecorded warm-ups per filter.
async fn lookups(
    t: &Target,
    picks: &Picks,
    runs: u64,
    rng: &mut StdRng,
    timeout: Duration,
) -> Result<Value> {
    let mut out = Map::new();
    // Each lookup is paired with a request that reads no resource (GET
    // /ServiceProviderConfig: the token check only), sent just before it
    // through the same client and server: the floor under every lookup,
    // and what the shared machine adds to the tail at that moment.
    let mut spc = Latencies::new();
    for q in [
        Query::UserNameEq,
        Query::EmailEq,
        Query::LastModifiedGt,
        Query::ExternalIdEq,
        Query::MembersEq,
    ] {
        let deadline = Instant::now() + timeout;
        let mut lat = Latencies::new();
        let mut base = Latencies::new();
        let (mut matches, mut misses, mut done) = (0u64, 0u64, 0u64);
        for run in 0..runs + 10 {
            if Instant::now() >= deadline {
                break;
            }
            let Some(filter) = q.filter(picks, rng) else {
                break;
            };
            let (_, floor) = t.list_at("ServiceProviderConfig", &[]).await?;
            let (body, took) = t
                .list_at(q.endpoint(), &[("filter", filter.as_str())])
                .await?;
            if run < 10 {
                continue;
            }
            done += 1;
            lat.record(took);
            base.record(floor);
            spc.record(floor);
            let n = body["totalResults"].as_u64().unwrap_or(0);
            matches += n;
            // A `gt` the newest user's time matches nobody, rightly.
            misses += u64::from(n == 0 && q != Query::LastModifiedGt);
        }
        if done == 0 {
            continue;
        }
        println!(
            "lookup {:<28} n={done:<5} {}  (mean matches {:.1}, misses {misses}); paired baseline p50 {:.2} ms p99 {:.2} ms",
            q.label(),
            lat.line(),
            matches as f64 / done as f64,
            base.ms(0.5),
            base.ms(0.99)
        );
        let mut v = lat.summary();
        if let Value::Object(o) = &mut v {
            o.insert("paired_baseline".into(), base.summary());
            o.insert(
                "mean_matches".into(),
                json!(round3(matches as f64 / done as f64)),
            );
            o.insert("misses".into(), json!(misses));
            o.insert("timed_out".into(), json!(done < runs));
        }
        out.insert(q.label().into(), v);
    }
    println!(
        "lookup {:<28} n={:<5} {}  (all paired baselines)",
        "GET /ServiceProviderConfig",
        spc.count(),
        spc.line()
    );
    out.insert(
        "GET /ServiceProviderConfig (baseline)".into(),
        spc.summary(),
    );
    Ok(Value::Object(out))
}

/// Starts a Roster whose sessions log every statement
/// (`log_min_duration_statement = 0`), runs one small /Bulk request and one
/// request per benchmark query through it, and reads back from the
/// PostgreSQL log what it executed.
#[allow(clippy::too_many_arguments)]
async fn trace(
    args: &ScaleArgs,
    client: &Client,
    db_url: &str,
    db_name: &str,
    bin: &std::path::Path,
    log_dir: &std::path::Path,
    env: &[(String, String)],
    largest: &Dir,
    smallest: &Dir,
    picks: &Picks,
    rng: &mut StdRng,
) -> Result<(Value, Vec<Captured>)> {
    let traced_url = pg::with_session_settings(db_url, &[("log_min_duration_statement", "0")])?;
    let mut tail = LogTail::new(args.pg_log.clone())?;
    let mut s = Server::on_database(bin, &traced_url, log_dir, "serve-traced.log", env.to_vec())?;
    s.start(
        client,
        &format!("{}/ServiceProviderConfig", largest.base_path),
    )
    .await?;
    let result = trace_with(
        client,
        &format!("http://{}", s.addr),
        db_name,
        (largest, smallest),
        picks,
        rng,
        // Users never made before: past the load's, and past earlier traces when reused.
        if args.reuse {
            1_000_000_000
                + std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() % 1_000_000)
                    .unwrap_or(0)
                    * 1000
        } else {
            args.users
        },
        &mut tail,
    )
    .await;
    let _ = s.kill().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn trace_with(
    client: &Client,
    url: &str,
    db_name: &str,
    (largest, smallest): (&Dir, &Dir),
    picks: &Picks,
    rng: &mut StdRng,
    first_new: u64,
    tail: &mut LogTail,
) -> Result<(Value, Vec<Captured>)> {
    let _ = tail.read()?;
    // 1. One /Bulk request of 100 new users: the statements behind each create.
    // They go to the smallest directory, so the largest stays as loaded.
    let n = 100u64;
    let body = load::bulk_body(first_new..first_new + n);
    let t0 = Instant::now();
    let resp = client
        .post(format!("{url}{}/Bulk", smallest.base_path))
        .header("Authorization", &smallest.auth)
        .header("Content-Type", "application/scim+json")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let _ = resp.bytes().await?;
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    if status != StatusCode::OK {
        bail!("traced /Bulk: {status}");
    }
    let stmts = pg::statements(&tail.read()?, db_name);
    let writer = stmts
        .iter()
        .find(|s| s.sql.starts_with("INSERT INTO resources") || s.sql.starts_with("COPY resources"))
        .map(|s| s.pid)
        .context(
            "the PostgreSQL log shows no INSERT INTO or COPY resources: is --pg-log the server's log?",
        )?;
    let mine: Vec<&pg::Statement> = stmts.iter().filter(|s| s.pid == writer).collect();
    let count = |p: pg::Phase| mine.iter().filter(|s| s.phase == p).count();
    let (parses, binds, executes, simple) = (
        count(pg::Phase::Parse),
        count(pg::Phase::Bind),
        count(pg::Phase::Execute),
        count(pg::Phase::Simple),
    );
    let pg_ms: f64 = mine.iter().map(|s| s.ms).sum();
    let mut by_sql: Vec<(String, usize)> = Vec::new();
    for s in mine
        .iter()
        .filter(|s| matches!(s.phase, pg::Phase::Execute | pg::Phase::Simple))
    {
        let key: String = s.sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let key: String = if key.is_empty() {
            "<empty query: the pool's check of a connection>".to_owned()
        } else {
            key.chars().take(90).collect()
        };
        match by_sql.iter_mut().find(|(k, _)| *k == key) {
            Some((_, c)) => *c += 1,
            None => by_sql.push((key, 1)),
        }
    }
    let round_trips = parses + executes + simple;
    println!(
        "trace: /Bulk of {n} users: {round_trips} round trips ({:.2} per user: {executes} executes, {parses} parses, {simple} simple statements), \
         PostgreSQL busy {pg_ms:.1} ms of {wall_ms:.1} ms wall (logging on)",
        round_trips as f64 / n as f64
    );
    for (sql, c) in &by_sql {
        println!("  {c:>5} × {sql}");
    }
    let bulk = json!({
        "users": n,
        "wall_ms": round3(wall_ms),
        "postgres_ms": round3(pg_ms),
        "round_trips": round_trips,
        "round_trips_per_user": round3(round_trips as f64 / n as f64),
        "executes": executes, "binds": binds, "parses": parses, "simple_statements": simple,
        "statements": by_sql.iter().map(|(s, c)| json!({"count": c, "sql": s})).collect::<Vec<_>>(),
    });

    // 2. One request per query, capturing its count and page statements.
    let target = Target {
        client: client.clone(),
        base: format!("{url}{}", largest.base_path),
        auth: largest.auth.clone(),
    };
    let small = Target {
        client: client.clone(),
        base: format!("{url}{}", smallest.base_path),
        auth: smallest.auth.clone(),
    };
    let mut captured = Vec::new();
    let mut requests = Vec::new();
    for q in [
        Query::UserNameEq,
        Query::UserNameSw,
        Query::EmailEq,
        Query::EmailCo,
        Query::ExternalIdEq,
        Query::MembersEq,
        Query::LastModifiedGt,
        Query::CursorPage,
        Query::CursorPageSmallest,
    ] {
        let (body, params) = if matches!(q, Query::CursorPage | Query::CursorPageSmallest) {
            let target = if q == Query::CursorPage {
                &target
            } else {
                &small
            };
            let (first, _) = target.list(&[("cursor", ""), ("count", "1000")]).await?;
            let next = first["nextCursor"].as_str().unwrap_or_default().to_owned();
            let _ = tail.read()?;
            let (b, _) = target
                .list(&[("cursor", next.as_str()), ("count", "1000")])
                .await?;
            (b, "cursor=…&count=1000".to_owned())
        } else {
            let Some(filter) = q.filter(picks, rng) else {
                continue;
            };
            let _ = tail.read()?;
            let (b, _) = target
                .list_at(q.endpoint(), &[("filter", filter.as_str())])
                .await?;
            (b, filter)
        };
        let matches = body["totalResults"].as_u64().unwrap_or(0);
        let stmts = pg::statements(&tail.read()?, db_name);
        let trips = stmts.iter().filter(|s| s.phase != pg::Phase::Bind).count();
        requests.push(
            json!({"query": q.label(), "params": params, "matches": matches, "round_trips": trips,
            "postgres_ms": round3(stmts.iter().map(|s| s.ms).sum::<f64>())}),
        );
        for s in stmts.into_iter().filter(|s| {
            s.phase == pg::Phase::Execute && s.sql.contains("FROM resources r WHERE r.directory_id")
        }) {
            let role = if s.sql.starts_with("SELECT count(*)") {
                "count"
            } else {
                "page"
            };
            println!(
                "trace: {} ({params}, {matches} matches) {role}: {}",
                q.label(),
                s.sql
            );
            captured.push(Captured {
                label: format!("{} [{params}]", q.label()),
                role,
                sql: s.sql,
                params: s.params,
                matches,
            });
        }
    }
    Ok((json!({"bulk": bulk, "queries": requests}), captured))
}

async fn explain_all(db: &Pg, captured: &[Captured], when: &str) -> Result<Value> {
    let mut out = Vec::new();
    println!("EXPLAIN (ANALYZE, BUFFERS), {when}:");
    for c in captured {
        let v = explain::explain(db, c).await?;
        let p = &v["plan_cache_choice"];
        println!(
            "  {:<5} {:<70} {:<5} {} plan, {} ms, max rows touched {}; custom {} / generic {}",
            c.role,
            c.label.chars().take(70).collect::<String>(),
            p["verdict"].as_str().unwrap_or("?"),
            if p["generic_plan"].as_bool() == Some(true) {
                "generic"
            } else {
                "custom"
            },
            p["execution_ms"],
            p["max_rows_touched"],
            v["custom"]["verdict"].as_str().unwrap_or("?"),
            v["generic"]["verdict"].as_str().unwrap_or("?"),
        );
        out.push(v);
    }
    Ok(Value::Array(out))
}

/// A load's outcome, for the summary.
impl LoadOutcome {
    fn print(&self) {
        println!(
            "load: {} users in {:.1} s: {:.0} users/s overall, {:.0} users/s steady (10%–90%); {} failed{}; request p50 {:.0} ms p99 {:.0} ms",
            self.created,
            self.seconds,
            self.created as f64 / self.seconds.max(1e-9),
            self.steady_rate,
            self.failed,
            if self.timed_out { " (TIMED OUT)" } else { "" },
            self.lat.ms(0.5),
            self.lat.ms(0.99),
        );
        for e in &self.first_errors {
            println!("  error: {e}");
        }
    }
}
