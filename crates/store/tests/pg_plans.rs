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
        // A trigram index on the names made the planner stray; names are
        // searched through the attribute index's trigrams instead.
        let trigram: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'attr_text_values_trgm'",
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
        found_and_plan(c, &sql)
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

/// Creates the store's schema in `schema` with one directory, "plans".
fn plans_directory(schema: &Schema) -> (Arc<SchemaRegistry>, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut opts = PgOptions::new(schema.database_url().to_owned());
    opts.schema = Some(schema.name().to_owned());
    opts.pool_size = 1;
    let reg = Arc::new(SchemaRegistry::core());
    let store = rt.block_on(PgStore::connect(opts, reg.clone())).unwrap();
    let dir = rt
        .block_on(store.create_directory(&roster_store::Actor::Cli, "plans"))
        .unwrap()
        .id;
    (reg, dir)
}

/// `sql` with every numbered placeholder `?N` replaced by `literals[N-1]`.
fn inline_numbered(sql: &str, literals: &[String]) -> String {
    let mut out = sql.to_owned();
    // Highest first, so `?12` is not read as `?1` followed by `2`.
    for (i, lit) in literals.iter().enumerate().rev() {
        out = out.replace(&format!("?{}", i + 1), lit);
    }
    out
}

/// 30,000 users of `dir` (user `g`: name `user<g>`, external id `x<g>`,
/// created and modified at `g`) with one of 300 titles each in
/// `attr_index` (`t0` … `t299`), and no statistics.
fn titles(c: &mut postgres::Client, dir: &str, code: i64) {
    c.execute(
        "INSERT INTO resources (id, r, directory_id, rtype, name_key, display, external_id, doc, version, created, last_modified)
         SELECT 'u' || g, g, $1, $2, 'user' || g, 'User ' || g, 'x' || g, '{}', 1, g, g
         FROM generate_series(1, 30000) g",
        &[&dir, &code],
    )
    .unwrap();
    index_values(c, dir, code, "title", "'t' || (g % 300)");
}

/// Each (filter, SQL) with the plan `EXPLAIN` gives.
fn explain_each(c: &mut postgres::Client, queries: &[(String, String)]) -> Vec<(String, String)> {
    queries
        .iter()
        .map(|(f, sql)| (f.clone(), plan_of(c, sql)))
        .collect()
}

/// Right after a load, before any ANALYZE, the selective list query of each
/// operator and kind of attribute reads attr_index and fetches resources by
/// number: PostgreSQL never scans the resources table for it.
#[test]
fn selective_filters_read_the_attribute_index_before_any_analyze() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let (reg, dir) = plans_directory(&schema);
    let name = schema.name().to_owned();
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let filters = [
        r#"title eq "t1""#.to_owned(),
        r#"title sw "t1""#.to_owned(),
        r#"title gt "t2""#.to_owned(),
        r#"title co "t1""#.to_owned(),
        r#"title co "t12""#.to_owned(),
        r#"title ew "12""#.to_owned(),
        r#"active eq false"#.to_owned(),
        r#"schemas eq "x""#.to_owned(),
        format!(r#"{ent}:employeeNumber eq "7""#),
        r#"emails[type eq "work" and value ew "x"]"#.to_owned(),
        r#"emails pr or name.familyName sw "n""#.to_owned(),
    ];
    let queries: Vec<(String, String)> = filters
        .iter()
        .map(|f| {
            let cand = inlined_candidates(&reg, &dir, f);
            // The form `rows::list` runs for a selective filter.
            let sql = format!(
                "SELECT r.id FROM (SELECT DISTINCT r AS n FROM ({}) AS c0) AS c \
                 CROSS JOIN resources r \
                 WHERE r.r = c.n ORDER BY r.id LIMIT 100",
                cand.sql
            );
            (f.clone(), sql)
        })
        .collect();
    let code = Kind::User.code();
    let plans = roster_testkit::pg::with_client(schema.database_url(), move |c| {
        c.batch_execute(&format!("SET search_path TO \"{name}\", public"))
            .unwrap();
        titles(c, &dir, code);
        // As `rows::list` runs a list.
        c.batch_execute("SET enable_seqscan = off").unwrap();
        explain_each(c, &queries)
    });
    for (f, plan) in plans {
        assert!(
            !plan.contains("Seq Scan on resources") && !plan.contains("Seq Scan on attr_index"),
            "{f} scans:\n{plan}"
        );
        assert!(
            plan.contains("attr_index_lookup"),
            "{f} does not read attr_index:\n{plan}"
        );
        // A substring is searched among the key's distinct values, not
        // among its entries.
        let search = f.starts_with("title co \"t12") || f.starts_with("title ew");
        assert!(
            !search || plan.contains("attr_text_values_trgm"),
            "{f} does not search the values' trigrams:\n{plan}"
        );
        assert!(
            !plan.contains("Seq Scan on attr_text_values"),
            "{f} scans the values:\n{plan}"
        );
        assert!(
            plan.contains("resources_number"),
            "{f} does not fetch by number:\n{plan}"
        );
    }
}

/// Sorted, or in a count, a filter on `emails.value` has no candidate set to
/// drive it: the compiled filter itself looks the address up in attr_index
/// and fetches the few resources by id, never walking the directory.
#[test]
fn the_compiled_email_lookup_reads_the_attribute_index_with_statistics() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let (reg, dir) = plans_directory(&schema);
    let user = reg.resource_type("User").unwrap();
    let queries: Vec<(String, String)> = [
        r#"emails.value eq "user77@example.com""#,
        r#"emails[type eq "work" and value eq "user77@example.com"]"#,
    ]
    .iter()
    .map(|f| {
        let parsed = roster_scim::filter::parse_filter(f).unwrap();
        let checked = roster_scim::filter::check_filter(&reg, user, &parsed).unwrap();
        let mut c = roster_store::sql::Compiler::new(user, Kind::User, &dir, 3)
            .with_dialect(roster_store::db::Dialect::Postgres);
        let sql = c.filter(&checked).unwrap();
        // The page `rows::list` reads when candidates do not drive.
        let sql = format!(
            "SELECT r.id FROM resources r WHERE r.directory_id = ?1 AND r.rtype = ?2 AND {sql} \
             ORDER BY r.id LIMIT 100"
        );
        (
            f.to_string(),
            inline_numbered(&sql, &literals(&dir, c.params())),
        )
    })
    .collect();
    let name = schema.name().to_owned();
    let code = Kind::User.code();
    let plans = roster_testkit::pg::with_client(schema.database_url(), move |c| {
        c.batch_execute(&format!("SET search_path TO \"{name}\", public"))
            .unwrap();
        c.execute(
            "INSERT INTO resources (id, r, directory_id, rtype, name_key, display, doc, version, created, last_modified)
             SELECT 'u' || g, g, $1, $2, 'user' || g, 'User ' || g,
                    json_build_object('emails', json_build_array(json_build_object(
                        'value', 'user' || g || '@example.com', 'type', 'work'))),
                    1, 0, 0
             FROM generate_series(1, 30000) g",
            &[&dir, &code],
        )
        .unwrap();
        index_emails(c, &dir, code);
        queries
            .iter()
            .map(|(f, sql)| {
                let (found, plan) = found_and_plan(c, sql);
                (f.clone(), found, plan)
            })
            .collect::<Vec<_>>()
    });
    for (f, found, plan) in plans {
        assert_eq!(found, 1, "{f}");
        assert!(
            plan.contains("attr_index_lookup"),
            "{f} does not read attr_index:\n{plan}"
        );
        // A walk of the directory reads one of the indexes that lead with
        // (directory_id, rtype), or the table.
        assert!(
            [
                "Seq Scan on resources",
                "resources_by_type",
                "resources_name",
                "resources_modified"
            ]
            .iter()
            .all(|walk| !plan.contains(walk)),
            "{f} walks the directory:\n{plan}"
        );
        assert!(
            plan.contains("resources_number"),
            "{f} does not fetch by number:\n{plan}"
        );
    }
}

/// Gives users 1 to 30,000 of `dir` the address `user<n>@example.com` in
/// `attr_index` (`emails.value`), and analyzes.
fn index_emails(c: &mut postgres::Client, dir: &str, code: i64) {
    index_values(
        c,
        dir,
        code,
        "emails.value",
        "'user' || g || '@example.com'",
    );
    c.batch_execute("ANALYZE").unwrap();
}

/// Gives users 1 to 30,000 of `dir` an entry of `path` in `attr_index`:
/// `value`, SQL of the user's number `g`.
fn index_values(c: &mut postgres::Client, dir: &str, code: i64, path: &str, value: &str) {
    c.execute(
        "INSERT INTO attr_keys (directory_id, rtype, path) VALUES ($1, $2, $3)",
        &[&dir, &code, &path],
    )
    .unwrap();
    c.batch_execute(&format!(
        "INSERT INTO attr_index (k, e, r, v)
         SELECT (SELECT k FROM attr_keys WHERE path = '{path}'), 0, g, {value}
         FROM generate_series(1, 30000) g;
         INSERT INTO attr_text_values (k, v)
         SELECT DISTINCT k, v FROM attr_index WHERE k = (SELECT k FROM attr_keys WHERE path = '{path}')"
    ))
    .unwrap();
}

/// How many rows `sql` gives, and its plan.
fn found_and_plan(c: &mut postgres::Client, sql: &str) -> (usize, String) {
    let found = c.query(sql, &[]).unwrap().len();
    (found, plan_of(c, sql))
}

/// The plan `EXPLAIN` gives for `sql`, one line each.
fn plan_of(c: &mut postgres::Client, sql: &str) -> String {
    let plan: Vec<String> = c
        .query(&format!("EXPLAIN {sql}"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    plan.join("\n")
}

/// SQL literals of the users of `dir` and then of `params`, in the order a
/// compiler numbers its placeholders.
fn literals(dir: &str, params: &[roster_store::sql::SqlParam]) -> Vec<String> {
    let mut out = vec![format!("'{dir}'"), Kind::User.code().to_string()];
    out.extend(params.iter().map(|p| match p {
        roster_store::sql::SqlParam::Text(s) => format!("'{}'", s.replace('\'', "''")),
        roster_store::sql::SqlParam::Int(i) => i.to_string(),
        roster_store::sql::SqlParam::Real(x) => x.to_string(),
    }));
    out
}

/// A filter's candidate set for users of `dir`, with its parameters inlined.
fn inlined_candidates(
    reg: &SchemaRegistry,
    dir: &str,
    filter: &str,
) -> roster_store::sql::compile::Candidates {
    let user = reg.resource_type("User").unwrap();
    let parsed = roster_scim::filter::parse_filter(filter).unwrap();
    let checked = roster_scim::filter::check_filter(reg, user, &parsed).unwrap();
    let mut c = roster_store::sql::Compiler::new(user, Kind::User, dir, 3)
        .with_dialect(roster_store::db::Dialect::Postgres);
    let mut cand = c.candidates(&checked).unwrap();
    cand.sql = inline_numbered(&cand.sql, &literals(dir, c.params()));
    cand
}

/// Sets of the attributes columns serve search their `resources` index once
/// statistics exist (the store analyzes after a load, see
/// `postgres::analyze`), and a complement (`not`, a singular `ne`) is
/// counted from the directory's count and its set. Before any ANALYZE no
/// plan scans the resources table either; which of the indexes led by
/// (directory_id, rtype) a set then reads is the planner's tie-break: with
/// no statistics each estimates one row.
#[test]
fn column_sets_search_their_index_and_complements_count_without_documents() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let (reg, dir) = plans_directory(&schema);
    let name = schema.name().to_owned();
    // Users u1… were created at milliseconds 1… and modified at the same.
    let ts = |ms: i64| {
        roster_scim::values::format_timestamp_millis(
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap(),
        )
    };
    let lists = [
        // The primary key or the directory's ids: either reads only the range.
        (
            r#"id sw "u2999""#.to_owned(),
            "resources_pkey|resources_by_type",
        ),
        (r#"externalId eq "x7""#.to_owned(), "resources_external"),
        (r#"externalId sw "x2999""#.to_owned(), "resources_external"),
        (
            format!(r#"meta.created gt "{}""#, ts(29_990)),
            "resources_created",
        ),
        (
            format!(r#"meta.created le "{}""#, ts(10)),
            "resources_created",
        ),
        (
            format!(r#"meta.lastModified ge "{}""#, ts(29_990)),
            "resources_modified",
        ),
        (
            format!(r#"meta.created lt "{}" and title eq "t1""#, ts(100)),
            "resources_created",
        ),
        (
            r#"title eq "t1" and externalId ne "x7""#.to_owned(),
            "attr_index_lookup",
        ),
    ];
    let complements = [
        r#"not (title eq "t1")"#.to_owned(),
        r#"title ne "t1""#.to_owned(),
        "not (title pr)".to_owned(),
        format!(r#"not (meta.created gt "{}")"#, ts(29_990)),
    ];
    let mut queries = Vec::new();
    for (f, index) in &lists {
        let cand = inlined_candidates(&reg, &dir, f);
        assert!(!cand.complement && cand.exact, "{f}");
        // The form `rows::list` runs for a selective filter.
        let sql = format!(
            "SELECT r.id FROM (SELECT DISTINCT r AS n FROM ({}) AS c0) AS c \
             CROSS JOIN resources r WHERE r.r = c.n ORDER BY r.id LIMIT 100",
            cand.sql
        );
        queries.push((f.clone(), Some(*index), sql));
    }
    for f in &complements {
        let cand = inlined_candidates(&reg, &dir, f);
        assert!(cand.complement, "{f}");
        // The form `rows::list` counts a complement with.
        let sql = format!(
            "SELECT COALESCE((SELECT user_count FROM directory_counts WHERE directory_id = '{dir}'), 0) \
             - ({})",
            cand.count_sql()
        );
        queries.push((f.clone(), None, sql));
    }
    let code = Kind::User.code();
    let plans = roster_testkit::pg::with_client(schema.database_url(), move |c| {
        c.batch_execute(&format!("SET search_path TO \"{name}\", public"))
            .unwrap();
        titles(c, &dir, code);
        let explain = |c: &mut postgres::Client, analyzed: bool| {
            queries
                .iter()
                .map(|(f, index, sql)| (f.clone(), analyzed, *index, plan_of(c, sql)))
                .collect::<Vec<_>>()
        };
        let mut plans = explain(c, false);
        c.batch_execute("ANALYZE resources; ANALYZE attr_index")
            .unwrap();
        plans.extend(explain(c, true));
        plans
    });
    for (f, analyzed, index, plan) in plans {
        // Once statistics show a set to be most of attr_index (the only key
        // here), reading it whole is the better plan; the documents never are.
        assert!(
            !plan.contains("Seq Scan on resources")
                && (analyzed || !plan.contains("Seq Scan on attr_index")),
            "{f} scans:\n{plan}"
        );
        if let Some(index) = index.filter(|_| analyzed) {
            assert!(
                index
                    .split('|')
                    .any(|i| plan.contains(&format!("using {i} on"))),
                "{f} does not read {index}:\n{plan}"
            );
        }
    }
}

/// A substring pattern longer than `text::WINDOW` gives the trigram index
/// its head only: the index reads the postings of every trigram it is
/// given, and a long pattern's tail (`@example.com`) is in every value. The
/// rows found are checked against the whole pattern, so the set stays exact.
#[test]
fn a_long_substring_gives_the_trigram_index_its_head() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let (reg, dir) = plans_directory(&schema);
    let cases = [
        (r#"emails.value ew "r12345@example.com""#, 1),
        (r#"emails.value co "r12345@example""#, 1),
        (r#"emails.value ew "r12345@example.net""#, 0),
        (r#"emails.value co "r1234""#, 11),
    ];
    let queries: Vec<(String, usize, String)> = cases
        .iter()
        .map(|(f, want)| {
            let cand = inlined_candidates(&reg, &dir, f);
            assert!(cand.exact, "{f}");
            (f.to_string(), *want, cand.sql)
        })
        .collect();
    let name = schema.name().to_owned();
    let code = Kind::User.code();
    let plans = roster_testkit::pg::with_client(schema.database_url(), move |c| {
        c.batch_execute(&format!("SET search_path TO \"{name}\", public"))
            .unwrap();
        index_emails(c, &dir, code);
        queries
            .iter()
            .map(|(f, want, sql)| {
                let (found, plan) = found_and_plan(c, sql);
                (f.clone(), *want, found, plan)
            })
            .collect::<Vec<_>>()
    });
    for (f, want, found, plan) in plans {
        assert_eq!(found, want, "{f}");
        let cond = plan
            .lines()
            .find(|l| l.contains("Index Cond") && l.contains("~~"))
            .unwrap_or_else(|| panic!("{f} does not search the trigram index:\n{plan}"));
        assert!(
            !cond.contains("example"),
            "{f} gives the index more than the head:\n{plan}"
        );
    }
}

/// With the directory's keys written as constants (`Compiler::with_keys`,
/// as a list compiles), the planner sees each key: right after a load,
/// before any ANALYZE and with sequential scans allowed, a lookup reads
/// `attr_index_lookup` for its key, and a path nobody has (so no key) is an
/// empty result decided at planning, reading no index at all.
#[test]
fn constant_keys_read_the_attribute_index_before_any_analyze() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let (reg, dir) = plans_directory(&schema);
    let name = schema.name().to_owned();
    let code = Kind::User.code();
    let search_path = format!("SET search_path TO \"{name}\", public");
    let keys: roster_store::sql::compile::PathKeys = {
        let (dir, search_path) = (dir.clone(), search_path.clone());
        roster_testkit::pg::with_client(schema.database_url(), move |c| {
            c.batch_execute(&search_path).unwrap();
            titles(c, &dir, code);
            c.query(
                "SELECT path, k::bigint FROM attr_keys WHERE directory_id = $1 AND rtype = $2",
                &[&dir, &code],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect()
        })
    };
    let user = reg.resource_type("User").unwrap();
    let queries: Vec<(String, String)> = [
        r#"title eq "t1""#,
        r#"title gt "t2""#,
        r#"title sw "t1""#,
        "nickName pr",
        r#"nickName eq "x""#,
    ]
    .iter()
    .map(|f| {
        let parsed = roster_scim::filter::parse_filter(f).unwrap();
        let checked = roster_scim::filter::check_filter(&reg, user, &parsed).unwrap();
        let mut c = roster_store::sql::Compiler::new(user, Kind::User, &dir, 3)
            .with_dialect(roster_store::db::Dialect::Postgres)
            .with_keys(&keys);
        let cand = c.candidates(&checked).unwrap();
        // The bounded count `rows::list` runs first.
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM ({}) AS c LIMIT 2000) AS b",
            cand.sql
        );
        (
            f.to_string(),
            inline_numbered(&sql, &literals(&dir, c.params())),
        )
    })
    .collect();
    let plans = roster_testkit::pg::with_client(schema.database_url(), move |c| {
        c.batch_execute(&search_path).unwrap();
        explain_each(c, &queries)
    });
    for (f, plan) in plans {
        assert!(
            !plan.contains("attr_keys") && !plan.contains("Seq Scan"),
            "{f} looks its key up or scans:\n{plan}"
        );
        if f.starts_with("nickName") {
            assert!(
                plan.contains("One-Time Filter: false") && !plan.contains("attr_index"),
                "{f} has no key, so no entries to read:\n{plan}"
            );
        } else {
            assert!(
                plan.contains("attr_index_lookup"),
                "{f} does not read its key's entries:\n{plan}"
            );
        }
    }
}
