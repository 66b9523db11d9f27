#!/usr/bin/env bash
# Benchmark of roster sync: 100,000 users from one Roster directory into
# another (both in one `roster serve` on SQLite), full and then incremental
# after changing 1% of the users, with /Bulk and with single requests.
#
# Usage: scripts/sync-bench.sh [ROSTER_BIN] [USERS]
#   ROSTER_BIN defaults to target/release/roster; USERS to 100000.
# Loopback only; prints one line per run and leaves the reports in $OUT
# (default: a temporary directory, printed at the end).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
roster=$(realpath "${1:-target/release/roster}")
users=${2:-100000}
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/roster-sync-bench.XXXXXX")}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db="sqlite://$out/roster.db"
export ROSTER_LOG=warn

"$roster" --database "$db" serve --listen "127.0.0.1:$port" >"$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

dir() { "$roster" --database "$db" directory create "$1" --json; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
src_json=$(dir source); bulk_json=$(dir target-bulk); single_json=$(dir target-single)
base() { echo "http://127.0.0.1:$port$(echo "$1" | field scim_base_path)"; }
src=$(base "$src_json"); src_token=$(echo "$src_json" | field token)
bulk=$(base "$bulk_json"); bulk_token=$(echo "$bulk_json" | field token)
single=$(base "$single_json"); single_token=$(echo "$single_json" | field token)

echo "loading $users users into the source:"
python3 scripts/bulk-bench.py "$src" "$src_token" "$users" 2

run() { # name state target token extra...
    local name=$1 state=$2 target=$3 token=$4
    shift 4
    ROSTER_SOURCE_TOKEN=$src_token ROSTER_TARGET_TOKEN=$token "$roster" sync \
        --source "$src" --target "$target" --state "$out/$state.state.json" \
        --report "$out/$name.json" "$@" 2>"$out/$name.log" || {
        cat "$out/$name.log"
        exit 1
    }
    python3 - "$out/$name.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["counts"]
print(f'{sys.argv[2]:<22} {r["mode"]:<6} {r["listing"]["mode"]:<11} listed {r["listing"]["resources"]:>6}  '
      f'created {c["created"]:>6} updated {c["updated"]:>5} failed {c["failed"]}  '
      f'{r["duration_ms"]/1000:7.2f} s  target requests {r["requests"]["target"]:>6}  '
      f'source requests {r["requests"]["source"]:>4}  sent {r["bytes"]["target_sent"]/1e6:8.2f} MB  '
      f'received {r["bytes"]["target_received"]/1e6:7.2f} MB  source read {r["bytes"]["source_received"]/1e6:7.2f} MB')
PY
}

run full-bulk bulk "$bulk" "$bulk_token"
run full-single single "$single" "$single_token" --no-bulk --concurrency 8

# Steady state: the checkpoint must sit later than the overlap window (60 s)
# after the bulk load, as it does in production; otherwise the first
# incremental run would list the tail of the load again (and skip it by digest).
sleep 61
python3 - "$src" "$src_token" <<'PY'
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/scim+json"})
    return json.loads(urllib.request.urlopen(req).read() or b"null")
uid = call("GET", "/Users?count=1&attributes=id")["Resources"][0]["id"]
call("PATCH", f"/Users/{uid}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
     "Operations": [{"op": "replace", "path": "nickName", "value": "marker"}]})
PY
run marker-bulk bulk "$bulk" "$bulk_token" >/dev/null
run marker-single single "$single" "$single_token" --no-bulk >/dev/null
sleep 1

# Change 1% of the users (every 100th), through one /Bulk request per 1,000.
python3 - "$src" "$src_token" "$users" <<'PY'
import json, sys, urllib.request
base, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/scim+json"})
    return json.loads(urllib.request.urlopen(req).read() or b"null")
ids, start = [], 1
while True:
    page = call("GET", f"/Users?count=1000&startIndex={start}&attributes=id")
    ids += [r["id"] for r in page["Resources"]]
    start += len(page["Resources"])
    if not page["Resources"] or start > page["totalResults"]:
        break
changed = ids[::100]
for i in range(0, len(changed), 1000):
    ops = [{"method": "PATCH", "path": f"/Users/{u}", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Changed"}]}} for u in changed[i:i + 1000]]
    call("POST", "/Bulk", {"Operations": ops})
print(f"changed {len(changed)} users")
PY
run incremental-bulk bulk "$bulk" "$bulk_token"
run incremental-single single "$single" "$single_token" --no-bulk --concurrency 8
echo "reports in $out"
