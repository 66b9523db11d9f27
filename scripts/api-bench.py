#!/usr/bin/env python3
"""App-facing read benchmark (docs/benchmarks.md, "Directory API reads").

Starts ROSTER serve on a fresh SQLite database on 127.0.0.1, loads one
directory over SCIM /Bulk with USERS users and GROUPS groups (each user in
1 to 3 groups, chosen with a fixed seed), then measures:

- pages of 100 users with their groups: `GET /directory_users?directory=…&limit=100`
  (WorkOS) and `GET /api/v1/directories/{id}/users?limit=100`, each walked
  through the whole directory in both orders, one request at a time; the
  latency of each page is the time to its last byte (p50, p99, max);
- reading the event stream from its start: `GET /events?limit=100` (the
  WorkOS maximum) and `GET /api/v1/events?limit=1000`, one request at a
  time, as events per second of request time;
- SCIM cursor walks (RFC 9865): `GET /scim/v2/{dir}/Users?count=100&cursor=`
  following `nextCursor` through every user, without a filter and with
  `title eq "Engineer"` (which every user matches), with the first and last
  page's latency beside p50 and p99.

Usage: scripts/api-bench.py --roster target/release/roster [--users 100000]
       [--groups 1000] [--event-pages 400] [--only-scim] [--keep]
Prints one JSON report; the load average is read before each phase."""
import argparse, http.client, json, os, random, re, shutil, socket, subprocess, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--roster", required=True)
p.add_argument("--users", type=int, default=100_000)
p.add_argument("--groups", type=int, default=1000)
p.add_argument("--event-pages", type=int, default=400, help="most pages of each event walk")
p.add_argument("--keep", action="store_true", help="keep the database folder")
p.add_argument("--only-scim", action="store_true",
               help="only the SCIM cursor walks (no app-facing walks or event streams)")
a = p.parse_args()

work = tempfile.mkdtemp(prefix="roster-api-bench.")
db = f"sqlite://{work}/roster.db"


def cli(*args):
    out = subprocess.run([a.roster, "--database", db, *args, "--json"], check=True,
                         capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    return json.loads(out.stdout)


def load():
    return open("/proc/loadavg").read().split()[:3]


d = cli("directory", "create", "bench", "--organization", "org_bench")
key = cli("admin-key", "create", "bench")["key"]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
with open(f"{work}/roster.toml", "w") as f:
    f.write("rate_limit_per_sec = 0.0\nadmin_rate_limit_per_sec = 0.0\n")
log = open(f"{work}/serve.log", "w")
server = subprocess.Popen([a.roster, "--database", db, "serve", "--listen", f"127.0.0.1:{port}",
                           "--config", f"{work}/roster.toml"], stdin=subprocess.DEVNULL,
                          stdout=log, stderr=log, env={**os.environ, "ROSTER_LOG": "warn"})
conn = None
try:
    for _ in range(150):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.connect()
            break
        except OSError:
            time.sleep(0.2)

    def call(method, path, body=None, token=key):
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/scim+json"
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        took = time.perf_counter() - started
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
        return data, took

    scim = d["scim_base_path"]
    token = d["token"]

    def bulk(ops):
        body = json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                           "Operations": ops})
        data, _ = call("POST", f"{scim}/Bulk", body, token)
        out = json.loads(data)["Operations"]
        bad = [o for o in out if not str(o.get("status", "")).startswith("2")]
        if bad:
            sys.exit(f"bulk: {bad[:2]}")
        return [o["location"].rsplit("/", 1)[1] for o in out]

    report = {"users": a.users, "groups": a.groups, "load_before": load()}
    t0 = time.perf_counter()
    ids = []
    for start in range(0, a.users, 1000):
        ids += bulk([{"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": {
            "userName": f"user{i}@example.com", "externalId": f"ext-{i}",
            "name": {"givenName": f"Given{i}", "familyName": f"Family{i % 977}"},
            "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}],
            "title": "Engineer", "active": i % 50 != 0}}
            for i in range(start, min(start + 1000, a.users))])
    rng = random.Random(1)
    members = [[] for _ in range(a.groups)]
    for u in ids if a.groups else []:
        for g in rng.sample(range(a.groups), rng.randint(1, 3)):
            members[g].append(u)
    for start in range(0, a.groups, 40):
        bulk([{"method": "POST", "path": "/Groups", "bulkId": f"g{g}", "data": {
            "displayName": f"Group {g}", "externalId": f"gext-{g}",
            "members": [{"value": u} for u in members[g]]}}
            for g in range(start, min(start + 40, a.groups))])
    report["load_secs"] = round(time.perf_counter() - t0, 1)
    report["memberships"] = sum(len(m) for m in members)

    def pct(xs, q):
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2)

    def walk(label, first):
        """Every page of a list, following list_metadata.after."""
        times, objects, path = [], 0, first
        report[f"{label}_load_at_start"] = load()
        while True:
            data, took = call("GET", path)
            times.append(took)
            page = json.loads(data)
            objects += len(page["data"])
            after = page["list_metadata"]["after"]
            if not after:
                break
            path = f"{first}&after={after}"
        report[label] = {"pages": len(times), "objects": objects, "p50_ms": pct(times, 0.50),
                         "p99_ms": pct(times, 0.99), "max_ms": round(max(times) * 1000, 2)}

    def cursor_walk(label, query):
        """Every page of a SCIM list by RFC 9865 cursor, following nextCursor."""
        times, users, totals = [], 0, set()
        report[f"{label}_load_at_start"] = load()
        path = f"{scim}/Users?count=100&attributes=userName&cursor={query}"
        while True:
            data, took = call("GET", path, token=token)
            times.append(took)
            page = json.loads(data)
            users += len(page["Resources"])
            totals.add(page["totalResults"])
            nxt = page.get("nextCursor")
            if not nxt:
                break
            path = f"{scim}/Users?count=100&attributes=userName&cursor={nxt}{query}"
        report[label] = {"pages": len(times), "users": users, "totals": sorted(totals),
                         "first_ms": round(times[0] * 1000, 2), "last_ms": round(times[-1] * 1000, 2),
                         "p50_ms": pct(times, 0.50), "p99_ms": pct(times, 0.99),
                         "max_ms": round(max(times) * 1000, 2)}

    cursor_walk("scim_cursor_walk", "")
    cursor_walk("scim_cursor_walk_filtered", "&filter=title%20eq%20%22Engineer%22")
    if a.only_scim:
        report["load_after"] = load()
        print(json.dumps(report, indent=1))
        sys.exit(0)

    dir_id = d["id"]
    for order in ("desc", "asc"):
        walk(f"workos_directory_users_{order}", f"/directory_users?directory={dir_id}&limit=100&order={order}")
        walk(f"api_v1_users_{order}", f"/api/v1/directories/{dir_id}/users?limit=100&order={order}")

    def stream(label, first, pages):
        """Pages of the event stream from its start, as events per second of request time."""
        spent, events, path = 0.0, 0, first
        report[f"{label}_load_at_start"] = load()
        for _ in range(pages):
            data, took = call("GET", path)
            spent += took
            n = data.count(b'"object":"event"')
            if n == 0:
                break
            events += n
            after = re.search(rb'"after":"(evt_[0-9a-f]+)"', data).group(1).decode()
            path = f"{first}&after={after}"
        report[label] = {"events": events, "secs": round(spent, 3),
                         "events_per_sec": round(events / spent) if spent else None}

    types = ",".join(["dsync.user.created", "dsync.group.created", "dsync.group.user_added"])
    stream("workos_events_limit_100", f"/events?events={types}&limit=100", a.event_pages)
    stream("api_v1_events_limit_1000", "/api/v1/events?limit=1000", a.event_pages)
    report["load_after"] = load()
    print(json.dumps(report, indent=1))
finally:
    server.terminate()
    server.wait(timeout=30)
    if a.keep:
        print(f"kept {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
