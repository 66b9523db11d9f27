#!/usr/bin/env python3
"""Instructions the server spends per request, counted by callgrind.

Instruction counts do not depend on the machine's load, so two binaries can be
compared on a busy machine: run this once per binary and compare the lines.

Usage: scripts/callgrind.py --roster target/release/roster [--users 2000]

Starts `roster serve` under `valgrind --tool=callgrind` on 127.0.0.1 with a
fresh SQLite file, and for each phase warms up, zeroes the counters
(`callgrind_control -z`), runs the measured requests and dumps
(`callgrind_control -d`). Prints one line per phase:

    callgrind: <phase>: <instructions per request or per user>

Phases: `POST /Users` (16 clients), users created through `/Bulk` (1,000 per
request), and one phase per filter of `GET /Users?filter=…&count=100`
(one client) over the users created before. Loopback only; every phase is bounded.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

FILTERS = [
    'userName eq "user-000123@example.com"',
    'emails.value co "000123@work"',
    'name.familyName sw "Fam12"',
    f'{ENTERPRISE}:employeeNumber eq "E-000123"',
    'emails[type eq "work" and value ew "000123@work.example.com"]',
    "active eq false",
]


def user(prefix, i):
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": f"{prefix}-{i:06}@example.com",
        "externalId": f"{prefix}-ext-{i}",
        "name": {"givenName": f"Given{i}", "familyName": f"Fam{i}"},
        "displayName": f"Given{i} Fam{i}",
        "title": "Engineer",
        "active": i % 10 != 0,
        "emails": [
            {"value": f"{prefix}{i:06}@work.example.com", "type": "work", "primary": True},
            {"value": f"{prefix}{i:06}@home.example.com", "type": "home"},
        ],
        ENTERPRISE: {"department": f"Dept{i % 20}", "employeeNumber": f"E-{i:06}"},
    }


class Client:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/scim+json")
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def creates(client, prefix, start, n, clients=16):
    counter = iter(range(start, start + n))
    lock = threading.Lock()
    errors = []

    def work():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            status, _ = client.call("POST", "/Users", user(prefix, i))
            if status != 201:
                errors.append(status)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"callgrind: {len(errors)} creates failed: {errors[:5]}")


def bulk(client, prefix, start, n):
    for chunk in range(start, start + n, 1000):
        ops = [
            {"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": user(prefix, i)}
            for i in range(chunk, min(chunk + 1000, start + n))
        ]
        status, body = client.call("POST", "/Bulk", {"schemas": [BULK], "Operations": ops})
        results = json.loads(body)["Operations"]
        bad = [r for r in results if not str(r.get("status", "")).startswith("201")]
        if status != 200 or bad:
            sys.exit(f"callgrind: /Bulk answered {status} with {len(bad)} failures")


def lists(client, rounds, filters=FILTERS):
    for _ in range(rounds):
        for f in filters:
            q = urllib.parse.urlencode({"filter": f, "count": 100, "attributes": "userName"})
            status, _ = client.call("GET", f"/Users?{q}")
            if status != 200:
                sys.exit(f"callgrind: {f} answered {status}")


def totals(path):
    """Instructions of the newest dump (callgrind writes `<file>.<n>`)."""
    dumps = [p for p in os.listdir(os.path.dirname(path)) if p.startswith(os.path.basename(path))]
    newest = max(dumps, key=lambda p: os.path.getmtime(os.path.join(os.path.dirname(path), p)))
    with open(os.path.join(os.path.dirname(path), newest)) as f:
        for line in f:
            m = re.match(r"^(?:summary|totals): (\d+)", line)
            if m:
                return int(m.group(1)), newest
    sys.exit(f"callgrind: no totals in {newest}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--roster", required=True, help="a release build of the roster binary")
    ap.add_argument("--users", type=int, default=2000, help="users created by single POSTs (measured)")
    ap.add_argument("--bulk-users", type=int, default=3000, help="users created through /Bulk (measured)")
    ap.add_argument("--list-rounds", type=int, default=5, help="rounds of the filtered lists")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="roster-callgrind.")
    db = f"sqlite://{work}/roster.db"
    out = json.loads(subprocess.check_output(
        [a.roster, "--database", db, "directory", "create", "bench", "--json"]))
    port = free_port()
    cg_out = f"{work}/cg.out"
    env = dict(os.environ, ROSTER_LOG="warn")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg_out}",
         a.roster, "--database", db, "serve", "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Client(f"http://127.0.0.1:{port}{out['scim_base_path']}", out["token"])
    try:
        for _ in range(600):
            try:
                client.call("GET", "/ServiceProviderConfig")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        else:
            sys.exit("callgrind: the server did not answer within 300 s")

        def measure(phase, per, run):
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True, **quiet)
            run()
            subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, **quiet)
            total, _ = totals(cg_out)
            unit = "request" if phase.startswith("GET") else "user"
            print(f"callgrind: {phase}: {total // per:,} instructions per {unit}", flush=True)

        creates(client, "warm", 0, 300)
        measure("POST /Users", a.users, lambda: creates(client, "user", 0, a.users))
        bulk(client, "bwarm", 0, 1000)
        measure("/Bulk", a.bulk_users, lambda: bulk(client, "bulk", 0, a.bulk_users))
        # `--list-rounds 0`: the writes only.
        if a.list_rounds > 0:
            lists(client, 1)
            for f in FILTERS:
                measure(f"GET /Users?filter={f}", a.list_rounds,
                        lambda f=f: lists(client, a.list_rounds, [f]))
    finally:
        server.terminate()
        server.wait(timeout=120)


if __name__ == "__main__":
    main()
