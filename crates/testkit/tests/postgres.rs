//! One test, `postgresql_for_the_tests`, that prints the one line a test run
//! gives about its PostgreSQL: why the PostgreSQL tests were skipped and how
//! to run them, or which private cluster they ran against. Nothing when they
//! ran against a PostgreSQL that was already there.
//!
//! `.config/nextest.toml` shows this test's output although it passes. Its
//! harness is this `main`, so that its output is that line only: it answers
//! the calls nextest and `cargo test` make of a test binary (`--list
//! --format terse [--ignored]`; a run with optional name filters).

const NAME: &str = "postgresql_for_the_tests";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    if flag("--list") {
        if !flag("--ignored") {
            println!("{NAME}: test");
        }
        return;
    }
    let exact = flag("--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let selected = filters.is_empty()
        || filters.iter().any(|f| {
            if exact {
                *f == NAME
            } else {
                NAME.contains(f.as_str())
            }
        });
    if !selected || flag("--ignored") {
        return;
    }
    if let Some(line) = roster_testkit::pg::announcement() {
        eprintln!("{line}");
    }
}
