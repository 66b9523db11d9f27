//! Settings from defaults, the TOML file, `ROSTER_*` variables and flags, as
//! `roster config show` reports them and `roster serve` uses them.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{Roster, request};

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OLD_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

/// `roster ARGS` with exactly the variables given: nothing from the test's
/// own environment leaks into the layers.
fn roster(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roster"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `roster config show --json`: each setting's `{value, source, origin}`.
fn show(config: Option<&Path>, flags: &[&str], env: &[(&str, &str)]) -> Value {
    let mut args = vec!["config", "show", "--json"];
    let path;
    if let Some(c) = config {
        path = c.display().to_string();
        args.extend(["--config", &path]);
    }
    args.extend(flags);
    let out = roster(&args, env);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["settings"].clone()
}

fn assert_setting(s: &Value, key: &str, value: Value, source: &str, origin: Option<&str>) {
    assert_eq!(s[key]["value"], value, "{key}: {s:#}");
    assert_eq!(s[key]["source"], source, "{key}: {s:#}");
    assert_eq!(s[key]["origin"].as_str(), origin, "{key}: {s:#}");
}

#[test]
fn the_statement_timeout_is_read_from_its_variable_and_refused_past_the_request_timeout() {
    let s = show(None, &[], &[]);
    assert_setting(&s, "statement_timeout_ms", Value::Null, "default", None);
    let var = "ROSTER_STATEMENT_TIMEOUT_MS";
    let s = show(None, &[], &[(var, "1500")]);
    assert_setting(&s, "statement_timeout_ms", 1500.into(), "env", Some(var));
    let out = roster(
        &["config", "show"],
        &[(var, "30000"), ("ROSTER_REQUEST_TIMEOUT_SECS", "30")],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "setting `statement_timeout_ms` from the variable ROSTER_STATEMENT_TIMEOUT_MS: statement_timeout_ms (30000) must be below request_timeout_secs (30 s = 30000 ms)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_variable_overrides_the_file_and_a_flag_overrides_both() {
    let r = Roster::new();
    let file = r.config(
        "database = \"sqlite://from-file.db\"\ndatabase_pool_size = 4\n\
         listen = \"127.0.0.1:9001\"\nmax_page_size = 50\n",
    );
    let f = file.display().to_string();

    let s = show(Some(&file), &[], &[]);
    assert_setting(
        &s,
        "database",
        "sqlite://from-file.db".into(),
        "file",
        Some(&f),
    );
    assert_setting(&s, "database_pool_size", 4.into(), "file", Some(&f));
    assert_setting(&s, "listen", "127.0.0.1:9001".into(), "file", Some(&f));
    assert_setting(&s, "max_page_size", 50.into(), "file", Some(&f));
    assert_setting(&s, "default_page_size", 100.into(), "default", None);

    let env = [
        ("ROSTER_DATABASE_URL", "sqlite://from-env.db"),
        ("ROSTER_DATABASE_POOL_SIZE", "8"),
        ("ROSTER_LISTEN", "127.0.0.1:9002"),
    ];
    let s = show(Some(&file), &[], &env);
    let var = |v: &'static str| Some(v);
    assert_setting(
        &s,
        "database",
        "sqlite://from-env.db".into(),
        "env",
        var("ROSTER_DATABASE_URL"),
    );
    assert_setting(
        &s,
        "database_pool_size",
        8.into(),
        "env",
        var("ROSTER_DATABASE_POOL_SIZE"),
    );
    assert_setting(
        &s,
        "listen",
        "127.0.0.1:9002".into(),
        "env",
        var("ROSTER_LISTEN"),
    );
    assert_setting(&s, "max_page_size", 50.into(), "file", Some(&f));

    let flags = [
        "--database",
        "sqlite://from-flag.db",
        "--database-pool-size",
        "12",
        "--listen",
        "127.0.0.1:9003",
    ];
    let s = show(Some(&file), &flags, &env);
    assert_setting(
        &s,
        "database",
        "sqlite://from-flag.db".into(),
        "flag",
        var("--database"),
    );
    assert_setting(
        &s,
        "database_pool_size",
        12.into(),
        "flag",
        var("--database-pool-size"),
    );
    assert_setting(
        &s,
        "listen",
        "127.0.0.1:9003".into(),
        "flag",
        var("--listen"),
    );

    // The config file itself may come from ROSTER_CONFIG; an empty variable is unset.
    let mut with_config = env.to_vec();
    with_config.extend([("ROSTER_CONFIG", f.as_str()), ("ROSTER_LISTEN", "")]);
    let s = show(None, &[], &with_config);
    assert_setting(&s, "listen", "127.0.0.1:9001".into(), "file", Some(&f));
}

#[test]
fn every_setting_has_a_variable() {
    let env = [
        ("ROSTER_MAX_PAGE_SIZE", "77"),
        ("ROSTER_BULK_ENABLED", "no"),
        ("ROSTER_RATE_LIMIT_PER_SEC", "0.1"),
        ("ROSTER_LOG", "warn"),
        ("ROSTER_GROUP_PATCH_NO_CONTENT", "1"),
        (
            "ROSTER_RATE_LIMIT_OVERRIDES",
            r#"[{"directory": "d1", "per_sec": 2.5}]"#,
        ),
        ("ROSTER_PREVIOUS_SECRET_KEYS", &format!("{OLD_KEY}, {KEY}")),
        // Not settings of roster: ignored, never "unknown".
        ("ROSTER_TEST_POSTGRES", "postgres://nobody@127.0.0.1:1/x"),
        ("ROSTER_SOURCE_TOKEN", "t"),
    ];
    let s = show(None, &[], &env);
    assert_setting(
        &s,
        "max_page_size",
        77.into(),
        "env",
        Some("ROSTER_MAX_PAGE_SIZE"),
    );
    assert_setting(
        &s,
        "bulk_enabled",
        false.into(),
        "env",
        Some("ROSTER_BULK_ENABLED"),
    );
    assert_setting(
        &s,
        "rate_limit_per_sec",
        0.1.into(),
        "env",
        Some("ROSTER_RATE_LIMIT_PER_SEC"),
    );
    assert_setting(&s, "log", "warn".into(), "env", Some("ROSTER_LOG"));
    assert_setting(
        &s,
        "group_patch_no_content",
        true.into(),
        "env",
        Some("ROSTER_GROUP_PATCH_NO_CONTENT"),
    );
    assert_eq!(
        s["rate_limit_overrides"]["value"],
        serde_json::json!([{"directory": "d1", "per_sec": 2.5, "burst": null}])
    );
    assert_eq!(
        s["previous_secret_keys"]["value"],
        serde_json::json!(["***", "***"])
    );
    // Every key is listed, with a value (null when unset).
    assert!(s.as_object().unwrap().len() > 40, "{s:#}");
    assert!(s["public_url"]["value"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_uses_a_setting_given_only_as_a_variable() {
    let r = Roster::new();
    let dir = r.json(&["directory", "create", "acme"]);
    let path = format!(
        "/scim/v2/{}/ServiceProviderConfig",
        dir["id"].as_str().unwrap()
    );
    let token = dir["token"].as_str().unwrap();
    let server = r.serve_with(
        None,
        "info",
        &[
            ("ROSTER_BULK_ENABLED", "false"),
            ("ROSTER_WEBHOOKS_ENABLED", "false"),
        ],
    );
    let (status, body) = request(server.addr(), "GET", &path, token, None).await;
    assert_eq!(status, 200, "{body}");
    let spc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(spc["bulk"]["supported"], false, "{body}");
}

#[test]
fn an_unknown_key_in_the_file_is_an_error_naming_it() {
    let r = Roster::new();
    let file = r.config("max_page_sise = 50\n");
    let out = roster(
        &["--config", &file.display().to_string(), "config", "show"],
        &[],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown setting `max_page_sise`"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("did you mean `max_page_size`"), "{err}");
    // Admin commands read the same settings, and refuse the same way.
    let out = roster(
        &["--config", &file.display().to_string(), "directory", "list"],
        &[("ROSTER_DATABASE_URL", &r.db())],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown setting `max_page_sise`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_value_names_the_key_its_source_and_what_is_expected() {
    let out = roster(&["config", "show"], &[("ROSTER_MAX_PAGE_SIZE", "lots")]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("`max_page_size`"), "{err}");
    assert!(err.contains("ROSTER_MAX_PAGE_SIZE"), "{err}");
    assert!(
        err.contains("expected a whole number such as 1000"),
        "{err}"
    );

    let r = Roster::new();
    let file = r.config("listen = \"localhost\"\n");
    let out = roster(
        &["--config", &file.display().to_string(), "config", "show"],
        &[],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("`listen`"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("expected an address and port"), "{err}");

    let out = roster(&["config", "show"], &[("ROSTER_EXTENSIONS", "acme.json")]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ROSTER_EXTENSIONS") && err.contains("JSON"),
        "{err}"
    );

    // A secret's text is never echoed, even when it is the wrong type.
    let file = r.config("secret_key = [\"hunter2\"]\n");
    let out = roster(
        &["--config", &file.display().to_string(), "config", "show"],
        &[],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("`secret_key`") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn config_show_redacts_secrets_and_database_passwords() {
    let env = [
        (
            "ROSTER_DATABASE_URL",
            "postgres://roster:hunter2@127.0.0.1:1/roster?sslmode=disable&password=hunter3",
        ),
        ("ROSTER_SECRET_KEY", KEY),
        ("ROSTER_PREVIOUS_SECRET_KEYS", OLD_KEY),
    ];
    let text = roster(&["config", "show"], &env);
    assert!(text.status.success(), "{}", stderr(&text));
    let json = roster(&["config", "show", "--json"], &env);
    assert!(json.status.success(), "{}", stderr(&json));
    for out in [stdout(&text), stdout(&json)] {
        for secret in ["hunter2", "hunter3", KEY, OLD_KEY] {
            assert!(!out.contains(secret), "{secret} in:\n{out}");
        }
        assert!(
            out.contains("postgres://roster:***@127.0.0.1:1/roster?sslmode=disable&password=***"),
            "{out}"
        );
    }
    let s: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(s["settings"]["secret_key"]["value"], "***");
    assert_eq!(
        s["settings"]["previous_secret_keys"]["value"],
        serde_json::json!(["***"])
    );
    let text = stdout(&text);
    assert!(
        text.contains("secret_key") && text.contains("# env ROSTER_SECRET_KEY"),
        "{text}"
    );
}

#[test]
fn extension_files_are_relative_to_the_config_file() {
    let r = Roster::new();
    let file = r.config("[[extensions]]\nfile = \"acme.json\"\nresource_type = \"User\"\n");
    let s = show(Some(&file), &[], &[]);
    let expected = r.dir.path().join("acme.json").display().to_string();
    assert_eq!(
        s["extensions"]["value"][0]["file"],
        expected.as_str(),
        "{s:#}"
    );
}
