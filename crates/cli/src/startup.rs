//! What every command does first: the log on stderr (the `log` setting,
//! `ROSTER_LOG`), the memory set-up, and TLS's crypto.

use anyhow::{Result, anyhow};

use crate::config::LogSetting;
use crate::memory;

pub fn start(log: &LogSetting) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter).map_err(|e| {
        anyhow!(
            "setting `log` from {}: {e}; expected a tracing filter such as \"info,tower_http=warn\"",
            log.source
        )
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Escape codes belong on a terminal, not in journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    memory::disable_transparent_huge_pages();
    memory::route_sqlite_to_mimalloc();
    roster_server::install_crypto_provider();
    Ok(())
}
