//! Settings from a TOML file, `ROSTER_*` variables and flags (later ones win).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use roster_server::{ExtensionConfig, ServerConfig};
use serde::Deserialize;

/// The TOML file given by `--config`. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database: Option<String>,
    pub listen: Option<std::net::SocketAddr>,
    pub public_url: Option<String>,
    pub default_page_size: Option<u64>,
    pub max_page_size: Option<u64>,
    pub cursor_timeout_secs: Option<i64>,
    pub max_body_bytes: Option<usize>,
    pub group_patch_no_content: Option<bool>,
    pub bulk_max_operations: Option<usize>,
    pub bulk_max_payload_bytes: Option<usize>,
    pub idempotency_window_secs: Option<i64>,
    #[serde(default)]
    pub extensions: Vec<ExtensionConfig>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let mut cfg: FileConfig = toml::from_str(&text)
            .with_context(|| format!("the config file {} is not valid", path.display()))?;
        // Extension files are relative to the config file, like include paths.
        let base = path.parent().unwrap_or(Path::new("."));
        for ext in &mut cfg.extensions {
            if ext.file.is_relative() {
                ext.file = base.join(&ext.file);
            }
        }
        Ok(cfg)
    }

    pub fn server_config(&self) -> ServerConfig {
        let d = ServerConfig::default();
        ServerConfig {
            listen: self.listen.unwrap_or(d.listen),
            public_url: self.public_url.clone().or(d.public_url),
            default_page_size: self.default_page_size.unwrap_or(d.default_page_size),
            max_page_size: self.max_page_size.unwrap_or(d.max_page_size),
            cursor_timeout_secs: self.cursor_timeout_secs.unwrap_or(d.cursor_timeout_secs),
            max_body_bytes: self.max_body_bytes.unwrap_or(d.max_body_bytes),
            group_patch_no_content: self
                .group_patch_no_content
                .unwrap_or(d.group_patch_no_content),
            bulk_max_operations: self.bulk_max_operations.unwrap_or(d.bulk_max_operations),
            bulk_max_payload_bytes: self
                .bulk_max_payload_bytes
                .unwrap_or(d.bulk_max_payload_bytes),
            idempotency_window_secs: self
                .idempotency_window_secs
                .unwrap_or(d.idempotency_window_secs),
            extensions: self.extensions.clone(),
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
}

impl Database {
    /// `sqlite://PATH`, `sqlite:PATH` or a plain file path.
    pub fn parse(url: &str) -> Result<Self> {
        let lower = url.to_ascii_lowercase();
        if let Some(rest) = lower
            .starts_with("sqlite:")
            .then(|| &url["sqlite:".len()..])
        {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                bail!("the database URL {url:?} names no file; use sqlite://roster.db");
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            bail!("this build of Roster stores data in SQLite only; use --database sqlite://PATH");
        }
        if url.contains("://") {
            bail!("unknown database URL {url:?}; use sqlite://PATH");
        }
        Ok(Database::Sqlite(PathBuf::from(url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_database_urls() {
        assert_eq!(
            Database::parse("sqlite://roster.db").unwrap(),
            Database::Sqlite("roster.db".into())
        );
        assert_eq!(
            Database::parse("sqlite:///tmp/x.db").unwrap(),
            Database::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            Database::parse("data.db").unwrap(),
            Database::Sqlite("data.db".into())
        );
        assert!(Database::parse("mysql://x").is_err());
    }

    #[test]
    fn reads_a_toml_file() {
        let cfg: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nmax_page_size = 50\n[[extensions]]\nfile = \"x.json\"\nresource_type = \"User\"\n",
        )
        .unwrap();
        let s = cfg.server_config();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.max_page_size, 50);
        assert_eq!(s.extensions.len(), 1);
        assert!(toml::from_str::<FileConfig>("nope = 1").is_err());
    }
}
