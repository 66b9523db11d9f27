#!/usr/bin/env bash
# The official WorkOS SDKs against a live Roster: PyPI `workos` 10.x, npm
# `@workos-inc/node` 12.x on Node 22 (npm's `node` package) and 8.x on the
# machine's Node 20. Starts `roster serve` on a free loopback port with an
# admin key and directories, provisions users and groups over SCIM, and runs
# check.py and check.cjs, which walk every SDK call an app makes and verify
# real webhook deliveries with the SDKs' own functions.
#
# Usage: scripts/workos-sdk/run.sh --roster target/debug/roster
# Prints `workos-sdk: N checks passed`; any failure exits non-zero.
set -euo pipefail

PY_WORKOS=10.8.0 # also in requirements.txt
NODE_SDK_NEW=12.3.0
NODE_SDK_OLD=8.13.0
NODE_NEW=22.23.3 # npm's `node` package: the Node 22 that SDK 12 needs

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
roster=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --roster) roster=$(realpath "$2"); shift 2 ;;
    *) echo "usage: $0 --roster PATH" >&2; exit 2 ;;
    esac
done
[[ -x "$roster" ]] || { echo "workos-sdk: --roster must name the roster binary" >&2; exit 2; }

name=workos-sdk
# shellcheck source=../lib/live-roster.sh
source "$here/../lib/live-roster.sh"
live_init

echo "workos-sdk: installing workos==$PY_WORKOS, @workos-inc/node@$NODE_SDK_NEW with node@$NODE_NEW, @workos-inc/node@$NODE_SDK_OLD"
live_venv "$here/requirements.txt"
npm_install() {
    mkdir -p "$1"
    echo '{"private": true}' >"$1/package.json"
    (cd "$1" && timeout 300 npm install --silent --no-audit --no-fund --no-update-notifier "${@:2}")
}
npm_install "$work/node-new" "@workos-inc/node@$NODE_SDK_NEW" "node@$NODE_NEW"
npm_install "$work/node-old" "@workos-inc/node@$NODE_SDK_OLD"
node_new="$work/node-new/node_modules/.bin/node"
"$node_new" --version | grep -q '^v22\.' || { echo "workos-sdk: npm's node is not Node 22" >&2; exit 1; }
node --version | grep -q '^v20\.' || echo "workos-sdk: warning: the machine's node is $(node --version), not 20" >&2
# check.cjs resolves the SDK from where it sits.
cp "$here/check.cjs" "$work/node-new/" && cp "$here/check.cjs" "$work/node-old/"

dir_json() { cli directory create "$@" --json; }

main=$(dir_json sdk-main --organization org_sdk_main)
other=$(dir_json sdk-other --organization org_sdk_other | field id)
third=$(dir_json sdk-third | field id)
scratch_py=$(dir_json sdk-scratch-py | field id)
scratch_new=$(dir_json sdk-scratch-node-new | field id)
scratch_old=$(dir_json sdk-scratch-node-old | field id)
key=$(cli admin-key create workos-sdk --json | field key)

ROSTER_WEBHOOK_POLL_MS=50 ROSTER_LOG=info live_serve

export ROSTER_URL="$base" WORKOS_API_KEY="$key" ROSTER_BIN="$roster" ROSTER_DATABASE="$db"
export ROSTER_DIRECTORY=$(field id <<<"$main") ROSTER_ORGANIZATION=org_sdk_main
export ROSTER_OTHER_DIRECTORIES="$other,$third"
export ROSTER_SCIM_BASE="$ROSTER_URL$(field scim_base_path <<<"$main")" ROSTER_SCIM_TOKEN=$(field token <<<"$main")
export ROSTER_FIXTURE="$work/fixture.json"
timeout 60 python3 "$here/common.py" "$ROSTER_FIXTURE"

total=0
run_check() {
    local out
    out=$("$@" | tee /dev/stderr | sed -nE 's/^workos-sdk .*: ([0-9]+) checks passed$/\1/p')
    [[ -n "$out" ]] || { echo "workos-sdk: $* printed no summary" >&2; exit 1; }
    total=$((total + out))
}
ROSTER_SCRATCH_DIRECTORY=$scratch_py PYTHONPATH="$here" run_check timeout 300 "$work/venv/bin/python" "$here/check.py"
(cd "$work/node-new" && ROSTER_SCRATCH_DIRECTORY=$scratch_new WORKOS_NODE_MAJOR=12 \
    timeout 300 "$node_new" check.cjs) >"$work/node-new.out"
run_check cat "$work/node-new.out"
(cd "$work/node-old" && ROSTER_SCRATCH_DIRECTORY=$scratch_old WORKOS_NODE_MAJOR=8 \
    timeout 300 node check.cjs) >"$work/node-old.out"
run_check cat "$work/node-old.out"

echo "workos-sdk: $total checks passed"
