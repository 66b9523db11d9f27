//! The PostgreSQL side of the scale benchmark: an admin connection (create
//! and drop the run's database, sizes, statistics), CPU of the server's
//! processes, and reading the statements Roster ran from the server log.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use reqwest::Url;
use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::server::{cpu_secs, processes_named};

/// One connection, spoken to with the simple query protocol (text in, text out).
pub struct Pg {
    client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub type TextRow = Vec<Option<String>>;

impl Pg {
    pub async fn connect(url: &str) -> Result<Pg> {
        let (client, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Pg { client, task })
    }

    /// Runs `sql` (one or more statements); the rows of all of them.
    pub async fn rows(&self, sql: &str) -> Result<Vec<TextRow>> {
        let msgs = self
            .client
            .simple_query(sql)
            .await
            .with_context(|| format!("PostgreSQL refused: {}", first_line(sql)))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect())
    }

    /// The first column of the first row.
    pub async fn one(&self, sql: &str) -> Result<Option<String>> {
        Ok(self
            .rows(sql)
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten()))
    }

    pub async fn int(&self, sql: &str) -> Result<i64> {
        self.one(sql)
            .await?
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no number from {}", first_line(sql)))
    }

    pub async fn batch(&self, sql: &str) -> Result<()> {
        self.client
            .batch_execute(sql)
            .await
            .with_context(|| format!("PostgreSQL refused: {}", first_line(sql)))
    }
}

fn first_line(sql: &str) -> &str {
    let s = sql.trim();
    let end = s.find('\n').unwrap_or(s.len()).min(160);
    s.get(..end).unwrap_or(s)
}

/// A SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier made only of safe characters (database names we make).
pub fn ident(s: &str) -> Result<&str> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!("{s:?} is not a plain lower-case identifier");
    }
    Ok(s)
}

/// `url` with its database replaced by `db` (user, host, options kept).
pub fn with_database(url: &str, db: &str) -> Result<String> {
    let mut u = Url::parse(url).with_context(|| format!("bad PostgreSQL URL {url}"))?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

/// `url` with `options=-c name=value …` for every session Roster opens.
/// The PostgreSQL URL parser percent-decodes but does not read `+` as a
/// space, so the value is written with `%20`.
pub fn with_session_settings(url: &str, settings: &[(&str, &str)]) -> Result<String> {
    let u = Url::parse(url).with_context(|| format!("bad PostgreSQL URL {url}"))?;
    let safe = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    if !settings.iter().all(|(k, v)| safe(k) && safe(v)) {
        bail!("session settings must be plain names and values");
    }
    let options: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("-c%20{k}%3D{v}"))
        .collect();
    let sep = if u.query().is_some() { '&' } else { '?' };
    Ok(format!("{u}{sep}options={}", options.join("%20")))
}

pub fn database_of(url: &str) -> Result<String> {
    let u = Url::parse(url).with_context(|| format!("bad PostgreSQL URL {url}"))?;
    let db = u.path().trim_start_matches('/');
    if db.is_empty() {
        bail!("the PostgreSQL URL {url} names no database");
    }
    Ok(db.to_owned())
}

/// The benchmark talks to a PostgreSQL on this machine only.
pub fn check_loopback_pg(url: &str) -> Result<()> {
    let u = Url::parse(url).with_context(|| format!("bad PostgreSQL URL {url}"))?;
    let host = u.host_str().unwrap_or("localhost");
    let ok = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !ok {
        bail!("the scale benchmark uses a PostgreSQL on 127.0.0.1 only, not {url}");
    }
    Ok(())
}

/// Server settings that shape the numbers.
pub async fn settings(pg: &Pg) -> Result<Value> {
    let rows = pg
        .rows(
            "SELECT name, setting || COALESCE(unit, '') FROM pg_settings WHERE name IN (
               'server_version', 'shared_buffers', 'effective_cache_size', 'work_mem',
               'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size', 'checkpoint_timeout',
               'autovacuum', 'jit', 'random_page_cost', 'max_connections', 'lc_collate',
               'shared_preload_libraries', 'plan_cache_mode', 'default_statistics_target')
             ORDER BY name",
        )
        .await?;
    Ok(Value::Object(
        rows.into_iter()
            .filter_map(|r| {
                let mut it = r.into_iter();
                Some((it.next()??, json!(it.next().flatten())))
            })
            .collect(),
    ))
}

/// Size of the database, of each table (heap, indexes, total) and of each index.
pub async fn sizes(pg: &Pg) -> Result<Value> {
    let db = pg
        .int("SELECT pg_database_size(current_database())")
        .await?;
    let tables = pg
        .rows(
            "SELECT c.relname, pg_relation_size(c.oid), pg_indexes_size(c.oid),
                    pg_total_relation_size(c.oid), c.reltuples::bigint
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r'
             ORDER BY pg_total_relation_size(c.oid) DESC",
        )
        .await?;
    let indexes = pg
        .rows(
            "SELECT relname, indexrelname, pg_relation_size(indexrelid)
             FROM pg_stat_user_indexes ORDER BY pg_relation_size(indexrelid) DESC",
        )
        .await?;
    let num = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<i64>().ok());
    let mut t = serde_json::Map::new();
    for r in &tables {
        let Some(name) = r.first().cloned().flatten() else {
            continue;
        };
        let total = r.get(3).and_then(num).unwrap_or(0);
        if total < 64 * 1024 {
            continue;
        }
        t.insert(
            name,
            json!({
                "heap_bytes": r.get(1).and_then(num),
                "index_bytes": r.get(2).and_then(num),
                "total_bytes": total,
                "estimated_rows": r.get(4).and_then(num),
            }),
        );
    }
    let mut rows = serde_json::Map::new();
    for table in ["resources", "attr_index", "group_members", "events"] {
        rows.insert(
            table.into(),
            json!(pg.int(&format!("SELECT count(*) FROM {table}")).await?),
        );
    }
    let idx: Vec<Value> = indexes
        .iter()
        .filter_map(|r| {
            let bytes = r.get(2).and_then(num)?;
            (bytes >= 64 * 1024).then(|| {
                json!({
                    "table": r.first().cloned().flatten(),
                    "index": r.get(1).cloned().flatten(),
                    "bytes": bytes,
                })
            })
        })
        .collect();
    Ok(json!({
        "database_bytes": db,
        "tables": t,
        "indexes": idx,
        "rows": rows,
    }))
}

/// When the planner last got statistics on the tables the filters read.
pub async fn analyze_state(pg: &Pg) -> Result<Value> {
    let rows = pg
        .rows(
            "SELECT relname, n_live_tup, COALESCE(last_analyze::text, ''), COALESCE(last_autoanalyze::text, ''),
                    COALESCE(last_vacuum::text, ''), COALESCE(last_autovacuum::text, '')
             FROM pg_stat_user_tables
             WHERE relname IN ('resources', 'attr_index', 'group_members', 'events')
             ORDER BY relname",
        )
        .await?;
    Ok(Value::Array(
        rows.into_iter()
            .map(|r| {
                let g = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                json!({"table": g(0), "n_live_tup": g(1), "last_analyze": g(2),
                       "last_autoanalyze": g(3), "last_vacuum": g(4), "last_autovacuum": g(5)})
            })
            .collect(),
    ))
}

/// CPU of the PostgreSQL processes: the backends serving the run's database,
/// the background writers (WAL writer, checkpointer, background writer), and
/// everything else (other databases on the shared server, autovacuum).
#[derive(Debug, Clone, Default)]
pub struct PgCpu {
    /// pid → CPU seconds, for the backends of our database.
    pub ours: HashMap<u32, f64>,
    pub background: HashMap<u32, f64>,
    pub other: HashMap<u32, f64>,
}

impl PgCpu {
    pub async fn sample(pg: &Pg) -> Result<PgCpu> {
        let ours: Vec<u32> = pg
            .rows(
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await?
            .into_iter()
            .filter_map(|r| r.first().cloned().flatten()?.parse().ok())
            .collect();
        let mut s = PgCpu::default();
        for (pid, cmd) in processes_named("postgres") {
            let Some(cpu) = cpu_secs(Some(pid)) else {
                continue;
            };
            if ours.contains(&pid) {
                s.ours.insert(pid, cpu);
            } else if ["walwriter", "checkpointer", "background writer"]
                .iter()
                .any(|w| cmd.ends_with(w))
            {
                s.background.insert(pid, cpu);
            } else {
                s.other.insert(pid, cpu);
            }
        }
        Ok(s)
    }

    /// CPU used since `before` (a process new since then counts from zero).
    pub fn since(&self, before: &PgCpu) -> Value {
        let delta = |now: &HashMap<u32, f64>, then: &HashMap<u32, f64>| -> f64 {
            now.iter()
                .map(|(pid, c)| c - then.get(pid).copied().unwrap_or(0.0))
                .filter(|d| *d > 0.0)
                .sum()
        };
        // A backend of ours may have been counted as "other" before it
        // connected to our database: compare it with either map.
        let mut then_all = before.other.clone();
        then_all.extend(before.ours.iter().map(|(k, v)| (*k, *v)));
        json!({
            "backends_s": crate::stats::round3(delta(&self.ours, &then_all)),
            "backends": self.ours.len(),
            "wal_checkpoint_bgwriter_s": crate::stats::round3(delta(&self.background, &before.background)),
            "other_postgres_s": crate::stats::round3(delta(&self.other, &then_all)),
        })
    }
}

/// Reads what PostgreSQL wrote to its log since [`LogTail::new`].
pub struct LogTail {
    path: PathBuf,
    offset: u64,
}

impl LogTail {
    pub fn new(path: PathBuf) -> Result<LogTail> {
        let offset = std::fs::metadata(&path)
            .with_context(|| format!("cannot read the PostgreSQL log {}", path.display()))?
            .len();
        Ok(LogTail { path, offset })
    }

    /// Records written since the last call.
    pub fn read(&mut self) -> Result<Vec<LogRecord>> {
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        // Stop at the last complete line; the rest is read next time.
        let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        self.offset += complete as u64;
        Ok(parse_log(&String::from_utf8_lossy(&buf[..complete])))
    }
}

/// One log message (with its continuation lines).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub pid: u32,
    pub db: String,
    pub level: String,
    pub text: String,
}

/// Parses a log written with `log_line_prefix = '%m [%p] %q%u@%d '`
/// (Debian's default): `2026-01-01 10:00:00.123 UTC [42] user@db LOG:  …`.
pub fn parse_log(text: &str) -> Vec<LogRecord> {
    let mut out: Vec<LogRecord> = Vec::new();
    for line in text.lines() {
        if let Some(rec) = parse_line(line) {
            out.push(rec);
        } else if let Some(last) = out.last_mut() {
            last.text.push('\n');
            last.text.push_str(line.strip_prefix('\t').unwrap_or(line));
        }
    }
    out
}

fn parse_line(line: &str) -> Option<LogRecord> {
    let b = line.as_bytes();
    if b.len() < 24 || !b[0].is_ascii_digit() || b[4] != b'-' || b[10] != b' ' {
        return None;
    }
    let open = line.find(" [")?;
    let close = open + line[open..].find("] ")?;
    let pid: u32 = line[open + 2..close].parse().ok()?;
    let rest = &line[close + 2..];
    let (who, rest) = rest.split_once(' ')?;
    let (db, rest) = if who.ends_with(':') {
        // No session (%q): the level follows the pid.
        (String::new(), &line[close + 2..])
    } else {
        (who.split_once('@')?.1.to_owned(), rest)
    };
    let (level, text) = rest.split_once(":  ")?;
    Some(LogRecord {
        pid,
        db,
        level: level.to_owned(),
        text: text.to_owned(),
    })
}

/// What the extended protocol logs with `log_min_duration_statement = 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Parse,
    Bind,
    Execute,
    /// A simple-protocol statement (BEGIN, COMMIT, SAVEPOINT …).
    Simple,
}

/// One logged statement phase, with the parameters it ran with.
#[derive(Debug, Clone)]
pub struct Statement {
    pub pid: u32,
    pub phase: Phase,
    pub ms: f64,
    pub sql: String,
    pub params: Vec<Option<String>>,
}

/// The statements of database `db` among `records`.
pub fn statements(records: &[LogRecord], db: &str) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    let mut last_of: HashMap<u32, usize> = HashMap::new();
    for r in records.iter().filter(|r| r.db == db) {
        if r.level == "DETAIL" {
            if let (Some(p), Some(&i)) = (r.text.strip_prefix("parameters: "), last_of.get(&r.pid))
                && let Some(s) = out.get_mut(i)
            {
                s.params = parse_params(p);
            }
            continue;
        }
        if r.level != "LOG" {
            continue;
        }
        let Some(rest) = r.text.strip_prefix("duration: ") else {
            continue;
        };
        let Some((ms, rest)) = rest.split_once(" ms  ") else {
            continue;
        };
        let (phase, sql) = if let Some(s) = rest.strip_prefix("statement: ") {
            (Phase::Simple, s)
        } else {
            let (head, sql) = match rest.split_once(": ") {
                Some(x) => x,
                None => continue,
            };
            let phase = match head.split(' ').next() {
                Some("parse") => Phase::Parse,
                Some("bind") => Phase::Bind,
                Some("execute") => Phase::Execute,
                _ => continue,
            };
            (phase, sql)
        };
        last_of.insert(r.pid, out.len());
        out.push(Statement {
            pid: r.pid,
            phase,
            ms: ms.trim().parse().unwrap_or(0.0),
            sql: sql.to_owned(),
            params: Vec::new(),
        });
    }
    out
}

/// `$1 = 'a', $2 = NULL, $3 = 'it''s'` → values in order.
pub fn parse_params(s: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        // `$N = `
        while chars.peek().is_some_and(|c| *c != '=') {
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        match chars.peek() {
            Some('\'') => {
                chars.next();
                let mut v = String::new();
                while let Some(c) = chars.next() {
                    if c == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                            v.push('\'');
                        } else {
                            break;
                        }
                    } else {
                        v.push(c);
                    }
                }
                out.push(Some(v));
            }
            Some(_) => {
                // NULL
                for _ in 0..4 {
                    chars.next();
                }
                out.push(None);
            }
            None => break,
        }
        // `, ` before the next one
        while chars.peek().is_some_and(|c| *c != '$') {
            chars.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-11-29 09:57:38.885 UTC [18134] postgres@bench LOG:  duration: 0.050 ms  parse s3: SELECT count(*) FROM resources r WHERE r.directory_id = $1
2026-11-29 09:57:38.886 UTC [18134] postgres@bench LOG:  duration: 0.020 ms  bind s3: SELECT count(*) FROM resources r WHERE r.directory_id = $1
2026-11-29 09:57:38.886 UTC [18134] postgres@bench DETAIL:  parameters: $1 = 'it''s', $2 = NULL, $3 = '1'
2026-11-29 09:57:38.887 UTC [18134] postgres@bench LOG:  duration: 1.250 ms  execute s3: SELECT count(*) FROM resources r WHERE r.directory_id = $1
2026-11-29 09:57:38.887 UTC [18134] postgres@bench DETAIL:  parameters: $1 = 'it''s', $2 = NULL, $3 = '1'
2026-11-29 09:57:38.888 UTC [99] postgres@other LOG:  duration: 0.010 ms  statement: BEGIN
2026-11-29 09:57:38.889 UTC [2213] LOG:  checkpoint starting: time
2026-11-29 09:57:38.890 UTC [18134] postgres@bench LOG:  duration: 0.300 ms  execute s4: INSERT INTO t (a)
\t VALUES ($1)
2026-11-29 09:57:38.891 UTC [18134] postgres@bench LOG:  duration: 0.010 ms  statement: COMMIT
";

    #[test]
    fn log_records_are_split_by_prefix_with_continuations() {
        let recs = parse_log(LOG);
        assert_eq!(recs.len(), 9);
        assert_eq!(recs[6].db, "");
        assert_eq!(recs[6].level, "LOG");
        assert_eq!(
            recs[7].text,
            "duration: 0.300 ms  execute s4: INSERT INTO t (a)\n VALUES ($1)"
        );
    }

    #[test]
    fn statements_carry_phase_duration_and_parameters() {
        let st = statements(&parse_log(LOG), "bench");
        let phases: Vec<Phase> = st.iter().map(|s| s.phase).collect();
        assert_eq!(
            phases,
            [
                Phase::Parse,
                Phase::Bind,
                Phase::Execute,
                Phase::Execute,
                Phase::Simple
            ]
        );
        assert_eq!(st[2].ms, 1.25);
        assert_eq!(
            st[2].params,
            [Some("it's".to_owned()), None, Some("1".to_owned())]
        );
        assert_eq!(st[4].sql, "COMMIT");
    }

    #[test]
    fn urls_change_database_and_session_settings() {
        let u = with_database("postgres://postgres@127.0.0.1:5432/test", "roster_bench_1").unwrap();
        assert_eq!(u, "postgres://postgres@127.0.0.1:5432/roster_bench_1");
        assert_eq!(database_of(&u).unwrap(), "roster_bench_1");
        let t = with_session_settings(&u, &[("log_min_duration_statement", "0")]).unwrap();
        assert!(
            t.ends_with("/roster_bench_1?options=-c%20log_min_duration_statement%3D0"),
            "{t}"
        );
        assert!(check_loopback_pg("postgres://u@db.example.com/x").is_err());
        assert!(check_loopback_pg(&u).is_ok());
        assert!(ident("roster_bench_1").is_ok());
        assert!(ident("x; DROP").is_err());
        assert_eq!(literal("a'b"), "'a''b'");
    }
}
