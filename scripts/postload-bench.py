#!/usr/bin/env python3
"""Filters right after a bulk load on PostgreSQL (docs/benchmarks.md,
"Filters right after a bulk load").

Creates a fresh database on the PostgreSQL at --pg (CREATE DATABASE
roster_postload_<unix time>, dropped at the end), starts ROSTER serve on it
(request_timeout_secs = --request-timeout), loads one directory with USERS
users through SCIM /Bulk (1,000 per request, one client; each user with
name, displayName, title, a work and a home email, active, externalId and
the Enterprise department and employeeNumber), and then at once, with no
ANALYZE from the script, runs each filter of the corpus RUNS times for a page
of 100 (`attributes=userName`), one request at a time. Reports each filter's
p50 and worst latency and status, and whether PostgreSQL had statistics for
`resources` at that moment (pg_stat_user_tables.last_analyze, reltuples).
The machine's PostgreSQL must run with autovacuum off (or its naptime longer
than the run) for "right after the load" to mean "before autovacuum".

Usage: scripts/postload-bench.py --roster target/debug/roster [--users 10000]
       [--runs 10] [--pg postgres://postgres@127.0.0.1:5432/test]
Prints one JSON report; the load average is read before each phase."""
import argparse, http.client, json, os, socket, subprocess, sys, tempfile, time, urllib.parse

p = argparse.ArgumentParser()
p.add_argument("--roster", required=True)
p.add_argument("--users", type=int, default=10_000)
p.add_argument("--runs", type=int, default=10)
p.add_argument("--request-timeout", type=int, default=20)
p.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/test")
a = p.parse_args()

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORPUS = [
    'emails.value co "u123@work"',
    'name.familyName sw "Fam12"',
    'displayName co "er 123"',
    f'{ENT}:employeeNumber eq "E01234"',
    'title eq "Title 7"',
    'active eq false',
    'userName eq "u01234"',
]


def psql(url, sql):
    return subprocess.run(["psql", url, "-Atc", sql], check=True, capture_output=True,
                          text=True, timeout=120).stdout.strip()


def load():
    return open("/proc/loadavg").read().split()[:3]


admin = urllib.parse.urlsplit(a.pg)
dbname = f"roster_postload_{int(time.time())}"
url = urllib.parse.urlunsplit(admin._replace(path=f"/{dbname}"))
psql(a.pg, f"CREATE DATABASE {dbname}")
work = tempfile.mkdtemp(prefix="roster-postload.")
server = None
try:
    def cli(*args):
        out = subprocess.run([a.roster, "--database", url, *args, "--json"], check=True,
                             capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
        return json.loads(out.stdout)

    d = cli("directory", "create", "bench")
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    with open(f"{work}/roster.toml", "w") as f:
        f.write(f"rate_limit_per_sec = 0.0\nrequest_timeout_secs = {a.request_timeout}\n"
                "webhooks_enabled = false\n")
    log = open(f"{work}/serve.log", "w")
    server = subprocess.Popen([a.roster, "--database", url, "serve", "--listen",
                               f"127.0.0.1:{port}", "--config", f"{work}/roster.toml"],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                              env={**os.environ, "ROSTER_LOG": "warn"})
    conn = None
    for _ in range(150):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=a.request_timeout + 30)
            conn.connect()
            break
        except OSError:
            time.sleep(0.2)
    scim, token = d["scim_base_path"], d["token"]

    def call(method, path, body=None):
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/scim+json"
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, data, time.perf_counter() - started

    report = {"users": a.users, "roster": a.roster, "load_before": load()}
    t0 = time.perf_counter()
    for start in range(0, a.users, 1000):
        ops = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "userName": f"u{i:05}", "externalId": f"ext-{i}", "displayName": f"User {i}",
            "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
            "title": f"Title {i % 50}", "active": i % 10 != 0,
            "emails": [{"value": f"u{i}@work.example.com", "type": "work", "primary": True},
                       {"value": f"u{i}@home.example.com", "type": "home"}],
            ENT: {"department": f"Dept {i % 20}", "employeeNumber": f"E{i:05}"}}}
            for i in range(start, min(start + 1000, a.users))]
        status, data, _ = call("POST", f"{scim}/Bulk", json.dumps(
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}))
        if status != 200 or any(o["status"] != "201" for o in json.loads(data)["Operations"]):
            sys.exit(f"bulk: {status} {data[:300]!r}")
    report["load_secs"] = round(time.perf_counter() - t0, 1)
    stats = psql(url, "SELECT s.last_analyze IS NOT NULL, c.reltuples::bigint FROM "
                 "pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
                 "WHERE s.relname = 'resources'")
    report["resources_statistics_at_first_filter"] = stats
    report["load_at_filters"] = load()
    results = {}
    for f in CORPUS:
        path = f"{scim}/Users?" + urllib.parse.urlencode(
            {"filter": f, "count": 100, "attributes": "userName"})
        times, statuses = [], set()
        for _ in range(a.runs):
            status, _, took = call("GET", path)
            times.append(took)
            statuses.add(status)
        times.sort()
        results[f] = {"p50_ms": round(times[len(times) // 2] * 1000, 1),
                      "max_ms": round(times[-1] * 1000, 1), "statuses": sorted(statuses)}
    report["filters"] = results
    report["load_after"] = load()
    print(json.dumps(report, indent=1))
finally:
    if server:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Requests whose queries still run hold the graceful shutdown.
            server.kill()
            server.wait(timeout=30)
    psql(a.pg, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    subprocess.run(["rm", "-rf", work])
