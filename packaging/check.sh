#!/usr/bin/env bash
# Checks Roster's packaging without a container engine or systemd as PID 1:
#  1. `systemd-analyze verify` on packaging/roster.service (pointed at BINARY);
#  2. runs BINARY exactly as the container image does (Dockerfile): an
#     unprivileged user (uid 10001), packaging/container.toml through
#     ROSTER_CONFIG, the data in a volume directory that only that user owns,
#     the working directory on the volume, and the image's health command; then
#     stops it with the image's stop signal, starts it again on the same volume
#     and finds the data it wrote.
# Runs as root (to switch users). Usage: packaging/check.sh BINARY
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
binary="$(realpath "${1:?usage: packaging/check.sh BINARY}")"
uid=10001
checks=0
pass() {
    checks=$((checks + 1))
    echo "ok: $1"
}
fail() {
    echo "packaging: FAILED: $1" >&2
    exit 1
}

# The image must still be what this script imitates.
dockerfile="$root/Dockerfile"
grep -q -- "--uid $uid" "$dockerfile" || fail "the Dockerfile no longer creates uid $uid"
grep -q '^USER roster:roster' "$dockerfile" || fail "the Dockerfile no longer runs as roster"
grep -q '^VOLUME \["/data"\]' "$dockerfile" || fail "the Dockerfile no longer declares /data"
grep -q '^WORKDIR /data' "$dockerfile" || fail "the Dockerfile no longer works in /data"
grep -q '^ENV ROSTER_CONFIG=/etc/roster/roster.toml' "$dockerfile" || fail "the Dockerfile's ROSTER_CONFIG moved"
grep -q '^COPY packaging/container.toml /etc/roster/roster.toml' "$dockerfile" ||
    fail "the Dockerfile no longer installs packaging/container.toml"
grep -q 'CMD \["roster", "healthcheck"\]' "$dockerfile" || fail "the image's health check changed"
pass "Dockerfile matches what this check runs"

work="$(mktemp -d "${TMPDIR:-/tmp}/roster-packaging.XXXXXX")"
server=""
cleanup() {
    if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
        kill -KILL "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# 1. The systemd unit.
sed "s|/usr/local/bin/roster|$binary|" "$here/roster.service" >"$work/roster.service"
systemd-analyze verify "$work/roster.service" 2>&1 | tee "$work/verify.log"
if [[ -s "$work/verify.log" ]]; then
    fail "systemd-analyze verify reported problems"
fi
pass "systemd-analyze verify roster.service"

# 2. The image, without the engine.
chmod 0755 "$work"
volume="$work/data"
mkdir -p "$volume" "$work/etc/roster"
chown "$uid:$uid" "$volume"
chmod 0700 "$volume"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Tests listen on loopback only; the image's 0.0.0.0 differs in nothing else.
sed -e "s|/data/|$volume/|" -e "s|0\.0\.0\.0:8080|127.0.0.1:$port|" \
    "$here/container.toml" >"$work/etc/roster/roster.toml"
chmod 0644 "$work/etc/roster/roster.toml"
grep -q "$volume/roster.db" "$work/etc/roster/roster.toml" || fail "container.toml keeps no database on /data"

# The image's environment: its user, its working directory, its one variable.
image_env=(env -i PATH=/usr/bin:/bin HOME="$volume" ROSTER_CONFIG="$work/etc/roster/roster.toml"
    setpriv --reuid="$uid" --regid="$uid" --clear-groups)
as_image() {
    (cd "$volume" && exec "${image_env[@]}" "$@")
}

start() {
    # exec all the way down, so that $! is the server itself.
    (cd "$volume" && exec "${image_env[@]}" "$binary" serve) >>"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do
        if as_image "$binary" healthcheck >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/server.log" >&2
    fail "the server never became ready"
}

stop() {
    kill -TERM "$server"
    for _ in $(seq 1 100); do
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server" 2>/dev/null; then
        fail "the server did not stop within 10 s of SIGTERM"
    fi
    wait "$server" || fail "the server exited with status $? after SIGTERM"
    server=""
}

start
answer=$(as_image "$binary" healthcheck 2>&1) || fail "roster healthcheck: $answer"
pass "roster healthcheck as uid $uid: $answer"
[[ "$(stat -c %u "$volume/roster.db")" == "$uid" ]] || fail "roster.db is not owned by uid $uid"
pass "the database is on the volume, owned by uid $uid"
directory=$(as_image "$binary" directory create packaging-check --json)
id=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$directory")
stop
pass "SIGTERM stops the server cleanly"

start
as_image "$binary" directory list --json | grep -q "$id" || fail "the directory made before the restart is gone"
pass "a restart on the same volume keeps the data"
stop

echo "packaging: $checks checks passed"
