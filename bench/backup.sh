#!/usr/bin/env bash
# Backups benchmark, on a database of about 1 GB written by `pgbench -i -s 70` in a Berth
# instance:
#   1. backup throughput: a full backup through the API (MB/s, and the wall time of the job);
#   2. restore: from that backup, to a point in time, and a clone, each from POST to a running
#      instance answering `SELECT 1` over TLS with its new password (MB/s = size / that time);
#   3. recovery point under a steady write load (a commit every 20 ms for 30 s), and again while
#      pgbench runs flat out: the lag from each commit until pg_stat_archiver says the WAL segment
#      holding it is archived (p50/p99/max);
#   4. creates with spares, archiving on: 20 in a row, POST to `running` and a first SELECT 1.
# Writes the `backups` section of RESULTS.md. The measuring code is the Python program at the end
# of this file (Python 3 + psycopg 3 from PyPI, in a venv under /tmp made on first run).
#
# Usage: bench/backup.sh
#   SCALE=70            pgbench scale factor (70 ≈ 1 GB)
#   RPO_SECONDS=30      length of each write-load run
#   TTR_COUNT=20        creates with spares
#   BENCH_BUDGET=3600   the whole run is stopped after this many seconds
#   BERTH_BIN=…         measure this binary instead of building target/release/berth
#   BENCH_VENV=…        the venv with psycopg (default /tmp/berth-bench-venv; kept between runs)
# Needs curl, jq, psql, python3 (with venv) and pgbench (postgresql-contrib /
# postgresql-15 on Debian: /usr/lib/postgresql/15/bin/pgbench), pgBackRest (scripts/prereqs.sh),
# about 12 GB free under /tmp. Runs on loopback only.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
scale=${SCALE:-70}
rpo_seconds=${RPO_SECONDS:-30}
ttr_count=${TTR_COUNT:-20}
budget=${BENCH_BUDGET:-3600}
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
venv=${BENCH_VENV:-/tmp/berth-bench-venv}
for tool in curl jq psql python3 pgbackrest; do
  command -v "$tool" >/dev/null || { echo "install $tool" >&2; exit 1; }
done
[[ -x $pgbin/pgbench ]] || { echo "no pgbench at $pgbin/pgbench (set PGBIN)" >&2; exit 1; }
free_gib=$(df -P --block-size=1G /tmp | awk 'NR == 2 {print $4}')
((free_gib >= 12)) || { echo "need about 12 GB free under /tmp (have $free_gib GB)" >&2; exit 1; }

if [[ -z ${BERTH_BIN:-} ]]; then
  for attempt in 1 2 3; do
    (cd "$repo_root" && cargo build --release --bin berth) && break
    [[ $attempt == 3 ]] && exit 1
    echo "build failed (others build concurrently); retrying" >&2; sleep 20
  done
  build_rev="$(git -C "$repo_root" rev-parse --short HEAD)$(git -C "$repo_root" diff --quiet HEAD -- crates Cargo.lock 2>/dev/null || echo '+changes')"
else
  build_rev="\`$BERTH_BIN\`"
fi
bench_venv "$venv"
psycopg_version=$("$venv/bin/python" -c 'import psycopg; print(psycopg.__version__, "libpq", psycopg.pq.version())')

# A short path: each instance's socket lives in <data>/instances/<uuid>/run.
dir=/tmp/berth-bb
conf=$(mktemp -d /tmp/berth-bb-conf.XXXXXX)
results=/tmp/berth-bb-results  # raw JSON and the server log of the last run, for a closer look
json='content-type: application/json'
BG_PIDS=()

# Stops the server (SIGTERM: with stop_on_shutdown it stops every instance first), bounded; then
# stops any postmaster or pgBackRest process this run left behind (by pid, each checked to
# belong to $dir) and removes $dir.
stop_bounded() {
  local limit=${1:-300} t0=$SECONDS f pid
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
  for f in "$dir"/data/instances/*/pgdata/postmaster.pid "$dir"/data/system-pg/postmaster.pid; do
    [[ -f $f ]] || continue
    pid=$(head -1 "$f")
    if [[ $pid =~ ^[0-9]+$ ]] && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$dir/"; then
      LEFTOVER=$((LEFTOVER + 1))
      kill -QUIT "$pid" 2>/dev/null || true
    fi
  done
  # pgBackRest processes (the asynchronous archiver detaches from PostgreSQL) still using $dir.
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -q "^[^ ]*pgbackrest .*$dir/"; then
      LEFTOVER=$((LEFTOVER + 1))
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  ((LEFTOVER == 0)) || { echo "stopped $LEFTOVER process(es) the server left running in $dir" >&2; sleep 2; }
}
cleanup() {
  local p
  trap - EXIT INT TERM
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -d $dir ]] && stop_bounded 300
  mkdir -p "$results"
  cp "$conf"/*.json "$conf"/*.txt "$results"/ 2>/dev/null || true
  cp "$dir/server.log" "$results"/ 2>/dev/null || true
  rm -rf "$dir" "$conf"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
# The whole run is bounded: past the budget the script and its children (the server, pgbench,
# the measuring program) get SIGTERM, and the EXIT trap cleans up.
(
  trap 'kill $! 2>/dev/null; exit 0' TERM
  sleep "$budget" & wait $!
  echo "budget of $budget s ran out; stopping" >&2
  kill -TERM $$; pkill -TERM -P $$
) &
BG_PIDS+=($!)

token() { curl -sf -H "$json" -d "{\"username\":\"$1\",\"password\":\"$2\"}" "$B/api/v1/auth/token" | jq -r .access_token; }
project() { curl -sf -H "$json" -H "Authorization: Bearer $1" -d "{\"name\":\"$2\"}" "$B/api/v1/projects" | jq -r .id; }
load_now() { cut -d' ' -f1-3 /proc/loadavg; }
log_problems() { # count of WARN/ERROR lines in a server log, and the distinct messages
  local n
  n=$(grep -cE '"level":"(WARN|ERROR)"' "$1" || true)
  echo "$n"
  grep -E '"level":"(WARN|ERROR)"' "$1" | jq -r '.fields.message + (if .fields.error then ": " + .fields.error else "" end)' 2>/dev/null \
    | sed -E 's/[0-9a-f]{8}-[0-9a-f-]{27}/<id>/g' | cut -c1-200 | sort | uniq -c | sort -rn | head -5 >"$1.problems" || true
}

# The measuring program: the Python at the end of this file.
sed -n '/^# ---- python ----$/,/^PY$/p' "${BASH_SOURCE[0]}" | sed '1d;$d' >"$conf/bench.py"
py() { "$venv/bin/python" "$conf/bench.py" "$@"; }

cat >"$conf/berth.toml" <<TOML
[instances]
first_port = 30600
last_port = 30699
spares = 4
spare_memory = "256MB"
runners = 4
stop_on_shutdown = true
TOML

echo "== starting the server" >&2
start_server 18095 "$dir" --config "$conf/berth.toml"
ACCESS=$(token admin "$PW")
P=$(project "$ACCESS" backups)
curl -sf "$B/api/v1/ca.pem" >"$conf/ca.pem"
common=(--base "$B" --password "$PW" --project "$P" --ca "$conf/ca.pem")
load_start=$(load_now)

echo "== 0. source instance (1GB, cold create) and pgbench -i -s $scale" >&2
py create "${common[@]}" --name source --memory 1GB >"$conf/source.json"
py load "${common[@]}" --inst "$conf/source.json" --pgbench "$pgbin/pgbench" --scale "$scale" >"$conf/load.json"

echo "== 1. full backup" >&2
load_backup=$(load_now)
py backup "${common[@]}" --inst "$conf/source.json" --type full >"$conf/backup.json"
backup_id=$(jq -r .backup.id "$conf/backup.json")

echo "== 2. restores" >&2
load_restore=$(load_now)
restore() { py restore "${common[@]}" --inst "$conf/source.json" --backup-json "$conf/backup.json" --scale "$scale" "$@"; }
restore --mode backup --backup-id "$backup_id" --name from-backup >"$conf/restore-backup.json"
restore --mode pitr --name to-a-moment >"$conf/restore-pitr.json"
restore --mode clone --name clone >"$conf/restore-clone.json"

echo "== 3. recovery point under write load" >&2
load_rpo=$(load_now)
py rpo "${common[@]}" --inst "$conf/source.json" --seconds "$rpo_seconds" --interval 0.02 --poll 0.05 \
  --drain 60 >"$conf/rpo-steady.json"
# The same while pgbench (TPC-B, 4 clients, unthrottled) writes as fast as it can.
(
  export PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSSLMODE=verify-full PGSSLROOTCERT="$conf/ca.pem"
  PGHOST=$(jq -r .host "$conf/source.json") PGPORT=$(jq -r .port "$conf/source.json")
  PGUSER=$(jq -r .username "$conf/source.json") PGDATABASE=$(jq -r .database "$conf/source.json")
  PGPASSWORD=$(jq -r .password "$conf/source.json")
  exec "$pgbin/pgbench" -n -c 4 -j 2 -T $((rpo_seconds + 6)) >"$conf/pgbench-rpo.txt" 2>&1
) &
pgbench_pid=$!
BG_PIDS+=("$pgbench_pid")
sleep 3
load_rpo_busy=$(load_now)
py rpo "${common[@]}" --inst "$conf/source.json" --seconds "$rpo_seconds" --interval 0.02 --poll 0.05 \
  --drain 120 >"$conf/rpo-busy.json"
wait "$pgbench_pid" || echo "pgbench during the RPO run exited non-zero (see pgbench-rpo.txt)" >&2
busy_tps=$(awk '/^tps = / {printf "%.0f", $3; exit}' "$conf/pgbench-rpo.txt")

echo "== 4. creates with spares (archiving on)" >&2
load_ttr=$(load_now)
py ttr "${common[@]}" --count "$ttr_count" --spares 4 --sysdb "$dir/data/run" --settle 0.5 \
  --pool-timeout 300 --warmup >"$conf/ttr.json"

echo "== stopping the server" >&2
stop_bounded 600
stop_secs=$STOP_SECS leftover=$LEFTOVER
problems=$(log_problems "$dir/server.log")

# ---------------------------------------------------------------------------------------------
S=$conf/source.json L=$conf/load.json K=$conf/backup.json
RB=$conf/restore-backup.json RP=$conf/restore-pitr.json RC=$conf/restore-clone.json
R1=$conf/rpo-steady.json R2=$conf/rpo-busy.json T=$conf/ttr.json
num() { jq -r "$2 | if . == null then \"–\" else (. * 10 | round / 10 | tostring) end" "$1"; }
secs() { jq -r "$2 | if . == null then \"–\" else (. * 10 | round / 10 | tostring) + \" s\" end" "$1"; }
ms() { jq -r "$2 | if . == null then \"–\" else (. * 10 | round / 10 | tostring) + \" ms\" end" "$1"; }
mb() { jq -r "$2 | if . == null then \"–\" else (. / 1e6 | round | tostring) + \" MB\" end" "$1"; }
rate() { jq -r "if ($2) == null or ($3) == null or ($3) == 0 then \"–\" else (($2) / 1e6 / ($3) * 10 | round / 10 | tostring) + \" MB/s\" end" "$1"; }
goal() { jq -r "if ($2) == null then \"not measured\" elif ($2) then \"met\" else \"NOT met\" end" "$1"; }
restore_row() { # restore_row LABEL FILE
  echo "| $1 | $(mb "$2" .size) | $(secs "$2" .running_s) | $(secs "$2" .ready_s) | $(rate "$2" .size .ready_s) | $(secs "$2" .job.run_s) | $(jq -r '.checks_ok | if . then "yes" else "NO" end' "$2") | $(goal "$2" 'if .ready_s == null then null else .ready_s <= 20 end') |"
}
rpo_row() { # rpo_row LABEL FILE LOAD
  echo "| $1 | $(jq -r .commits "$2") ($(num "$2" .commit_rate)/s) | $(jq -r .segments "$2") | $(secs "$2" .lag_s.p50) | $(secs "$2" .lag_s.p95) | $(secs "$2" .lag_s.p99) | $(secs "$2" .lag_s.max) | $(jq -r .unarchived "$2") | $(jq -r .archiver_failures "$2") | $3 | $(goal "$2" 'if .lag_s.p99 == null then null else .lag_s.p99 <= 5 and .unarchived == 0 end') |"
}
steps() { jq -r '[.job.steps[] | select(.step != null) | "\(.step)\(if .percent then " \(.percent | floor)%" else "" end) at \(.t * 10 | round / 10) s"] | join(", ")' "$1"; }

out=$(mktemp)
cat >"$out" <<MD
## Backups and recovery (bench/backup.sh)

Measured $(date -u +%Y-%m-%d) on $(machine_description). Release build of $build_rev,
\`BERTH_LOG=warn\`, PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), $(pgbackrest version), repository in the
data directory (the default: same disk, ext4), one Berth server with
\`[instances] spares = 4, spare_memory = "256MB", runners = 4, stop_on_shutdown = true\` and the
default \`[backups]\` (instances' \`archive_timeout\` = $(jq -r .archive_timeout "$L"), WAL segments of
$(jq -r .wal_segment_size "$L")). The machine is shared with other sessions' builds and tests (1-minute load average at the
start of each part: setup $(cut -d' ' -f1 <<<"$load_start"), backup $(cut -d' ' -f1 <<<"$load_backup"), restores $(cut -d' ' -f1 <<<"$load_restore"), steady writes $(cut -d' ' -f1 <<<"$load_rpo"),
with pgbench $(cut -d' ' -f1 <<<"$load_rpo_busy"), creates $(cut -d' ' -f1 <<<"$load_ttr")). Clients: psycopg $psycopg_version over
\`sslmode=verify-full\` with Berth's CA; MB are 10⁶ bytes.

### The database

A \`1GB\` instance (cold create, so it also got its \`initial\` backup: $(mb "$S" .initial_backup.size),
$(secs "$S" .initial_backup.tool_s)), loaded with \`pgbench -i -s $scale\` as the owner over TLS in $(secs "$L" .load_s)
(\`$(jq -r .pgbench_done "$L")\`): \`pg_database_size('app')\` $(mb "$L" .db_size), $(mb "$L" .wal_bytes)
of WAL written. The archive held the last segment of the load $(secs "$L" .archive_catchup_s) after pgbench finished
($(jq -r .segments "$L") segments of 1 MB pushed by the asynchronous archiver during the load). Its scheduled
backups were turned off (\`PUT …/backup-policy\` with \`"enabled": false\`), and so were those of every
instance made later, right after it was running, so that no scheduled backup ran during the measurements:
$(jq -s -r 'if (.[0:4] | all(.schedule_off)) and (.[4].runs | all(.schedule_off)) then "done" else "FAILED for some, so a scheduled backup may have run meanwhile" end' "$S" "$RB" "$RP" "$RC" "$T").

### Backup

\`POST /api/v1/instances/{id}/backups {"type": "full"}\`, then \`GET /api/v1/jobs/{id}\` every 0.1 s
until it ended ($(jq -r .job.state "$K")). "pgBackRest" is the backup's \`finished_at − started_at\` (whole
seconds, so ±1 s); "job" the job's \`finished_at − started_at\` (it also runs the expiry and
refreshes Berth's record); "wall" from just before the POST until the poll saw the job end.

| backup | size | in the repository | pgBackRest | job | wall | MB/s (pgBackRest) | MB/s (wall) |
|---|---|---|---|---|---|---|---|
| full, on demand, after the load | $(mb "$K" .backup.size) | $(mb "$K" .backup.repository_size) | $(secs "$K" .tool_s) | $(secs "$K" .job.run_s) | $(secs "$K" .wall_s) | $(rate "$K" .backup.size .tool_s) | $(rate "$K" .backup.size .wall_s) |
| \`initial\` backup of the restored instance (from a backup) | $(mb "$RB" .initial_backup.size) | $(mb "$RB" .initial_backup.repository_size) | $(secs "$RB" .initial_backup.tool_s) | $(secs "$RB" .initial_backup.job_run_s) | – | $(rate "$RB" .initial_backup.size .initial_backup.tool_s) | – |
| \`initial\` backup of the point-in-time restore | $(mb "$RP" .initial_backup.size) | $(mb "$RP" .initial_backup.repository_size) | $(secs "$RP" .initial_backup.tool_s) | $(secs "$RP" .initial_backup.job_run_s) | – | $(rate "$RP" .initial_backup.size .initial_backup.tool_s) | – |

Job steps of the on-demand backup: $(steps "$K").

### Restore

\`POST /api/v1/instances\` with a \`source\`, a \`1GB\` instance like the source. "running" is from
just before the POST until \`GET /api/v1/instances/{id}\` (every 0.05 s) said \`running\`; "ready" until
the first successful \`SELECT 1\` over TLS with the new password after that (retried every 5 ms).
MB/s is the backup's \`size\` divided by "ready". Each restore was checked, then its \`initial\`
backup awaited and the instance deleted before the next one. Goal: a 1 GB restore running in
≤ 20 s.

| restore | size | running | ready | MB/s | job | data checks | goal ≤ 20 s |
|---|---|---|---|---|---|---|---|
$(restore_row "from the backup above (\`backup_id\`)" "$RB")
$(restore_row "to a moment (\`point_in_time\`, $(jq -r '.target_after_backup_s | floor' "$RP") s after the backup)" "$RP")
$(restore_row "clone (\`{instance_id}\` alone, running source)" "$RC")

- Data checks: \`pgbench_accounts\` has all $(jq -r .expected_accounts "$RB") rows in each
  ($(jq -r .accounts "$RB"), $(jq -r .accounts "$RP"), $(jq -r .accounts "$RC")); the backup restore has none of the marker rows written
  after the backup ($(jq -r .marks_seen "$RB")); the point-in-time restore has the row committed
  before the target and not the one committed $(jq -r .after_gap_s "$RP") s after it ($(jq -r .marks_seen "$RP");
  recovered to $(jq -r '.restored_from.recovered_to_time // "–"' "$RP") for a target of $(jq -r .target "$RP")); the clone has the row
  committed just before its POST ($(jq -r .marks_seen "$RC")).
- Job steps (seconds after the POST): from the backup: $(steps "$RB"); to a moment: $(steps "$RP");
  clone: $(steps "$RC").
- Restores take the cold path (no spare): pgBackRest restores into a staging directory,
  PostgreSQL replays the WAL archived after the backup up to the target and promotes; a clone
  and a point-in-time restore of a running source first seal its archive (marker commit, WAL
  switch, wait until archived).

### Recovery point objective

A writer commits one \`INSERT\` every 20 ms (autocommit, one connection) for $rpo_seconds s and after each
commit reads \`pg_walfile_name(pg_current_wal_lsn())\`: the segment holding the WAL position just
after the commit (at or past its commit record; under concurrent load possibly a later segment,
which can only overstate the lag). A second connection reads \`last_archived_wal\` from
\`pg_stat_archiver\` every 50 ms. A commit's lag is the time from just before its \`INSERT\` was sent
to the first reading at or after it whose \`last_archived_wal\` is at or past that segment; the
50 ms polling adds up to 50 ms, and \`pg_stat_archiver\` moves only when \`archive_command\`
(pgBackRest \`archive-push\`) has returned, i.e. once the segment is in the repository. Run once
alone ("steady") and once while \`pgbench -n -c 4 -j 2\` (TPC-B, unthrottled, $busy_tps tps) ran against the
same instance. Goal: p99 ≤ 5 s.

| load | commits | segments | p50 | p95 | p99 | max | not archived within the drain | archiver failures | 1-min load | goal p99 ≤ 5 s |
|---|---|---|---|---|---|---|---|---|---|---|
$(rpo_row "steady: a commit every 20 ms" "$R1" "$(cut -d' ' -f1 <<<"$load_rpo")")
$(rpo_row "the same during pgbench, 4 clients" "$R2" "$(cut -d' ' -f1 <<<"$load_rpo_busy")")

### Creates with spares, archiving on

$ttr_count creates of \`256MB\` instances one after another (after one warm-up create that is not counted),
each when all 4 spares were ready again (\`SELECT count(*) FROM spares WHERE state = 'ready'\` on the
system database) and 0.5 s after the previous one. From just before the POST until both
\`GET /api/v1/instances/{id}\` said \`running\` and a \`SELECT 1\` over TLS with the returned password had
succeeded (the client alternates the two every 5 ms). Goal: p50 ≤ 100 ms.

| | p50 | p95 | max | min | POST answered (p50) | status \`running\` seen (p50) | first \`SELECT 1\` (p50) | goal p50 ≤ 100 ms |
|---|---|---|---|---|---|---|---|---|
| with spares (4) | $(ms "$T" .ready_ms.p50) | $(ms "$T" .ready_ms.p95) | $(ms "$T" .ready_ms.max) | $(ms "$T" .ready_ms.min) | $(ms "$T" .post_ms.p50) | $(ms "$T" .running_ms.p50) | $(ms "$T" .select_ms.p50) | $(goal "$T" 'if .ready_ms.p50 == null then null else .ready_ms.p50 <= 100 end') |

- Every create found all 4 spares ready: $(jq -r 'if .cold == 0 then "yes" else "no: \(.cold) were made while the pool was not known to be full (they may have taken the cold path)" end' "$T"). The pool was full again p50
  $(secs "$T" .pool_wait_s.p50) (max $(secs "$T" .pool_wait_s.max)) after the 0.5 s pause: a new spare is backed up before it is ready.
  Create jobs that failed: $(jq -r 'if .jobs_failed == [] then "none" else (.jobs_failed | join(", ")) end' "$T").
  Warm-up create: $(ms "$T" .warmup.ready_ms).

### Server log

WARN/ERROR lines: ${problems}$( [[ -s $dir/server.log.problems ]] && { echo ":"; sed 's/^ */  - /' "$dir/server.log.problems"; } || echo ".")
Stopping the server with SIGTERM took ${stop_secs} s; processes left running after Berth exited: ${leftover}.
MD
write_section backups "$out"
rm -f "$out"
sed -n '/<!-- backups:start -->/,/<!-- backups:end -->/p' "$bench_root/RESULTS.md"
exit 0

# The measuring half, extracted into a file at run time (a here-document, so `bash -n` checks
# the shell around it and never runs it).
: <<'PY'
# ---- python ----
"""Measuring half of bench/backup.sh (which starts the server and writes RESULTS.md).

Each subcommand prints one JSON document on stdout; progress goes to stderr.
Needs psycopg 3; everything else is the standard library.
"""

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone

import psycopg

SEGMENT = re.compile(r"^[0-9A-F]{24}$")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Api:
    def __init__(self, base, password):
        u = urllib.parse.urlparse(base)
        self.host, self.port, self.conn, self.token = u.hostname, u.port, None, None
        self.token = self.ok("POST", "/api/v1/auth/token",
                             {"username": "admin", "password": password})["access_token"]

    def request(self, method, path, body=None):
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        data = json.dumps(body) if body is not None else None
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                    self.conn.connect()
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw.decode(errors="replace")
        return r.status, doc

    def ok(self, method, path, body=None, want=(200, 201, 202, 204)):
        status, doc = self.request(method, path, body)
        if status not in want:
            raise RuntimeError(f"{method} {path} -> {status}: {doc}")
        return doc


def pct(values, p):
    s = sorted(values)
    if not s:
        return None
    k = max(1, min(len(s), int(round(p / 100.0 * len(s) + 0.4999))))
    return s[k - 1]


def summary(values):
    if not values:
        return None
    return {"n": len(values), "min": min(values), "p50": pct(values, 50), "p95": pct(values, 95),
            "p99": pct(values, 99), "max": max(values), "mean": statistics.fmean(values)}


def epoch(s):
    return None if s is None else datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def span(a, b):
    a, b = epoch(a), epoch(b)
    return None if a is None or b is None else b - a


def body(name, project, memory, version="15", source=None):
    b = {"name": name, "project_id": project, "engine": "postgres", "version": version,
         "region": "local", "memory": memory}
    if source is not None:
        b["source"] = source
    return b


def connect(inst, ca, timeout=5):
    return psycopg.connect(inst["connection_url"], password=inst["password"], sslrootcert=ca,
                           connect_timeout=timeout, autocommit=True)


def select1(inst, ca):
    with connect(inst, ca) as c:
        c.execute("SELECT 1").fetchone()


def wait_job(api, job_id, t0, limit, every=0.1):
    """Polls a job until it ends; records its step changes (seconds after t0)."""
    steps, last, deadline = [], None, time.monotonic() + limit
    while True:
        job = api.ok("GET", f"/api/v1/jobs/{job_id}")
        seen = (job.get("step"), None if job.get("progress_percent") is None
                else int(job["progress_percent"] // 10) * 10)
        if seen != last:
            steps.append({"t": time.monotonic() - t0, "step": job.get("step"),
                          "percent": job.get("progress_percent"), "bytes_done": job.get("bytes_done"),
                          "bytes_total": job.get("bytes_total"), "state": job["state"]})
            last = seen
        if job["state"] not in ("PENDING", "STARTED"):
            job["steps"] = steps
            job["run_s"] = span(job.get("started_at"), job.get("finished_at"))
            job["queued_s"] = span(job.get("created_at"), job.get("started_at"))
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not end in {limit} s: {job}")
        time.sleep(every)


def wait_running(api, iid, t0, limit, every=0.05, job_id=None):
    """Polls the instance until it is running; returns seconds after t0 and the job's steps."""
    steps, last, deadline = [], None, time.monotonic() + limit
    while True:
        inst = api.ok("GET", f"/api/v1/instances/{iid}")
        if job_id:
            job = api.ok("GET", f"/api/v1/jobs/{job_id}")
            seen = (job.get("step"), None if job.get("progress_percent") is None
                    else int(job["progress_percent"] // 10) * 10)
            if seen != last:
                steps.append({"t": time.monotonic() - t0, "step": job.get("step"),
                              "percent": job.get("progress_percent"), "bytes_done": job.get("bytes_done"),
                              "bytes_total": job.get("bytes_total"), "state": job["state"]})
                last = seen
        if inst["status"] == "running":
            return time.monotonic() - t0, inst, steps
        if inst["status"] == "failed":
            raise RuntimeError(f"instance {iid} failed: {inst.get('status_message')}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"instance {iid} not running after {limit} s: {inst['status']}")
        time.sleep(every)


def wait_select(inst, ca, t0, limit):
    deadline = time.monotonic() + limit
    while True:
        try:
            select1(inst, ca)
            return time.monotonic() - t0
        except psycopg.Error as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{inst['name']}: no SELECT 1 after {limit} s: {e}")
            time.sleep(0.005)


def first_backup(api, iid, limit):
    """Waits for the instance's first backup (`initial`, or the spare's) to end; None if none
    appears within the limit."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        doc = api.ok("GET", f"/api/v1/instances/{iid}/backups?limit=500")
        done = [b for b in doc["results"] if b["status"] in ("completed", "failed")]
        active = [b for b in doc["results"] if b["status"] in ("pending", "running")]
        if done and not active:
            b = sorted(done, key=lambda b: b["created_at"])[0]
            b["tool_s"] = span(b.get("started_at"), b.get("finished_at"))
            if b.get("job_id"):
                job = api.ok("GET", f"/api/v1/jobs/{b['job_id']}")
                b["job_run_s"] = span(job.get("started_at"), job.get("finished_at"))
            return b
        time.sleep(0.25)
    log(f"  no first backup of {iid} ended within {limit} s")
    return None


def wait_idle(api, iid, limit):
    """Until no job is pending or started for the instance."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        st = api.ok("GET", f"/api/v1/jobs?instance_id={iid}&limit=1")["stats"]["state"]
        if st.get("PENDING", 0) + st.get("STARTED", 0) == 0:
            return
        time.sleep(0.25)
    raise RuntimeError(f"instance {iid} still has jobs after {limit} s")


def delete(api, iid, limit=300):
    deadline = time.monotonic() + limit
    while True:
        status, doc = api.request("DELETE", f"/api/v1/instances/{iid}")
        if status in (202, 204, 404):
            break
        if status != 409 or time.monotonic() > deadline:
            raise RuntimeError(f"delete {iid} -> {status}: {doc}")
        time.sleep(1)
    while api.request("GET", f"/api/v1/instances/{iid}")[0] != 404:
        if time.monotonic() > deadline:
            raise RuntimeError(f"instance {iid} not gone after {limit} s")
        time.sleep(0.25)


def segno(name, seg_bytes):
    """The number of a WAL segment from its file name (timeline ignored)."""
    return int(name[8:16], 16) * (2**32 // seg_bytes) + int(name[16:24], 16)


def schedule_off(api, iid):
    """Turns the instance's scheduled backups off: the default policy takes a daily full backup
    at a time between 00:00 and 05:59 UTC, and none may start in the middle of a measurement."""
    status, policy = api.request("GET", f"/api/v1/instances/{iid}/backup-policy")
    if status == 200 and isinstance(policy, dict):
        policy["enabled"] = False
        status, _ = api.request("PUT", f"/api/v1/instances/{iid}/backup-policy", policy)
    if status != 200:
        log(f"  could not turn the backup schedule of {iid} off ({status}); a scheduled backup may run meanwhile")
    return status == 200


def load_inst(a):
    with open(a.inst) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------


def cmd_create(a):
    api = Api(a.base, a.password)
    t0 = time.monotonic()
    doc = api.ok("POST", "/api/v1/instances", body(a.name, a.project, a.memory))
    running_s, _, _ = wait_running(api, doc["id"], t0, 300)
    ready_s = wait_select(doc, a.ca, t0, 60)
    doc["running_s"], doc["ready_s"] = running_s, ready_s
    doc["schedule_off"] = schedule_off(api, doc["id"])
    doc["initial_backup"] = first_backup(api, doc["id"], 600)
    wait_idle(api, doc["id"], 600)
    log(f"  {a.name}: running in {running_s:.2f} s; first backup "
        f"{(doc['initial_backup'] or {}).get('status')}")
    print(json.dumps(doc, indent=1))


def cmd_load(a):
    inst = load_inst(a)
    with connect(inst, a.ca) as c:
        lsn0 = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        seg0 = c.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        archive_timeout = c.execute("SHOW archive_timeout").fetchone()[0]
        seg_size = c.execute("SHOW wal_segment_size").fetchone()[0]
        seg_bytes = int(c.execute("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'").fetchone()[0])
    env = dict(os.environ, PGHOST=inst["host"], PGPORT=str(inst["port"]), PGUSER=inst["username"],
               PGDATABASE=inst["database"], PGPASSWORD=inst["password"], PGSSLMODE="verify-full",
               PGSSLROOTCERT=a.ca)
    t0 = time.monotonic()
    p = subprocess.run([a.pgbench, "-i", "-s", str(a.scale)], env=env, capture_output=True, text=True)
    load_s = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"pgbench -i failed: {p.stderr[-2000:]}")
    done = [line.strip() for line in p.stderr.splitlines() if line.startswith("done in")]
    t1 = time.monotonic()
    with connect(inst, a.ca) as c:
        lsn1, seg1, wal_bytes, db_size = c.execute(
            "SELECT pg_current_wal_lsn(), pg_walfile_name(pg_current_wal_lsn()),"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn), pg_database_size(current_database())",
            (str(lsn0),)).fetchone()
        # The load's last segment is closed by archive_timeout at the latest.
        while True:
            wal = c.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
            if wal and SEGMENT.match(wal) and wal >= seg1:
                break
            if time.monotonic() - t1 > 600:
                raise RuntimeError(f"segment {seg1} not archived 600 s after the load")
            time.sleep(0.05)
        catchup = time.monotonic() - t1
    log(f"  pgbench -i -s {a.scale}: {load_s:.1f} s, {int(db_size) / 1e6:.0f} MB, "
        f"{int(wal_bytes) / 1e6:.0f} MB of WAL, archived {catchup:.1f} s after")
    print(json.dumps({
        "load_s": load_s, "pgbench_done": done[0] if done else None, "db_size": int(db_size),
        "wal_bytes": int(wal_bytes), "lsn_start": str(lsn0), "lsn_end": str(lsn1),
        "segments": segno(seg1, seg_bytes) - segno(seg0, seg_bytes) + 1,
        "archive_catchup_s": catchup, "archive_timeout": archive_timeout, "wal_segment_size": seg_size,
    }, indent=1))


def cmd_backup(a):
    api = Api(a.base, a.password)
    inst = load_inst(a)
    deadline = time.monotonic() + 300
    while True:  # another job (the initial backup) may still hold the instance
        t0 = time.monotonic()
        status, doc = api.request("POST", f"/api/v1/instances/{inst['id']}/backups", {"type": a.type})
        if status == 202:
            break
        if status != 409 or time.monotonic() > deadline:
            raise RuntimeError(f"backup -> {status}: {doc}")
        time.sleep(1)
    job = wait_job(api, doc["job_id"], t0, 1800)
    wall_s = time.monotonic() - t0
    backup = api.ok("GET", f"/api/v1/instances/{inst['id']}/backups/{doc['backup']['id']}")
    if job["state"] != "SUCCESS":
        raise RuntimeError(f"backup job {job['id']} {job['state']}: {job.get('error')}")
    tool_s = span(backup.get("started_at"), backup.get("finished_at"))
    log(f"  full backup: {backup.get('size', 0) / 1e6:.0f} MB in {tool_s} s (wall {wall_s:.1f} s)")
    print(json.dumps({"backup": backup, "job": job, "wall_s": wall_s, "tool_s": tool_s}, indent=1))


def cmd_restore(a):
    api = Api(a.base, a.password)
    src = load_inst(a)
    out = {"mode": a.mode}
    marks_ok = True
    with connect(src, a.ca) as c:
        if a.mode == "backup":  # the first of the three: the table is new after the backup
            c.execute("DROP TABLE IF EXISTS bench_marks")
        c.execute("CREATE TABLE IF NOT EXISTS bench_marks (note text PRIMARY KEY,"
                  " at timestamptz NOT NULL DEFAULT clock_timestamp())")
        if a.mode == "backup":
            c.execute("INSERT INTO bench_marks (note) VALUES ('after-backup')")
            source = {"instance_id": src["id"], "backup_id": a.backup_id}
            expect_present, expect_absent = [], ["after-backup"]
        elif a.mode == "pitr":
            c.execute("INSERT INTO bench_marks (note) VALUES ('pitr-before')")
            time.sleep(1)
            target = c.execute("SELECT clock_timestamp()").fetchone()[0]
            out["after_gap_s"] = 1
            time.sleep(1)
            c.execute("INSERT INTO bench_marks (note) VALUES ('pitr-after')")
            target_s = target.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
            source = {"instance_id": src["id"], "point_in_time": target_s}
            out["target"] = target_s
            with open(a.backup_json) as f:
                bk = json.load(f)["backup"]
            out["target_after_backup_s"] = target.timestamp() - epoch(bk["finished_at"])
            out["window"] = api.ok("GET", f"/api/v1/instances/{src['id']}/restore-window")
            expect_present, expect_absent = ["pitr-before"], ["pitr-after"]
        else:
            c.execute("INSERT INTO bench_marks (note) VALUES ('before-clone')")
            source = {"instance_id": src["id"]}
            expect_present, expect_absent = ["before-clone"], []
    t0 = time.monotonic()
    doc = api.ok("POST", "/api/v1/instances", body(a.name, a.project, a.memory, src["version"], source))
    running_s, inst, steps = wait_running(api, doc["id"], t0, 900, job_id=doc["job_id"])
    ready_s = wait_select(doc, a.ca, t0, 120)
    job = api.ok("GET", f"/api/v1/jobs/{doc['job_id']}")
    job["steps"] = steps
    job["run_s"] = span(job.get("started_at"), job.get("finished_at"))
    log(f"  restore ({a.mode}): running {running_s:.1f} s, SELECT 1 {ready_s:.1f} s")
    out["schedule_off"] = schedule_off(api, doc["id"])
    # What came back.
    with connect(doc, a.ca) as c:
        accounts = c.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0]
        has_marks = c.execute("SELECT to_regclass('bench_marks') IS NOT NULL").fetchone()[0]
        marks = [r[0] for r in c.execute("SELECT note FROM bench_marks ORDER BY at")] if has_marks else []
    for m in expect_present:
        marks_ok &= m in marks
    for m in expect_absent:
        marks_ok &= m not in marks
    expected = a.scale * 100000
    size = None
    if a.mode == "backup":
        size = api.ok("GET", f"/api/v1/instances/{src['id']}/backups/{a.backup_id}").get("size")
    else:
        with open(a.backup_json) as f:
            size = json.load(f)["backup"].get("size")
    out.update({
        "id": doc["id"], "job": job, "running_s": running_s, "ready_s": ready_s, "size": size,
        "restored_from": inst.get("restored_from"), "accounts": accounts,
        "expected_accounts": expected, "marks_seen": ", ".join(marks) if marks else "no marker rows",
        "checks_ok": bool(marks_ok and accounts == expected),
    })
    # Let its initial backup finish (it would compete with the next measurement), then delete it.
    out["initial_backup"] = first_backup(api, doc["id"], 900)
    wait_idle(api, doc["id"], 900)
    delete(api, doc["id"])
    print(json.dumps(out, indent=1, default=str))


def cmd_rpo(a):
    inst = load_inst(a)
    commits, polls, stop = [], [], threading.Event()
    failures = {"n": 0, "last": None}

    def poller():
        with connect(inst, a.ca) as c:
            wal_seen = ""
            while not stop.is_set():
                wal, failed_wal = c.execute(
                    "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()
                t = time.monotonic()  # after the answer: never earlier than the state it shows
                if wal and SEGMENT.match(wal):
                    wal_seen = max(wal_seen, wal)
                if failed_wal and failed_wal != failures["last"]:
                    failures["n"] += 1
                    failures["last"] = failed_wal
                polls.append((t, wal_seen))
                time.sleep(a.poll)

    with connect(inst, a.ca) as w:
        w.execute("CREATE TABLE IF NOT EXISTS rpo_probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")
        th = threading.Thread(target=poller, daemon=True)
        th.start()
        time.sleep(0.5)
        start = time.monotonic()
        tick = start
        while time.monotonic() - start < a.seconds:
            t = time.monotonic()  # just before the INSERT is sent: its commit is after this
            w.execute("INSERT INTO rpo_probe (at) VALUES (clock_timestamp())")
            seg = w.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
            commits.append((t, seg))
            tick += a.interval
            time.sleep(max(0.0, tick - time.monotonic()))
        wrote_s = time.monotonic() - start
    # Keep polling until the last commit's segment is archived, or the drain time is over.
    last_seg = commits[-1][1]
    drain_end = time.monotonic() + a.drain
    while time.monotonic() < drain_end and not (polls and polls[-1][1] >= last_seg):
        time.sleep(a.poll)
    time.sleep(2 * a.poll)
    stop.set()
    th.join(timeout=10)
    lags, unarchived, j = [], 0, 0
    for t, seg in commits:  # both lists are in time order; see the report for the method
        while j < len(polls) and (polls[j][0] < t or polls[j][1] < seg):
            j += 1
        if j == len(polls):
            unarchived += 1
        else:
            lags.append(polls[j][0] - t)
    gaps = [b[0] - a_[0] for a_, b in zip(polls, polls[1:])]
    segs = {s for _, s in commits}
    out = {
        "commits": len(commits), "commit_rate": len(commits) / wrote_s, "segments": len(segs),
        "lag_s": summary(lags), "unarchived": unarchived, "drain_s": a.drain,
        "polls": len(polls), "poll_gap_s": summary(gaps), "archiver_failures": failures["n"],
    }
    s = out["lag_s"] or {}
    log(f"  RPO: {len(commits)} commits, lag p50 {s.get('p50')} p99 {s.get('p99')} max {s.get('max')}, "
        f"unarchived {unarchived}")
    print(json.dumps(out, indent=1))


def sysdb_ready_spares(sysdb):
    with psycopg.connect(host=sysdb, port=5432, user="postgres", dbname="berth", connect_timeout=5) as c:
        return c.execute("SELECT count(*) FROM spares WHERE state = 'ready'").fetchone()[0]


def wait_spares(sysdb, target, limit):
    """Seconds until `target` spares are ready, or None when they were not within the limit (or
    the system database could not be read: then after a plain 5 s pause)."""
    t = time.monotonic()
    while time.monotonic() - t < limit:
        try:
            if sysdb_ready_spares(sysdb) >= target:
                return time.monotonic() - t
        except psycopg.Error as e:
            log(f"  cannot count spares in the system database ({e}); pausing 5 s instead")
            time.sleep(5)
            return None
        time.sleep(0.1)
    return None


def timed_create(api, name, a):
    api.request("GET", "/healthz")  # the keep-alive connection is open before the clock starts
    t0 = time.monotonic()
    status, doc = api.request("POST", "/api/v1/instances", body(name, a.project, "256MB"))
    post = time.monotonic() - t0
    if status != 202:
        raise RuntimeError(f"create {name} -> {status}: {doc}")
    running = selected = None
    while running is None or selected is None:
        if selected is None:
            try:
                select1(doc, a.ca)
                selected = time.monotonic() - t0
            except psycopg.Error:
                pass
        if running is None:
            inst = api.ok("GET", f"/api/v1/instances/{doc['id']}")
            if inst["status"] == "running":
                running = time.monotonic() - t0
            elif inst["status"] == "failed":
                raise RuntimeError(f"{name} failed: {inst.get('status_message')}")
        if time.monotonic() - t0 > 120:
            raise RuntimeError(f"{name} not ready after 120 s")
        if running is None or selected is None:
            time.sleep(0.005)
    job = api.ok("GET", f"/api/v1/jobs/{doc['job_id']}")
    return {"name": name, "id": doc["id"], "post_ms": post * 1000, "running_ms": running * 1000,
            "select_ms": selected * 1000, "ready_ms": max(running, selected) * 1000,
            "job_state": job["state"], "job_run_ms": (span(job.get("started_at"), job.get("finished_at")) or 0) * 1000}


def cmd_ttr(a):
    api = Api(a.base, a.password)
    runs, pool_waits, cold = [], [], 0
    warmup = None
    if a.warmup:
        wait_spares(a.sysdb, a.spares, a.pool_timeout)
        warmup = timed_create(api, "warmup", a)
    for i in range(a.count):
        time.sleep(a.settle)
        w = wait_spares(a.sysdb, a.spares, a.pool_timeout)
        if w is None:
            cold += 1  # the pool was not known to be full: this create may have gone cold
        else:
            pool_waits.append(w)
        r = timed_create(api, f"ttr-{i:02d}", a)
        r["schedule_off"] = schedule_off(api, r["id"])
        runs.append(r)
        log(f"  {r['name']}: ready {r['ready_ms']:.0f} ms (running {r['running_ms']:.0f}, SELECT 1 {r['select_ms']:.0f})")
    print(json.dumps({
        "count": len(runs),
        "ready_ms": summary([r["ready_ms"] for r in runs]),
        "post_ms": summary([r["post_ms"] for r in runs]),
        "running_ms": summary([r["running_ms"] for r in runs]),
        "select_ms": summary([r["select_ms"] for r in runs]),
        "job_run_ms": summary([r["job_run_ms"] for r in runs]),
        "pool_wait_s": summary(pool_waits), "cold": cold,
        "warmup": warmup,
        "jobs_failed": [r["name"] for r in runs if r["job_state"] != "SUCCESS"],
        "runs": runs,
    }, indent=1))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    for arg in ("--base", "--password", "--project", "--ca"):
        common.add_argument(arg, required=True)
    c = sub.add_parser("create", parents=[common])
    c.add_argument("--name", required=True)
    c.add_argument("--memory", default="1GB")
    c.set_defaults(fn=cmd_create)
    lo = sub.add_parser("load", parents=[common])
    lo.add_argument("--inst", required=True)
    lo.add_argument("--pgbench", required=True)
    lo.add_argument("--scale", type=int, default=70)
    lo.set_defaults(fn=cmd_load)
    b = sub.add_parser("backup", parents=[common])
    b.add_argument("--inst", required=True)
    b.add_argument("--type", default="full")
    b.set_defaults(fn=cmd_backup)
    r = sub.add_parser("restore", parents=[common])
    r.add_argument("--inst", required=True)
    r.add_argument("--mode", choices=("backup", "pitr", "clone"), required=True)
    r.add_argument("--backup-id")
    r.add_argument("--backup-json", required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--memory", default="1GB")
    r.add_argument("--scale", type=int, default=70)
    r.set_defaults(fn=cmd_restore)
    o = sub.add_parser("rpo", parents=[common])
    o.add_argument("--inst", required=True)
    o.add_argument("--seconds", type=float, default=30)
    o.add_argument("--interval", type=float, default=0.02)
    o.add_argument("--poll", type=float, default=0.05)
    o.add_argument("--drain", type=float, default=60)
    o.set_defaults(fn=cmd_rpo)
    t = sub.add_parser("ttr", parents=[common])
    t.add_argument("--count", type=int, default=20)
    t.add_argument("--spares", type=int, default=4)
    t.add_argument("--sysdb", required=True)
    t.add_argument("--settle", type=float, default=0.5)
    t.add_argument("--pool-timeout", type=float, default=300)
    t.add_argument("--warmup", action="store_true")
    t.set_defaults(fn=cmd_ttr)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
PY
