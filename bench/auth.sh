#!/usr/bin/env bash
# Authentication benchmark: throughput and latency of GET /api/v1/auth/check with a JWT and with
# an API key, login latency, and reads during a login storm. Writes its section of RESULTS.md.
# Usage: bench/auth.sh [duration-seconds]   (needs wrk, curl, jq: apt-get install wrk jq)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
duration=${1:-15}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
(cd "$repo_root" && cargo build --release --bin berth)

dir=/tmp/berth-bench-auth
# No instances are measured here: no spares, and nothing left running afterwards.
mkdir -p "$dir.cfg"
printf '[instances]\nspares = 0\nstop_on_shutdown = true\n' >"$dir.cfg/berth.toml"
start_server 18100 "$dir" --config "$dir.cfg/berth.toml"
trap stop_server EXIT
json='content-type: application/json'

ACCESS=$(curl -sf -H "$json" -d "{\"username\":\"admin\",\"password\":\"$PW\"}" "$B/api/v1/auth/token" | jq -r .access_token)
KEY=$(curl -sf -H "$json" -H "Authorization: Bearer $ACCESS" -d '{"name":"bench"}' "$B/api/v1/auth/api-keys" | jq -r .api_key)
STORM_PW="storm-password-$RANDOM$RANDOM"
curl -sf -H "$json" -H "Authorization: Bearer $ACCESS" \
  -d "{\"username\":\"storm\",\"email\":\"storm@example.com\",\"password\":\"$STORM_PW\"}" "$B/api/v1/users" >/dev/null

run_wrk() { wrk -t2 -c"$1" -d"${duration}s" --latency -H "Authorization: $2" "$B/api/v1/auth/check"; }

echo "== JWT" >&2;     jwt=$(run_wrk 64 "Bearer $ACCESS");   read -r jwt_rps jwt_p50 jwt_p99 <<<"$(wrk_summary "$jwt")"
echo "== API key" >&2; key=$(run_wrk 64 "Api-Key $KEY");    read -r key_rps key_p50 key_p99 <<<"$(wrk_summary "$key")"

# Login latency, one at a time (the cost of one argon2id verification plus the round trip).
echo "== logins" >&2
times=()
for _ in $(seq 1 40); do
  times+=("$(curl -s -o /dev/null -w '%{time_total}' -H "$json" -d "{\"username\":\"storm\",\"password\":\"$STORM_PW\"}" "$B/api/v1/auth/token")")
done
read -r login_p50 login_p99 <<<"$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1fms %.1fms\n", a[int(NR*0.5+0.5)]*1000, a[int(NR*0.99+0.5)]*1000}')"

# Reads while 32 clients log in as fast as they can.
echo "== reads during a login storm" >&2
lua=$(mktemp --suffix .lua)
cat >"$lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"storm","password":"$STORM_PW"}'
LUA
storm_secs=$((duration + 6))
wrk -t1 -c32 -d"${storm_secs}s" --latency -s "$lua" "$B/api/v1/auth/token" >"$dir/storm.txt" &
storm_pid=$!
sleep 3
during=$(wrk -t1 -c16 -d"${duration}s" --latency -H "Authorization: Bearer $ACCESS" "$B/api/v1/auth/check")
read -r during_rps during_p50 during_p99 <<<"$(wrk_summary "$during")"
wait "$storm_pid"
read -r storm_rps storm_p50 storm_p99 <<<"$(wrk_summary "$(cat "$dir/storm.txt")")"
rm -f "$lua"

out=$(mktemp)
cat >"$out" <<MD
## Authentication (bench/auth.sh)

Measured $(date -u +%Y-%m-%d) on $(machine_description). Release build, \`BERTH_LOG=warn\`,
wrk ${duration} s runs. Goal: ≥ 20,000 authenticated requests/s with p99 ≤ 10 ms for both
credential types; reads keep p99 ≤ 50 ms during a login storm.

| measurement | requests/s | p50 | p99 |
|---|---|---|---|
| \`GET /api/v1/auth/check\`, JWT (64 connections) | $jwt_rps | $jwt_p50 | $jwt_p99 |
| \`GET /api/v1/auth/check\`, API key (64 connections) | $key_rps | $key_p50 | $key_p99 |
| login (\`POST /api/v1/auth/token\`), one at a time | – | $login_p50 | $login_p99 |
| login storm (32 connections) | $storm_rps | $storm_p50 | $storm_p99 |
| JWT reads during the storm (16 connections) | $during_rps | $during_p50 | $during_p99 |

Logins verify an argon2id hash (m=19 MiB, t=2, p=1, OWASP) on a pool bounded to half the cores,
so a storm queues there while reads keep the other core.
MD
write_section auth "$out"
rm -f "$out"
cat "$bench_root/RESULTS.md"
