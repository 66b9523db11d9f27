//! `roster restore`: checks a backup and installs it as the SQLite store.
//!
//! Only with the server stopped: a running server keeps the database open
//! and would go on from its own state, so the restore takes SQLite's
//! exclusive lock on the target first and refuses if anyone holds it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use roster_store::sqlite::SCHEMA_VERSION;
use rusqlite::{Connection, OpenFlags};

use super::backup::{install, sync_file, temp_beside};
use crate::config::{Database, Settings};

#[derive(Args)]
pub struct RestoreArgs {
    /// A file written by `roster backup`.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

pub const PG_RESTORE_HINT: &str = "roster restore installs SQLite databases only; for PostgreSQL \
     use pg_restore (see docs/deployment.md, \"Backups\")";

pub fn run(settings: &Settings, args: RestoreArgs) -> Result<()> {
    let target = match settings.database()? {
        Database::Sqlite(path) => path,
        Database::Postgres(_) => anyhow::bail!(PG_RESTORE_HINT),
    };
    let version = check(&args.from)?;
    // Held until the new file is in place: no server can start on the old one meanwhile.
    let lock = if target.exists() {
        Some(lock_exclusive(&target)?)
    } else {
        None
    };
    if !args.yes
        && !confirm(&format!(
            "Replace {} with {} (schema version {version})? Everything written since that backup is lost. [y/N] ",
            target.display(),
            args.from.display()
        ))?
    {
        anyhow::bail!("not restored");
    }
    let tmp = temp_beside(&target)?;
    std::fs::copy(&args.from, &tmp)
        .with_context(|| format!("copying {} to {}", args.from.display(), tmp.display()))?;
    if let Err(e) = sync_file(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Closing the lock's connection may fold the old WAL into the old file;
    // then its -wal and -shm go, so the new file is not read through them.
    drop(lock);
    for suffix in ["-wal", "-shm"] {
        let mut side = target.clone().into_os_string();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("removing {}", Path::new(&side).display()));
            }
        }
    }
    install(&tmp, &target)?;
    println!(
        "restored {} from {} (schema version {version})",
        target.display(),
        args.from.display()
    );
    Ok(())
}

/// FILE is a sound Roster database this binary can read: its schema version.
fn check(file: &Path) -> Result<i64> {
    anyhow::ensure!(file.is_file(), "there is no file {}", file.display());
    let not_roster = || format!("{} is not a Roster database", file.display());
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(not_roster)?;
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .with_context(not_roster)?;
    anyhow::ensure!(
        integrity == ["ok"],
        "{} fails SQLite's integrity check: {}",
        file.display(),
        integrity.join("; ")
    );
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .with_context(not_roster)?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'
               AND name IN ('directories', 'resources', 'events')",
            [],
            |r| r.get(0),
        )
        .with_context(not_roster)?;
    anyhow::ensure!(version >= 1 && tables == 3, not_roster());
    anyhow::ensure!(
        version <= SCHEMA_VERSION,
        "{} has schema version {version}, newer than this Roster ({SCHEMA_VERSION}); \
         restore it with the Roster that wrote it, or upgrade Roster",
        file.display()
    );
    Ok(version)
}

/// SQLite's exclusive lock on the target, taken without waiting; refused
/// while any process (a running `roster serve`) has the database open.
fn lock_exclusive(target: &Path) -> Result<Connection> {
    let in_use = || {
        format!(
            "{} is in use (a roster serve is running on it?); stop the server before \
             restoring: a restore replaces the whole database, and a running server \
             would keep writing to the old one",
            target.display()
        )
    };
    let conn = Connection::open_with_flags(
        target,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", target.display()))?;
    conn.execute_batch("PRAGMA busy_timeout = 0;")?;
    conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |_| Ok(()))?;
    conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
        .with_context(in_use)?;
    Ok(conn)
}

/// Asks on the terminal; without one there is nobody to ask, so --yes is required.
fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("refusing to restore without confirmation; pass --yes");
    }
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
