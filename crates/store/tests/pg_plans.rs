//! Plans PostgreSQL picks for the store's hot queries once statistics exist.
//! A plan is a property of data and statistics, not of the SQL alone: these
//! tests load a directory, `ANALYZE` it, and read `EXPLAIN`. They run against
//! the database named by `ROSTER_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`), in a schema of their own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use roster_scim::schema::SchemaRegistry;
use roster_store::{DirectoryStore, Kind, PgOptions, PgStore};

fn postgres_url() -> String {
    std::env::var("ROSTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn client() -> postgres::Client {
    postgres::Client::connect(&postgres_url(), postgres::NoTls)
        .expect("PostgreSQL answers at ROSTER_TEST_POSTGRES")
}

/// Drops the test's schema however the test ends.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0);
        // The blocking client must not run on the async runtime.
        let _ = std::thread::spawn(move || client().batch_execute(&sql)).join();
    }
}

/// `sql` with each `?` replaced, in order, by one of `literals`.
fn inline(sql: &str, literals: &[String]) -> String {
    let mut parts = sql.split('?');
    let mut out = parts.next().unwrap_or_default().to_owned();
    let mut values = literals.iter();
    for part in parts {
        out.push_str(values.next().expect("a literal for every parameter"));
        out.push_str(part);
    }
    assert!(values.next().is_none(), "more literals than parameters");
    out
}

#[test]
fn the_bulk_name_check_probes_the_unique_index_with_statistics() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(name_check_plan());
}

async fn name_check_plan() {
    let schema = Schema(format!("t_{}", uuid::Uuid::now_v7().simple()));
    let name = schema.0.clone();
    tokio::task::spawn_blocking(move || {
        client()
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .unwrap()
    })
    .await
    .unwrap();
    let mut opts = PgOptions::new(postgres_url());
    opts.schema = Some(schema.0.clone());
    opts.pool_size = 1;
    let reg = Arc::new(SchemaRegistry::core());
    let store = PgStore::connect(opts, reg).await.unwrap();
    let dir = store.create_directory("plans").await.unwrap().id;
    let name = schema.0.clone();
    let plan = tokio::task::spawn_blocking(move || {
        let mut c = client();
        c.batch_execute(&format!("SET search_path TO \"{name}\", public"))
            .unwrap();
        // The trigram index is what made the planner stray: without
        // pg_trgm there is nothing to check.
        let trigram: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'resources_name_trgm'",
                &[&name],
            )
            .unwrap()
            .get(0);
        assert_eq!(trigram, 1, "the store made its trigram index");
        c.execute(
            "INSERT INTO resources (id, directory_id, rtype, name_key, display, doc, version, created, last_modified)
             SELECT 'u' || g, $1, $2, 'user' || g || '@example.com', 'User ' || g, '{}', 1, 0, 0
             FROM generate_series(1, 30000) g",
            &[&dir, &Kind::User.code()],
        )
        .unwrap();
        c.batch_execute("ANALYZE resources").unwrap();
        let mut literals: Vec<String> = (0..500)
            .map(|i| format!("'user{}@example.com'", i * 97 + 1))
            .collect();
        literals.push(format!("'{dir}'"));
        literals.push(Kind::User.code().to_string());
        let sql = inline(&roster_store::postgres::taken_names_sql(500), &literals);
        let taken = c.query(&sql, &[]).unwrap().len();
        let plan: Vec<String> = c
            .query(&format!("EXPLAIN {sql}"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        (taken, plan.join("\n"))
    })
    .await
    .unwrap();
    let (taken, plan) = plan;
    // user1, user98, … user48404: those up to 30,000 exist.
    assert_eq!(taken, (0..500).filter(|i| i * 97 < 30000).count());
    assert!(
        plan.contains("using resources_name on"),
        "each name is probed on the unique index:\n{plan}"
    );
    assert!(
        !plan.contains("resources_name_trgm") && !plan.contains("Seq Scan on resources"),
        "neither the trigram index nor a scan:\n{plan}"
    );
}
