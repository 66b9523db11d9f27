# Shared start-up for the scripts that run a client against a live Roster
# (scripts/schemathesis/run.sh, scripts/workos-sdk/run.sh). Source it after
# setting `name` (the prefix of every message) and `roster` (the binary):
#
#   live_init             a work directory and an exit trap that stops the
#                         server and prints its log's tail on failure
#   live_venv REQS        a virtualenv in $work/venv with REQS installed
#   cli ARGS…             the roster CLI on the work database ($db)
#   field KEY             KEY of the JSON object on stdin
#   live_serve ARGS…      `roster serve` on a free loopback port with ARGS;
#                         sets server_pid and base once the port answers
#
# Environment for the server goes before live_serve on the same line.

live_init() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/roster-$name.XXXXXX")
    db="sqlite://$work/roster.db"
    server_pid=""
    trap live_cleanup EXIT
}

live_cleanup() {
    local code=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ $code -ne 0 && -f "$work/serve.log" ]]; then
        echo "$name: FAILED; roster serve log (last 40 lines):" >&2
        tail -40 "$work/serve.log" >&2
    fi
    rm -rf "$work"
    exit "$code"
}

live_venv() {
    python3 -m venv "$work/venv"
    timeout 300 "$work/venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "$1"
}

cli() { timeout 60 "$roster" --database "$db" "$@" </dev/null; }

field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

live_serve() {
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    NO_COLOR=1 "$roster" serve --listen "127.0.0.1:$port" --database "$db" "$@" </dev/null >"$work/serve.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 150); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        kill -0 "$server_pid" 2>/dev/null || { echo "$name: roster serve exited" >&2; exit 1; }
        sleep 0.2
    done
    base="http://127.0.0.1:$port"
}
