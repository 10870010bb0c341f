# Shared helpers for Berth's benchmarks: start a release server on a scratch data directory,
# describe the machine, and replace a marked section of RESULTS.md.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$bench_root/.." && pwd)

machine_description() {
  local cpu mem
  cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
  mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
  echo "$(nproc) cores ($cpu), $mem RAM, $(uname -sr); load generator on the same machine"
}

# start_server PORT DIR [extra serve args...]: sets SERVER_PID, B (base URL), PW (admin password).
start_server() {
  local port=$1 dir=$2; shift 2
  rm -rf "$dir"; mkdir -p "$dir"; chmod 755 "$dir"
  PW="bench-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  B="http://127.0.0.1:$port"
  BERTH_ADMIN_PASSWORD=$PW BERTH_LOG=${BERTH_LOG:-warn} BERTH_LOG_FORMAT=json \
    "${BERTH_BIN:-$repo_root/target/release/berth}" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" "$@" \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -sf "$B/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "server did not become ready; log:" >&2; cat "$dir/server.log" >&2; return 1
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# write_section NAME FILE: replaces <!-- NAME:start --> … <!-- NAME:end --> in RESULTS.md
# with FILE's contents (appending the section if it is not there yet).
write_section() {
  python3 - "$bench_root/RESULTS.md" "$1" "$2" <<'PY'
import sys, pathlib
results, name, body = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3]).read_text()
start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
text = results.read_text() if results.exists() else "# Benchmark results\n\nEach section is rewritten by the script named in it.\n"
block = f"{start}\n{body.rstrip()}\n{end}"
if start in text and end in text:
    text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
results.write_text(text)
PY
}

# bench_venv DIR: makes DIR a venv with psycopg 3 unless it already is one.
bench_venv() {
  "$1/bin/python" -c 'import psycopg' 2>/dev/null && return 0
  python3 -m venv "$1"
  "$1/bin/pip" install -q 'psycopg[binary]>=3.1,<3.4'
}

# wrk_summary OUTPUT: "<req/s> <p50> <p99>" from `wrk --latency` output.
wrk_summary() {
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print rps, p50, p99}' <<<"$1"
}
