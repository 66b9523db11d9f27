//! A private PostgreSQL cluster for a machine that has PostgreSQL's server
//! binaries but no server the tests may use.
//!
//! One cluster per test run, shared by all of the run's test processes
//! (nextest runs each test in a process of its own): the first process to
//! take the run's file lock runs `initdb` and `pg_ctl start`, the others wait
//! for the lock and reuse the cluster. A run is a nextest run
//! (`NEXTEST_RUN_ID`, owned by nextest, the test process's parent) or, under
//! `cargo test`, one test binary (owned by itself). A detached reaper waits
//! for the owner to exit, then stops the cluster (`pg_ctl stop -m immediate`)
//! and deletes its folder and lock file.
//!
//! `initdb` refuses to run as root: as root the cluster belongs to the
//! `postgres` user (or `nobody`), and `initdb`/`pg_ctl` run through `runuser`.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder holding `initdb` and `pg_ctl`: the first on `ROSTER_TEST_POSTGRES_BIN`
/// when set, else on `PATH`, else the newest `/usr/lib/postgresql/*/bin`.
pub(super) fn binaries() -> Option<PathBuf> {
    let has_both = |d: &Path| is_executable(&d.join("initdb")) && is_executable(&d.join("pg_ctl"));
    if let Some(dirs) = std::env::var_os(super::BIN_VAR) {
        return std::env::split_paths(&dirs).find(|d| has_both(d));
    }
    if let Some(d) = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has_both(d))
    {
        return Some(d);
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e
                .file_name()
                .to_str()?
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| has_both(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The URL of this test run's private cluster, started by the first caller.
pub(super) fn shared(bin: &Path) -> Result<String, String> {
    let (key, owner) = run();
    let tmp = std::env::temp_dir();
    let dir = tmp.join(format!("roster-test-postgres-{key}"));
    let lock_path = tmp.join(format!("roster-test-postgres-{key}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    // The lock is released when `lock` is dropped, at return.
    let url_file = dir.join("url");
    if let Ok(url) = std::fs::read_to_string(&url_file) {
        return match super::probe(&url) {
            Ok(()) => Ok(url),
            Err(e) => Err(format!(
                "this run's cluster in {} stopped answering at {url}: {e}",
                dir.display()
            )),
        };
    }
    let url = start(bin, &dir, &lock_path, owner)?;
    std::fs::write(&url_file, &url).map_err(|e| format!("{}: {e}", url_file.display()))?;
    drop(lock);
    Ok(url)
}

/// This test run's key (for folder names) and the process whose exit ends it.
fn run() -> (String, u32) {
    let me = std::process::id();
    match std::env::var("NEXTEST_RUN_ID") {
        Ok(id) if !id.is_empty() => {
            // Nextest starts each test process itself: the parent is the run.
            let parent = std::os::unix::process::parent_id();
            let owner = if parent > 1 { parent } else { me };
            (id, owner)
        }
        _ => (format!("pid-{me}"), me),
    }
}

/// The unprivileged user the cluster runs as, when this process is root.
fn cluster_user() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let exists = |user: &str| {
        Command::new("id")
            .arg("-u")
            .arg(user)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    Some(if exists("postgres") {
        "postgres"
    } else {
        "nobody"
    })
}

/// `program` from `bin`, run as the cluster's user.
fn command(bin: &Path, program: &str, user: Option<&str>) -> Command {
    let path = bin.join(program);
    match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(path);
            c
        }
        None => Command::new(path),
    }
}

/// Runs `cmd` with its output appended to `log`; the error carries the log.
fn run_logged(mut cmd: Command, what: &str, log: &Path) -> Result<(), String> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: the cluster outlives this test process even
        // when nextest ends the test's group.
        .process_group(0)
        .status()
        .map_err(|e| format!("{what} did not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({status}):\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        ))
    }
}

fn start(bin: &Path, dir: &Path, lock: &Path, owner: u32) -> Result<String, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let user = cluster_user();
    // First the reaper: whatever happens next, the folder goes with the run.
    reap_after(owner, bin, dir, lock, user)?;
    chown(dir, user)?;
    init_and_start(bin, dir, user, "")
}

/// Gives `path` to the cluster's user, when there is one.
fn chown(path: &Path, user: Option<&str>) -> Result<(), String> {
    let Some(user) = user else {
        return Ok(());
    };
    let status = Command::new("chown")
        .arg(format!("{user}:"))
        .arg(path)
        .status()
        .map_err(|e| format!("chown: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("chown {user}: {} failed", path.display()))
    }
}

/// A PostgreSQL cluster of one test's own with TLS on (`ssl = on`) and the
/// certificate and key given (PEM); stopped and deleted when dropped, or
/// when the test process exits.
pub struct TlsCluster {
    bin: PathBuf,
    dir: PathBuf,
    user: Option<&'static str>,
    port: u16,
}

impl TlsCluster {
    /// Starts one; `None` when this machine has no PostgreSQL server binaries.
    pub fn start(cert_pem: &str, key_pem: &str) -> Option<Result<TlsCluster, String>> {
        let bin = binaries()?;
        Some(Self::start_with(bin, cert_pem, key_pem))
    }

    fn start_with(bin: PathBuf, cert_pem: &str, key_pem: &str) -> Result<TlsCluster, String> {
        let dir = std::env::temp_dir().join(format!(
            "roster-test-postgres-tls-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let lock = dir.with_extension("lock");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let user = cluster_user();
        reap_after(std::process::id(), &bin, &dir, &lock, user)?;
        chown(&dir, user)?;
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        std::fs::write(&cert, cert_pem).map_err(|e| format!("{}: {e}", cert.display()))?;
        std::fs::write(&key, key_pem).map_err(|e| format!("{}: {e}", key.display()))?;
        // PostgreSQL refuses a key others may read.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", key.display()))?;
        chown(&cert, user)?;
        chown(&key, user)?;
        let options = format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert.display(),
            key.display()
        );
        let url = init_and_start(&bin, &dir, user, &options)?;
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("no port in {url}"))?;
        Ok(TlsCluster {
            bin,
            dir,
            user,
            port,
        })
    }

    /// The port it listens on, at 127.0.0.1 (user `postgres`, no password).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let mut stop = command(&self.bin, "pg_ctl", self.user);
        let _ = stop
            .arg("stop")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `initdb` in `dir`/data, then `pg_ctl start` on a free port with `extra`
/// server options; the cluster's URL.
fn init_and_start(
    bin: &Path,
    dir: &Path,
    user: Option<&str>,
    extra: &str,
) -> Result<String, String> {
    let data = dir.join("data");
    let log = dir.join("setup.log");
    let mut initdb = command(bin, "initdb", user);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        .args(["--locale=C"]);
    run_logged(initdb, "initdb", &log)?;
    // A port freed just now may be taken before the server binds it: try again.
    let mut last = String::new();
    for _ in 0..5 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=200 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off {extra}",
            dir.display()
        );
        let mut pg_ctl = command(bin, "pg_ctl", user);
        pg_ctl
            .arg("start")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &options]);
        match run_logged(pg_ctl, "pg_ctl start", &log) {
            Ok(()) => return Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres")),
            Err(e) => {
                let server_log =
                    std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
                last = format!("{e}\n{server_log}");
                if !server_log.contains("could not bind") {
                    break;
                }
            }
        }
    }
    Err(last)
}

/// A detached shell that waits for `owner` to exit, then stops the cluster and
/// deletes `dir` and `lock`. Its own process group and no inherited output:
/// nextest neither ends it with a test nor waits for it.
fn reap_after(
    owner: u32,
    bin: &Path,
    dir: &Path,
    lock: &Path,
    user: Option<&str>,
) -> Result<(), String> {
    const SCRIPT: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -n "$5" ]; then
    runuser -u "$5" -- "$2/pg_ctl" stop -D "$3/data" -m immediate
else
    "$2/pg_ctl" stop -D "$3/data" -m immediate
fi >/dev/null 2>&1
rm -rf "$3" "$4"
"#;
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("roster-test-postgres-reaper")
        .arg(owner.to_string())
        .arg(bin)
        .arg(dir)
        .arg(lock)
        .arg(user.unwrap_or(""))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("the cluster's reaper did not start: {e}"))
}
