//! Helpers of the test binaries that run real `roster` processes (`faults`,
//! `multi_instance`): the test PostgreSQL and a schema per test, a free
//! loopback port, `roster serve` processes and their logs, administration
//! commands. Each binary includes this module with `mod common;`.
#![allow(dead_code)] // Each binary uses a subset.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

pub const ROSTER: &str = env!("CARGO_BIN_EXE_roster");
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// Connections each process may open: several tests and processes share one
/// PostgreSQL (max_connections is 100 by default).
pub const POOL_SIZE: &str = "6";

// ------------------------------------------------------------------ databases

pub fn postgres_url() -> String {
    std::env::var("ROSTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn pg_blocking<R>(f: impl FnOnce(&mut postgres::Client) -> R) -> R {
    let mut c = postgres::Client::connect(&postgres_url(), postgres::NoTls)
        .expect("PostgreSQL answers at ROSTER_TEST_POSTGRES (default 127.0.0.1:5432/test)");
    f(&mut c)
}

/// Runs blocking PostgreSQL client work off the async runtime.
pub async fn with_client<R: Send + 'static>(
    f: impl FnOnce(&mut postgres::Client) -> R + Send + 'static,
) -> R {
    tokio::task::spawn_blocking(move || pg_blocking(f))
        .await
        .unwrap()
}

/// One test's schema; dropped, with everything in it, when this is.
pub struct Schema {
    pub name: String,
    /// The database URL that puts this schema first on the search_path.
    pub url: String,
}

impl Schema {
    pub async fn create() -> Schema {
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        let sql = format!("CREATE SCHEMA \"{name}\"");
        with_client(move |c| c.batch_execute(&sql).unwrap()).await;
        let base = postgres_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        // The postgres crate reads `options` from the URL and percent-decodes
        // it: the server receives `-csearch_path=t_…,public`.
        // application_name marks this test's connections, so a test can end
        // them (`pg_stat_activity.application_name`).
        let url =
            format!("{base}{sep}options=-csearch_path%3D{name},public&application_name={name}");
        Schema { name, url }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // A thread of its own: the blocking client must not run on the async runtime.
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&postgres_url(), postgres::NoTls) {
                let _ = c.batch_execute(&sql);
            }
        })
        .join();
    }
}

// -------------------------------------------------------------------- servers

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `roster serve` process on loopback, its output in `log`; killed (and
/// waited for) when dropped, and its log's last lines printed if the test
/// is failing.
pub struct Serve {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    pub log: PathBuf,
    pub label: String,
    url: String,
    config: Option<PathBuf>,
}

impl Serve {
    pub fn spawn(url: &str, config: Option<&Path>, log: PathBuf, label: &str) -> Serve {
        let port = free_port();
        let out = File::create(&log).unwrap();
        let mut cmd = Command::new(ROSTER);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database", url, "--database-pool-size", POOL_SIZE]);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd
            .env_remove("ROSTER_CONFIG")
            .env("ROSTER_LOG", "info,tower_http=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the roster binary starts");
        Serve {
            child,
            origin: format!("http://127.0.0.1:{port}"),
            log,
            label: label.to_owned(),
            url: url.to_owned(),
            config: config.map(Path::to_path_buf),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the process answers `path` with 200, starting it again on
    /// another port if the one it was given was taken meanwhile.
    pub async fn wait_ready(&mut self, client: &reqwest::Client, path: &str, token: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log_text();
                if log.contains("cannot listen") {
                    *self = Serve::spawn(
                        &self.url.clone(),
                        self.config.clone().as_deref(),
                        self.log.clone(),
                        &self.label.clone(),
                    );
                    continue;
                }
                panic!("{} exited ({status}) before serving:\n{log}", self.label);
            }
            let reply = client
                .get(format!("{}{path}", self.origin))
                .bearer_auth(token)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if reply.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer {path} within 30 s:\n{}",
                self.label,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flushing, no released leases.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Nothing worse than the expected warnings was logged.
    pub fn assert_no_panic(&self) {
        let log = self.log_text();
        assert!(!log.contains("panicked"), "{} panicked:\n{log}", self.label);
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Only the child this test started, by its own handle.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- last lines of {} ----", self.label);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

// ------------------------------------------------------------------- clients

/// Runs a `roster` administration command against the database and parses its `--json` output.
pub async fn cli(url: &str, args: &[&str]) -> Value {
    let out = tokio::process::Command::new(ROSTER)
        .args(args)
        .args(["--json", "--database", url])
        .env_remove("ROSTER_CONFIG")
        .env("ROSTER_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "roster {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "roster {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

pub fn http_client(timeout: Duration) -> reqwest::Client {
    // The tree builds reqwest without a default TLS provider; Roster installs one.
    roster_server::install_crypto_provider();
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

/// A directory and one of its bearer tokens.
#[derive(Debug, Clone)]
pub struct Dir {
    pub id: String,
    pub token: String,
}

pub async fn create_directory(url: &str, name: &str) -> Dir {
    let d = cli(url, &["directory", "create", name]).await;
    Dir {
        id: d["id"].as_str().unwrap().to_owned(),
        token: d["token"].as_str().unwrap().to_owned(),
    }
}
