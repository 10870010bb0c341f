#!/usr/bin/env bash
# OAuth token endpoint benchmark: client_credentials tokens per second and p50/p99 from Berth's
# `POST /oauth/token`, and the identical load against a peer authorization server installed from
# npm (node oidc-provider, bench/peer/oidc-provider) and one from PyPI (django-oauth-toolkit under
# gunicorn, bench/peer/django-oauth-toolkit), in the same session. Writes its section of RESULTS.md.
# Usage: bench/oauth.sh [--peer-only] [duration-seconds]
#   --peer-only  measure only the peers (no Berth build or run) and print, without touching RESULTS.md
# Needs wrk, curl, jq, node, npm and python3 with venv (apt-get install wrk jq nodejs npm
# python3-venv); npm and pip install the peers from their registries.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

peer_only=false
if [[ ${1:-} == --peer-only ]]; then peer_only=true; shift; fi
duration=${1:-15}
warmup=3
attempts=3     # runs per server at most, while other processes disturb them
max_foreign=15 # % of one core that other processes may use during a run that is kept at once
connections=64
threads=2
for tool in wrk curl jq node npm python3; do
  command -v "$tool" >/dev/null || { echo "install $tool (apt-get install wrk jq nodejs npm python3-venv)" >&2; exit 1; }
done

berth_port=18200
oidc_port=18201
dot_port=18202
dir=/tmp/berth-bench-oauth
oidc_dir="$bench_root/peer/oidc-provider"
dot_dir="$bench_root/peer/django-oauth-toolkit"
PEER_PID=
scratch=$(mktemp -d)

cleanup() {
  [[ -n ${SERVER_PID:-} ]] && stop_server
  [[ -n $PEER_PID ]] && stop_peer
  rm -rf "$scratch"
}
trap cleanup EXIT

# Refuse to measure whatever happens to be listening already (a stale server from another run).
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "port $1 is already in use on 127.0.0.1; stop whatever listens there first" >&2; exit 1
  fi
}

# CPU busy percentage of the whole machine over one second (other sessions may be compiling).
machine_busy() {
  local a b
  a=($(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)); sleep 1
  b=($(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat))
  echo $(( (b[0] - a[0]) * 100 / (b[1] - a[1] + 1) ))
}

# Wait (about a minute at most) until the machine is nearly idle before a run; prints the busy %.
settle() {
  local busy
  for _ in $(seq 1 30); do
    busy=$(machine_busy)
    ((busy <= 10)) && break
    echo "   machine ${busy}% busy before the run; waiting" >&2; sleep 1
  done
  echo "$busy"
}

# cpu_sample ROOT: "server kthreads busy total irq" in clock ticks so far: CPU (user + system) of
# ROOT and all its descendants, of kernel threads, and from /proc/stat the machine's busy and
# total time and its interrupt time (irq + softirq), all cores together.
cpu_sample() {
  # /proc/PID/stat: after the ")" closing the command name, field 2 is the ppid and fields 12
  # and 13 are utime and stime.
  { sed 's/^\([0-9]*\) .*) /\1 /' /proc/[0-9]*/stat 2>/dev/null || true; } |
    awk -v root="$1" '{ppid[$1] = $3; cpu[$1] = $13 + $14}
      END {
        for (p in ppid) {
          if (p == 2 || ppid[p] == 2) { k += cpu[p]; continue }
          q = p; while (q != "" && q != root && q > 1) q = ppid[q]
          if (q == root) s += cpu[p]
        }
        while ((getline line < "/proc/stat") > 0) if (line ~ /^cpu /) {
          split(line, f, " ")
          busy = f[2] + f[3] + f[4] + f[7] + f[8] + f[9]; total = busy + f[5] + f[6]; irq = f[7] + f[8]
        }
        printf "%d %d %d %d %d\n", s, k, busy, total, irq
      }'
}

# The load: form-encoded client_credentials with HTTP Basic, statuses tallied per wrk thread.
lua="$scratch/token.lua"
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total, parts, non2xx = {}, {}, 0
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do
    table.insert(parts, status .. "=" .. n)
    if status < 200 or status > 299 then non2xx = non2xx + n end
  end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
  io.write("non2xx: " .. non2xx .. "\n")
end
LUA

# sanity URL ID SECRET: one token request must answer 200 with an access_token, else abort.
sanity() {
  local code body="$scratch/sanity.json"
  code=$(curl -s --max-time 10 -o "$body" -w '%{http_code}' -u "$2:$3" \
    -H 'Content-Type: application/x-www-form-urlencoded' -d grant_type=client_credentials "$1") || true
  if [[ $code != 200 ]] || ! jq -e '.access_token | strings' "$body" >/dev/null 2>&1; then
    echo "sanity check failed against $1: HTTP $code, body:" >&2; cat "$body" >&2; echo >&2; exit 1
  fi
  echo "   sanity: HTTP 200, token_type $(jq -r .token_type "$body"), expires_in $(jq -r .expires_in "$body"), scope $(jq -r '.scope // "-"' "$body")" >&2
  cp "$body" "$scratch/last-token.json"
}

# token_kind: "JWT <alg>" or "opaque", from the last sanity response.
token_kind() {
  local t
  t=$(jq -r .access_token "$scratch/last-token.json")
  if [[ $t == *.*.* ]]; then
    echo "JWT $(cut -d. -f1 <<<"$t" | tr '_-' '/+' | base64 -d 2>/dev/null | jq -r '"\(.alg), typ \(.typ)"' 2>/dev/null)"
  else
    echo "opaque (${#t} characters)"
  fi
}

# load NAME URL ID SECRET PID: warm-up, then the measured run, repeated (at most $attempts runs)
# while other processes on the machine took more than $max_foreign% of a core during it; keeps
# the run they disturbed least. Sets R_rps R_p50 R_p99 R_non2xx R_statuses R_errors; CPU during
# that run in % of one core: R_cpu (the server's process tree), R_wrk (the load generator),
# R_kernel (kernel threads and interrupts), R_foreign (every other process); R_busy (the machine's
# busy % of all cores just before the warm-up), R_try (which attempt).
load() {
  local name=$1 url=$2 pid=$5 out s0 s1 w try best=
  export BENCH_BASIC
  BENCH_BASIC=$(printf '%s:%s' "$3" "$4" | base64 -w0)
  for try in $(seq 1 "$attempts"); do
    local busy cpu wrk_cpu kernel foreign TIMEFORMAT='%U %S'
    busy=$(settle)
    echo "== $name: warm-up ${warmup}s" >&2
    wrk -t"$threads" -c"$connections" -d"${warmup}s" -s "$lua" "$url" >/dev/null
    echo "== $name: ${duration}s, $connections connections, $threads threads (attempt $try; machine ${busy}% busy before)" >&2
    s0=$(cpu_sample "$pid")
    { time wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$lua" "$url" >"$scratch/wrk.out" 2>&1; } 2>"$scratch/wrk.time"
    s1=$(cpu_sample "$pid")
    out=$(cat "$scratch/wrk.out")
    echo "$out" >&2
    w=$(awk '{print $1 + $2}' "$scratch/wrk.time")
    read -r cpu wrk_cpu kernel foreign <<<"$(awk -v a="$s0" -v b="$s1" -v w="$w" -v n="$(nproc)" \
      -v hz="$(getconf CLK_TCK)" 'BEGIN {
      split(a, x, " "); split(b, y, " ")
      secs = (y[4] - x[4]) / n / hz              # wall time of the run
      pct = 100 / hz / secs                      # ticks to % of one core
      srv = (y[1] - x[1]) * pct; kern = (y[2] - x[2] + y[5] - x[5]) * pct; gen = w * 100 / secs
      other = (y[3] - x[3]) * pct - srv - kern - gen
      printf "%.0f %.0f %.0f %.0f\n", srv, gen, kern, (other < 0) ? 0 : other }')"
    echo "   CPU during the run (% of one core): server $cpu, wrk $wrk_cpu, kernel $kernel, other processes $foreign" >&2
    if [[ -z $best ]] || ((foreign < R_foreign)); then
      best=$try
      read -r R_rps R_p50 R_p99 <<<"$(wrk_summary "$out")"
      R_non2xx=$(awk '/^non2xx:/ {print $2}' <<<"$out")
      R_statuses=$(sed -n 's/^statuses: //p' <<<"$out")
      R_errors=$(sed -n 's/^ *Socket errors: //p' <<<"$out")
      R_errors=${R_errors:-none}
      R_cpu=$cpu R_wrk=$wrk_cpu R_kernel=$kernel R_foreign=$foreign R_busy=$busy R_try=$try
    fi
    ((foreign <= max_foreign)) && break
    echo "   other processes used ${foreign}% of a core during the run; measuring again" >&2
  done
}

# ms VALUE: a wrk latency ("812.00us", "5.55ms", "1.2s") in milliseconds.
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }
row() { echo "| $1 | $2 | $R_rps | $R_p50 | $R_p99 | $R_non2xx ($R_statuses; socket errors: $R_errors) | ${R_cpu}% / ${R_wrk}% / ${R_kernel}% / ${R_foreign}% | $R_try |"; }

rows=()

# ---- Berth ----------------------------------------------------------------------------------
if ! $peer_only; then
  port_free "$berth_port"
  (cd "$repo_root" && cargo build --release --bin berth)
  # The token endpoint is rate limited per client and per IP with low defaults; lift both so the
  # benchmark measures issuance, not the limiter.
  cfg="$scratch/berth.toml"
  cat >"$cfg" <<'TOML'
[auth.oauth]
token_requests_per_second_per_client = 1000000
token_requests_per_second_per_ip = 1000000

# No instances are measured here: no spares, and nothing left running afterwards.
[instances]
spares = 0
stop_on_shutdown = true
TOML
  start_server "$berth_port" "$dir" --config "$cfg"
  json='content-type: application/json'
  ACCESS=$(curl -sf --max-time 10 -H "$json" -d "{\"username\":\"admin\",\"password\":\"$PW\"}" "$B/api/v1/auth/token" | jq -r .access_token)
  expires=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
  client=$(curl -s --max-time 10 -H "$json" -H "Authorization: Bearer $ACCESS" \
    -d "{\"name\":\"bench\",\"expires_at\":\"$expires\",\"scopes\":[\"projects:read\"]}" "$B/api/v1/auth/clients")
  CID=$(jq -r '.client_id // empty' <<<"$client" 2>/dev/null || true)
  CSECRET=$(jq -r '.client_secret // empty' <<<"$client" 2>/dev/null || true)
  [[ -n $CID && -n $CSECRET ]] || { echo "creating the API client failed: $client" >&2; exit 1; }
  sanity "$B/oauth/token" "$CID" "$CSECRET"
  berth_token=$(token_kind)
  load "Berth" "$B/oauth/token" "$CID" "$CSECRET" "$SERVER_PID"
  berth_rps=$R_rps berth_p99=$R_p99
  rows+=("$(row "Berth $(git -C "$repo_root" rev-parse --short HEAD)$(git -C "$repo_root" diff --quiet HEAD 2>/dev/null || echo '+changes')" "1 process (tokio, all cores)")")
  stop_server; SERVER_PID=
fi

# start_peer NAME DIR PROBE-URL LOG command...: runs the command in DIR in the background (PEER_PID
# is the command's own pid) and waits up to 30 s until PROBE-URL answers with any HTTP status.
start_peer() {
  local name=$1 where=$2 probe=$3 log=$4; shift 4
  (cd "$where" && exec "$@") >"$log" 2>&1 &
  PEER_PID=$!
  for _ in $(seq 1 150); do
    [[ $(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$probe" 2>/dev/null) != 000 ]] && return 0
    kill -0 "$PEER_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "$name did not start; log:" >&2; cat "$log" >&2; exit 1
}
# stop_peer: SIGTERM, then SIGKILL if it is still there after 5 s.
stop_peer() {
  kill -TERM "$PEER_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$PEER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PEER_PID" 2>/dev/null || true
  wait "$PEER_PID" 2>/dev/null || true
  PEER_PID=
}

PEER_SECRET=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
peer_names=()
peer_rps=()

# ---- Peer 1: node oidc-provider (npm) ------------------------------------------------------
echo "== npm ci (bench/peer/oidc-provider)" >&2
(cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
oidc_version=$(jq -r .version "$oidc_dir/node_modules/oidc-provider/package.json")
node_version=$(node --version)
for workers in 1 2; do
  port_free "$oidc_port"
  P="http://127.0.0.1:$oidc_port"
  start_peer oidc-provider "$oidc_dir" "$P/.well-known/openid-configuration" "$scratch/oidc-provider.log" \
    env NODE_ENV=production PEER_PORT="$oidc_port" PEER_WORKERS="$workers" \
    PEER_CLIENT_ID=bench PEER_CLIENT_SECRET="$PEER_SECRET" PEER_TOKEN_FORMAT=jwt node server.mjs
  sanity "$P/token" bench "$PEER_SECRET"
  oidc_token=$(token_kind)
  if ((workers == 1)); then shape="1 node process"; else shape="node:cluster, $workers worker processes"; fi
  load "oidc-provider ($shape)" "$P/token" bench "$PEER_SECRET" "$PEER_PID"
  rows+=("$(row "oidc-provider $oidc_version (npm), node $node_version" "$shape")")
  peer_names+=("oidc-provider, $shape"); peer_rps+=("$R_rps")
  stop_peer
done

# ---- Peer 2: django-oauth-toolkit (PyPI) under gunicorn -----------------------------------
port_free "$dot_port"
echo "== pip install -r bench/peer/django-oauth-toolkit/requirements.txt" >&2
[[ -x $dot_dir/.venv/bin/python ]] || python3 -m venv "$dot_dir/.venv"
"$dot_dir/.venv/bin/pip" install -q --disable-pip-version-check -r "$dot_dir/requirements.txt" >&2
dot_version=$("$dot_dir/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("django-oauth-toolkit"))')
dot_stack=$("$dot_dir/.venv/bin/python" -c 'import importlib.metadata as m, platform; print("Django " + m.version("Django") + ", gunicorn " + m.version("gunicorn") + ", Python " + platform.python_version())')
export PEER_DB="$scratch/dot.sqlite3" PYTHONDONTWRITEBYTECODE=1
PEER_DJANGO_SECRET=$(head -c 32 /dev/urandom | base64 -w0); export PEER_DJANGO_SECRET
(cd "$dot_dir" && .venv/bin/python setup_peer.py bench "$PEER_SECRET")
dot_workers=$((2 * $(nproc) + 1))
P="http://127.0.0.1:$dot_port"
start_peer django-oauth-toolkit "$dot_dir" "$P/token" "$scratch/dot.log" \
  .venv/bin/gunicorn --bind "127.0.0.1:$dot_port" --workers "$dot_workers" --worker-class sync \
  --no-control-socket --log-level warning wsgi:application
sanity "$P/token" bench "$PEER_SECRET"
dot_token=$(token_kind)
shape="gunicorn, $dot_workers sync workers"
load "django-oauth-toolkit ($shape)" "$P/token" bench "$PEER_SECRET" "$PEER_PID"
rows+=("$(row "django-oauth-toolkit $dot_version (PyPI); $dot_stack" "$shape")")
peer_names+=("django-oauth-toolkit"); peer_rps+=("$R_rps")
stop_peer

table=$(printf '%s\n' "| server | processes | tokens/s | p50 | p99 | non-2xx (statuses) | CPU: server / wrk / kernel / other processes | attempt |" "|---|---|---|---|---|---|---|---|" "${rows[@]}")
if $peer_only; then
  echo; echo "$table"; echo; echo "oidc-provider tokens: $oidc_token; django-oauth-toolkit tokens: $dot_token"
  exit 0
fi

ratios=()
best_peer=0
for i in "${!peer_rps[@]}"; do
  ratios+=("$(awk -v b="$berth_rps" -v p="${peer_rps[$i]}" 'BEGIN {printf "%.1f", b / p}')× ${peer_names[$i]}")
  best_peer=$(awk -v a="$best_peer" -v b="${peer_rps[$i]}" 'BEGIN {print (b > a) ? b : a}')
done
goal=$(awk -v r="$berth_rps" -v p99="$(ms "$berth_p99")" -v best="$best_peer" 'BEGIN {
  ok = (r >= 10000 && p99 <= 10 && r > best)
  printf "%s (%s tokens/s %s 10,000; p99 %.2f ms %s 10 ms; %s the best peer)", ok ? "met" : "NOT met",
    r, (r >= 10000) ? "≥" : "<", p99, (p99 <= 10) ? "≤" : ">", (r > best) ? "ahead of" : "behind" }')

out=$(mktemp)
cat >"$out" <<MD
## OAuth token endpoint, client credentials (bench/oauth.sh)

Measured $(date -u +%Y-%m-%d) on $(machine_description). wrk $threads threads, $connections
connections, ${duration} s per run after a ${warmup} s warm-up, each request a form-encoded
\`grant_type=client_credentials\` with the client authenticated by HTTP Basic (\`client_secret_basic\`);
all servers on 127.0.0.1, measured one after the other in the same session. Goal: ≥ 10,000
tokens/s with p99 ≤ 10 ms, and ahead of every peer measured: **$goal**.

| server | processes | tokens/s | p50 | p99 | non-2xx (statuses) | CPU: server / wrk / kernel / other processes | attempt |
|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

Berth / peer throughput: $(printf '%s; ' "${ratios[@]}" | sed 's/; $//').

- **Berth**: release build, \`BERTH_LOG=warn\`, one process on tokio's multi-threaded runtime,
  with the PostgreSQL it runs in its data directory. The token endpoint's rate limits (per client
  and per IP; low by default on purpose) were raised to 1,000,000/s for this run
  (\`[auth.oauth] token_requests_per_second_per_client\` and \`token_requests_per_second_per_ip\`), so
  the limiter is not what is measured. A confidential client with scope \`projects:read\`, created
  through \`POST /api/v1/auth/clients\`. Tokens: $berth_token. Per token: client from cache, secret
  digest compared, one Ed25519 signature, and one \`auth.token.issued\` audit row handed to a
  background writer that inserts batches into PostgreSQL (its CPU is part of Berth's figure).
- **oidc-provider** ([panva/node-oidc-provider](https://github.com/panva/node-oidc-provider)) $oidc_version
  from npm, pinned in \`bench/peer/oidc-provider/package-lock.json\` (the newest 8.x: 9.x declares
  node $node_version unsupported and wants 22 LTS), \`NODE_ENV=production\`, default in-memory
  adapter, one confidential client (\`client_secret_basic\`), the \`clientCredentials\` feature and a
  default resource indicator with \`accessTokenFormat: 'jwt'\`, signed with an Ed25519 key (Berth's
  algorithm). Tokens: $oidc_token. JWT access tokens are not written to the adapter, so issuance is
  stateless and workers share nothing. Node runs each process's JavaScript on one thread, so one
  process is limited to about one core (plus its GC and libuv threads); the 2-worker run
  (node:cluster, one worker per core) is the fair comparison on 2 cores. Its tokens carry no
  \`scope\` (none was requested and oidc-provider adds none by default).
- **django-oauth-toolkit** $dot_version from PyPI ($dot_stack; pinned in
  \`bench/peer/django-oauth-toolkit/requirements.txt\`), \`DEBUG = False\`, gunicorn with the worker
  count its documentation recommends (2 × cores + 1) of its default sync worker class (one request
  at a time per worker, no keep-alive, so every request opens a new connection), SQLite in WAL
  mode (faster here than PostgreSQL 15 or gthread workers). Tokens: $dot_token, one row inserted
  per token under SQLite's single write lock. The client secret is stored unhashed
  (\`hash_client_secret=False\`): DOT's default hashes it with Django's password hasher (PBKDF2,
  about a million iterations), which would turn every token request into a password verification.
- "CPU" is CPU time during the measured run in % of one core (the machine has
  $(( $(nproc) * 100 ))%): the server's whole process tree (Berth with its PostgreSQL; node and gunicorn
  with their workers), the load generator (wrk), the kernel (its threads, e.g. writeback, and
  interrupt handling), and every other process on the machine, which may be shared with other
  work: before each run the script waits (up to about a minute) for the machine to be nearly
  idle, and a run during which other processes used more than ${max_foreign}% of a core is repeated (at
  most $attempts runs per server; the table shows the least disturbed one and which attempt it was).
  When the columns add up to about $(( $(nproc) * 100 ))% the machine is saturated and the server shares it
  with wrk. At saturation the mean latency is connections ÷ throughput (Little's law), so p50 and
  p99 at $connections connections mostly measure queueing.
MD
write_section oauth "$out"
rm -f "$out"
cat "$bench_root/RESULTS.md"
