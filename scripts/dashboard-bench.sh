#!/bin/bash
# Dashboard page benchmark (docs/benchmarks.md, "Dashboard pages").
# usage: scripts/dashboard-bench.sh ROSTER_BIN USERS PORT [RUNS]
# On a fresh SQLite database, bulk-loads USERS users (scripts/bulk-bench.py,
# 1 client), signs in to /admin with a new admin key, then fetches each page
# RUNS times (default 20) with curl over loopback and prints the median and
# the slowest time to the last byte, in milliseconds.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$1; N=$2; PORT=$3; RUNS=${4:-20}
D=$(mktemp -d /tmp/dashboard-bench.XXXX)
DB=sqlite://$D/r.db
OUT=$($BIN --database $DB directory create bench --json)
ID=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
TOK=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
KEY=$($BIN --database $DB admin-key create bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
ROSTER_WEBHOOKS_ENABLED=false $BIN --database $DB serve --listen 127.0.0.1:$PORT > $D/serve.log 2>&1 & SP=$!
trap 'kill $SP 2>/dev/null; wait $SP 2>/dev/null; rm -rf $D' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/health/ready > /dev/null && break; sleep 0.1; done
python3 $HERE/bulk-bench.py http://127.0.0.1:$PORT/scim/v2/$ID $TOK $N 1 > $D/bulk.log
tail -1 $D/bulk.log
# Sign in: the session cookie goes to the jar; no key in any URL.
curl -s -c $D/jar -o /dev/null --data-urlencode "key=$KEY" http://127.0.0.1:$PORT/admin/sign-in
page() {
  local label=$1 path=$2 expect=${3:-user}
  for _ in $(seq 1 3); do curl -s -b $D/jar -o /dev/null "http://127.0.0.1:$PORT$path"; done
  for _ in $(seq 1 $RUNS); do
    curl -s -b $D/jar -o $D/page.html -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$PORT$path"
  done | python3 -c '
import sys
rows = [l.split() for l in sys.stdin]
codes = {r[0] for r in rows}
ms = sorted(float(r[1]) * 1000 for r in rows)
status = "/".join(sorted(codes))
print(f"{sys.argv[1]:<34} status {status}  median {ms[len(ms)//2]:6.1f} ms  max {ms[-1]:6.1f} ms")
' "$label"
  grep -q "$expect" $D/page.html || { echo "$label: no \"$expect\" on the page" >&2; exit 1; }
}
echo "$N users, $RUNS runs each, load average $(cut -d' ' -f1-3 /proc/loadavg)"
page "users, first page (100)" "/admin/directories/$ID/users"
page "users, page at start=$((N / 2 + 1))" "/admin/directories/$ID/users?start=$((N / 2 + 1))"
page "users, search \"user4242\"" "/admin/directories/$ID/users?q=user4242"
page "users, filter userName eq" "/admin/directories/$ID/users?q=userName+eq+%22user77%40example.com%22"
page "directory page" "/admin/directories/$ID"
page "directories list" "/admin" bench
