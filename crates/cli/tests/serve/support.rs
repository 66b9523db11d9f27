//! Running the `roster` binary: a data directory per test, `serve` as a child
//! process (the test kit's spawner) whose log is collected, and raw HTTP on
//! real sockets (the test kit's client).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpStream;

pub struct Roster {
    pub dir: tempfile::TempDir,
}

impl Roster {
    pub fn new() -> Self {
        Roster {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn db(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("roster.db").display())
    }

    pub fn config(&self, toml: &str) -> PathBuf {
        let path = self.dir.path().join("roster.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_roster"));
        c.env("ROSTER_DATABASE_URL", self.db())
            .env_remove("ROSTER_CONFIG")
            .env_remove("ROSTER_LISTEN")
            .env_remove("ROSTER_LOG");
        c
    }

    /// Runs an administration command as given.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.command().args(args).output().unwrap()
    }

    /// [`Roster::run`] with extra environment variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        self.command()
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// Runs an administration command with `--json` and returns its output.
    pub fn json(&self, args: &[&str]) -> Value {
        self.json_with(args, &[])
    }

    /// [`Roster::json`] with extra environment variables.
    pub fn json_with(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let out = self
            .command()
            .args(args)
            .arg("--json")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "roster {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs `roster serve` expecting it to refuse to start; returns its exit
    /// status and log.
    pub fn serve_fails(&self, config: Option<&Path>) -> (bool, String) {
        let mut cmd = self.command();
        cmd.arg("serve").env("ROSTER_LOG", "info");
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let log = self.dir.path().join("serve-fails.log");
        let server = Server::spawn(cmd, log, "roster serve");
        let Some((ok, _)) = server.wait_exit(Duration::from_secs(20)) else {
            panic!(
                "roster serve started although it should not have:\n{}",
                server.log_text()
            );
        };
        (ok, server.log_text())
    }

    /// Starts `roster serve` on a loopback port of its own, logging at
    /// `log` (which must include `info`: the address is read from the log);
    /// returns once it listens.
    pub fn serve(&self, config: Option<&Path>, log: &str) -> Server {
        self.serve_with(config, log, &[])
    }

    /// [`Roster::serve`] with extra environment variables.
    pub fn serve_with(&self, config: Option<&Path>, log: &str, env: &[(&str, &str)]) -> Server {
        let mut cmd = self.command();
        cmd.arg("serve")
            .env("ROSTER_LOG", log)
            .envs(env.iter().copied());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let file = self
            .dir
            .path()
            .join(format!("serve-{}.log", uuid::Uuid::now_v7().simple()));
        let server = Server::spawn(cmd, file, "roster serve");
        server.addr();
        server
    }
}

/// A `roster serve` process (the test kit's spawner).
pub type Server = roster_testkit::process::Serve;

/// One HTTP/1.1 response off a raw socket: status and body.
pub async fn read_reply(stream: &mut TcpStream, wait: Duration) -> Option<(u16, String)> {
    roster_testkit::http::read_reply(stream, wait)
        .await
        .map(|r| (r.status, r.body))
}

/// A complete request on a fresh connection: status and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let r = roster_testkit::http::request(addr, method, path, token, body).await;
    (r.status, r.body)
}

/// POSTs a resource that must be created (201) and returns its id.
pub async fn create(addr: SocketAddr, path: &str, token: &str, body: &Value) -> String {
    let (status, text) = request(addr, "POST", path, token, Some(body)).await;
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    created["id"].as_str().unwrap().to_owned()
}

pub use roster_testkit::http::Receiver;
