#!/usr/bin/env bash
# Drill: the kill switch on the local Discord sandbox, end to end, with timings.
#
#   bash ops/drills/killswitch.sh
#
# Runs on a fresh data folder with the embedded PostgreSQL, Redis and Discord sandbox (it unsets
# DATABASE_URL, REDIS_URL and DISCORD_*; nothing real is touched). Steps: an operator is added and
# enrolled, a community is queued for synthesis, the global kill switch is activated and a worker
# starts on the work; the drill proves the worker is held and no Discord call is granted, releases,
# and proves the work finishes with the guild exactly as planned (drift in sync, nothing duplicated).
set -euo pipefail
unset DATABASE_URL REDIS_URL DISCORD_API_BASE DISCORD_BOT_TOKEN VAULT_ADDR ARRAKIS_OPERATOR
export ARRAKIS_DATA_DIR="${ARRAKIS_DATA_DIR:-$(mktemp -d -t arrakis-killswitch-drill-XXXX)}"
export ARRAKIS_LOG_LEVEL=WARNING
worker_pid=""
cleanup() { if [ -n "$worker_pid" ]; then kill "$worker_pid" 2>/dev/null || true; wait "$worker_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }
granted() { arrakis bucket stats --json | json 'd["granted"]'; }

echo "1/7 data folder $ARRAKIS_DATA_DIR; schema"
arrakis db upgrade >/dev/null
echo "2/7 an operator with a second factor"
token=$(arrakis operators add drill-admin --role platform_admin --json | json 'd["enrolment_token"]')
codes=$(arrakis mfa enroll drill-admin --token "$token" --json | json '" ".join(d["backup_codes"])')
read -r -a code <<<"$codes"
echo "3/7 a Sietch community queued for synthesis"
cid=$(arrakis community create --name "Drill Sietch" --guild-id 1900000000000000001 --theme sietch --subscription premium \
      --json | json 'd["id"]')
arrakis synthesize "$cid" >/dev/null
before=$(granted)
echo "4/7 kill switch ON (global), then a worker starts on the queued work"
arrakis killswitch activate --scope global --reason "kill switch drill" --as drill-admin --code "${code[0]}"
arrakis worker >"$ARRAKIS_DATA_DIR/worker.log" 2>&1 &
worker_pid=$!
held=0
for _ in $(seq 1 60); do
  held=$(arrakis killswitch status --json | json 'len(d["held_calls"])')
  [ "$held" -gt 0 ] && break
  sleep 1
done
sleep 2
after=$(granted)
echo "5/7 while frozen: $held call(s) held, $((after - before)) Discord call(s) granted (must be 0)"
[ "$held" -gt 0 ] || { echo "drill FAILED: the worker never reached a Discord call"; exit 1; }
[ "$after" -eq "$before" ] || { echo "drill FAILED: Discord calls went out while frozen"; exit 1; }
arrakis killswitch status
echo "6/7 release"
arrakis killswitch release --scope global --as drill-admin --code "${code[1]}"
start=$(date +%s)
status=""
for _ in $(seq 1 120); do
  status=$(arrakis drift "$cid" --json | json 'd["status"]')
  [ "$status" = "in sync" ] && break
  sleep 1
done
echo "   work finished $(( $(date +%s) - start )) s after release; Discord calls in all: $(granted)"
echo "7/7 the guild against the plan"
arrakis drift "$cid"
[ "$status" = "in sync" ] || { echo "drill FAILED: drift is '$status' after release"; exit 1; }
echo "drill passed: nothing went out while frozen, the held work finished after release, nothing lost or duplicated"
