#!/usr/bin/env bash
# Database instances benchmark: time-to-ready with and without spares, memory (PSS) of idle
# instances and how many the machine holds, and GET /api/v1/instances latency with 10,000 rows.
# Writes the `instances` section of RESULTS.md. Measuring code: bench/instances.py (Python 3 +
# psycopg 3 from PyPI in bench/.venv, created on first run).
#
# Usage: bench/instances.sh [max-idle-instances]     (default 600)
#   IDLE_BUDGET=900   seconds the idle-capacity phase may spend creating (default 15 min)
#   IDLE_MIN_AVAIL_GIB=4  stop creating when MemAvailable falls below this (shared machine)
#   SKIP_CAPACITY=1   skip the idle-capacity phase
#   TTR_COUNT=20      creates per time-to-ready series
# Needs wrk, curl, jq, psql (apt-get install wrk jq postgresql-client) and runs as root (it reads
# /proc/<pid>/smaps_rollup of the postgres user's processes).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
max_idle=${1:-600}
idle_budget=${IDLE_BUDGET:-900}
ttr_count=${TTR_COUNT:-20}
idle_min_avail=${IDLE_MIN_AVAIL_GIB:-4}
for tool in wrk curl jq psql python3; do
  command -v "$tool" >/dev/null || { echo "install $tool" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run as root (PSS of the postgres user's processes)" >&2; exit 1; }

for attempt in 1 2 3; do
  (cd "$repo_root" && cargo build --release --bin berth) && break
  [[ $attempt == 3 ]] && exit 1
  echo "build failed (others build concurrently); retrying" >&2; sleep 20
done

build_rev="$(git -C "$repo_root" rev-parse --short HEAD)$(git -C "$repo_root" diff --quiet HEAD -- crates Cargo.lock 2>/dev/null || echo '+changes')"
venv=$bench_root/.venv
bench_venv "$venv"
py() { "$venv/bin/python" "$bench_root/instances.py" "$@"; }
psycopg_version=$("$venv/bin/python" -c 'import psycopg; print(psycopg.__version__, "libpq", psycopg.pq.version())')

# Short paths: each instance's socket lives in <data>/instances/<uuid>/run.
dir_spares=/tmp/berth-bi-s
dir_cold=/tmp/berth-bi-c
dir_idle=/tmp/berth-bi-i
conf=$(mktemp -d /tmp/berth-bi-conf.XXXXXX)
results=/tmp/berth-bi-results  # raw JSON and server logs of the last run, for a closer look
json='content-type: application/json'

# Stops the server (SIGTERM: with stop_on_shutdown it stops every instance first), bounded; then
# stops any postmaster this run's server left in DIR (by pid, checked against DIR) and removes DIR.
stop_bounded() {
  local dir=$1 limit=${2:-600} t0=$SECONDS
  if [[ -n ${SERVER_PID:-} ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    while kill -0 "$SERVER_PID" 2>/dev/null && ((SECONDS - t0 < limit)); do sleep 0.2; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "server did not stop in $limit s; killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
  STOP_SECS=$((SECONDS - t0))
  LEFTOVER=0
  local f pid
  for f in "$dir"/data/instances/*/pgdata/postmaster.pid "$dir"/data/system-pg/postmaster.pid; do
    [[ -f $f ]] || continue
    pid=$(head -1 "$f")
    if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/"; then
      LEFTOVER=$((LEFTOVER + 1))
      kill -QUIT "$pid" 2>/dev/null || true
    fi
  done
  ((LEFTOVER == 0)) || { echo "stopped $LEFTOVER postmaster(s) the server left running in $dir" >&2; sleep 2; }
}
cleanup() {
  local d
  [[ -n ${SERVER_PID:-} ]] && stop_bounded "${CURRENT_DIR:-/nonexistent}" 900
  for d in "$dir_spares" "$dir_cold" "$dir_idle"; do
    [[ -d $d ]] || continue
    stop_bounded "$d"
    rm -rf "$d"
  done
  rm -rf /tmp/berth-bi-bd
  mkdir -p "$results" && cp "$conf"/*.json "$conf"/server-*.log "$results"/ 2>/dev/null || true
  rm -rf "$conf"
}
trap cleanup EXIT

config() { # config NAME FIRST LAST SPARES
  cat >"$conf/$1.toml" <<TOML
[instances]
first_port = $2
last_port = $3
spares = $4
spare_memory = "256MB"
runners = 4
stop_on_shutdown = true
TOML
  echo "$conf/$1.toml"
}
token() { curl -sf -H "$json" -d "{\"username\":\"$1\",\"password\":\"$2\"}" "$B/api/v1/auth/token" | jq -r .access_token; }
project() { curl -sf -H "$json" -H "Authorization: Bearer $1" -d "{\"name\":\"$2\"}" "$B/api/v1/projects" | jq -r .id; }
log_problems() { # count of WARN/ERROR lines in a server log, and the distinct messages
  local n
  n=$(grep -cE '"level":"(WARN|ERROR)"' "$1" || true)
  echo "$n"
  grep -E '"level":"(WARN|ERROR)"' "$1" | jq -r '.fields.message + (if .fields.error then ": " + .fields.error else "" end)' 2>/dev/null \
    | sed -E 's/[0-9a-f]{8}-[0-9a-f-]{27}/<id>/g' | sort | uniq -c | sort -rn | head -5 >"$1.problems" || true
}
load_now() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------------------------------------
echo "== 1a. time-to-ready with spares (spares = 4)" >&2
cfg_spares=$(config spares 30000 30499 4)
CURRENT_DIR=$dir_spares
start_server 18093 "$dir_spares" --config "$cfg_spares"
ACCESS=$(token admin "$PW")
P=$(project "$ACCESS" ttr-spares)
curl -sf "$B/api/v1/ca.pem" >"$conf/ca.pem"
py ttr --base "$B" --password "$PW" --project "$P" --ca "$conf/ca.pem" --count "$ttr_count" --prefix spare \
  --spares 4 --sysdb "$dir_spares/data/run" --pool-timeout 120 --settle 0.5 --warmup >"$conf/ttr-spares.json"
py cleanup --base "$B" --password "$PW" --project "$P" >"$conf/cleanup-spares.json"
stop_bounded "$dir_spares" 300
spares_stop=$STOP_SECS spares_leftover=$LEFTOVER
spares_problems=$(log_problems "$dir_spares/server.log")
cp "$dir_spares/server.log" "$conf/server-spares.log"; cp "$dir_spares/server.log.problems" "$conf/problems-spares" 2>/dev/null || true
rm -rf "$dir_spares"

# ---------------------------------------------------------------------------------------------
echo "== 1b. time-to-ready without spares (spares = 0)" >&2
cfg_cold=$(config cold 31000 31999 0)
CURRENT_DIR=$dir_cold
start_server 18094 "$dir_cold" --config "$cfg_cold"
ACCESS=$(token admin "$PW")
P=$(project "$ACCESS" ttr-cold)
curl -sf "$B/api/v1/ca.pem" >"$conf/ca.pem"
py ttr --base "$B" --password "$PW" --project "$P" --ca "$conf/ca.pem" --count "$ttr_count" --prefix cold \
  --settle 0.5 --warmup >"$conf/ttr-cold.json"
py cleanup --base "$B" --password "$PW" --project "$P" >"$conf/cleanup-cold.json"

echo "== 1c. the cold path's steps, by hand" >&2
py breakdown --data-dir "$dir_cold/data" --scratch /tmp/berth-bi-bd --port 31999 --reps 6 >"$conf/breakdown.json"
rm -rf /tmp/berth-bi-bd

# ---------------------------------------------------------------------------------------------
echo "== 3. GET /api/v1/instances with 10,000 rows" >&2
ACCESS=$(token admin "$PW")
P2=$(project "$ACCESS" bulk)
MEMBER_PW="member-password-$RANDOM$RANDOM"
MEMBER_ID=$(curl -sf -H "$json" -H "Authorization: Bearer $ACCESS" \
  -d "{\"username\":\"bench-member\",\"email\":\"member@example.com\",\"password\":\"$MEMBER_PW\"}" "$B/api/v1/users" | jq -r .id)
curl -sf -X PUT -H "$json" -H "Authorization: Bearer $ACCESS" -d '{"role":"member"}' \
  "$B/api/v1/projects/$P2/members/$MEMBER_ID" >/dev/null
psql -h "$dir_cold/data/run" -p 5432 -U postgres -XAtq berth >/dev/null <<SQL
INSERT INTO instances (id, project_id, name, engine, version, region, memory, storage, status,
                       desired_state, port, owner_username, database_name, created_at, updated_at)
SELECT gen_random_uuid(), '$P2', 'bulk-' || g, 'postgres', '15', 'local', '256MB', '10GB', 'paused',
       'paused', NULL, 'app', 'app', now() - (10000 - g) * interval '1 second', now()
FROM generate_series(1, 10000) g;
ANALYZE instances;
SQL
rows=$(psql -h "$dir_cold/data/run" -p 5432 -U postgres -XAtqc "SELECT count(*) FROM instances WHERE deleted_at IS NULL" berth)
MEMBER=$(token bench-member "$MEMBER_PW")
ACCESS=$(token admin "$PW")
# Sanity: each query answers 200 with the expected count.
check() { curl -sf -H "Authorization: Bearer $1" "$B$2" | jq -r '"\(.count) rows, \(.results | length) on the page"'; }
api_rows=()
run_list() { # run_list LABEL TOKEN PATH
  local label=$1 tok=$2 path=$3 out sanity
  sanity=$(check "$tok" "$path")
  out=$(wrk -t2 -c16 -d10s --latency -H "Authorization: Bearer $tok" "$B$path")
  read -r rps p50 p99 <<<"$(wrk_summary "$out")"
  local errs
  errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ' ' || true)
  api_rows+=("| $label | \`$path\` | $sanity | $rps | $p50 | $p99 | ${errs:-none} |")
  echo "  $label $path: $rps req/s p50 $p50 p99 $p99 ($sanity) $errs" >&2
}
run_list "admin" "$ACCESS" "/api/v1/instances?limit=50"
run_list "admin" "$ACCESS" "/api/v1/instances?limit=50&offset=9950"
run_list "admin" "$ACCESS" "/api/v1/instances?project_id=$P2&status=paused&limit=50"
run_list "member of the project" "$MEMBER" "/api/v1/instances?limit=50"
run_list "member of the project" "$MEMBER" "/api/v1/instances?limit=50&offset=9950"
run_list "member of the project" "$MEMBER" "/api/v1/instances?project_id=$P2&status=paused&limit=50"
# Where the list's time goes inside PostgreSQL: the plans of the queries behind it.
explain_rows=()
explain() { # explain LABEL SQL
  local plan nodes t
  plan=$(psql -h "$dir_cold/data/run" -p 5432 -U postgres -XAtq -c "EXPLAIN (ANALYZE, COSTS OFF) $2" berth)
  t=$(awk '/Execution Time/ {print $3 " ms"}' <<<"$plan")
  nodes=$(grep -vE 'Time:|Filter|Sort Key|Presorted Key|Memory|Heap|Buffers|Index Cond|Rows Removed|Workers|Full-sort' <<<"$plan" \
    | sed -E 's/^ *(-> *)?//; s/ *\(actual.*//; s/ on instances.*//; s/ using ([a-z_]+).*/ (\1)/' | paste -sd '>' | sed 's/>/ → /g')
  explain_rows+=("| $1 | $nodes | $t |")
}
explain "admin, first page" "SELECT * FROM instances WHERE deleted_at IS NULL ORDER BY created_at, id LIMIT 50 OFFSET 0"
explain "admin, last page" "SELECT * FROM instances WHERE deleted_at IS NULL ORDER BY created_at, id LIMIT 50 OFFSET 9950"
explain "admin, count" "SELECT count(*) FROM instances WHERE deleted_at IS NULL"
explain "member, first page" "SELECT * FROM instances WHERE deleted_at IS NULL AND project_id = ANY('{$P2}'::uuid[]) ORDER BY created_at, id LIMIT 50 OFFSET 0"
explain "member, count" "SELECT count(*) FROM instances WHERE deleted_at IS NULL AND project_id = ANY('{$P2}'::uuid[])"
explain "project + status filter, first page" "SELECT * FROM instances WHERE deleted_at IS NULL AND project_id = ANY('{$P2}'::uuid[]) AND project_id = '$P2' AND status = 'paused' ORDER BY created_at, id LIMIT 50 OFFSET 0"
stop_bounded "$dir_cold" 300
cold_stop=$STOP_SECS cold_leftover=$LEFTOVER
cold_problems=$(log_problems "$dir_cold/server.log")
cp "$dir_cold/server.log" "$conf/server-cold.log"; cp "$dir_cold/server.log.problems" "$conf/problems-cold" 2>/dev/null || true
rm -rf "$dir_cold"

# ---------------------------------------------------------------------------------------------
limits="ulimit -n $(ulimit -n), ulimit -u $(ulimit -u), kernel.pid_max $(sysctl -n kernel.pid_max), kernel.shmmni $(sysctl -n kernel.shmmni), kernel.shmall $(sysctl -n kernel.shmall), /dev/shm $(df -h --output=size /dev/shm | tail -1 | tr -d ' '), vm.overcommit_memory $(sysctl -n vm.overcommit_memory), vm.max_map_count $(sysctl -n vm.max_map_count)"
if [[ -z ${SKIP_CAPACITY:-} ]]; then
  echo "== 2. idle instances: create until something gives (max $max_idle, budget $idle_budget s)" >&2
  free_before=$(free -m)
  cfg_idle=$(config idle 31000 31999 0)
  CURRENT_DIR=$dir_idle
  start_server 18094 "$dir_idle" --config "$cfg_idle"
  ACCESS=$(token admin "$PW")
  P3=$(project "$ACCESS" idle)
  py capacity --base "$B" --password "$PW" --project "$P3" --data-dir "$dir_idle/data" \
    --berth-pid "$SERVER_PID" --max "$max_idle" --budget "$idle_budget" --min-avail-gib "$idle_min_avail" \
    --min-disk-gib 15 --concurrency 4 --samples 10,100,250,500 --idle-wait 10 >"$conf/capacity.json"
  free_during=$(free -m)
  berth_fds=$(ls /proc/"$SERVER_PID"/fd | wc -l)
  berth_threads=$(awk '/Threads/ {print $2}' /proc/"$SERVER_PID"/status)
  # What Berth's descriptors are (pidfd, socket, file, …).
  berth_fd_kinds=$(for f in /proc/"$SERVER_PID"/fd/*; do readlink "$f"; done 2>/dev/null \
    | sed -E 's/:\[[0-9]+\]$//; s#^/.*#file#; s/^anon_inode://' | sort | uniq -c | sort -rn | awk '{printf "%s%s %s", (NR>1?", ":""), $1, $2}')
  idle_problems_before_stop=$(log_problems "$dir_idle/server.log")
  repairs_before_stop=$(grep -c 'postgres is not running; repairing' "$dir_idle/server.log" || true)
  echo "  stopping the server (stop_on_shutdown stops every instance)" >&2
  stop_bounded "$dir_idle" 900
  idle_stop=$STOP_SECS idle_leftover=$LEFTOVER
  idle_problems=$(log_problems "$dir_idle/server.log")
  repairs_during_stop=$(( $(grep -c 'postgres is not running; repairing' "$dir_idle/server.log" || true) - repairs_before_stop ))
  cp "$dir_idle/server.log" "$conf/server-idle.log"; cp "$dir_idle/server.log.problems" "$conf/problems-idle" 2>/dev/null || true
  rm -rf "$dir_idle"
  sleep 2
  free_after=$(free -m)
fi

# ---------------------------------------------------------------------------------------------
mb() { jq -r "$2 | if . == null then \"–\" else (. * 10 | round / 10 | tostring) + \" MB\" end" "$1"; }
ms() { jq -r "$2 | if . == null then \"–\" else (. * 10 | round / 10 | tostring) + \" ms\" end" "$1"; }
n() { jq -r "$2" "$1"; }
S=$conf/ttr-spares.json C=$conf/ttr-cold.json BD=$conf/breakdown.json
goal_spares=$(jq -r 'if .ready_ms.p50 <= 200 then "met" else "NOT met" end' "$S")
goal_cold=$(jq -r 'if .ready_ms.p50 <= 1500 then "met" else "NOT met" end' "$C")

out=$(mktemp)
cat >"$out" <<MD
## Database instances (bench/instances.sh)

Measured $(date -u +%Y-%m-%d) on $(machine_description). Release build of
$build_rev, \`BERTH_LOG=warn\`,
PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'), Berth's own PostgreSQL in the data directory (on
the same disk, ext4, no reflink), one server at a time. The machine is shared: other sessions'
builds and test suites ran at the same time (1-minute load average at each create:
spares $(jq -r '[.load[] | split(" ")[0] | tonumber] | "\(min)–\(max)"' "$S"), cold $(jq -r '[.load[] | split(" ")[0] | tonumber] | "\(min)–\(max)"' "$C")), so figures are noisier than on an idle machine.
Server config (\`--config\`): \`[instances] spares = 4 (with spares) / 0 (cold), spare_memory = "256MB",
runners = 4, stop_on_shutdown = true\`, ports 30000–30499 / 31000–31999. Every create is
\`{"engine": "postgres", "version": "15", "region": "local", "memory": "256MB"}\`.

### Time to ready

From just before the \`POST /api/v1/instances\` is sent (on an open keep-alive HTTP connection) to
the end of the first successful \`SELECT 1\` over \`sslmode=verify-full\` with Berth's CA and the
returned password (psycopg $psycopg_version). After the 202 the client tries to connect in a loop,
sleeping 5 ms after each failed attempt; it never polls the API. $ttr_count creates one after another,
after one warm-up create that is not counted; 0.5 s between creates, and with spares also until
all 4 spares were ready again (\`SELECT count(*) FROM spares WHERE state = 'ready'\` on the system
database). Goal: p50 ≤ 200 ms with spares (**$goal_spares**), ≤ 1.5 s cold (**$goal_cold**).

| | p50 | p95 | max | min | POST answered (p50) | connect attempts (p50 / max) | job queued (p50) | job ran (p50) |
|---|---|---|---|---|---|---|---|---|
| with spares (4) | $(ms "$S" .ready_ms.p50) | $(ms "$S" .ready_ms.p95) | $(ms "$S" .ready_ms.max) | $(ms "$S" .ready_ms.min) | $(ms "$S" .post_ms.p50) | $(n "$S" .attempts.p50) / $(n "$S" .attempts.max) | $(ms "$S" .job_queue_ms.p50) | $(ms "$S" .job_run_ms.p50) |
| without spares (cold) | $(ms "$C" .ready_ms.p50) | $(ms "$C" .ready_ms.p95) | $(ms "$C" .ready_ms.max) | $(ms "$C" .ready_ms.min) | $(ms "$C" .post_ms.p50) | $(n "$C" .attempts.p50) / $(n "$C" .attempts.max) | $(ms "$C" .job_queue_ms.p50) | $(ms "$C" .job_run_ms.p50) |

- Warm-up creates (not counted): with spares $(ms "$S" .warmup.ready_ms); cold $(ms "$C" .warmup.ready_ms)
  (the first cold create also builds the version's template cluster with \`initdb\`; with spares
  the spare keeper had built it before).
- Client cost included in the figures: one connect + \`SELECT 1\` + close from this client to a
  running instance costs p50 $(ms "$S" .connect_ms.p50) / p95 $(ms "$S" .connect_ms.p95) (50 in a row; TLS 1.3 handshake, SCRAM-SHA-256,
  backend fork); through \`psql\` as a subprocess it costs p50 $(ms "$S" .psql_connect_ms.p50). Because the client retries,
  the credentials became valid between the end of the last failed attempt and the end of the
  successful one: the lower bound (end of the last failed attempt, or the 202 when the first
  attempt succeeded) is p50 $(ms "$S" .ready_lower_bound_ms.p50) with spares and $(ms "$C" .ready_lower_bound_ms.p50) cold.
- "job queued" is the job's \`started_at − created_at\`, "job ran" its \`finished_at − started_at\`
  (from \`GET /api/v1/jobs/{id}\`, read after the measurement). The job finished p50
  $(ms "$S" .job_finished_after_post_ms.p50) (spares) / $(ms "$C" .job_finished_after_post_ms.p50) (cold) after the POST was sent, so the instance
  accepts its owner a little before its status says \`running\`.
- All $((2 * ttr_count)) create jobs succeeded: $(jq -s -r 'if (.[0].jobs_failed + .[1].jobs_failed) == [] then "yes" else "no: " + ((.[0].jobs_failed + .[1].jobs_failed) | join(", ")) end' "$S" "$C"). After each create the pool was full again
  p50 $(jq -r '.pool_wait_s.p50 * 10 | round / 10' "$S") s after the 0.5 s pause (the keeper adds at most one spare per version per
  second), so every measured create found a ready spare; a burst of more creates than spares,
  not measured here, takes the cold path for the rest.

Where a cold create spends its time, repeating its steps by hand on a copy of the template
(6 rounds, the \`CREATE DATABASE\` alternately with the default strategy and with \`FILE_COPY\`, as
the postgres user, while the server was idle):

| step | p50 | max |
|---|---|---|
| \`cp -a --reflink=auto\` of the template ($(n "$BD" .template_mb) MB) | $(ms "$BD" .cp.p50) | $(ms "$BD" .cp.max) |
| \`postgres\` start until \`postmaster.pid\` says ready | $(ms "$BD" .start.p50) | $(ms "$BD" .start.max) |
| \`CREATE ROLE …\` (done once, in the template) | $(ms "$BD" .role.p50) | $(ms "$BD" .role.max) |
| \`CREATE DATABASE app OWNER app\` (default strategy; Berth now makes the database once, in the template, so creates skip this) | $(ms "$BD" .createdb.p50) | $(ms "$BD" .createdb.max) |
| the same with \`STRATEGY FILE_COPY\` (for comparison) | $(ms "$BD" .createdb_file_copy.p50) | $(ms "$BD" .createdb_file_copy.max) |
| fast shutdown (SIGINT) | $(ms "$BD" .stop.p50) | $(ms "$BD" .stop.max) |

The same rounds also read \`Shmem\` in /proc/meminfo (one instance at a time, so other processes
add noise): starting the server made $(mb "$BD" .shmem_start_mb.p50) of shared memory resident (p50), the
default \`CREATE DATABASE\` another $(mb "$BD" .shmem_createdb_mb.p50), \`FILE_COPY\` $(mb "$BD" .shmem_createdb_file_copy_mb.p50). Shared buffers
touched by a backend that has exited stay resident but appear in no live process's PSS.
MD

if [[ -z ${SKIP_CAPACITY:-} ]]; then
  K=$conf/capacity.json
  last=$(jq '.samples | last' "$K")
  sample_rows=$(jq -r '.samples[] | "| \(.running) | \(.pss_per_instance_mb.mean) MB (median \(.pss_per_instance_mb.median), max \(.pss_per_instance_mb.max)) | \(.pss_anon_mean_mb) / \(.pss_file_mean_mb) / \(.pss_shmem_mean_mb) MB | \(.rss_mean_mb) MB | \(.pss_total_mb) MB | \(.processes_per_instance) | \(.berth_pss_mb) MB | \(.mem_available_mb | floor) MB | \(.page_tables_mb) MB | \(.load) |"' "$K")
  per=$(jq -r '.pss_per_instance_mb.mean' <<<"$last")
  fit=$(jq -r --argjson per "$per" -n '24 * 1024 / $per | floor')
  count=$(jq -r '.posted' "$K")
  per_inst='def per(a; b): (((.samples | last | a) - b) / (.samples | last | .instances)) * 100 | round / 100; per'
  avail_per=$(jq -r '((.mem_available_before_mb - (.samples | last | .mem_available_mb)) / (.samples | last | .instances)) * 100 | round / 100' "$K")
  cat >>"$out" <<MD

### Idle instances: memory and how many fit

A server with no spares creates 256MB instances ($(jq -r '.posted' "$K") created, 4 in flight at a time)
until something gives: a create refused, a job failed, MemAvailable below ${idle_min_avail} GiB or free disk
below 15 GiB (safety stops on this shared machine), the server gone, a time budget of
${idle_budget} s, or the maximum of ${max_idle}. PSS is summed over each instance's postmaster and its
children (\`/proc/<pid>/smaps_rollup\`, postmasters from \`pgdata/postmaster.pid\`), 10 s after the
creates of each step settled; the instances are idle (nobody connected). Goal: about 12 MB per
idle small instance, ≥ 500 on this machine.

**Count reached: $count. What gave: $(jq -r .gave "$K").** Failed instances: $(jq -r '.failed' "$K")$(jq -r 'if .failures == [] then "" else " (" + (.failures | map(.name + ": " + .status_message) | join("; ")) + ")" end' "$K").
It took $(jq -r .elapsed_s "$K") s; the median create job ran $(jq -r '.create_job_run_ms_median | to_entries | map("\(.value) ms (\(.key))") | join(", ")' "$K").

| instances running | PSS per instance | of which anon / file / shmem | RSS per instance | PSS of all instances | processes per instance | Berth's PSS | MemAvailable | page tables | load |
|---|---|---|---|---|---|---|---|---|---|
$sample_rows

- At the last sample: **$per MB PSS per idle instance** (by PSS, $fit would fill 24 GiB). PSS is
  not the whole cost: MemAvailable fell by **$avail_per MB per instance** from before the first
  create to the last sample (the shared machine's other work is in that too). Of that, \`Shmem\`
  grew by $(jq -r "$per_inst(.shmem_mb; .shmem_before_mb)" "$K") MB per instance while PSS shows only $(jq -r '.samples | last | .pss_shmem_mean_mb' <<<"$(cat "$K")") MB of shared memory per
  instance: the rest is shared buffers touched by backends that have since exited (the template's
  own database is copied, not created, so creates no longer add \`CREATE DATABASE\`'s share); page tables grew by
  $(jq -r "$per_inst(.page_tables_mb; .page_tables_before_mb)" "$K") MB and slab by $(jq -r "$per_inst(.slab_mb; .slab_before_mb)" "$K") MB per instance. At $avail_per MB each, the
  $(jq -r .mem_available_before_mb "$K") MB available before the run hold about $(jq -r --argjson per "$avail_per" '.mem_available_before_mb / $per | floor' "$K") idle instances.
- Disk per instance: $(jq -r '.disk_per_instance_mb' "$K") MB (the template copy plus the \`app\` database); free disk
  went from $(jq -r .disk_free_before_gib "$K") to $(jq -r .disk_free_after_gib "$K") GiB.
- Limits: $limits. At the end Berth held $berth_fds file descriptors ($berth_fd_kinds) and
  $berth_threads threads; the instances had $(jq -r '.samples | last | .processes_total' "$K") postgres processes.
- Stopping the server with SIGTERM (\`stop_on_shutdown = true\`, every instance stopped at once) took ${idle_stop} s; postmasters left running after Berth exited: ${idle_leftover}$( ((idle_leftover > 0)) && echo " (the script
  stopped them)"); repair jobs the supervisor started while Berth was stopping instances: ${repairs_during_stop}.
- Server log during this phase: ${idle_problems_before_stop} WARN/ERROR lines before the stop, ${idle_problems} in all$( [[ -s $conf/problems-idle ]] && { echo ":"; sed 's/^ */  - /' "$conf/problems-idle"; } || echo ".")

\`free -m\` before the first create, with all instances running, and after stopping them:

\`\`\`
$free_before

$free_during

$free_after
\`\`\`
MD
fi

cat >>"$out" <<MD

### \`GET /api/v1/instances\` with 10,000 rows

10,000 rows inserted directly into the system database's \`instances\` table (status \`paused\`,
port NULL, one project, distinct names, \`created_at\` one second apart), then \`ANALYZE\`; $rows live
rows in all. wrk, 2 threads, 16 connections, 10 s per row, \`Authorization: Bearer\` JWT. The
"member" is a non-admin user with role \`member\` in that project (the list is then filtered by
membership: \`project_id = ANY(…)\`).

| caller | request | answer | requests/s | p50 | p99 | errors |
|---|---|---|---|---|---|---|
$(printf '%s\n' "${api_rows[@]}")

Every list request runs a \`count(*)\` over its filter and then the page query
(\`ORDER BY created_at, id LIMIT … OFFSET …\`). Their plans with the 10,000 rows
(\`EXPLAIN ANALYZE\` on the system database, one run each):

| query | plan | execution time |
|---|---|---|
$(printf '%s\n' "${explain_rows[@]}")

### Server logs

WARN/ERROR lines: with spares ${spares_problems}, cold + list ${cold_problems}$( [[ -s $conf/problems-spares ]] && { echo ". With spares:"; sed 's/^ */  - /' "$conf/problems-spares"; } ; [[ -s $conf/problems-cold ]] && { echo "Cold + list:"; sed 's/^ */  - /' "$conf/problems-cold"; } )

Stopping each server with SIGTERM: spares server ${spares_stop} s (postmasters left running: ${spares_leftover}), cold server ${cold_stop} s (left: ${cold_leftover}).
MD
write_section instances "$out"
rm -f "$out"
sed -n '/<!-- instances:start -->/,/<!-- instances:end -->/p' "$bench_root/RESULTS.md"
