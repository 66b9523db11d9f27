//! Helpers of the test binaries that run real `roster` processes (`faults`,
//! `multi_instance`): `roster serve` processes on the test kit's spawner,
//! administration commands, SCIM names. Each binary includes this module with
//! `mod common;`; the test PostgreSQL and its schemas are the test kit's.
#![allow(dead_code)] // Each binary uses a subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

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

pub use roster_testkit::pg::Schema;
#[allow(unused_imports)] // multi_instance queries its schemas; faults does not.
pub use roster_testkit::pg::with_client_async as with_client;

// -------------------------------------------------------------------- servers

pub use roster_testkit::process::Serve;

/// Starts `roster serve` on the database `url` (see [`Serve`]: a port of its
/// own, its output in `log`); it listens and answers once
/// [`Serve::wait_ready`] returns.
pub fn serve(url: &str, config: Option<&Path>, log: PathBuf, label: &str) -> Serve {
    let mut cmd = Command::new(ROSTER);
    cmd.arg("serve")
        .args(["--database", url, "--database-pool-size", POOL_SIZE]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    // `info`: the process logs the address it listens on (`addr=`).
    cmd.env_remove("ROSTER_CONFIG")
        .env("ROSTER_LOG", "info,tower_http=warn");
    Serve::spawn(cmd, log, label)
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
