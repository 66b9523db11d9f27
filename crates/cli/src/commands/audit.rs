//! `roster audit`: the audit log of administrative changes.

use anyhow::Result;
use clap::Subcommand;
use roster_store::{AuditLog, AuditQuery, AuditRecord};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print the newest audit records, oldest first; with --follow, keep
    /// printing new ones as they commit.
    Tail {
        /// How many of the newest records to print first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u64,
        /// Keep waiting for new records.
        #[arg(long)]
        follow: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Only records about this target id (a directory, token, admin key or webhook).
        #[arg(long)]
        target: Option<String>,
        /// Only records by this actor (admin_key:<id>, cli, dashboard:<session>).
        #[arg(long)]
        actor: Option<String>,
    },
}

/// One line of text: time, actor, action, target, details.
fn line(r: &AuditRecord) -> String {
    let dir = match &r.directory_id {
        Some(d) if *d != r.target_id => format!(" (directory {d})"),
        _ => String::new(),
    };
    format!(
        "{}  {}  {}  {} {}{dir}  {}",
        roster_scim::values::format_unix_millis(r.at),
        r.actor,
        r.action,
        r.target_type,
        r.target_id,
        r.details
    )
}

pub async fn run(store: &dyn AuditLog, cmd: AuditCommand) -> Result<()> {
    let AuditCommand::Tail {
        lines,
        follow,
        json,
        target,
        actor,
    } = cmd;
    let mut query = AuditQuery {
        after: 0,
        limit: lines,
        newest: true,
        target_id: target,
        actor,
    };
    loop {
        let batch = store.audit_log(query.clone()).await?;
        for r in &batch {
            if json {
                println!("{}", r.to_json());
            } else {
                println!("{}", line(r));
            }
        }
        if let Some(last) = batch.last() {
            query.after = last.seq;
        }
        if !follow {
            return Ok(());
        }
        query.newest = false;
        query.limit = 1000;
        if batch.len() < 1000 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}
