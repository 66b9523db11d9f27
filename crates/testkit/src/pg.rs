//! The PostgreSQL the tests use, and a schema per test.
//!
//! Which PostgreSQL, decided once per test process ([`postgres`]):
//!
//! 1. `ROSTER_TEST_POSTGRES`, when set: it must answer, or every PostgreSQL
//!    test fails saying so.
//! 2. Else `postgres://postgres@127.0.0.1:5432/test`, when it answers.
//! 3. Else, when PostgreSQL's server binaries are installed (`initdb` and
//!    `pg_ctl` on `PATH`, or the newest `/usr/lib/postgresql/*/bin`), a
//!    private cluster on a free loopback port in a temporary folder, one per
//!    test run, removed when the run ends ([`cluster`](self)).
//! 4. Else nothing: the PostgreSQL tests are skipped ([`postgres`] returns
//!    `None`), except under `CI` (set and not `false`/`0`), where they fail.
//!
//! Two variables exist for testing this very order without touching the
//! machine's PostgreSQL: `ROSTER_TEST_POSTGRES_DEFAULT` replaces the URL of
//! step 2, and `ROSTER_TEST_POSTGRES_BIN` (a `PATH`-like list of folders)
//! replaces where step 3 looks for the binaries.
//!
//! The PostgreSQL client of the `postgres` crate runs a runtime of its own and
//! must not run on an async runtime's thread: every connection here is made
//! on a thread of its own, so these helpers work in sync and async tests.

mod cluster;

pub use cluster::TlsCluster;

use std::sync::OnceLock;
use std::time::Duration;

/// The variable naming the PostgreSQL to use; when set, tests never skip.
pub const URL_VAR: &str = "ROSTER_TEST_POSTGRES";
/// Replaces [`DEFAULT_URL`] (to simulate a machine without it).
pub const DEFAULT_VAR: &str = "ROSTER_TEST_POSTGRES_DEFAULT";
/// Replaces where the server binaries are looked for (`PATH`-like).
pub const BIN_VAR: &str = "ROSTER_TEST_POSTGRES_BIN";
/// The PostgreSQL tried when `ROSTER_TEST_POSTGRES` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL of this test run.
#[derive(Debug)]
pub struct Postgres {
    url: String,
    origin: Origin,
}

/// Where [`Postgres`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `ROSTER_TEST_POSTGRES`.
    Variable,
    /// The default URL answered.
    Default,
    /// A cluster of this test run, started with the binaries in `bin`.
    Private { bin: std::path::PathBuf },
}

impl Postgres {
    /// The database URL (connect as-is; tests work in a [`Schema`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }
}

/// The PostgreSQL of this test process, `None` when the PostgreSQL tests are
/// to be skipped (return early: nothing to test against). Fails the test when
/// PostgreSQL is required (`ROSTER_TEST_POSTGRES` set, or `CI`) and missing,
/// or when the private cluster does not start.
pub fn postgres() -> Option<&'static Postgres> {
    static RESOLVED: OnceLock<Result<Option<Postgres>, String>> = OnceLock::new();
    match RESOLVED.get_or_init(resolve) {
        Ok(pg) => pg.as_ref(),
        Err(e) => panic!("{e}"),
    }
}

/// The one line a test run prints about its PostgreSQL: why its PostgreSQL
/// tests were skipped and how to run them, or which private cluster they
/// used; `None` when they ran against a PostgreSQL that was already there.
pub fn announcement() -> Option<String> {
    match postgres() {
        None => Some(skip_line()),
        Some(Postgres {
            url,
            origin: Origin::Private { bin },
        }) => Some(format!(
            "PostgreSQL tests ran against a private cluster of this test run ({url}, binaries in {}); \
             it is removed when the run ends",
            bin.display()
        )),
        Some(_) => None,
    }
}

/// Why the PostgreSQL tests are skipped, and how to enable them.
pub fn skip_line() -> String {
    format!(
        "PostgreSQL tests SKIPPED: nothing answers at {} and PostgreSQL's server binaries \
         (initdb, pg_ctl) are not installed; to run them, install the binaries \
         (e.g. `apt install postgresql`) or set {URL_VAR}=postgres://user@host/database",
        default_url()
    )
}

fn resolve() -> Result<Option<Postgres>, String> {
    if let Some(url) = var(URL_VAR) {
        return match probe(&url) {
            Ok(()) => Ok(Some(Postgres {
                url,
                origin: Origin::Variable,
            })),
            Err(e) => Err(format!("{URL_VAR}={url} does not answer: {e}")),
        };
    }
    let default = default_url();
    let missed = match probe(&default) {
        Ok(()) => {
            return Ok(Some(Postgres {
                url: default,
                origin: Origin::Default,
            }));
        }
        Err(e) => e,
    };
    match cluster::binaries() {
        Some(bin) => match cluster::shared(&bin) {
            Ok(url) => Ok(Some(Postgres {
                url,
                origin: Origin::Private { bin },
            })),
            Err(e) => Err(format!(
                "nothing answers at {default} ({missed}), and the private PostgreSQL cluster \
                 (binaries in {}) did not start: {e}",
                bin.display()
            )),
        },
        None if ci() => Err(format!(
            "CI is set, so the PostgreSQL tests must run, but nothing answers at {default} \
             ({missed}) and PostgreSQL's server binaries (initdb, pg_ctl) are not installed; \
             start PostgreSQL there, install the binaries or set {URL_VAR}"
        )),
        None => Ok(None),
    }
}

fn default_url() -> String {
    var(DEFAULT_VAR).unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// A set, non-empty variable.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Whether this is a CI run (`CI` set, as CI services do, and not `false`/`0`).
fn ci() -> bool {
    var("CI").is_some_and(|v| v != "false" && v != "0")
}

/// Connects once, quickly; the error says why not.
fn probe(url: &str) -> Result<(), String> {
    on_thread(|| {
        let mut config: postgres::Config = url.parse().map_err(|e| chain(&e))?;
        config.connect_timeout(Duration::from_secs(3));
        let mut c = config.connect(postgres::NoTls).map_err(|e| chain(&e))?;
        c.batch_execute("SELECT 1").map_err(|e| chain(&e))
    })
}

/// An error with its causes (`postgres::Error` alone says only "error
/// connecting to server").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs `f` on a thread of its own (the blocking client must not run on an
/// async runtime's thread) and returns what it returns.
fn on_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Connects to `url` and runs `f` with the client, on a thread of its own:
/// callable from sync and async code. Fails the test if `url` does not answer.
pub fn with_client<R: Send>(url: &str, f: impl FnOnce(&mut postgres::Client) -> R + Send) -> R {
    on_thread(|| {
        let mut c = postgres::Client::connect(url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} does not answer: {}", chain(&e)));
        f(&mut c)
    })
}

/// [`with_client`] for async code that must not block its runtime's thread.
pub async fn with_client_async<R: Send + 'static>(
    url: String,
    f: impl FnOnce(&mut postgres::Client) -> R + Send + 'static,
) -> R {
    match tokio::task::spawn_blocking(move || with_client(&url, f)).await {
        Ok(r) => r,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the PostgreSQL client's task did not finish: {e}"),
        },
    }
}

/// One test's schema in the test PostgreSQL; dropped, with everything in it,
/// when this is.
#[derive(Debug)]
pub struct Schema {
    name: String,
    database: String,
}

impl Schema {
    /// A new, empty schema; `None` when the PostgreSQL tests are skipped
    /// (see [`postgres`]): the test returns early.
    pub fn create() -> Option<Schema> {
        let database = postgres()?.url().to_owned();
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        let sql = format!("CREATE SCHEMA \"{name}\"");
        with_client(&database, |c| {
            c.batch_execute(&sql)
                .unwrap_or_else(|e| panic!("{sql} in {database}: {}", chain(&e)))
        });
        Some(Schema { name, database })
    }

    /// The schema's name (`t_` and a UUID).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database URL, without the schema.
    pub fn database_url(&self) -> &str {
        &self.database
    }

    /// The database URL that puts this schema first on the search_path and
    /// names the connections after it (`application_name`), so a test can
    /// find and end them in `pg_stat_activity`.
    pub fn url(&self) -> String {
        schema_url(&self.database, &self.name)
    }

    /// [`with_client`] on [`Schema::url`].
    pub fn with_client<R: Send>(&self, f: impl FnOnce(&mut postgres::Client) -> R + Send) -> R {
        with_client(&self.url(), f)
    }
}

/// `database` with `schema` first on the search_path, its connections named
/// after it.
fn schema_url(database: &str, schema: &str) -> String {
    let sep = if database.contains('?') { '&' } else { '?' };
    // The postgres crate reads `options` from the URL and percent-decodes it:
    // the server receives `-csearch_path=t_…,public`.
    format!("{database}{sep}options=-csearch_path%3D{schema},public&application_name={schema}")
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let database = self.database.clone();
        // Never a second panic while unwinding: a schema left behind is harmless.
        on_thread(move || {
            if let Ok(mut c) = postgres::Client::connect(&database, postgres::NoTls) {
                let _ = c.batch_execute(&sql);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_url_puts_the_schema_first_and_names_the_connections() {
        let url = schema_url("postgres://postgres@127.0.0.1:5432/test", "t_1");
        assert_eq!(
            url,
            "postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dt_1,public&application_name=t_1"
        );
        let config: postgres::Config = url.parse().expect("a valid URL");
        assert_eq!(config.get_options(), Some("-csearch_path=t_1,public"));
        assert_eq!(config.get_application_name(), Some("t_1"));
        let with_query = schema_url("postgres://u@h/db?sslmode=disable", "t_2");
        assert!(with_query.starts_with("postgres://u@h/db?sslmode=disable&options="));
    }

    #[test]
    fn a_refused_connection_is_reported_with_its_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let e = probe(&format!("postgres://postgres@127.0.0.1:{port}/test"))
            .expect_err("nothing listens there");
        assert!(e.contains("refused"), "{e}");
    }
}
