#!/usr/bin/env bash
# Bursts of creates: time from the POST to the first verify-full `SELECT 1`, with Berth's default
# [instances] settings (only the port range and stop_on_shutdown are set), for 10 creates back to
# back, 10 at once, 20 at once, and cold creates (spares = 0); where each create's time went (the
# job's steps); and the memory the spare pool holds at rest before and after the bursts.
# Writes the `bursts` section of RESULTS.md. Measuring code: bench/bursts.py (+ bench/instances.py).
#
# Usage: bench/bursts.sh
#   BEFORE=1   also store this run's figures as the "before" column (bench/bursts-before.json)
# Needs curl, jq, python3 and root (PSS of the postgres user's processes).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { echo "install $tool" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run as root (PSS of the postgres user's processes)" >&2; exit 1; }
(cd "$repo_root" && cargo build --release --bin berth)
build_rev="$(git -C "$repo_root" rev-parse --short HEAD)$(git -C "$repo_root" diff --quiet HEAD -- crates Cargo.lock 2>/dev/null || echo '+changes')"

venv=$bench_root/.venv
bench_venv "$venv"
py() { "$venv/bin/python" "$bench_root/bursts.py" "$@"; }
pyi() { "$venv/bin/python" "$bench_root/instances.py" "$@"; }

# The engine's timing of each provisioning (copy, stanza, start, owner) is a debug line.
export BERTH_LOG=${BERTH_LOG:-warn,berth_engine=debug}
dir=/tmp/berth-bb
conf=$(mktemp -d /tmp/berth-bb-conf.XXXXXX)
json='content-type: application/json'
cleanup() {
  if [[ -n ${SERVER_PID:-} ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  mkdir -p /tmp/berth-bb-results && cp "$conf"/* /tmp/berth-bb-results/ 2>/dev/null || true
  rm -rf "$dir" "$conf"
}
trap cleanup EXIT
config() { # config NAME [extra toml lines]
  { echo "[instances]"; echo "first_port = 32000"; echo "last_port = 32499"; echo "stop_on_shutdown = true"; echo "${2:-}"; } >"$conf/$1.toml"
  echo "$conf/$1.toml"
}
token() { curl -sf -H "$json" -d "{\"username\":\"$1\",\"password\":\"$2\"}" "$B/api/v1/auth/token" | jq -r .access_token; }
project() { curl -sf -H "$json" -H "Authorization: Bearer $1" -d "{\"name\":\"$2\"}" "$B/api/v1/projects" | jq -r .id; }
stop() {
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
  cp "$dir/server.log" "$conf/server-$1.log" 2>/dev/null || true
}
pool() { py pool --sysdb "$dir/data/run" --data-dir "$dir/data" --steady "${1:-3}"; }
wait_copies() { # wait_copies N: until N template copies are stocked
  for _ in $(seq 1 600); do
    n=$(curl -sf "$B/metrics" | awk '$1 == "berth_template_copies" {print $2}')
    [[ -n $n ]] && (( ${n%.*} >= $1 )) && return 0
    sleep 0.2
  done
  echo "template copies never reached $1" >&2; return 1
}
round() { # round LABEL (sequence|burst) COUNT: one series, then delete everything and let the pool settle
  local label=$1 kind=$2 count=$3
  echo "== $label" >&2
  py "$kind" --base "$B" --password "$PW" --project "$P" --ca "$conf/ca.pem" --count "$count" --prefix "$label" >"$conf/$label.json"
  pyi cleanup --base "$B" --password "$PW" --project "$P" >/dev/null
  pool >"$conf/pool-after-$label.json"
  wait_copies 10
}

# ---------------------------------------------------------------------------------------------
echo "== default settings" >&2
start_server 18095 "$dir" --config "$(config defaults)"
ACCESS=$(token admin "$PW")
P=$(project "$ACCESS" bursts)
curl -sf "$B/api/v1/ca.pem" >"$conf/ca.pem"
pool 5 >"$conf/pool-start.json"
wait_copies 10
pool 3 >/dev/null
round seq10 sequence 10
round at10 burst 10
round at20 burst 20
pool 5 >"$conf/pool-end.json"
stop defaults

cold() { # cold LABEL CONFIG-LINES [COPIES]: a warm-up create, then 10 creates 0.5 s apart
  echo "== $1" >&2
  start_server 18095 "$dir" --config "$(config "$1" "$2")"
  ACCESS=$(token admin "$PW")
  P=$(project "$ACCESS" "$1")
  curl -sf "$B/api/v1/ca.pem" >"$conf/ca.pem"
  [[ -n ${3:-} ]] && wait_copies "$3"
  pyi ttr --base "$B" --password "$PW" --project "$P" --ca "$conf/ca.pem" --count 10 --prefix "$1" \
    --settle 0.5 --warmup >"$conf/$1.json"
  stop "$1"
}
# No spare, the template copies Berth keeps by default (11 creates, the warm-up included, take
# all 10 and copy once: the copies are restocked only once creates pause).
cold cold 'spares = 0' 10
# No spare and no copy: every create copies the template while its user waits.
cold scratch $'spares = 0\nspare_copies = 0'

py phases --log "$conf/server-defaults.log" >"$conf/phases-defaults.json"
py phases --log "$conf/server-cold.log" >"$conf/phases-cold.json"
py phases --log "$conf/server-scratch.log" >"$conf/phases-scratch.json"

# ---------------------------------------------------------------------------------------------
summary=$conf/summary.json
jq -n --slurpfile s10 "$conf/seq10.json" --slurpfile a10 "$conf/at10.json" --slurpfile a20 "$conf/at20.json" \
  --slurpfile cold "$conf/cold.json" --slurpfile p0 "$conf/pool-start.json" --slurpfile p1 "$conf/pool-end.json" \
  --slurpfile ps10 "$conf/pool-after-seq10.json" --slurpfile pa10 "$conf/pool-after-at10.json" \
  --slurpfile pa20 "$conf/pool-after-at20.json" --slurpfile phd "$conf/phases-defaults.json" \
  --slurpfile phc "$conf/phases-cold.json" --slurpfile phs "$conf/phases-scratch.json" \
  --slurpfile scratch "$conf/scratch.json" --arg rev "$build_rev" '{
    rev: $rev,
    seq10: ($s10[0] | del(.runs)), at10: ($a10[0] | del(.runs)), at20: ($a20[0] | del(.runs)),
    cold: ($cold[0] | {ready_ms, job_run_ms, job_queue_ms}),
    scratch: ($scratch[0] | {ready_ms, job_run_ms, job_queue_ms}),
    pool: {start: $p0[0], after_seq10: $ps10[0], after_at10: $pa10[0], after_at20: $pa20[0], end: $p1[0]},
    phases: {defaults: $phd[0], cold: $phc[0], scratch: $phs[0]}
  }' >"$summary"
[[ -n ${BEFORE:-} ]] && cp "$summary" "$bench_root/bursts-before.json"
before=$bench_root/bursts-before.json
[[ -f $before ]] || before=$summary

ms() { jq -r "$2 | if . == null then \"–\" else (. | round | tostring) + \" ms\" end" "$1"; }
row() { # row LABEL KEY GOAL-JQ GOAL-TEXT
  local goal
  goal=""
  [[ $3 == none ]] || goal=$(jq -r "if ($3) then \"met\" else \"NOT met\" end" "$summary")
  echo "| $1 | $(ms "$before" ".$2.ready_ms.p50") / $(ms "$before" ".$2.ready_ms.p95") / $(ms "$before" ".$2.ready_ms.max") | $(ms "$summary" ".$2.ready_ms.p50") / $(ms "$summary" ".$2.ready_ms.p95") / $(ms "$summary" ".$2.ready_ms.max") | $(ms "$summary" ".$2.all_ready_within_ms") | $(jq -r ".$2.from_spare // \"–\"" "$summary") | $4${goal:+: **$goal**} |"
}
steps() { # steps KEY: "step p50 ms" list of the series' job steps
  jq -r ".$1.steps_ms | to_entries | map(\"\(.key) \(.value.p50 | round) ms\") | join(\", \")
        | if . == \"\" then \"(not recorded by this build)\" else . end" "$summary"
}
phases() { # phases SERVER KIND: the engine's provisioning phases, p50
  jq -r ".phases.$1.$2 // null | if . == null then \"none\" else . end | if type == \"string\" then . else \"\(.count) times: copy \(.copy_ms.p50 | round) ms, stanza \(.stanza_ms.p50 | round) ms and start \(.start_ms.p50 | round) ms (at once), owner \(.owner_ms.p50 | round) ms; total \(.total_ms.p50 | round) ms (p95 \(.total_ms.p95 | round) ms)\" end" "$summary"
}
pss() { jq -r ".pool.$1 | \"\(.ready) spares, \(.pss_mb | round) MB PSS\"" "$summary"; }

out=$(mktemp)
cat >"$out" <<MD
## Bursts of creates (bench/bursts.sh)

Measured $(date -u +%Y-%m-%d) on $(machine_description). Release build of \`$build_rev\`;
"before" is \`$(jq -r .rev "$before")\`. Default \`[instances]\` settings (only the port range and
\`stop_on_shutdown\` set). Each create is timed from just before its POST to its first
\`SELECT 1\` over \`sslmode=verify-full\` with the returned password (psycopg 3, retried every
~5 ms). *Back to back*: each POST is sent as soon as the previous create answered. *At once*:
N threads released together. Between series every instance is deleted and the pool left to
settle. Cold: \`spares = 0\` (no spare; the default 10 template copies stocked first), one
warm-up create, then 10 creates 0.5 s apart. From scratch: the same with \`spare_copies = 0\`
too (the template copied while the user waits). "Before" had no template copies: its cold
row is what this row compares with.

| series | before p50 / p95 / max | now p50 / p95 / max | all ready within | from a spare | goal |
|---|---|---|---|---|---|
$(row "10 back to back" seq10 '.seq10.ready_ms.p50 <= 100 and .seq10.ready_ms.p95 <= 250' "p50 ≤ 100 ms, p95 ≤ 250 ms")
$(row "10 at once" at10 '.at10.ready_ms.p95 <= 500' "p95 ≤ 500 ms")
$(row "20 at once" at20 '.at20.all_ready_within_ms <= 2000' "all within 2 s")
$(row "cold (no spare)" cold '.cold.ready_ms.p50 <= 300' "p50 ≤ 300 ms")
$(row "from scratch (no spare, no copy)" scratch none "no goal")

Where the time goes (the jobs' steps, p50): back to back $(steps seq10); 10 at once $(steps at10);
20 at once $(steps at20). Inside the engine (p50): claiming a spare $(phases defaults claim);
a template copy with default settings (cold creates and the keeper's spares) $(phases defaults copy);
a template copy made ahead taken (default settings) $(phases defaults ahead); cold, \`spares = 0\`,
a copy taken $(phases cold ahead), copied on the spot $(phases cold copy); from scratch $(phases scratch copy).

The pool at rest: at start $(pss start); after the back-to-back series $(pss after_seq10);
after 10 at once $(pss after_at10); after 20 at once $(pss after_at20); at the end $(pss end).
Raw figures: /tmp/berth-bb-results/ after a run.
MD
write_section bursts "$out"
rm -f "$out"
echo "wrote the bursts section of $bench_root/RESULTS.md" >&2
