//! The benchmark's phases against a started server: the load, the groups,
//! the stamped times, the database's size, each filter, the pages.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value, json};

use super::corpus::{CORPUS, Case, Ctx, Endpoint, Stamps, expected_counts};
use super::people::{Person, group_count, group_members, group_name};
use super::{FiltersArgs, Size};
use crate::Target;
use crate::scale::load::results;
use crate::server::load_average;
use crate::stats::{Latencies, round3};

pub async fn measure(
    args: &FiltersArgs,
    t: &Target,
    size: &Size,
    report: &mut Map<String, Value>,
) -> Result<()> {
    let timeout = Duration::from_secs(args.filter_timeout);
    let spc = get_ok(t, "ServiceProviderConfig").await?;
    let max_ops = spc["bulk"]["maxOperations"].as_u64().unwrap_or(1000) as usize;
    let chunk = args.chunk.min(max_ops).max(1);

    let load = load_users(t, args.users, chunk, args.clients, args.load_timeout).await?;
    println!(
        "load: {} users in {:.1} s through /Bulk ({chunk} a request, {} clients): {:.0} users/s; request p50 {:.0} ms p99 {:.0} ms; load average {:?}",
        load.created,
        load.seconds,
        args.clients,
        load.created as f64 / load.seconds.max(1e-9),
        load.lat.ms(0.5),
        load.lat.ms(0.99),
        load_average(),
    );
    report.insert(
        "load".into(),
        json!({
            "users": load.created,
            "seconds": round3(load.seconds),
            "users_per_s": (load.created as f64 / load.seconds.max(1e-9)).round(),
            "users_per_request": chunk,
            "clients": args.clients,
            "request_latency": load.lat.summary(),
            "load_average_after": load_average(),
        }),
    );
    if load.created < args.users {
        bail!(
            "only {} of {} users were created (the corpus's counts assume all): {}",
            load.created,
            args.users,
            load.first_error.unwrap_or_default()
        );
    }
    let ids = load.ids;

    let groups = load_groups(t, &ids, Duration::from_secs(args.load_timeout)).await?;
    report.insert("groups".into(), groups);

    let stamps = stamps(t, &ids).await?;
    if args.analyze
        && let Some(s) = size.analyze().await?
    {
        println!("VACUUM (ANALYZE): {s:.1} s");
        report.insert("vacuum_analyze_s".into(), json!(round3(s)));
    }
    let (bytes, parts) = size.bytes().await?;
    println!(
        "database: {:.1} MiB, {:.0} bytes per user",
        bytes as f64 / 1048576.0,
        bytes as f64 / args.users as f64
    );
    report.insert(
        "database".into(),
        json!({"bytes": bytes, "bytes_per_user": (bytes as f64 / args.users as f64).round(), "parts": parts}),
    );

    let ctx = Ctx::new(args.users, ids, stamps);
    let expected = expected_counts(&ctx);
    let mut out = Vec::new();
    for (case, expect) in CORPUS.iter().zip(expected) {
        if !args.only.is_empty() && !args.only.iter().any(|o| case.name.contains(o.as_str())) {
            continue;
        }
        let r = run_filter(t, case, &ctx, expect, args, timeout).await?;
        out.push(r);
    }
    report.insert("filters".into(), Value::Array(out));
    report.insert("paging".into(), paging(t, args, timeout).await?);
    Ok(())
}

struct Loaded {
    created: u64,
    seconds: f64,
    lat: Latencies,
    ids: Vec<String>,
    first_error: Option<String>,
}

/// The /Bulk body creating users `first..end`, bulkIds `u<i>`.
fn bulk_body(first: u64, end: u64) -> Result<Vec<u8>> {
    let ops: Vec<Value> = (first..end)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                   "data": Person::new(i).body()})
        })
        .collect();
    Ok(serde_json::to_vec(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": ops,
    }))?)
}

/// Users 0..n in order, `chunk` a request, `clients` requests in flight.
async fn load_users(
    t: &Target,
    n: u64,
    chunk: usize,
    clients: usize,
    timeout_s: u64,
) -> Result<Loaded> {
    let next = Arc::new(AtomicU64::new(0));
    let ids = Arc::new(Mutex::new(vec![String::new(); n as usize]));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(timeout_s);
    let url = format!("{}/Bulk", t.base);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (t, next, ids, failed, url) = (
            t.clone(),
            next.clone(),
            ids.clone(),
            failed.clone(),
            url.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::new();
            let mut first_error = None;
            loop {
                let first = next.fetch_add(chunk as u64, Ordering::Relaxed);
                if first >= n || Instant::now() >= deadline || failed.load(Ordering::Relaxed) > 0 {
                    break;
                }
                let end = (first + chunk as u64).min(n);
                let body = bulk_body(first, end)?;
                let t0 = Instant::now();
                let resp = t
                    .client
                    .post(&url)
                    .header("Authorization", &t.auth)
                    .header("Content-Type", "application/scim+json")
                    .body(body)
                    .send()
                    .await;
                let (status, bytes) = match resp {
                    Ok(r) => {
                        let s = r.status();
                        (s, r.bytes().await?)
                    }
                    Err(e) => {
                        failed.fetch_add(end - first, Ordering::Relaxed);
                        first_error.get_or_insert(format!("users {first}..{end}: {e}"));
                        break;
                    }
                };
                lat.record(t0.elapsed());
                if status != StatusCode::OK {
                    failed.fetch_add(end - first, Ordering::Relaxed);
                    first_error.get_or_insert(format!(
                        "users {first}..{end}: {status}: {}",
                        String::from_utf8_lossy(&bytes)
                            .chars()
                            .take(400)
                            .collect::<String>()
                    ));
                    break;
                }
                let res = results(&bytes, "201")?;
                let mut all = ids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                for (i, (ok, id)) in (first..end).zip(res) {
                    match (ok, id) {
                        (true, Some(id)) => all[i as usize] = id,
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert_with(|| {
                                format!(
                                    "user {i} failed: {}",
                                    String::from_utf8_lossy(&bytes)
                                        .chars()
                                        .take(400)
                                        .collect::<String>()
                                )
                            });
                        }
                    }
                }
            }
            anyhow::Ok((lat, first_error))
        }));
    }
    let mut lat = Latencies::new();
    let mut first_error = None;
    for task in tasks {
        let (l, e) = task.await??;
        lat.merge(&l);
        first_error = first_error.or(e);
    }
    let seconds = started.elapsed().as_secs_f64();
    let ids = ids.lock().map(|v| v.clone()).unwrap_or_default();
    let created = ids.iter().filter(|s| !s.is_empty()).count() as u64;
    Ok(Loaded {
        created,
        seconds,
        lat,
        ids,
        first_error,
    })
}

/// The directory's groups, 100 a /Bulk request: group g holds users g,
/// g + G, … (see [`group_members`]).
async fn load_groups(t: &Target, ids: &[String], timeout: Duration) -> Result<Value> {
    let n = ids.len() as u64;
    let groups = group_count(n);
    let started = Instant::now();
    let mut created = 0u64;
    let mut g = 0u64;
    while g < groups {
        if started.elapsed() >= timeout {
            bail!("the groups took over {} s", timeout.as_secs());
        }
        let end = (g + 100).min(groups);
        let ops: Vec<Value> = (g..end)
            .map(|g| {
                let members: Vec<Value> = group_members(g, groups)
                    .map(|i| json!({"value": ids[i as usize]}))
                    .collect();
                json!({"method": "POST", "path": "/Groups", "bulkId": format!("g{g}"),
                       "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                "displayName": group_name(g), "members": members}})
            })
            .collect();
        let body = serde_json::to_vec(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": ops,
        }))?;
        let resp = t
            .client
            .post(format!("{}/Bulk", t.base))
            .header("Authorization", &t.auth)
            .header("Content-Type", "application/scim+json")
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status != StatusCode::OK {
            bail!("group /Bulk: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        let ok = results(&bytes, "201")?.iter().filter(|r| r.0).count() as u64;
        if ok < end - g {
            bail!(
                "{} of {} groups failed: {}",
                end - g - ok,
                end - g,
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(400)
                    .collect::<String>()
            );
        }
        created += ok;
        g = end;
    }
    let s = started.elapsed().as_secs_f64();
    println!("groups: {created} groups of 20 members in {s:.1} s");
    Ok(json!({"groups": created, "members_each": 20, "seconds": round3(s)}))
}

/// The times the server stamped on the users the dateTime cases compare with.
async fn stamps(t: &Target, ids: &[String]) -> Result<Stamps> {
    let n = ids.len() as u64;
    let mut meta = Vec::new();
    for i in Ctx::stamped_users(n) {
        let id = &ids[i as usize];
        let v = get_ok(t, &format!("Users/{id}")).await?;
        meta.push((
            v["meta"]["created"].as_str().map(str::to_owned),
            v["meta"]["lastModified"].as_str().map(str::to_owned),
        ));
    }
    let pick = |k: usize, created: bool| {
        meta.get(k)
            .and_then(|m| if created { m.0.clone() } else { m.1.clone() })
    };
    Ok(Stamps {
        created_late: pick(0, true),
        modified_late: pick(1, false),
        modified_mid: pick(2, false),
        created_early: pick(3, true),
    })
}

/// GET `path` with query `params`: the JSON reply (or the error body as a
/// string), its status and its latency.
async fn get(
    t: &Target,
    path: &str,
    params: &[(&str, &str)],
) -> Result<(Value, StatusCode, Duration)> {
    let mut url = Url::parse(&format!("{}/{path}", t.base))?;
    url.query_pairs_mut().extend_pairs(params);
    let started = Instant::now();
    let resp = t
        .client
        .get(url)
        .header("Authorization", &t.auth)
        .send()
        .await
        .with_context(|| format!("GET /{path}"))?;
    let status = resp.status();
    let body = resp.bytes().await?;
    let took = started.elapsed();
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    Ok((v, status, took))
}

/// GET `path`, which must answer 200: its JSON reply.
async fn get_ok(t: &Target, path: &str) -> Result<Value> {
    let (v, status, _) = get(t, path, &[]).await?;
    if status != StatusCode::OK {
        bail!("GET /{path}: {status}: {v}");
    }
    Ok(v)
}

/// `--warmups` then `--runs` requests of one case, bounded by `timeout`.
async fn run_filter(
    t: &Target,
    case: &Case,
    ctx: &Ctx,
    expected: Option<u64>,
    args: &FiltersArgs,
    timeout: Duration,
) -> Result<Value> {
    let filter = (case.filter)(ctx);
    let params = [
        ("filter", filter.as_str()),
        ("count", "100"),
        ("attributes", case.endpoint.attributes()),
    ];
    let deadline = Instant::now() + timeout;
    let mut lat = Latencies::new();
    let mut total = None;
    let mut returned = 0usize;
    let mut error = None;
    let mut first_ms = None;
    for run in 0..args.warmups + args.runs {
        if Instant::now() >= deadline {
            break;
        }
        // A request that gets no answer (the client's --request-timeout)
        // is this filter's result, not the end of the benchmark.
        let (v, status, took) = match get(t, case.endpoint.path(), &params).await {
            Ok(r) => r,
            Err(e) => {
                error = Some(format!("no answer: {e:#}"));
                break;
            }
        };
        first_ms.get_or_insert(took.as_secs_f64() * 1000.0);
        if status != StatusCode::OK {
            let detail = v["detail"]
                .as_str()
                .map_or_else(|| v.to_string(), str::to_owned);
            error = Some(format!(
                "{status}: {}",
                detail.chars().take(300).collect::<String>()
            ));
            break;
        }
        total = v["totalResults"].as_u64();
        returned = v["Resources"].as_array().map_or(0, Vec::len);
        if run >= args.warmups {
            lat.record(took);
        }
    }
    let universe = match case.endpoint {
        Endpoint::Users => ctx.n,
        Endpoint::Groups => ctx.groups,
    };
    let mismatch = matches!((expected, total), (Some(e), Some(t)) if e != t);
    let timed_out = error.is_none() && lat.count() < args.runs;
    println!(
        "{:<44} {:<9} {:>8} of {:<8} {}{}{}{}",
        case.name,
        case.class.label(),
        total.map_or("-".to_owned(), |n| n.to_string()),
        universe,
        if lat.count() > 0 {
            lat.line()
        } else {
            String::new()
        },
        if mismatch {
            format!("  (the corpus says {})", expected.unwrap_or(0))
        } else {
            String::new()
        },
        if timed_out {
            format!("  ({} runs within {} s)", lat.count(), timeout.as_secs())
        } else {
            String::new()
        },
        error
            .as_deref()
            .map_or(String::new(), |e| format!("  ERROR {e}")),
    );
    let mut v = json!({
        "name": case.name,
        "kind": case.kind,
        "class": case.class.label(),
        "endpoint": case.endpoint.path(),
        "filter": filter,
        "resources": universe,
        "expected": expected,
        "total_results": total,
        "returned": returned,
        "counts_agree": expected.zip(total).map(|(e, t)| e == t),
        "first_request_ms": first_ms.map(round3),
        "runs": lat.count(),
        "timed_out": timed_out,
        "error": error,
    });
    if lat.count() > 0
        && let (Value::Object(o), Value::Object(l)) = (&mut v, lat.summary())
    {
        o.extend(l);
    }
    Ok(v)
}

/// Timed runs of one page request, bounded by `timeout`.
async fn time_page(
    t: &Target,
    params: &[(&str, &str)],
    args: &FiltersArgs,
    timeout: Duration,
) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    let mut lat = Latencies::new();
    let mut returned = 0;
    for run in 0..args.warmups + args.runs {
        if Instant::now() >= deadline {
            break;
        }
        let (v, status, took) = get(t, "Users", params).await?;
        if status != StatusCode::OK {
            bail!("GET /Users {params:?}: {status}: {v}");
        }
        returned = v["Resources"].as_array().map_or(0, Vec::len);
        if run >= args.warmups {
            lat.record(took);
        }
    }
    let mut v = lat.summary();
    if let Value::Object(o) = &mut v {
        o.insert("returned".into(), json!(returned));
        o.insert("timed_out".into(), json!(lat.count() < args.runs));
    }
    Ok(v)
}

/// A cursor page at the start and near the end (reached by walking the
/// directory 1,000 at a time), and an index page near the end; 100 users
/// each, `attributes=userName`.
async fn paging(t: &Target, args: &FiltersArgs, timeout: Duration) -> Result<Value> {
    let n = args.users;
    let first = time_page(
        t,
        &[("cursor", ""), ("count", "100"), ("attributes", "userName")],
        args,
        timeout,
    )
    .await?;
    // The cursor after all but the last 1,000 users.
    let walk_started = Instant::now();
    let mut cursor = String::new();
    let mut walked = 0u64;
    while walked + 1000 < n {
        if walk_started.elapsed() >= Duration::from_secs(600) {
            bail!("walking to the end by cursor took over 600 s");
        }
        let (v, status, _) = get(
            t,
            "Users",
            &[
                ("cursor", cursor.as_str()),
                ("count", "1000"),
                ("attributes", "userName"),
            ],
        )
        .await?;
        if status != StatusCode::OK {
            bail!("cursor walk: {status}: {v}");
        }
        walked += v["Resources"].as_array().map_or(0, Vec::len) as u64;
        match v["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let walk_s = walk_started.elapsed().as_secs_f64();
    let last = time_page(
        t,
        &[
            ("cursor", cursor.as_str()),
            ("count", "100"),
            ("attributes", "userName"),
        ],
        args,
        timeout,
    )
    .await?;
    let start = (n - 150).to_string();
    let index = time_page(
        t,
        &[
            ("startIndex", start.as_str()),
            ("count", "100"),
            ("attributes", "userName"),
        ],
        args,
        timeout,
    )
    .await?;
    let line = |v: &Value| {
        format!(
            "p50 {} ms p99 {} ms max {} ms",
            v["p50_ms"], v["p99_ms"], v["max_ms"]
        )
    };
    println!("cursor page, first:              {}", line(&first));
    println!("cursor page, after {walked} users: {}", line(&last));
    println!("index page, startIndex {start}:  {}", line(&index));
    Ok(json!({
        "cursor_first": first,
        "cursor_near_end": last,
        "cursor_near_end_position": walked,
        "cursor_walk_s": round3(walk_s),
        "index_near_end": index,
        "index_near_end_start": n - 150,
    }))
}
