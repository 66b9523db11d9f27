//! `roster serve` as a child process on a loopback port of its own choosing
//! (`--listen 127.0.0.1:0`), its output (stdout and stderr) in a log file,
//! the address read from its log.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a process may take to listen, or to answer once listening.
const START: Duration = Duration::from_secs(30);

/// A `roster serve` process; killed (and waited for) when dropped, its log's
/// last lines printed if the test is failing, its log file removed.
pub struct Serve {
    child: Mutex<Child>,
    /// The file with the process's stdout and stderr.
    pub log: PathBuf,
    /// Names the process in messages.
    pub label: String,
    addr: OnceLock<SocketAddr>,
}

impl Serve {
    /// Starts `cmd` (the binary with `serve` and its arguments) with
    /// `--listen 127.0.0.1:0`, output to `log`, no colours, no stdin. Returns
    /// at once: [`Serve::addr`] waits for the address.
    pub fn spawn(mut cmd: Command, log: PathBuf, label: &str) -> Serve {
        let out =
            File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", log.display()));
        let child = cmd
            .args(["--listen", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{label} does not start: {e}"));
        Serve {
            child: Mutex::new(child),
            log,
            label: label.to_owned(),
            addr: OnceLock::new(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address the process listens on, from its log (`addr=…`, logged at
    /// `info` once it listens); fails the test if it exits first or takes
    /// over 30 s.
    pub fn addr(&self) -> SocketAddr {
        let started = Instant::now();
        loop {
            if let Some(addr) = self.listening(started) {
                return addr;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`Serve::addr`] without blocking an async runtime's thread.
    pub async fn addr_async(&self) -> SocketAddr {
        let started = Instant::now();
        loop {
            if let Some(addr) = self.listening(started) {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address once the log has it; fails the test if the process exited
    /// first or `started` is 30 s ago.
    fn listening(&self, started: Instant) -> Option<SocketAddr> {
        if let Some(addr) = self.addr.get() {
            return Some(*addr);
        }
        let log = self.log_text();
        // `addr=…` in the text log, `"addr":"…"` in the JSON one.
        let json = log
            .split("\"addr\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next());
        if let Some(addr) = log
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .or(json)
            .and_then(|a| a.parse().ok())
        {
            return Some(*self.addr.get_or_init(|| addr));
        }
        if let Some(status) = self.exited() {
            panic!("{} exited ({status}) before listening:\n{log}", self.label);
        }
        assert!(
            started.elapsed() < START,
            "{} did not listen within {START:?}:\n{log}",
            self.label
        );
        None
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The URL of `path` on this process.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Waits until the process answers `GET path` (with `token`) with 200.
    pub async fn wait_ready(&self, path: &str, token: &str) {
        let addr = self.addr_async().await;
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                panic!(
                    "{} exited ({status}) before serving:\n{}",
                    self.label,
                    self.log_text()
                );
            }
            let reply =
                crate::http::try_request(addr, "GET", path, token, None, Duration::from_secs(5))
                    .await;
            if reply.is_some_and(|r| r.status == 200) {
                return;
            }
            assert!(
                started.elapsed() < START,
                "{} did not answer {path} within {START:?}:\n{}",
                self.label,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process's id.
    pub fn id(&self) -> u32 {
        self.child().id()
    }

    /// The exit status, once the process has exited.
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child().try_wait().ok().flatten()
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends SIGTERM, as a service manager stops Roster.
    pub fn terminate(&self) {
        let pid = self.id() as libc::pid_t;
        // SAFETY: kill has no memory preconditions; pid is this test's own child.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) } == 0;
        assert!(sent, "SIGTERM to {} failed", self.label);
    }

    /// SIGKILL: no shutdown, no flushing, no released leases.
    pub fn kill(&self) {
        let mut child = self.child();
        if let Err(e) = child.kill().and_then(|()| child.wait().map(drop)) {
            panic!("cannot kill {}: {e}", self.label);
        }
    }

    /// Waits at most `limit` for the process to exit; whether it exited
    /// successfully and when.
    pub fn wait_exit(&self, limit: Duration) -> Option<(bool, Duration)> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.exited() {
                return Some((status.success(), started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Nothing panicked in the process.
    pub fn assert_no_panic(&self) {
        let log = self.log_text();
        assert!(!log.contains("panicked"), "{} panicked:\n{log}", self.label);
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Only the child this test started, by its own handle.
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
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
