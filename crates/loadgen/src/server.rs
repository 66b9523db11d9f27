//! Self-contained mode: a Roster server on a fresh database in a temp folder
//! (or on a PostgreSQL database the scale benchmark made), listening on
//! 127.0.0.1 only.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::process::{Child, Command};

pub struct Server {
    bin: PathBuf,
    db_url: String,
    pub dir: PathBuf,
    pub addr: SocketAddr,
    child: Option<Child>,
    /// The server's log file, in `dir`.
    log_name: String,
    /// Extra environment for `roster` (e.g. ROSTER_DATABASE_POOL_SIZE).
    env: Vec<(String, String)>,
    /// Run `roster serve` under `/usr/bin/time -v` (its report goes to the log).
    pub time_v: bool,
    /// More of `roster.toml`, after the settings every run has (e.g. `[[extensions]]`).
    extra_config: String,
}

pub struct Directory {
    pub base_path: String,
    pub token: String,
}

impl Server {
    /// Makes a fresh folder for the database under `parent`.
    pub fn prepare(bin: &Path, parent: &Path) -> Result<Server> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let dir = parent.join(format!("roster-loadgen-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let db = dir.join("roster.db");
        Ok(Server {
            bin: bin.to_path_buf(),
            db_url: format!("sqlite://{}", db.display()),
            dir,
            addr: free_loopback_port()?,
            child: None,
            log_name: "server.log".into(),
            env: Vec::new(),
            time_v: false,
            extra_config: String::new(),
        })
    }

    /// A server on an existing database (`postgres://…`), logging to `dir/log_name`.
    pub fn on_database(
        bin: &Path,
        db_url: &str,
        dir: &Path,
        log_name: &str,
        env: Vec<(String, String)>,
    ) -> Result<Server> {
        Ok(Server {
            bin: bin.to_path_buf(),
            db_url: db_url.to_owned(),
            dir: dir.to_path_buf(),
            addr: free_loopback_port()?,
            child: None,
            log_name: log_name.to_owned(),
            env,
            time_v: false,
            extra_config: String::new(),
        })
    }

    /// Sets an environment variable for every `roster` this server runs.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Appends `toml` to the configuration file `roster serve` reads.
    pub fn add_config(&mut self, toml: &str) {
        self.extra_config.push_str(toml);
    }

    /// `roster --database URL ARGS…`: what it printed.
    pub async fn cli_text(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .args(["--database", &self.db_url])
            .args(args)
            .env("ROSTER_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "roster {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `roster --database URL ARGS… --json`: what it printed.
    pub async fn cli_json(&self, args: &[&str]) -> Result<Value> {
        let out = Command::new(&self.bin)
            .args(["--database", &self.db_url])
            .args(args)
            .arg("--json")
            .env("ROSTER_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "roster {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("roster {} --json printed no JSON", args.join(" ")))
    }

    /// `roster token issue DIRECTORY --json`: a new bearer token.
    pub async fn issue_token(&self, directory: &str) -> Result<String> {
        let v = self.cli_json(&["token", "issue", directory]).await?;
        v.get("token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("no token in {v}"))
    }

    /// `roster directory create NAME --json`, before the server opens the database.
    pub async fn create_directory(&self, name: &str) -> Result<Directory> {
        let v = self.cli_json(&["directory", "create", name]).await?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("no {k} in {v}"))
        };
        Ok(Directory {
            base_path: field("scim_base_path")?,
            token: field("token")?,
        })
    }

    /// Starts `roster serve` (its log goes to server.log beside the database).
    pub async fn start(&mut self, probe: &reqwest::Client, probe_path: &str) -> Result<()> {
        let log_path = self.dir.join(&self.log_name);
        let log = std::fs::File::create(&log_path)?;
        // The load generator measures throughput with one token per
        // directory: the per-token rate limit (a guard against runaway
        // clients, docs/limits.md) would measure itself instead.
        let config = self.dir.join("roster.toml");
        std::fs::write(
            &config,
            format!("rate_limit_per_sec = 0.0\n{}", self.extra_config),
        )
        .with_context(|| format!("cannot write {}", config.display()))?;
        let mut cmd = if self.time_v {
            let mut c = Command::new("/usr/bin/time");
            c.arg("-v").arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        let child = cmd
            .args([
                "--database",
                &self.db_url,
                "serve",
                "--listen",
                &self.addr.to_string(),
                "--config",
                &config.display().to_string(),
            ])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        self.child = Some(child);
        let url = format!("http://{}{probe_path}", self.addr);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "roster serve exited with {status}; see {}",
                    log_path.display()
                );
            }
            if probe.get(&url).send().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("roster serve did not answer on {} within 30 s", self.addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The pid of `roster serve` itself: under `/usr/bin/time` its only child.
    fn serve_pid(&self) -> Option<u32> {
        let pid = self.pid()?;
        if !self.time_v {
            return Some(pid);
        }
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Peak and current resident memory of `roster serve`, in KiB.
    pub fn served_memory_kib(&self) -> Option<(u64, u64)> {
        memory_kib(self.serve_pid()?)
    }

    /// Stops `roster serve` with SIGTERM and waits for it; under
    /// `/usr/bin/time -v`, returns the maximum resident set size (KiB) it
    /// reported and its whole report.
    pub async fn stop_timed(&mut self) -> Result<(Option<u64>, Option<String>)> {
        let Some(pid) = self.serve_pid() else {
            return Ok((None, None));
        };
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        if let Some(mut c) = self.child.take() {
            tokio::time::timeout(Duration::from_secs(60), c.wait())
                .await
                .context("roster serve did not stop within 60 s of SIGTERM")??;
        }
        if !self.time_v {
            return Ok((None, None));
        }
        let log = std::fs::read_to_string(self.dir.join(&self.log_name)).unwrap_or_default();
        let Some(start) = log.find("\tCommand being timed:") else {
            return Ok((None, None));
        };
        let report = log[start..].to_owned();
        let peak = report
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|v| v.trim().parse().ok());
        Ok((peak, Some(report)))
    }

    /// SIGKILL: no chance to flush anything, so what survives was durable.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill().await?;
        }
        Ok(())
    }

    pub fn remove_files(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_loopback_port() -> Result<SocketAddr> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?)
}

/// Peak and current resident memory of a process, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// User plus system CPU seconds a process has used (`pid` None: this process).
/// Linux reports them in clock ticks of 1/100 s on every platform Roster runs on.
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The 1-minute load average: other work on the machine skews every number.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine's CPU time so far, in seconds: (busy, total) over all cores,
/// from the first line of /proc/stat (busy is everything but idle and iowait).
pub fn machine_cpu() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest counted in user)
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some(((total - idle) / 100.0, total / 100.0))
}

/// Processes whose command name is `comm`, with their command lines.
pub fn processes_named(comm: &str) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .trim()
                        .to_owned()
                })
                .unwrap_or_default();
            (pid, cmd)
        })
        .collect()
}
