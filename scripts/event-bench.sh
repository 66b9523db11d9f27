#!/bin/bash
# Event-stream benchmark (docs/benchmarks.md, "Event stream and webhook delivery").
# usage: scripts/event-bench.sh LABEL ROSTER_BIN USERS HOOK(0|1) PORT RECEIVER_PORT [CONFIG_TOML_TEXT]
# On a fresh SQLite database, bulk-loads USERS users with scripts/bulk-bench.py
# (1 client, 1,000 operations per request). With HOOK=1, a webhook endpoint
# subscribed to dsync.user.created points at scripts/webhook-receiver.py, and
# the run waits (at most WAIT_SECS, default 30 min) until every created event has arrived.
# Prints the SCIM rate, the server's CPU per create, the load average, and
# when the first and last webhooks arrived, counted from the first request.
# CUSTOM_ATTRIBUTES, when set, is passed to `roster directory set-custom-attributes`.
# LOADGEN, when set to a roster-loadgen binary, receives with its native
# receiver instead (`roster-loadgen receiver`), answering after DELAY_MS
# (default 0) milliseconds. HOOK_ARGS is added to `roster webhook add`
# (e.g. "--max-in-flight 1" or "--batch-max-events 100 --batch-max-wait-ms 50").
# BACKLOG=1 measures delivery from a standing backlog: the load runs with
# webhooks off (ROSTER_WEBHOOKS_ENABLED=false), then the server restarts with
# them on, and the rate is every event over the time from that restart to the
# last delivery, so the load's own speed does not bound it.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
L=$1; BIN=$2; N=$3; HOOK=$4; PORT=$5; RPORT=$6; CFG=$7
D=$(mktemp -d /tmp/event-bench.XXXX)
DB=sqlite://$D/r.db
CARGS=""
if [ -n "$CFG" ]; then printf '%s\n' "$CFG" > $D/roster.toml; CARGS="--config $D/roster.toml"; fi
OUT=$($BIN $CARGS --database $DB directory create bench --json)
ID=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
TOK=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
if [ -n "$CUSTOM_ATTRIBUTES" ]; then
  # e.g. CUSTOM_ATTRIBUTES="--map department=urn:…:enterprise:2.0:User:department"
  $BIN $CARGS --database $DB directory set-custom-attributes $ID $CUSTOM_ATTRIBUTES > /dev/null
fi
if [ "$HOOK" = 1 ]; then
  if [ -n "$LOADGEN" ]; then
    $LOADGEN receiver --listen 127.0.0.1:$RPORT --status $D/status.json --delay-ms ${DELAY_MS:-0} & RP=$!
  else
    python3 $HERE/webhook-receiver.py $RPORT $D/status.json & RP=$!
  fi
  $BIN $CARGS --database $DB webhook add http://127.0.0.1:$RPORT/hook --events dsync.user.created --directory $ID $HOOK_ARGS --json > /dev/null
fi
HOOKS_DURING_LOAD=true
[ "$BACKLOG" = 1 ] && HOOKS_DURING_LOAD=false
ROSTER_WEBHOOKS_ENABLED=$HOOKS_DURING_LOAD ROSTER_LOG=warn $BIN $CARGS --database $DB serve --listen 127.0.0.1:$PORT > $D/serve.log 2>&1 &
SP=$!
for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:$PORT/ && break; sleep 0.1; done
LA=$(cut -d' ' -f1-3 /proc/loadavg)
C0=$(awk '{print $14+$15}' /proc/$SP/stat)
R=$(python3 $HERE/bulk-bench.py http://127.0.0.1:$PORT/scim/v2/$ID $TOK $N 1)
T1=$(date +%s.%N)
C1=$(awk '{print $14+$15}' /proc/$SP/stat)
MSG="$L users=$N hook=$HOOK load_at_start=[$LA] :: $R :: server CPU during load $(python3 -c "print(round(($C1-$C0)*10000/$N))") us/create"
if [ "$BACKLOG" = 1 ]; then
  kill $SP; wait $SP 2>/dev/null || true
  TB=$(date +%s.%N)
  ROSTER_LOG=warn $BIN $CARGS --database $DB serve --listen 127.0.0.1:$PORT >> $D/serve.log 2>&1 &
  SP=$!
  C0=$(awk '{print $14+$15}' /proc/$SP/stat)
fi
if [ "$HOOK" = 1 ]; then
  DEADLINE=$(( $(date +%s) + ${WAIT_SECS:-1800} ))
  while true; do
    C=$(python3 -c "import json; print(json.load(open('$D/status.json'))['created'])" 2>/dev/null || echo 0)
    [ "$C" -ge "$N" ] && break
    [ $(date +%s) -ge $DEADLINE ] && { echo "TIMEOUT with $C delivered"; break; }
    sleep 1
  done
  sleep 1
  C2=$(awk '{print $14+$15}' /proc/$SP/stat)
  MSG="$MSG :: $(python3 - "$D/status.json" "$T1" "$R" "${TB:-}" <<'PY'
import json, re, sys
st = json.load(open(sys.argv[1])); t1 = float(sys.argv[2])
if sys.argv[4]:
    # From a standing backlog: from the restart to the last delivery.
    tb = float(sys.argv[4]); last = st["last_created"] or tb
    print(f"delivered {st['created']} created (requests {st['requests']}, distinct ids {st['distinct_ids']}) "
          f"from a backlog in {last-tb:.1f}s after the restart: {st['created']/max(last-tb,1e-9):.0f} events/s")
    sys.exit(0)
# bulk-bench's clock starts at its first request: count from there.
t0 = t1 - float(re.search(r": ([0-9.]+)s = ", sys.argv[3]).group(1))
last = st["last_created"] or 0
print(f"delivered {st['created']} created (requests {st['requests']}, distinct ids {st['distinct_ids']}); "
      f"after the first request: first delivery at +{st['first']-t0:.1f}s, load done at +{t1-t0:.1f}s, "
      f"last delivery at +{last-t0:.1f}s ({last-t1:+.1f}s after the load); delivery rate {st['created']/max(last-st['first'],1e-9):.0f}/s")
PY
) :: server CPU load+delivery $(python3 -c "print(round(($C2-$C0)*10000/$N))") us/create :: load_at_end=[$(cut -d' ' -f1-3 /proc/loadavg)]"
  RC=$(awk '{print $14+$15}' /proc/$RP/stat)
  MSG="$MSG :: receiver CPU $(python3 -c "print(round($RC*10000/$N))") us/event"
  kill $RP 2>/dev/null || true
fi
kill $SP; wait $SP 2>/dev/null || true
echo "$MSG"
rm -rf $D
