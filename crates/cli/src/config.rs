//! Every setting of `roster`, in one place. Each has a TOML key, a `ROSTER_*`
//! variable and, where an operator reaches for one, a flag. Layers, later
//! ones winning: defaults < the TOML file (`--config`) < variables < flags.
//!
//! The keys are [`ServerConfig`]'s fields and the CLI's own ([`Own`]); the
//! variable of a key is `ROSTER_` and the key in capitals ([`variable`]).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use figment::error::Kind;
use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use roster_server::ServerConfig;
use roster_store::secrets::SecretKey;
use serde::{Deserialize, Serialize};

/// The default `log` filter.
const DEFAULT_LOG: &str = "info,tower_http=warn";

/// The CLI's own settings; every other key belongs to [`ServerConfig`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
struct Own {
    /// Where the data lives: `sqlite://PATH`, a file path, or `postgres://…`.
    database: String,
    /// PostgreSQL connections per process.
    database_pool_size: NonZeroU32,
    /// Key that encrypts webhook secrets at rest (base64 of 32 bytes).
    secret_key: Option<String>,
    /// Keys that `secret_key` replaced, still tried for decryption, so
    /// instances can move to a new key one by one.
    previous_secret_keys: Vec<String>,
    /// A `tracing` filter for the log on stderr.
    log: String,
    /// How the log is written: `text` for people, `json` for collectors.
    log_format: LogFormat,
}

/// The log's form (`log_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Own {
    fn default() -> Self {
        Own {
            database: "sqlite://roster.db".to_owned(),
            database_pool_size: NonZeroU32::MIN.saturating_add(15),
            secret_key: None,
            previous_secret_keys: Vec::new(),
            log: DEFAULT_LOG.to_owned(),
            log_format: LogFormat::Text,
        }
    }
}

/// Just the `log` settings, for commands that read no other (`sync`).
#[derive(Deserialize)]
#[serde(default)]
struct LogOnly {
    log: String,
    log_format: LogFormat,
}

impl Default for LogOnly {
    fn default() -> Self {
        LogOnly {
            log: DEFAULT_LOG.to_owned(),
            log_format: LogFormat::Text,
        }
    }
}

/// Settings given as flags; `None` (or `false`) leaves a setting to the
/// layers below.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub database: Option<String>,
    pub database_pool_size: Option<u32>,
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub group_patch_no_content: bool,
    pub statement_timeout_ms: Option<u64>,
}

/// The variable of a key: `ROSTER_` and the key in capitals, except
/// `database`, whose variable has always been `ROSTER_DATABASE_URL`.
pub fn variable(key: &str) -> String {
    if key == "database" {
        "ROSTER_DATABASE_URL".to_owned()
    } else {
        format!("ROSTER_{}", key.to_ascii_uppercase())
    }
}

/// The flag of a key, for the keys that have one.
fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl Source {
    /// `default`, `file`, `env` or `flag`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File(_) => "file",
            Source::Env(_) => "env",
            Source::Flag(_) => "flag",
        }
    }

    /// The file, variable or flag; `None` for a default.
    pub fn origin(&self) -> Option<String> {
        match self {
            Source::Default => None,
            Source::File(p) => Some(p.display().to_string()),
            Source::Env(v) | Source::Flag(v) => Some(v.clone()),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "the config file {}", p.display()),
            Source::Env(v) => write!(f, "the variable {v}"),
            Source::Flag(v) => write!(f, "the flag {v}"),
        }
    }
}

// Names of the layers in figment's metadata, read back by `source`.
const FILE: &str = "config file";
const ENV: &str = "environment";
const FLAGS: &str = "flags";

/// One layer: what a file, the environment or the flags set.
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Every key, in the order `roster config show` prints them: the CLI's own,
/// then [`ServerConfig`]'s.
fn keys() -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for value in [
        serde_json::to_value(Own::default())?,
        serde_json::to_value(ServerConfig::default())?,
    ] {
        if let serde_json::Value::Object(map) = value {
            keys.extend(map.into_iter().map(|(k, _)| k));
        }
    }
    Ok(keys)
}

/// Whether `key` takes a number with a fraction.
fn is_float(key: &str) -> bool {
    serde_json::to_value(ServerConfig::default())
        .ok()
        .and_then(|v| v.get(key).map(serde_json::Value::is_f64))
        .unwrap_or(false)
}

/// The TOML file as one layer.
fn file_layer(path: &Path) -> Result<Layer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let mut data = Toml::string(&text)
        .data()
        .map_err(|e| anyhow!("the config file {} is not valid TOML: {e}", path.display()))?;
    Ok(Layer {
        metadata: Metadata::from(FILE, path),
        dict: data.remove(&Profile::Default).unwrap_or_default(),
    })
}

/// The `ROSTER_*` variable of every key, as one layer. An empty variable
/// counts as unset. `previous_secret_keys` is comma-separated; the lists of
/// tables (`extensions`, `rate_limit_overrides`) are JSON arrays.
fn env_layer(keys: &[String]) -> Result<Layer> {
    let mut dict = Dict::new();
    for key in keys {
        let var = variable(key);
        let Some(raw) = std::env::var_os(&var) else {
            continue;
        };
        let Some(text) = raw.to_str() else {
            bail!("{var} is not valid UTF-8");
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let value = match key.as_str() {
            "previous_secret_keys" => Value::from(
                text.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            "extensions" | "rate_limit_overrides" => {
                let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                    anyhow!(
                        "setting `{key}` from the variable {var}: not JSON ({e}); expected {}",
                        expected(key)
                    )
                })?;
                Value::serialize(json)?
            }
            // Parsed here: figment would read "0.1" as an f32 and widen it.
            _ if is_float(key) => match text.parse::<f64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::from(text.to_owned()),
            },
            _ => Value::from(text.to_owned()),
        };
        dict.insert(key.clone(), value);
    }
    Ok(Layer {
        metadata: Metadata::named(ENV),
        dict,
    })
}

fn flags_layer(flags: &Flags) -> Result<Layer> {
    let mut dict = Dict::new();
    if let Some(v) = &flags.database {
        dict.insert("database".into(), Value::from(v.clone()));
    }
    if let Some(v) = flags.database_pool_size {
        dict.insert("database_pool_size".into(), Value::serialize(v)?);
    }
    if let Some(v) = flags.listen {
        dict.insert("listen".into(), Value::from(v.to_string()));
    }
    if let Some(v) = &flags.public_url {
        dict.insert("public_url".into(), Value::from(v.clone()));
    }
    if flags.group_patch_no_content {
        dict.insert("group_patch_no_content".into(), Value::from(true));
    }
    if let Some(v) = flags.statement_timeout_ms {
        dict.insert("statement_timeout_ms".into(), Value::serialize(v)?);
    }
    Ok(Layer {
        metadata: Metadata::named(FLAGS),
        dict,
    })
}

fn layers(config: Option<&Path>, flags: &Flags, keys: &[String]) -> Result<Figment> {
    let mut figment = Figment::new();
    if let Some(path) = config {
        figment = figment.merge(file_layer(path)?);
    }
    Ok(figment.merge(env_layer(keys)?).merge(flags_layer(flags)?))
}

/// Where `key`'s value in `figment` came from.
fn source(figment: &Figment, key: &str) -> Source {
    match figment.find_metadata(key) {
        None => Source::Default,
        Some(md) => match &*md.name {
            FILE => match &md.source {
                Some(figment::Source::File(p)) => Source::File(p.clone()),
                _ => Source::File(PathBuf::new()),
            },
            ENV => Source::Env(variable(key)),
            FLAGS => Source::Flag(flag(key)),
            _ => Source::Default,
        },
    }
}

/// What a key takes, for error messages.
fn expected(key: &str) -> String {
    let text = match key {
        "database" => "a URL such as \"sqlite://roster.db\" or \"postgres://user@host/database\"",
        "database_pool_size" => "a whole number above 0, such as 16",
        "listen" => "an address and port such as \"127.0.0.1:8080\"",
        "public_url" => "a URL such as \"https://scim.example.com\"",
        "secret_key" => "32 bytes in base64, as `openssl rand -base64 32` prints",
        "previous_secret_keys" => {
            "a list of keys in base64 (comma-separated in ROSTER_PREVIOUS_SECRET_KEYS)"
        }
        "log" => "a tracing filter such as \"info,tower_http=warn\"",
        "log_format" => "\"text\" or \"json\"",
        "metrics_listen" => "an address and port such as \"127.0.0.1:9090\"",
        "statement_timeout_ms" => {
            "a whole number of milliseconds below request_timeout_secs × 1000, such as 10000"
        }
        "extensions" => {
            "a list of tables with `file`, `resource_type` (\"User\" or \"Group\") and \
             `required`; in ROSTER_EXTENSIONS a JSON array such as \
             [{\"file\": \"acme.json\", \"resource_type\": \"User\"}]"
        }
        "rate_limit_overrides" => {
            "a list of tables with `directory`, `per_sec` and `burst`; in \
             ROSTER_RATE_LIMIT_OVERRIDES a JSON array such as \
             [{\"directory\": \"ID\", \"per_sec\": 10}]"
        }
        _ => {
            let default = serde_json::to_value(ServerConfig::default())
                .ok()
                .and_then(|v| v.get(key).cloned());
            return match default {
                Some(serde_json::Value::Bool(_)) => "true or false".to_owned(),
                Some(serde_json::Value::Number(n)) if n.is_f64() => {
                    format!("a number such as {n}")
                }
                Some(serde_json::Value::Number(n)) => format!("a whole number such as {n}"),
                Some(other) => format!("a value such as {other}"),
                None => "a value of the right type".to_owned(),
            };
        }
    };
    text.to_owned()
}

/// A figment error as an operator reads it: the key, where the value came
/// from, what is wrong and what the key takes. Never the value of a secret.
fn explain(figment: &Figment, err: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = err
        .into_iter()
        .map(|e| {
            let Some(key) = e.path.first() else {
                return e.to_string();
            };
            let source = match &e.metadata {
                Some(md) if &*md.name == FILE => match &md.source {
                    Some(figment::Source::File(p)) => Source::File(p.clone()),
                    _ => source(figment, key),
                },
                Some(md) if &*md.name == ENV => Source::Env(variable(key)),
                Some(md) if &*md.name == FLAGS => Source::Flag(flag(key)),
                _ => source(figment, key),
            };
            let what = match &e.kind {
                _ if matches!(key.as_str(), "secret_key" | "previous_secret_keys") => {
                    "not a valid value".to_owned()
                }
                Kind::InvalidType(found, _) => format!("found {found}"),
                Kind::InvalidValue(found, _) => format!("{found} is out of range"),
                kind => kind.to_string(),
            };
            format!(
                "setting `{}` from {source}: {what}; expected {}",
                e.path.join("."),
                expected(key)
            )
        })
        .collect();
    anyhow!(lines.join("\n"))
}

/// The known key closest to a misspelt one, if any is close.
fn nearest<'a>(unknown: &str, keys: &'a [String]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    keys.iter()
        .map(|k| (distance(unknown, k), k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// An unknown key is an error, so that a typo never silently leaves a default.
fn check_keys(figment: &Figment, keys: &[String]) -> Result<()> {
    let data = figment.data().map_err(|e| explain(figment, e))?;
    let Some(dict) = data.get(&Profile::Default) else {
        return Ok(());
    };
    for key in dict.keys() {
        if keys.contains(key) {
            continue;
        }
        let hint = match nearest(key, keys) {
            Some(k) => format!("; did you mean `{k}`?"),
            None => String::new(),
        };
        bail!(
            "unknown setting `{key}` in {}{hint} (`roster config show` lists every setting)",
            source(figment, key)
        );
    }
    Ok(())
}

/// The effective settings.
pub struct Settings {
    own: Own,
    pub server: ServerConfig,
    /// The TOML file they were read from, if any.
    pub config_file: Option<PathBuf>,
    figment: Figment,
    keys: Vec<String>,
}

/// One line of `roster config show`.
pub struct Entry {
    pub key: String,
    /// The value, secrets redacted; `null` when unset.
    pub value: serde_json::Value,
    pub source: Source,
}

impl Settings {
    /// Reads the file (if any), the variables and the flags.
    pub fn load(config: Option<&Path>, flags: &Flags) -> Result<Settings> {
        let keys = keys()?;
        let figment = layers(config, flags, &keys)?;
        Settings::resolve(figment, config, keys)
    }

    /// The settings from these layers.
    fn resolve(figment: Figment, config: Option<&Path>, keys: Vec<String>) -> Result<Settings> {
        check_keys(&figment, &keys)?;
        let own: Own = figment.extract_lossy().map_err(|e| explain(&figment, e))?;
        let mut server: ServerConfig = figment.extract_lossy().map_err(|e| explain(&figment, e))?;
        if let Err(why) = server.statement_timeout() {
            let from = match source(&figment, "statement_timeout_ms") {
                Source::Default => source(&figment, "request_timeout_secs"),
                set => set,
            };
            bail!("setting `statement_timeout_ms` from {from}: {why}");
        }
        // Extension files in the config file are relative to it, like include paths.
        if let (Some(path), Source::File(_)) = (config, source(&figment, "extensions")) {
            let base = path.parent().unwrap_or(Path::new("."));
            for ext in &mut server.extensions {
                if ext.file.is_relative() {
                    ext.file = base.join(&ext.file);
                }
            }
        }
        Ok(Settings {
            own,
            server,
            config_file: config.map(Path::to_owned),
            figment,
            keys,
        })
    }

    /// Only the `log` setting (file, `ROSTER_LOG`), for commands that read
    /// no other.
    pub fn load_log(config: Option<&Path>) -> Result<LogSetting> {
        let keys = ["log".to_owned(), "log_format".to_owned()];
        let figment = layers(config, &Flags::default(), &keys)?;
        let only: LogOnly = figment.extract_lossy().map_err(|e| explain(&figment, e))?;
        Ok(LogSetting {
            filter: only.log,
            format: only.log_format,
            source: source(&figment, "log"),
        })
    }

    pub fn log(&self) -> LogSetting {
        LogSetting {
            filter: self.own.log.clone(),
            format: self.own.log_format,
            source: self.source("log"),
        }
    }

    /// Where `key`'s value came from.
    pub fn source(&self, key: &str) -> Source {
        source(&self.figment, key)
    }

    /// The `database` URL, as given.
    pub fn database_url(&self) -> &str {
        &self.own.database
    }

    pub fn database(&self) -> Result<Database> {
        Database::parse(&self.own.database)
            .with_context(|| format!("setting `database` from {}", self.source("database")))
    }

    pub fn database_pool_size(&self) -> u32 {
        self.own.database_pool_size.get()
    }

    /// `secret_key` with its `previous_secret_keys`.
    pub fn secret_key(&self) -> Result<Option<SecretKey>> {
        let Some(current) = &self.own.secret_key else {
            // Previous keys only ever decrypt: without a current key, secrets
            // would be read with the old key and stored back in plaintext.
            anyhow::ensure!(
                self.own.previous_secret_keys.is_empty(),
                "previous_secret_keys is set but secret_key is not; set secret_key to the new key"
            );
            return Ok(None);
        };
        let previous = self
            .own
            .previous_secret_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                // Never echo the key text: only its position.
                SecretKey::from_base64(k).map_err(|e| {
                    anyhow!(
                        "previous_secret_keys[{i}]: {}",
                        e.to_string().trim_start_matches("secret_key ")
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let key = SecretKey::from_base64(current).map_err(anyhow::Error::msg)?;
        Ok(Some(key.with_previous(previous)))
    }

    /// Every setting with its value and source, secrets redacted.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut own = self.own.clone();
        own.database = redact_url(&own.database);
        own.secret_key = own.secret_key.map(|_| REDACTED.to_owned());
        for k in &mut own.previous_secret_keys {
            *k = REDACTED.to_owned();
        }
        let own = serde_json::to_value(own)?;
        let server = serde_json::to_value(&self.server)?;
        Ok(self
            .keys
            .iter()
            .map(|key| Entry {
                key: key.clone(),
                value: own
                    .get(key)
                    .or_else(|| server.get(key))
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
                source: self.source(key),
            })
            .collect())
    }
}

/// The `log` filter, where it came from, and `log_format`.
pub struct LogSetting {
    pub filter: String,
    pub format: LogFormat,
    pub source: Source,
}

const REDACTED: &str = "***";

/// A database URL with its password (and any `password=` parameter) replaced
/// by `***`: `postgres://user:pass@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}={REDACTED}")
                    }
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
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
                "unknown database URL {:?}; use sqlite://PATH or postgres://user@host/database",
                redact_url(url)
            );
        }
        Ok(Database::Sqlite(PathBuf::from(url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings from a TOML file alone (no variables, no flags).
    fn from_file(toml: &str) -> Result<Settings> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("roster.toml");
        std::fs::write(&path, toml)?;
        let figment = Figment::new().merge(file_layer(&path)?);
        Settings::resolve(figment, Some(&path), keys()?)
    }

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
    fn redacts_passwords_in_database_urls() {
        assert_eq!(redact_url("postgres://u:p@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://u:p@ss@h:5432"),
            "postgres://u:***@h:5432"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgresql://h/db?user=u&Password=p&sslmode=require"),
            "postgresql://h/db?user=u&Password=***&sslmode=require"
        );
        assert_eq!(redact_url("sqlite://roster.db"), "sqlite://roster.db");
        assert_eq!(redact_url("roster.db"), "roster.db");
        assert!(!format!("{:#}", Database::parse("mysql://u:p@h").unwrap_err()).contains(":p@"));
    }

    #[test]
    fn reads_a_toml_file() {
        let s = from_file(
            "database = \"sqlite://x.db\"\nlisten = \"127.0.0.1:9000\"\nmax_page_size = 50\n[[extensions]]\nfile = \"x.json\"\nresource_type = \"User\"\n",
        )
        .unwrap();
        assert_eq!(s.database_url(), "sqlite://x.db");
        assert_eq!(s.server.listen.port(), 9000);
        assert_eq!(s.server.max_page_size, 50);
        assert_eq!(s.server.extensions.len(), 1);
        assert!(s.server.extensions[0].file.ends_with("x.json"));
        assert!(s.server.extensions[0].file.is_absolute());
        assert!(matches!(s.source("max_page_size"), Source::File(_)));
        assert_eq!(s.source("default_page_size"), Source::Default);
        let err = from_file("nope = 1").err().unwrap().to_string();
        assert!(err.contains("unknown setting `nope`"), "{err}");
        let err = from_file("[[extensions]]\nfile = \"x\"\nresource = \"User\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("extensions") && err.contains("resource"),
            "{err}"
        );
    }

    #[test]
    fn the_statement_timeout_must_end_before_the_request_does() {
        let s = from_file("statement_timeout_ms = 1500\n").unwrap();
        assert_eq!(
            s.server.statement_timeout(),
            Ok(std::time::Duration::from_millis(1500))
        );
        let s = from_file("request_timeout_secs = 5\n").unwrap();
        assert_eq!(
            s.server.statement_timeout(),
            Ok(std::time::Duration::from_millis(4000))
        );
        let err = from_file("request_timeout_secs = 5\nstatement_timeout_ms = 5000\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("setting `statement_timeout_ms` from the config file")
                && err.contains("below request_timeout_secs"),
            "{err}"
        );
        assert!(from_file("statement_timeout_ms = 0\n").is_err());
        // `roster serve --statement-timeout-ms`.
        let flags = Flags {
            statement_timeout_ms: Some(90_000),
            ..Flags::default()
        };
        let figment = Figment::new().merge(flags_layer(&flags).unwrap());
        let err = Settings::resolve(figment, None, keys().unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with(
                "setting `statement_timeout_ms` from the flag --statement-timeout-ms: statement_timeout_ms (90000) must be below request_timeout_secs (60 s = 60000 ms)"
            ),
            "{err}"
        );
    }

    #[test]
    fn reads_previous_secret_keys_as_a_list_of_strings() {
        let s = from_file("secret_key = \"a\"\nprevious_secret_keys = [\"b\", \"c\"]\n").unwrap();
        assert_eq!(s.own.previous_secret_keys, ["b", "c"]);
        assert!(from_file("previous_secret_keys = \"b\"").is_err());
        assert!(from_file("previous_secret_keys = [[1]]").is_err());
        assert!(from_file("").unwrap().own.previous_secret_keys.is_empty());
        // Previous keys without a current one would store secrets in plaintext.
        assert!(
            from_file("previous_secret_keys = [\"b\"]")
                .unwrap()
                .secret_key()
                .is_err()
        );
    }

    #[test]
    fn every_key_has_a_variable_and_a_hint() {
        let keys = keys().unwrap();
        assert!(keys.len() > 40);
        for key in &keys {
            assert!(variable(key).starts_with("ROSTER_"));
            assert!(!expected(key).is_empty());
        }
        assert_eq!(variable("database"), "ROSTER_DATABASE_URL");
        assert_eq!(variable("max_page_size"), "ROSTER_MAX_PAGE_SIZE");
        assert_eq!(nearest("max_page_sise", &keys), Some("max_page_size"));
        assert_eq!(nearest("completely_different", &keys), None);
    }
}
