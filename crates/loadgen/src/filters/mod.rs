//! `roster-loadgen filters`: the filter corpus on one directory at scale.
//!
//! Starts `roster serve` on a fresh SQLite file or a fresh PostgreSQL
//! database, with a custom extension schema registered, loads one directory
//! of N users (and groups) through /Bulk, then times every filter of the
//! published corpus ([`corpus::CORPUS`]) for a page of 100, reads a cursor
//! page and an index page near the end, the database's bytes per user and
//! the load's rate. `--check` fails when a filter misses its target.
//! Everything talks HTTP to 127.0.0.1; every phase is bounded in requests
//! and in time.

mod check;
pub mod corpus;
mod measure;
pub mod people;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Client;
use serde_json::{Map, Value, json};

use crate::scale::pg::{self, Pg};
use crate::server::{Server, load_average};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Store {
    Sqlite,
    Postgres,
}

impl Store {
    fn label(self) -> &'static str {
        match self {
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgres",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct FiltersArgs {
    /// The store to run on: a fresh SQLite file, or a fresh PostgreSQL
    /// database `roster_bench_<time>` made on --pg-admin.
    #[arg(long, value_enum, default_value_t = Store::Sqlite)]
    pub store: Store,
    /// Users in the directory (at least 2,000).
    #[arg(long, default_value_t = 10_000)]
    pub users: u64,
    /// The `roster` binary [default: `roster` beside this program].
    #[arg(long)]
    pub roster_bin: Option<PathBuf>,
    /// Timed requests of each filter (after --warmups unrecorded ones).
    #[arg(long, default_value_t = 100)]
    pub runs: u64,
    /// Unrecorded requests of each filter before the timed ones.
    #[arg(long, default_value_t = 5)]
    pub warmups: u64,
    /// Concurrent /Bulk requests during the load.
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    /// Users per /Bulk request (also capped by the advertised maxOperations).
    #[arg(long, default_value_t = 1000)]
    pub chunk: usize,
    /// Most seconds the load may take.
    #[arg(long, default_value_t = 1800)]
    pub load_timeout: u64,
    /// Most seconds one filter's (or one page's) runs may take; it stops
    /// there and reports the runs it made.
    #[arg(long, default_value_t = 30)]
    pub filter_timeout: u64,
    /// Most seconds one request may take.
    #[arg(long, default_value_t = 120)]
    pub request_timeout: u64,
    /// A superuser connection to PostgreSQL, to create and drop the run's database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub pg_admin: String,
    /// PostgreSQL: run VACUUM (ANALYZE) after the load, before measuring
    /// (without it, the filters run as loaded: no planner statistics).
    #[arg(long)]
    pub analyze: bool,
    /// Keep the database (SQLite folder or PostgreSQL database) and the server's log.
    #[arg(long)]
    pub keep: bool,
    /// Where the SQLite folder and the server's log go.
    #[arg(long, default_value = "/tmp")]
    pub work_dir: PathBuf,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Fail when a filter misses its target (p99 of a selective filter over
    /// 10 ms on SQLite or 20 ms on PostgreSQL, of a broad one over 100 ms),
    /// answers an error, counts other than the corpus says, or runs out of time.
    #[arg(long)]
    pub check: bool,
    /// With --check: a report of the same store at a smaller size; a
    /// selective filter's p99 may be at most twice its p99 there.
    #[arg(long, requires = "check")]
    pub baseline: Option<PathBuf>,
    /// Run only the cases whose name contains this (repeatable).
    #[arg(long = "only")]
    pub only: Vec<String>,
    /// Print the corpus as a Markdown table, as written for --users, and exit.
    #[arg(long)]
    pub list: bool,
}

pub async fn run(args: FiltersArgs) -> Result<()> {
    if args.users < 2000 {
        bail!("--users must be at least 2000");
    }
    if args.list {
        print!("{}", corpus::markdown(args.users));
        return Ok(());
    }
    if args.clients == 0 || args.runs == 0 {
        bail!("--clients and --runs must be at least 1");
    }
    let baseline = match &args.baseline {
        Some(p) => Some(check::Baseline::read(p)?),
        None => None,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.clients * 2 + 2)
        .timeout(Duration::from_secs(args.request_timeout))
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
    let mut report = Map::new();
    report.insert(
        "machine".into(),
        json!({
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "load_average_start": load_average(),
            "note": "a shared 2-core machine: other work ran meanwhile",
        }),
    );
    report.insert(
        "parameters".into(),
        json!({
            "store": args.store.label(), "users": args.users, "runs": args.runs,
            "warmups": args.warmups, "clients": args.clients, "chunk": args.chunk,
            "filter_timeout_s": args.filter_timeout, "analyze": args.analyze,
            "page": "count=100, attributes=userName (Groups: displayName)",
        }),
    );
    let result = match args.store {
        Store::Sqlite => on_sqlite(&args, &bin, &client, &mut report).await,
        Store::Postgres => on_postgres(&args, &bin, &client, &mut report).await,
    };
    report.insert("load_average_end".into(), json!(load_average()));
    if let Err(e) = &result {
        report.insert("error".into(), json!(format!("{e:#}")));
    }
    let failures = if result.is_ok() && args.check {
        let f = check::check(args.store, &report, baseline.as_ref());
        report.insert("check_failures".into(), json!(f));
        f
    } else {
        Vec::new()
    };
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Object(report))?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("report: {}", path.display());
    }
    result?;
    if args.check {
        if failures.is_empty() {
            println!("check: every filter met its target");
        } else {
            for f in &failures {
                println!("check FAILED: {f}");
            }
            bail!("{} misses of the targets (see above)", failures.len());
        }
    }
    Ok(())
}

/// The custom extension's schema file beside the server's configuration,
/// and the configuration that registers it.
fn register_extension(s: &mut Server, dir: &Path) -> Result<()> {
    let file = dir.join("bench-extension.json");
    std::fs::write(&file, people::bench_schema().to_string())
        .with_context(|| format!("cannot write {}", file.display()))?;
    s.add_config("[[extensions]]\nfile = \"bench-extension.json\"\nresource_type = \"User\"\n");
    Ok(())
}

async fn on_sqlite(
    args: &FiltersArgs,
    bin: &Path,
    client: &Client,
    report: &mut Map<String, Value>,
) -> Result<()> {
    let mut s = Server::prepare(bin, &args.work_dir)?;
    let dir = s.dir.clone();
    let result = async {
        register_extension(&mut s, &dir)?;
        let d = s.create_directory("filters").await?;
        s.start(client, &format!("{}/ServiceProviderConfig", d.base_path))
            .await?;
        println!("server: {} on {}", s.addr, dir.join("roster.db").display());
        let t = crate::Target {
            client: client.clone(),
            base: format!("http://{}{}", s.addr, d.base_path),
            auth: format!("Bearer {}", d.token),
        };
        measure::measure(args, &t, &Size::Sqlite(dir.clone()), report).await
    }
    .await;
    let _ = s.kill().await;
    if args.keep {
        println!("kept {} (--keep)", dir.display());
    } else {
        s.remove_files();
    }
    result
}

async fn on_postgres(
    args: &FiltersArgs,
    bin: &Path,
    client: &Client,
    report: &mut Map<String, Value>,
) -> Result<()> {
    pg::check_loopback_pg(&args.pg_admin)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!("roster_bench_{stamp}");
    let log_dir = args.work_dir.join(format!("roster-filters-{stamp}"));
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let admin = Pg::connect(&args.pg_admin).await?;
    admin
        .batch(&format!("CREATE DATABASE {}", pg::ident(&name)?))
        .await?;
    let db_url = pg::with_database(&args.pg_admin, &name)?;
    println!("database: {db_url}   log: {}", log_dir.display());
    let result = async {
        let db = Pg::connect(&db_url).await?;
        report.insert("postgresql".into(), pg::settings(&db).await?);
        let mut s = Server::on_database(bin, &db_url, &log_dir, "serve.log", Vec::new())?;
        register_extension(&mut s, &log_dir)?;
        let d = s.create_directory("filters").await?;
        s.start(client, &format!("{}/ServiceProviderConfig", d.base_path))
            .await?;
        let t = crate::Target {
            client: client.clone(),
            base: format!("http://{}{}", s.addr, d.base_path),
            auth: format!("Bearer {}", d.token),
        };
        let r = measure::measure(args, &t, &Size::Postgres(db), report).await;
        let _ = s.kill().await;
        r
    }
    .await;
    if args.keep {
        println!(
            "kept database {name} and {} (--keep); drop it with: DROP DATABASE {name} WITH (FORCE)",
            log_dir.display()
        );
    } else {
        match admin
            .batch(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
        {
            Ok(()) => println!("dropped database {name}"),
            Err(e) => println!("could not drop {name} ({e:#}); drop it by hand"),
        }
        let _ = std::fs::remove_dir_all(&log_dir);
    }
    result
}

/// Where the database's size is read from.
pub enum Size {
    /// The folder holding `roster.db` (and its `-wal`).
    Sqlite(PathBuf),
    Postgres(Pg),
}

impl Size {
    /// Bytes the store holds (SQLite: the file and its WAL; PostgreSQL:
    /// every table of the schema with its indexes and TOAST), and the parts.
    async fn bytes(&self) -> Result<(u64, Value)> {
        match self {
            Size::Sqlite(dir) => {
                let len = |f: &str| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len());
                let (db, wal) = (len("roster.db"), len("roster.db-wal"));
                Ok((db + wal, json!({"file": db, "wal": wal})))
            }
            Size::Postgres(db) => {
                let total = db
                    .int(
                        "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')",
                    )
                    .await?;
                Ok((total.max(0) as u64, pg::sizes(db).await?))
            }
        }
    }

    async fn analyze(&self) -> Result<Option<f64>> {
        match self {
            Size::Sqlite(_) => Ok(None),
            Size::Postgres(db) => {
                let t = std::time::Instant::now();
                db.batch("VACUUM (ANALYZE)").await?;
                Ok(Some(t.elapsed().as_secs_f64()))
            }
        }
    }
}
