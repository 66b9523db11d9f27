//! Loading users (and groups) through /Bulk, with several clients that each
//! work on a different directory at any moment.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::server::load_average;
use crate::stats::{Latencies, round3};
use crate::users;

/// A directory of the run: where it is, its token, and its users
/// `first..first + size` (global user indexes).
#[derive(Debug, Clone)]
pub struct Dir {
    pub base_path: String,
    pub auth: String,
    pub first: u64,
    pub size: u64,
}

/// Directory k gets users in proportion to 1/(k+1)^skew, at least one each,
/// largest first; the sizes add up to `users`.
pub fn directory_sizes(users: u64, dirs: u64, skew: f64) -> Vec<u64> {
    let weights: Vec<f64> = (0..dirs)
        .map(|k| 1.0 / ((k + 1) as f64).powf(skew.max(0.0)))
        .collect();
    let total: f64 = weights.iter().sum();
    let spare = users.saturating_sub(dirs);
    let mut sizes: Vec<u64> = weights
        .iter()
        .map(|w| 1 + (spare as f64 * w / total).floor() as u64)
        .collect();
    let mut left = users.saturating_sub(sizes.iter().sum());
    let mut k = 0;
    let n = sizes.len();
    while left > 0 && n > 0 {
        sizes[k % n] += 1;
        left -= 1;
        k += 1;
    }
    sizes
}

/// One /Bulk request's worth of a directory's users.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub dir: usize,
    pub users: Range<u64>,
}

/// Hands out chunks so that each directory's chunks are spread evenly over
/// the run, and no two clients load one directory at once (Roster serializes
/// a directory's writes; two requests for one directory would only queue).
pub struct Scheduler {
    /// (position in the run, chunk), in order.
    pending: Vec<(f64, Chunk)>,
    busy: HashSet<usize>,
}

impl Scheduler {
    pub fn new(dirs: &[Dir], chunk: usize) -> Scheduler {
        let chunk = chunk.max(1) as u64;
        let mut pending = Vec::new();
        for (d, dir) in dirs.iter().enumerate() {
            let n = dir.size.div_ceil(chunk);
            for j in 0..n {
                let start = dir.first + j * chunk;
                let end = (start + chunk).min(dir.first + dir.size);
                pending.push((
                    (j as f64 + 0.5) / n as f64,
                    Chunk {
                        dir: d,
                        users: start..end,
                    },
                ));
            }
        }
        pending.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.dir.cmp(&b.1.dir)));
        Scheduler {
            pending,
            busy: HashSet::new(),
        }
    }

    /// The next chunk of a directory nobody is loading; `Err(())` when all
    /// are done, `Ok(None)` when the rest belong to busy directories.
    #[allow(clippy::result_unit_err)]
    pub fn take(&mut self) -> Result<Option<Chunk>, ()> {
        if self.pending.is_empty() {
            return Err(());
        }
        let Some(pos) = self
            .pending
            .iter()
            .position(|(_, c)| !self.busy.contains(&c.dir))
        else {
            return Ok(None);
        };
        let (_, c) = self.pending.remove(pos);
        self.busy.insert(c.dir);
        Ok(Some(c))
    }

    pub fn release(&mut self, dir: usize) {
        self.busy.remove(&dir);
    }
}

/// The /Bulk body creating users `range`.
pub fn bulk_body(range: Range<u64>) -> Vec<u8> {
    let ops: Vec<Value> = range
        .map(|i| {
            json!({
                "method": "POST",
                "path": "/Users",
                "bulkId": format!("u{i}"),
                "data": users::user_body(i, None),
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": ops,
    }))
    .unwrap_or_default()
}

/// The operations of a BulkResponse: (succeeded, id) each.
pub fn results(body: &[u8], created: &str) -> Result<Vec<(bool, Option<String>)>> {
    let v: Value = serde_json::from_slice(body)?;
    let Some(ops) = v["Operations"].as_array() else {
        bail!("no Operations in the BulkResponse");
    };
    Ok(ops
        .iter()
        .map(|o| {
            let status = match &o["status"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let id = o["location"]
                .as_str()
                .and_then(|l| l.rsplit('/').next())
                .map(str::to_owned);
            (status == created, id)
        })
        .collect())
}

pub struct LoadOutcome {
    pub created: u64,
    pub failed: u64,
    pub requests: u64,
    pub seconds: f64,
    pub steady_rate: f64,
    pub timed_out: bool,
    pub lat: Latencies,
    pub first_errors: Vec<String>,
    /// (seconds, users created so far, 1-minute load average), every 5 s.
    pub timeline: Vec<(f64, u64, Option<f64>)>,
    /// Seconds at which each tenth of the users was created.
    pub tenths: Vec<f64>,
    /// (index, id) of the users created in the largest directory (directory 0).
    pub largest_ids: Vec<(u64, String)>,
    pub chunk: usize,
    pub clients: usize,
    pub instances: usize,
}

impl LoadOutcome {
    pub fn to_json(&self) -> Value {
        let total = self.created + self.failed;
        let step = (total / 10).max(1) as f64;
        let mut prev = 0.0;
        // A tenth finished within the same request as the previous one has no rate of its own.
        let by_tenth: Vec<Option<f64>> = self
            .tenths
            .iter()
            .map(|t| {
                let dt = t - prev;
                prev = *t;
                (dt > 0.05).then(|| (step / dt).round())
            })
            .collect();
        json!({
            "users_created": self.created,
            "users_failed": self.failed,
            "requests": self.requests,
            "users_per_request": self.chunk,
            "clients": self.clients,
            "instances": self.instances,
            "seconds": round3(self.seconds),
            "users_per_s": (self.created as f64 / self.seconds.max(1e-9)).round(),
            "steady_users_per_s": self.steady_rate.round(),
            "users_per_s_by_tenth": by_tenth,
            "timed_out": self.timed_out,
            "request_latency": self.lat.summary(),
            "first_errors": self.first_errors,
            "timeline": self.timeline.iter().map(|(t, n, l)| json!([round3(*t), n, l])).collect::<Vec<_>>(),
        })
    }
}

struct Shared {
    sched: Mutex<Scheduler>,
    created: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
    /// Users done (created or failed).
    done: std::sync::atomic::AtomicU64,
    tenths: Mutex<Vec<f64>>,
    timeline: Mutex<Vec<(f64, u64, Option<f64>)>>,
    largest: Mutex<Vec<(u64, String)>>,
}

/// Loads every directory's users, `clients` requests in flight, spread over `urls`.
pub async fn load_users(
    client: &Client,
    urls: &[String],
    dirs: &[Dir],
    chunk: usize,
    max_payload: usize,
    clients: usize,
    timeout: Duration,
) -> Result<LoadOutcome> {
    use std::sync::atomic::Ordering::Relaxed;
    let total: u64 = dirs.iter().map(|d| d.size).sum();
    let shared = Arc::new(Shared {
        sched: Mutex::new(Scheduler::new(dirs, chunk)),
        created: 0.into(),
        failed: 0.into(),
        errors: 0.into(),
        done: 0.into(),
        tenths: Mutex::new(Vec::new()),
        timeline: Mutex::new(Vec::new()),
        largest: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    let deadline = started + timeout;
    let step = (total / 10).max(1);
    let dirs = Arc::new(dirs.to_vec());
    // A sampler for the timeline.
    let sampler = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut last = (0.0, 0u64);
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let n = shared.done.load(Relaxed);
                let t = started.elapsed().as_secs_f64();
                let load = load_average();
                if let Ok(mut tl) = shared.timeline.lock() {
                    tl.push((t, n, load));
                }
                if tl_print(t) {
                    println!(
                        "  {t:>6.0} s: {n} users, {:.0}/s lately, load average {load:?}",
                        (n - last.1) as f64 / (t - last.0).max(1e-9)
                    );
                    last = (t, n);
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, shared, dirs) = (client.clone(), shared.clone(), dirs.clone());
        let url = urls[c % urls.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::new();
            let mut requests = 0u64;
            let mut first_errors = Vec::new();
            loop {
                if Instant::now() >= deadline || shared.errors.load(Relaxed) > 10 {
                    break;
                }
                let next = match shared.sched.lock() {
                    Ok(mut s) => s.take(),
                    Err(_) => Err(()),
                };
                let chunk = match next {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    _ => break,
                };
                let dir = &dirs[chunk.dir];
                let n = chunk.users.end - chunk.users.start;
                let body = bulk_body(chunk.users.clone());
                if body.len() > max_payload {
                    bail!(
                        "a /Bulk body of {n} users is {} bytes, over maxPayloadSize {max_payload}: use a smaller --chunk",
                        body.len()
                    );
                }
                let t0 = Instant::now();
                let resp = client
                    .post(format!("{url}{}/Bulk", dir.base_path))
                    .header("Authorization", &dir.auth)
                    .header("Content-Type", "application/scim+json")
                    .body(body)
                    .send()
                    .await;
                let outcome = match resp {
                    Ok(r) => {
                        let status = r.status();
                        r.bytes().await.map(|b| (status, b))
                    }
                    Err(e) => Err(e),
                };
                let took = t0.elapsed();
                if let Ok(mut s) = shared.sched.lock() {
                    s.release(chunk.dir);
                }
                requests += 1;
                let (ok, bad) = match outcome {
                    Ok((StatusCode::OK, bytes)) => {
                        lat.record(took);
                        let res = results(&bytes, "201")?;
                        let ok = res.iter().filter(|(ok, _)| *ok).count() as u64;
                        if ok < n && first_errors.len() < 3 {
                            first_errors.push(format!(
                                "users {:?}: {} of {n} failed: {}",
                                chunk.users,
                                n - ok,
                                String::from_utf8_lossy(&bytes).chars().take(400).collect::<String>()
                            ));
                        }
                        if chunk.dir == 0
                            && let Ok(mut l) = shared.largest.lock()
                        {
                            l.extend(
                                chunk
                                    .users
                                    .clone()
                                    .zip(res)
                                    .filter_map(|(i, (ok, id))| Some((i, id.filter(|_| ok)?))),
                            );
                        }
                        (ok, n - ok)
                    }
                    Ok((status, bytes)) => {
                        shared.errors.fetch_add(1, Relaxed);
                        if first_errors.len() < 3 {
                            first_errors.push(format!(
                                "users {:?}: {status}: {}",
                                chunk.users,
                                String::from_utf8_lossy(&bytes).chars().take(400).collect::<String>()
                            ));
                        }
                        (0, n)
                    }
                    Err(e) => {
                        shared.errors.fetch_add(1, Relaxed);
                        if first_errors.len() < 3 {
                            first_errors.push(format!("users {:?}: {e}", chunk.users));
                        }
                        (0, n)
                    }
                };
                shared.failed.fetch_add(bad, Relaxed);
                shared.created.fetch_add(ok, Relaxed);
                let before = shared.done.fetch_add(ok + bad, Relaxed);
                let after = before + ok + bad;
                if after / step > before / step
                    && let Ok(mut t) = shared.tenths.lock()
                {
                    for _ in before / step..after / step {
                        t.push(started.elapsed().as_secs_f64());
                    }
                }
            }
            anyhow::Ok((lat, requests, first_errors))
        }));
    }
    let mut lat = Latencies::new();
    let mut requests = 0;
    let mut first_errors = Vec::new();
    for t in tasks {
        let (l, r, e) = t.await??;
        lat.merge(&l);
        requests += r;
        first_errors.extend(e);
    }
    first_errors.truncate(5);
    let seconds = started.elapsed().as_secs_f64();
    sampler.abort();
    let timeline = shared
        .timeline
        .lock()
        .map(|t| t.clone())
        .unwrap_or_default();
    let created = shared.created.load(Relaxed);
    let failed = shared.failed.load(Relaxed);
    let tenths = shared.tenths.lock().map(|t| t.clone()).unwrap_or_default();
    // Steady state: from the first tenth done to the ninth.
    let steady_rate = match (tenths.first(), tenths.get(8)) {
        (Some(a), Some(b)) if b > a => 8.0 * step as f64 / (b - a),
        _ => created as f64 / seconds.max(1e-9),
    };
    let mut largest = shared.largest.lock().map(|l| l.clone()).unwrap_or_default();
    largest.sort();
    Ok(LoadOutcome {
        created,
        failed,
        requests,
        seconds,
        steady_rate,
        timed_out: created + failed < total,
        lat,
        first_errors,
        timeline,
        tenths,
        largest_ids: largest,
        chunk,
        clients,
        instances: urls.len(),
    })
}

/// Progress lines every 30 s (the timeline keeps every 5 s).
fn tl_print(t: f64) -> bool {
    (t.round() as u64) % 30 < 5
}

pub struct GroupsOutcome {
    pub created: u64,
    pub failed: u64,
    pub memberships: u64,
    pub seconds: f64,
    pub member_ids: Vec<String>,
    pub first_errors: Vec<String>,
}

impl GroupsOutcome {
    pub fn to_json(&self) -> Value {
        json!({
            "groups_created": self.created,
            "groups_failed": self.failed,
            "memberships": self.memberships,
            "seconds": round3(self.seconds),
            "memberships_per_s": (self.memberships as f64 / self.seconds.max(1e-9)).round(),
            "first_errors": self.first_errors,
        })
    }
}

/// `groups` groups of `members` random users each in `dir`, `per_request` groups per /Bulk.
#[allow(clippy::too_many_arguments)]
pub async fn load_groups(
    client: &Client,
    url: &str,
    dir: &Dir,
    user_ids: &[(u64, String)],
    groups: u64,
    members: u64,
    per_request: usize,
    rng: &mut StdRng,
    timeout: Duration,
) -> Result<GroupsOutcome> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut out = GroupsOutcome {
        created: 0,
        failed: 0,
        memberships: 0,
        seconds: 0.0,
        member_ids: Vec::new(),
        first_errors: Vec::new(),
    };
    if user_ids.is_empty() {
        return Ok(out);
    }
    let mut member_set = HashSet::new();
    let mut shuffled = StdRng::seed_from_u64(rng.random());
    let mut k = 0u64;
    while k < groups && Instant::now() < deadline {
        let n = (per_request as u64).min(groups - k);
        let mut ops = Vec::new();
        let mut planned = 0u64;
        for g in k..k + n {
            let mut picks: Vec<&String> = (0..members)
                .map(|_| &user_ids[shuffled.random_range(0..user_ids.len())].1)
                .collect();
            picks.sort();
            picks.dedup();
            picks.shuffle(&mut shuffled);
            planned += picks.len() as u64;
            member_set.extend(picks.iter().map(|s| (*s).clone()));
            ops.push(json!({
                "method": "POST",
                "path": "/Groups",
                "bulkId": format!("g{g}"),
                "data": {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": format!("Bench group {g:05}"),
                    "members": picks.iter().map(|id| json!({"value": id})).collect::<Vec<_>>(),
                },
            }));
        }
        let body = serde_json::to_vec(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": ops,
        }))?;
        let resp = client
            .post(format!("{url}{}/Bulk", dir.base_path))
            .header("Authorization", &dir.auth)
            .header("Content-Type", "application/scim+json")
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status != StatusCode::OK {
            bail!("group /Bulk: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        let res = results(&bytes, "201")?;
        let ok = res.iter().filter(|(ok, _)| *ok).count() as u64;
        if ok < n && out.first_errors.len() < 3 {
            out.first_errors
                .push(String::from_utf8_lossy(&bytes).chars().take(400).collect());
        }
        out.created += ok;
        out.failed += n - ok;
        if ok == n {
            out.memberships += planned;
        }
        k += n;
    }
    out.seconds = started.elapsed().as_secs_f64();
    out.member_ids = member_set.into_iter().collect();
    out.member_ids.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(sizes: &[u64]) -> Vec<Dir> {
        let mut first = 0;
        sizes
            .iter()
            .map(|s| {
                let d = Dir {
                    base_path: String::new(),
                    auth: String::new(),
                    first,
                    size: *s,
                };
                first += s;
                d
            })
            .collect()
    }

    #[test]
    fn sizes_add_up_largest_first() {
        for (users, n, skew) in [
            (1_000_000, 100, 1.0),
            (100_000, 10, 1.0),
            (1000, 7, 0.0),
            (5, 5, 2.0),
        ] {
            let s = directory_sizes(users, n, skew);
            assert_eq!(s.len() as u64, n);
            assert_eq!(s.iter().sum::<u64>(), users);
            assert!(s.windows(2).all(|w| w[0] >= w[1]), "{s:?}");
            assert!(s.iter().all(|x| *x >= 1));
        }
        let even = directory_sizes(1000, 10, 0.0);
        assert!(even.iter().all(|x| *x == 100), "{even:?}");
        // Zipf over 100 directories: the largest holds about a fifth.
        let z = directory_sizes(1_000_000, 100, 1.0);
        assert!((180_000..200_000).contains(&z[0]), "{}", z[0]);
    }

    #[test]
    fn scheduler_covers_every_user_once_and_never_shares_a_directory() {
        let d = dirs(&[2500, 1000, 1]);
        let mut s = Scheduler::new(&d, 1000);
        let mut seen = Vec::new();
        let a = s.take().unwrap().unwrap();
        let b = s.take().unwrap().unwrap();
        assert_ne!(a.dir, b.dir);
        let c = s.take().unwrap().unwrap();
        assert_eq!(
            HashSet::from([a.dir, b.dir, c.dir]).len(),
            3,
            "three directories, three clients"
        );
        // Everything left belongs to busy directories.
        assert_eq!(s.take(), Ok(None));
        for x in [a, b, c] {
            s.release(x.dir);
            seen.push(x);
        }
        loop {
            match s.take() {
                Ok(Some(x)) => {
                    s.release(x.dir);
                    seen.push(x);
                }
                Ok(None) => unreachable!("nothing is busy"),
                Err(()) => break,
            }
        }
        let mut all: Vec<u64> = seen.iter().flat_map(|c| c.users.clone()).collect();
        all.sort();
        assert_eq!(all, (0..3501).collect::<Vec<_>>());
        assert!(seen.iter().all(|c| c.users.end - c.users.start <= 1000));
    }

    #[test]
    fn bulk_bodies_create_users_with_bulk_ids() {
        let v: Value = serde_json::from_slice(&bulk_body(5..7)).unwrap();
        let ops = v["Operations"].as_array().unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0]["bulkId"], "u5");
        assert_eq!(ops[1]["data"]["userName"], users::user_name(6));
        let r = results(
            br#"{"Operations":[{"status":"201","location":"http://h/scim/v2/d/Users/abc"},{"status":"409"}]}"#,
            "201",
        )
        .unwrap();
        assert_eq!(r, [(true, Some("abc".to_owned())), (false, None)]);
    }
}
