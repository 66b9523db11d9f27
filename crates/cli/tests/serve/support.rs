//! Running the `roster` binary: a data directory per test, `serve` as a child
//! process whose log (stderr) is collected, and raw HTTP on real sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .env("ROSTER_LOG", "info")
            .stdin(Stdio::null());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let log = self.dir.path().join("serve-fails.log");
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(file.try_clone().unwrap()).stderr(file);
        let mut child = cmd.spawn().unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "roster serve started although it should not have:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.success(),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }

    /// Starts `roster serve` on a free loopback port.
    pub fn serve(&self, config: Option<&Path>, log: &str) -> Server {
        self.serve_with(config, log, &[])
    }

    /// [`Roster::serve`] with extra environment variables.
    pub fn serve_with(&self, config: Option<&Path>, log: &str, env: &[(&str, &str)]) -> Server {
        let mut cmd = self.command();
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .env("ROSTER_LOG", log)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            sink.lock().unwrap().push_str(&s);
        });
        let started = Instant::now();
        let addr = loop {
            let text = log.lock().unwrap().clone();
            if let Some(addr) = text
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .and_then(|a| a.parse::<SocketAddr>().ok())
            {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("roster serve exited with {status}:\n{text}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "roster serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Server {
            child,
            addr,
            log,
            stdout: out,
        }
    }
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl Server {
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM, as a service manager stops Roster.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for the process to exit; returns whether it exited successfully and when.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<(bool, Duration)> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the log reader drain the pipe.
                std::thread::sleep(Duration::from_millis(100));
                return Some((status.success(), started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only the child this test started, by its own handle.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 response off a raw socket: status and body.
pub async fn read_reply(stream: &mut TcpStream, wait: Duration) -> Option<(u16, String)> {
    crate::raw_http::read_reply(stream, wait)
        .await
        .map(|r| (r.status, r.body))
}

/// A complete request on a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).await.unwrap();
    read_reply(&mut c, Duration::from_secs(10))
        .await
        .expect("no reply")
}

/// A webhook receiver on loopback that answers 200 after `delay`, recording
/// each delivery's event id and raw request.
pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    pub async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    loop {
                        let Some(raw) = read_request(&mut c).await else {
                            return;
                        };
                        tokio::time::sleep(delay).await;
                        let id = raw
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("roster-event-id")
                                    .then(|| v.trim().to_owned())
                            })
                            .unwrap_or_default();
                        record.lock().unwrap().push((id, raw));
                        if c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { url, seen }
    }

    pub fn ids(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }
}

async fn read_request(c: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned());
            }
        }
        match c.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
