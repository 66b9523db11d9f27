//! Settings from a TOML file, `ROSTER_*` variables and flags (later ones win).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use roster_server::ServerConfig;
use roster_store::secrets::SecretKey;

/// The TOML file given by `--config`: `database` plus any [`ServerConfig`] key.
#[derive(Debug, Default)]
pub struct FileConfig {
    pub database: Option<String>,
    /// PostgreSQL connections per process (`database_pool_size`).
    pub database_pool_size: Option<u32>,
    /// Key that encrypts webhook secrets at rest (`secret_key`, base64 of 32 bytes).
    pub secret_key: Option<String>,
    /// Keys that `secret_key` replaced, still tried for decryption
    /// (`previous_secret_keys`), so instances can move to a new key one by one.
    pub previous_secret_keys: Vec<String>,
    pub server: ServerConfig,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let mut cfg = Self::parse(&text)
            .with_context(|| format!("the config file {} is not valid", path.display()))?;
        // Extension files are relative to the config file, like include paths.
        let base = path.parent().unwrap_or(Path::new("."));
        for ext in &mut cfg.server.extensions {
            if ext.file.is_relative() {
                ext.file = base.join(&ext.file);
            }
        }
        Ok(cfg)
    }

    fn parse(text: &str) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text)?;
        let database = match table.remove("database") {
            None => None,
            Some(toml::Value::String(s)) => Some(s),
            Some(_) => bail!("database must be a string such as \"sqlite://roster.db\""),
        };
        let database_pool_size = match table.remove("database_pool_size") {
            None => None,
            Some(toml::Value::Integer(n)) if n > 0 => Some(u32::try_from(n)?),
            Some(_) => bail!("database_pool_size must be a positive integer such as 16"),
        };
        let secret_key = match table.remove("secret_key") {
            None => None,
            Some(toml::Value::String(s)) => Some(s),
            Some(_) => bail!("secret_key must be a string: 32 bytes in base64"),
        };
        let previous_secret_keys = match table.remove("previous_secret_keys") {
            None => Vec::new(),
            Some(toml::Value::Array(keys)) => keys
                .into_iter()
                .map(|k| match k {
                    toml::Value::String(s) => Ok(s),
                    _ => bail!("previous_secret_keys must be a list of strings: keys in base64"),
                })
                .collect::<Result<_>>()?,
            Some(_) => bail!("previous_secret_keys must be a list of strings: keys in base64"),
        };
        // ServerConfig refuses unknown keys, so a typo is an error, not a silent default.
        let server: ServerConfig = toml::Value::Table(table).try_into()?;
        Ok(FileConfig {
            database,
            database_pool_size,
            secret_key,
            previous_secret_keys,
            server,
        })
    }

    pub fn server_config(&self) -> ServerConfig {
        self.server.clone()
    }
}

/// `secret_key` with its `previous_secret_keys`; the variables
/// (`ROSTER_SECRET_KEY`, `ROSTER_PREVIOUS_SECRET_KEYS`, comma-separated) win
/// over the file, as for every other setting.
pub fn secret_key(file: &FileConfig) -> Result<Option<SecretKey>> {
    let current = std::env::var("ROSTER_SECRET_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .or_else(|| file.secret_key.clone());
    let previous: Vec<String> = match std::env::var("ROSTER_PREVIOUS_SECRET_KEYS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => file.previous_secret_keys.clone(),
    };
    let Some(current) = current else {
        // Previous keys only ever decrypt: without a current key, secrets
        // would be read with the old key and stored back in plaintext.
        anyhow::ensure!(
            previous.is_empty(),
            "previous_secret_keys is set but secret_key is not; set secret_key to the new key"
        );
        return Ok(None);
    };
    let previous = previous
        .iter()
        .enumerate()
        .map(|(i, k)| {
            // Never echo the key text: only its position.
            SecretKey::from_base64(k).map_err(|e| {
                anyhow::anyhow!(
                    "previous_secret_keys[{i}]: {}",
                    e.trim_start_matches("secret_key ")
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let key = SecretKey::from_base64(&current).map_err(anyhow::Error::msg)?;
    Ok(Some(key.with_previous(previous)))
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL, as given.
    Postgres(String),
}

impl Database {
    /// `sqlite://PATH`, `sqlite:PATH`, a plain file path, or `postgres://…`.
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
            return Ok(Database::Postgres(url.to_owned()));
        }
        if url.contains("://") {
            bail!(
                "unknown database URL {url:?}; use sqlite://PATH or postgres://user@host/database"
            );
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
        assert_eq!(
            Database::parse("postgres://u@h/db").unwrap(),
            Database::Postgres("postgres://u@h/db".into())
        );
    }

    #[test]
    fn reads_a_toml_file() {
        let cfg = FileConfig::parse(
            "database = \"sqlite://x.db\"\nlisten = \"127.0.0.1:9000\"\nmax_page_size = 50\n[[extensions]]\nfile = \"x.json\"\nresource_type = \"User\"\n",
        )
        .unwrap();
        assert_eq!(cfg.database.as_deref(), Some("sqlite://x.db"));
        let s = cfg.server_config();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.max_page_size, 50);
        assert_eq!(s.extensions.len(), 1);
        assert!(FileConfig::parse("nope = 1").is_err());
    }

    #[test]
    fn reads_previous_secret_keys_as_a_list_of_strings() {
        let cfg = FileConfig::parse("secret_key = \"a\"\nprevious_secret_keys = [\"b\", \"c\"]\n")
            .unwrap();
        assert_eq!(cfg.previous_secret_keys, ["b", "c"]);
        assert!(FileConfig::parse("previous_secret_keys = \"b\"").is_err());
        assert!(FileConfig::parse("previous_secret_keys = [1]").is_err());
        assert!(
            FileConfig::parse("")
                .unwrap()
                .previous_secret_keys
                .is_empty()
        );
    }
}
