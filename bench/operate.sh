#!/usr/bin/env bash
# How long a change to a running instance takes to be in effect, measured from the moment the
# API request is sent (issue 10):
#   1. a firewall rule added: until a new TLS + SCRAM connection from the address it lets in
#      succeeds; and removed: until such a connection is refused;
#   2. a reloadable configuration change (`work_mem`): until a new session's `SHOW work_mem`
#      says the new value.
# Each is repeated ROUNDS times on one instance. Also the API's answer time (202) alone. The
# polling connects over TLS from this machine, so the resolution is one connection attempt
# (about 5–15 ms here). Writes the `operate` section of RESULTS.md.
#
# Usage: bench/operate.sh
#   ROUNDS=20           changes of each kind
#   BENCH_BUDGET=900    the whole run is stopped after this many seconds
#   BERTH_BIN=…         measure this binary instead of building target/release/berth
#   BENCH_VENV=…        the venv with psycopg (default /tmp/berth-bench-venv; kept between runs)
# Needs curl, jq, python3 (with venv), pgBackRest (scripts/prereqs.sh). Loopback only.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rounds=${ROUNDS:-20}
budget=${BENCH_BUDGET:-900}
venv=${BENCH_VENV:-/tmp/berth-bench-venv}
for tool in curl jq python3 pgbackrest; do
  command -v "$tool" >/dev/null || { echo "install $tool" >&2; exit 1; }
done
if [[ -z ${BERTH_BIN:-} ]]; then
  (cd "$repo_root" && cargo build --release --bin berth)
  build_rev="$(git -C "$repo_root" rev-parse --short HEAD)$(git -C "$repo_root" diff --quiet HEAD -- crates Cargo.lock 2>/dev/null || echo '+changes')"
else
  build_rev="\`$BERTH_BIN\`"
fi
if ! "$venv/bin/python" -c 'import psycopg' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'psycopg[binary]>=3.1,<3.4'
fi

dir=/tmp/berth-op
conf=$(mktemp -d /tmp/berth-op-conf.XXXXXX)
cleanup() {
  trap - EXIT INT TERM
  [[ -n ${WATCHDOG:-} ]] && kill "$WATCHDOG" 2>/dev/null || true
  if [[ -n ${SERVER_PID:-} ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$dir" "$conf"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
( trap 'kill $! 2>/dev/null; exit 0' TERM; sleep "$budget" & wait $!
  echo "budget of $budget s ran out; stopping" >&2; kill -TERM $$ ) &
WATCHDOG=$!

cat >"$conf/berth.toml" <<TOML
[instances]
first_port = 30700
last_port = 30709
spares = 1
stop_on_shutdown = true
TOML
sed -n '/^# ---- python ----$/,/^PY$/p' "${BASH_SOURCE[0]}" | sed '$d' >"$conf/bench.py"
echo "== starting the server" >&2
start_server 18096 "$dir" --config "$conf/berth.toml"
curl -sf "$B/api/v1/ca.pem" >"$conf/ca.pem"
"$venv/bin/python" "$conf/bench.py" --base "$B" --password "$PW" --ca "$conf/ca.pem" \
  --rounds "$rounds" >"$conf/result.json"
jq . "$conf/result.json" >&2

r() { jq -r "$1" "$conf/result.json"; }
cat >"$conf/section.md" <<MD
## Changes to a running instance (bench/operate.sh)

$(date -u +%Y-%m-%d), build $build_rev, $(machine_description). One 256MB instance, $rounds
changes of each kind, each timed from the moment the request is sent until a new TLS + SCRAM
connection from this machine sees the change (polling: one connection attempt at a time, so the
figures include up to one attempt of $(r .connect_ms_p50) ms).

| change | API answer (202) p50 / max | in effect p50 | p95 | max |
|---|---|---|---|---|
| firewall rule added (a connection from its address is accepted) | $(r .rule_add.answer_p50) / $(r .rule_add.answer_max) ms | $(r .rule_add.p50) ms | $(r .rule_add.p95) ms | $(r .rule_add.max) ms |
| firewall rule removed (a new connection from its address is refused) | $(r .rule_remove.answer_p50) / $(r .rule_remove.answer_max) ms | $(r .rule_remove.p50) ms | $(r .rule_remove.p95) ms | $(r .rule_remove.max) ms |
| \`work_mem\` changed (a new session's \`SHOW work_mem\` has it) | $(r .config.answer_p50) / $(r .config.answer_max) ms | $(r .config.p50) ms | $(r .config.p95) ms | $(r .config.max) ms |

Goal (issue 10): a firewall rule in effect within a second, a reloadable parameter at once.
Each change is a job: the time is the job runner picking it up (it is woken at once), the file
written, PostgreSQL's reload (for the configuration, Berth waits until the server has reread
its files, \`pg_conf_load_time()\`, before the job ends), and the first connection after it.
MD
write_section operate "$conf/section.md"
echo "wrote the operate section of bench/RESULTS.md" >&2
exit 0

: <<'PY'
# ---- python ----
import argparse
import json
import statistics
import sys
import time
import urllib.request

import psycopg

ap = argparse.ArgumentParser()
ap.add_argument("--base")
ap.add_argument("--password")
ap.add_argument("--ca")
ap.add_argument("--rounds", type=int)
a = ap.parse_args()


def call(method, path, body=None, token=None):
    req = urllib.request.Request(a.base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
        return json.loads(text) if text else None


token = call("POST", "/api/v1/auth/token", {"username": "admin", "password": a.password})["access_token"]
project = call("POST", "/api/v1/projects", {"name": "operate"}, token)["id"]
made = call("POST", "/api/v1/instances", {"name": "op", "project_id": project, "engine": "postgres",
            "version": "15", "region": "local", "memory": "256MB",
            "firewall_rules": [{"cidr": "127.0.0.2/32"}]}, token)
iid, password = made["id"], made["password"]
deadline = time.time() + 180
while True:
    inst = call("GET", f"/api/v1/instances/{iid}", token=token)
    if inst["status"] == "running" and not inst.get("current_job"):
        break
    assert time.time() < deadline, inst
    time.sleep(0.2)
url = inst["connection_url"] + f"&sslrootcert={a.ca}&connect_timeout=5"


def job_done(job):
    while True:
        j = call("GET", f"/api/v1/jobs/{job}", token=token)
        if j["state"] not in ("PENDING", "STARTED"):
            assert j["state"] == "SUCCESS", j
            return
        time.sleep(0.05)


def connects():
    try:
        with psycopg.connect(url, password=password) as c:
            return c.execute("SHOW work_mem").fetchone()[0]
    except psycopg.OperationalError:
        return None


def post_when_free(method, path, body):
    while True:
        try:
            t0 = time.perf_counter()
            answer = call(method, path, body, token)
            return t0, (time.perf_counter() - t0) * 1000, answer
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise
            time.sleep(0.2)


def summary(effects, answers):
    effects.sort()
    return {"p50": round(statistics.median(effects)), "p95": round(effects[int(0.95 * (len(effects) - 1))]),
            "max": round(max(effects)), "answer_p50": round(statistics.median(answers)),
            "answer_max": round(max(answers))}


connect_times = []
add, add_answers, remove, remove_answers = [], [], [], []
for i in range(a.rounds):
    t0, answered, answer = post_when_free("POST", f"/api/v1/instances/{iid}/firewall-rules",
                                          {"cidr": "127.0.0.1/32", "description": "bench"})
    while connects() is None:
        pass
    add.append((time.perf_counter() - t0) * 1000)
    add_answers.append(answered)
    job_done(answer["job_id"])
    rule = answer["rule"]["id"]
    t0, answered, answer = post_when_free("DELETE", f"/api/v1/instances/{iid}/firewall-rules/{rule}", None)
    while True:
        c0 = time.perf_counter()
        if connects() is None:
            break
        connect_times.append((time.perf_counter() - c0) * 1000)
    remove.append((time.perf_counter() - t0) * 1000)
    remove_answers.append(answered)
    job_done(answer["job_id"])

# Let this host in for the configuration rounds.
_, _, answer = post_when_free("POST", f"/api/v1/instances/{iid}/firewall-rules", {"cidr": "127.0.0.1/32"})
job_done(answer["job_id"])
cfg, cfg_answers = [], []
for i in range(a.rounds):
    value = f"{4 + i}MB"
    t0, answered, answer = post_when_free("PATCH", f"/api/v1/instances/{iid}/config",
                                          {"parameters": {"work_mem": value}})
    while connects() != value:
        pass
    cfg.append((time.perf_counter() - t0) * 1000)
    cfg_answers.append(answered)
    job_done(answer["job_id"])

print(json.dumps({
    "rounds": a.rounds,
    "connect_ms_p50": round(statistics.median(connect_times)) if connect_times else None,
    "rule_add": summary(add, add_answers),
    "rule_remove": summary(remove, remove_answers),
    "config": summary(cfg, cfg_answers),
}))
PY
