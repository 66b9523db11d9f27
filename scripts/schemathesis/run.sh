#!/usr/bin/env bash
# schemathesis against a live Roster, driven by the OpenAPI document Roster
# serves (GET /api/v1/openapi.json): every /api/v1 and WorkOS operation gets
# generated requests, and every answer must be no 5xx, carry a status the
# document gives, and match the document's schema for that status.
#
# Starts `roster serve` on a free loopback port with a fresh SQLite database,
# a directory with users and groups provisioned over SCIM, and an admin key.
#
# Usage: scripts/schemathesis/run.sh --roster target/debug/roster [--max-examples N]
# Prints `schemathesis: N operations passed`; any failure exits non-zero.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
roster=""
max_examples=15
while [[ $# -gt 0 ]]; do
    case "$1" in
    --roster) roster=$(realpath "$2"); shift 2 ;;
    --max-examples) max_examples=$2; shift 2 ;;
    *) echo "usage: $0 --roster PATH [--max-examples N]" >&2; exit 2 ;;
    esac
done
[[ -x "$roster" ]] || { echo "schemathesis: --roster must name the roster binary" >&2; exit 2; }

name=schemathesis
# shellcheck source=../lib/live-roster.sh
source "$here/../lib/live-roster.sh"
live_init
live_venv "$here/requirements.txt"

dir=$(cli directory create schemathesis --organization org_schemathesis --json)
key=$(cli admin-key create schemathesis --json | field key)

# The generated requests come fast; the per-key rate limit is not under test.
printf 'admin_rate_limit_per_sec = 0.0\n' >"$work/roster.toml"
ROSTER_LOG=warn live_serve --config "$work/roster.toml"

# Users, groups and memberships over SCIM, so that lists and events have
# real objects to render; their ids become the path parameters below.
read -r user_id group_id < <(timeout 60 python3 - "$base$(field scim_base_path <<<"$dir")" "$(field token <<<"$dir")" <<'PY'
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
users = [post("/Users", {"userName": f"user{i}@example.com", "externalId": f"idp-{i}", "active": i % 4 != 0,
                         "name": {"givenName": f"Given{i}", "familyName": "Family"},
                         "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}]})["id"]
         for i in range(12)]
groups = [post("/Groups", {"displayName": f"Group {g}", "externalId": f"idp-group-{g}",
                           "members": [{"value": u} for u in users[g::3]]})["id"]
          for g in range(3)]
print(users[1], groups[1])
PY
)
token_id=$(curl -sf -X POST -H "Authorization: Bearer $key" "$base/api/v1/directories/$(field id <<<"$dir")/tokens" | field id)
directory_id=$(field id <<<"$dir")
# Known ids for the path and query parameters that name objects, so that the
# generated requests reach real directories, users and groups, not only 404s.
cat >"$work/schemathesis.toml" <<TOML
[parameters]
"path.id" = "$directory_id"
"path.user_id" = "$user_id"
"path.group_id" = "$group_id"
"path.token_id" = "$token_id"
"query.directory" = "$directory_id"

[[operations]]
include-path-regex = '^/(api/v1/users|directory_users)/[{]id[}]\$'
parameters = { "path.id" = "$user_id" }

[[operations]]
include-path-regex = '^/(api/v1/groups|directory_groups)/[{]id[}]'
parameters = { "path.id" = "$group_id" }
TOML

# Three runs: what changes nothing lasting first, then deletions, then the
# admin keys' own routes, where a generated request may revoke or rotate the
# very key the run sends (every later answer is then a 401, which the
# document gives too).
st() {
    timeout 300 "$work/venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run \
        "$base/api/v1/openapi.json" \
        --url "$base" \
        --header "Authorization: Bearer $key" \
        --checks not_a_server_error,status_code_conformance,response_schema_conformance \
        --mode positive \
        --phases examples,coverage,fuzzing \
        --max-examples "$max_examples" \
        --workers 2 \
        --seed 1 \
        --generation-database none \
        --request-timeout 10 \
        --no-color \
        "$@" 2>&1 | tee -a "$work/schemathesis.log"
    local code=${PIPESTATUS[0]}
    [[ $code -eq 0 ]] || { echo "schemathesis: failed (exit $code)" >&2; exit "$code"; }
}
# schemathesis keeps a cache in the directory it runs from: the work directory.
cd "$work"
st --exclude-method DELETE --exclude-path-regex '^/api/v1/admin_keys/'
st --include-method DELETE --exclude-path-regex '^/api/v1/admin_keys/'
st --include-path-regex '^/api/v1/admin_keys/'
operations=$(sed -nE 's/^ *Tested: ([0-9]+)$/\1/p' "$work/schemathesis.log" | awk '{ n += $1 } END { print n + 0 }')
echo "schemathesis: $operations operations passed"
