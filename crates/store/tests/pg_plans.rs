//! Plans PostgreSQL picks for the store's hot queries once statistics exist.
//! A plan is a property of data and statistics, not of the SQL alone: these
//! tests load a directory, `ANALYZE` it, and read `EXPLAIN`. They run against
//! the test PostgreSQL (`roster_testkit::pg`), in a schema of their own, and
//! return early without one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use roster_scim::schema::SchemaRegistry;
use roster_store::{DirectoryStore, Kind, PgOptions, PgStore};
use roster_testkit::pg::Schema;

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
    let Some(schema) = Schema::create() else {
        return;
    };
    let mut opts = PgOptions::new(schema.database_url().to_owned());
    opts.schema = Some(schema.name().to_owned());
    opts.pool_size = 1;
    let reg = Arc::new(SchemaRegistry::core());
    let store = PgStore::connect(opts, reg).await.unwrap();
    let dir = store
        .create_directory(&roster_store::Actor::Cli, "plans")
        .await
        .unwrap()
        .id;
    let name = schema.name().to_owned();
    let plan = roster_testkit::pg::with_client_async(schema.database_url().to_owned(), move |c| {
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
            "INSERT INTO resources (id, r, directory_id, rtype, name_key, display, doc, version, created, last_modified)
             SELECT 'u' || g, g, $1, $2, 'user' || g || '@example.com', 'User ' || g, '{}', 1, 0, 0
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
    .await;
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
