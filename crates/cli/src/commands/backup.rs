//! `roster backup`: a consistent copy of the SQLite store, taken with
//! SQLite's online backup while the server keeps serving.
//!
//! The copy reads one snapshot: a read transaction is opened on the source
//! before the first page is copied and held until the last, so it holds
//! exactly the writes committed before it began (every write acknowledged
//! before `roster backup` started) and none half-done. In WAL mode a reader
//! does not block the server's writer; the copy still goes in steps with a
//! short pause so it does not compete for the disk in one burst.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use rusqlite::{Connection, OpenFlags};
use serde_json::json;

use crate::config::{Database, Settings};

/// Pages copied per step, and the pause between steps.
const STEP_PAGES: std::ffi::c_int = 256;
const STEP_PAUSE: Duration = Duration::from_millis(2);

#[derive(Args)]
pub struct BackupArgs {
    /// Where to write the copy; replaced only once the copy is complete.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub const PG_BACKUP_HINT: &str = "roster backup copies SQLite databases only; for PostgreSQL use \
     pg_dump -Fc (see docs/deployment.md, \"Backups\")";

pub fn run(settings: &Settings, args: BackupArgs) -> Result<()> {
    let source = match settings.database()? {
        Database::Sqlite(path) => path,
        Database::Postgres(_) => anyhow::bail!(PG_BACKUP_HINT),
    };
    anyhow::ensure!(
        source.is_file(),
        "there is no SQLite database at {} (check --database / ROSTER_DATABASE_URL)",
        source.display()
    );
    let copied = copy(&source, &args.to)?;
    if args.json {
        println!(
            "{}",
            json!({
                "from": source.display().to_string(),
                "to": args.to.display().to_string(),
                "bytes": copied.bytes,
                "pages": copied.pages,
                "schema_version": copied.schema_version,
            })
        );
    } else {
        println!(
            "backed up {} to {}: {} bytes, {} pages, schema version {}",
            source.display(),
            args.to.display(),
            copied.bytes,
            copied.pages,
            copied.schema_version
        );
    }
    Ok(())
}

struct Copied {
    bytes: u64,
    pages: i64,
    schema_version: i64,
}

fn copy(source: &Path, to: &Path) -> Result<Copied> {
    // Read-write without create, so it joins the server's WAL (its -shm) like
    // any other connection; query_only keeps it from writing.
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", source.display()))?;
    src.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")?;
    // The snapshot: everything committed before this point, nothing after.
    src.execute_batch("BEGIN")?;
    let schema_version: i64 = src
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .with_context(|| format!("{} is not a SQLite database", source.display()))?;
    anyhow::ensure!(
        schema_version >= 1,
        "{} is not a Roster database (it has no schema version)",
        source.display()
    );

    let tmp = temp_beside(to)?;
    let result = (|| -> Result<i64> {
        let pages = {
            let mut dst =
                Connection::open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let pages = {
                let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
                let bar = progress_bar();
                loop {
                    let step = backup.step(STEP_PAGES)?;
                    let p = backup.progress();
                    if let Some(bar) = &bar {
                        bar.set_length(u64::try_from(p.pagecount).unwrap_or(0));
                        bar.set_position(u64::try_from(p.pagecount - p.remaining).unwrap_or(0));
                    }
                    match step {
                        rusqlite::backup::StepResult::Done => break,
                        _ => std::thread::sleep(STEP_PAUSE),
                    }
                }
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                i64::from(backup.progress().pagecount)
            };
            // A file on its own: no -wal beside it when it is moved.
            dst.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
            pages
        };
        sync_file(&tmp)?;
        Ok(pages)
    })();
    src.execute_batch("COMMIT")?;
    let pages = match result {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    install(&tmp, to)?;
    let bytes = std::fs::metadata(to)?.len();
    Ok(Copied {
        bytes,
        pages,
        schema_version,
    })
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} pages") {
            bar.set_style(style);
        }
        bar
    })
}

/// A fresh name in the directory of `target`, so the final rename stays on one file system.
pub fn temp_beside(target: &Path) -> Result<PathBuf> {
    let name = target
        .file_name()
        .with_context(|| format!("{} is not a file name", target.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = target.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    Ok(tmp)
}

pub fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", path.display()))
}

/// Renames `tmp` over `target` and syncs the directory, so `target` is
/// either the old file or the whole new one.
pub fn install(tmp: &Path, target: &Path) -> Result<()> {
    std::fs::rename(tmp, target)
        .with_context(|| format!("moving {} to {}", tmp.display(), target.display()))?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the directory {}", dir.display()))
}
