//! What every command does first: the log on stderr (the `log` and
//! `log_format` settings, `ROSTER_LOG` and `ROSTER_LOG_FORMAT`), the memory
//! set-up, and TLS's crypto.

use anyhow::{Result, anyhow};

use crate::config::{LogFormat, LogSetting};
use crate::memory;

pub fn start(log: &LogSetting) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter).map_err(|e| {
        anyhow!(
            "setting `log` from {}: {e}; expected a tracing filter such as \"info,tower_http=warn\"",
            log.source
        )
    })?;
    let log_builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Text => log_builder
            // Escape codes belong on a terminal, not in journald or a log file.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // One object per line: the event's fields at the top level beside
        // `timestamp`, `level` and `message`, and the request's span (its
        // id, method, path, route and proven directory) under `span`.
        LogFormat::Json => log_builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    memory::disable_transparent_huge_pages();
    memory::route_sqlite_to_mimalloc();
    roster_server::install_crypto_provider();
    Ok(())
}
