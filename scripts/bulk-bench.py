#!/usr/bin/env python3
"""Bulk-load benchmark: N users through /Bulk at 1,000 operations per request.

Usage: scripts/bulk-bench.py SCIM_BASE_URL TOKEN USERS CLIENTS
Request bodies are built before the clock starts, so the client costs little
beside the server; loopback only."""
import json, sys, time, urllib.request, threading
base, token, n, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
per = 1000
def body(start):
    ops = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": f"user{i}@example.com", "externalId": f"ext-{i}", "displayName": f"User {i}",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i % 977}"},
        "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": f"+1555{i:07d}", "type": "work"}],
        "title": "Engineer", "active": True,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": str(i), "department": f"Dept{i % 50}"}}}
        for i in range(start, min(start + per, n))]
    return json.dumps({"Operations": ops}).encode()
bodies = [body(s) for s in range(0, n, per)]
fails = [0]; lock = threading.Lock()
def worker(k):
    for b in bodies[k::conc]:
        r = urllib.request.Request(base + "/Bulk", data=b, method="POST", headers={"Authorization": "Bearer " + token, "Content-Type": "application/scim+json"})
        out = json.loads(urllib.request.urlopen(r).read())
        with lock: fails[0] += sum(1 for o in out["Operations"] if o["status"] != "201")
t = time.time()
ts = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
[x.start() for x in ts]; [x.join() for x in ts]
dt = time.time() - t
print(f"{n} users via /Bulk, {conc} clients, 1000 ops/request: {dt:.2f}s = {n/dt:.0f} creates/s, failures {fails[0]}")
