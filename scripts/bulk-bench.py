#!/usr/bin/env python3
"""Bulk benchmark: N users created through /Bulk at 1,000 operations per
request, then (with --patch) N PATCH operations through /Bulk: half of the
users deactivated, the other half each added to one of 100 groups.

Usage: scripts/bulk-bench.py SCIM_BASE_URL TOKEN USERS CLIENTS [--patch] [--pid PID]
With --pid, reads the server's CPU time and memory from /proc around each
phase. Request bodies are built before each clock starts, so the client costs
little beside the server; loopback only."""
import json, sys, time, urllib.request, threading

args = [a for a in sys.argv[1:] if not a.startswith("--")]
base, token, n, conc = args[0], args[1], int(args[2]), int(args[3])
patch = "--patch" in sys.argv
pid = int(sys.argv[sys.argv.index("--pid") + 1]) if "--pid" in sys.argv else None
if pid is not None:
    args.remove(str(pid))
per = 1000
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def server():
    """(CPU seconds, VmRSS MiB, VmHWM MiB) of the server, or None."""
    if pid is None:
        return None
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks
    mem = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            mem[k] = int(v.split()[0]) / 1024
    return cpu, mem["VmRSS"], mem["VmHWM"]


def user_op(i):
    return {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": {
        "schemas": [USER, ENTERPRISE],
        "userName": f"user{i}@example.com", "externalId": f"ext-{i}", "displayName": f"User {i}",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i % 977}"},
        "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": f"+1555{i:07d}", "type": "work"}],
        "title": "Engineer", "active": True,
        ENTERPRISE: {"employeeNumber": str(i), "department": f"Dept{i % 50}"}}}


def bulk(ops):
    return json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                       "Operations": ops}).encode()


def run(bodies, label, count):
    fails, results, lock = [0], [], threading.Lock()

    def worker(k):
        for b in bodies[k::conc]:
            r = urllib.request.Request(base + "/Bulk", data=b, method="POST", headers={
                "Authorization": "Bearer " + token, "Content-Type": "application/scim+json"})
            out = json.loads(urllib.request.urlopen(r).read())
            with lock:
                results.extend(out["Operations"])
                fails[0] += sum(1 for o in out["Operations"] if not o["status"].startswith("2"))

    before = server()
    t = time.time()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
    [x.start() for x in ts]
    [x.join() for x in ts]
    dt = time.time() - t
    after = server()
    line = f"{label}: {count} operations via /Bulk, {conc} clients, {per} ops/request: {dt:.2f}s = {count / dt:.0f} ops/s, failures {fails[0]}"
    if before and after:
        line += (f"; server CPU {1e6 * (after[0] - before[0]) / count:.0f} us/op,"
                 f" RSS {after[1]:.0f} MiB, peak {after[2]:.0f} MiB")
    print(line, flush=True)
    return results


bodies = [bulk([user_op(i) for i in range(s, min(s + per, n))]) for s in range(0, n, per)]
created = run(bodies, "create", n)
if patch:
    ids = [o["location"].rsplit("/", 1)[1] for o in created if o.get("status") == "201"]
    groups = [{"method": "POST", "path": "/Groups", "bulkId": f"g{g}",
               "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": f"Bench group {g}"}} for g in range(100)]
    made = run([bulk(groups)], "groups", len(groups))
    gids = [o["location"].rsplit("/", 1)[1] for o in made]
    ops = []
    for k, uid in enumerate(ids):
        if k % 2 == 0:
            ops.append({"method": "PATCH", "path": f"/Users/{uid}", "data": {
                "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}})
        else:
            ops.append({"method": "PATCH", "path": f"/Groups/{gids[k % len(gids)]}", "data": {
                "schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}})
    run([bulk(ops[s:s + per]) for s in range(0, len(ops), per)], "patch", len(ops))
