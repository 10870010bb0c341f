#!/usr/bin/env bash
# Memory taken by a burst of password hashing: RSS of `berth serve` before, right after, and 30 s
# after 200 concurrent correct sign-ins (20 users × 10, default argon2id m=19 MiB, t=2), then
# after a second burst (memory must not keep growing). Writes its section of RESULTS.md.
# Usage: bench/hash_memory.sh [label]   (BERTH_BIN=target/debug/berth measures another build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
label=${1:-}
if [ -z "${BERTH_BIN:-}" ]; then
  (cd "$repo_root" && cargo build --release --bin berth)
fi
bin=${BERTH_BIN:-$repo_root/target/release/berth}

dir=/tmp/berth-bench-hashmem
mkdir -p "$dir.cfg"
# No instances; no address throttling in the way of 200 parallel sign-ins from one address.
printf '[instances]\nspares = 0\nstop_on_shutdown = true\n\n[auth.throttle]\nmax_failures_per_ip = 100000\n' \
  >"$dir.cfg/berth.toml"
start_server 18300 "$dir" --config "$dir.cfg/berth.toml"
trap stop_server EXIT
json='content-type: application/json'
rss() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$SERVER_PID/status"; }

ACCESS=$(curl -sf -H "$json" -d "{\"username\":\"admin\",\"password\":\"$PW\"}" "$B/api/v1/auth/token" | jq -r .access_token)
USER_PW="burst-password-$RANDOM$RANDOM"
for i in $(seq 1 20); do
  curl -sf -H "$json" -H "Authorization: Bearer $ACCESS" \
    -d "{\"username\":\"burst$i\",\"email\":\"burst$i@example.com\",\"password\":\"$USER_PW\"}" "$B/api/v1/users" >/dev/null
done
sleep 2
before=$(rss)

# 200 sign-ins at once; a short 429/503 is retried after its Retry-After, as a client would.
burst() {
  python3 - "$B" "$USER_PW" <<'PY'
import collections, concurrent.futures, json, sys, time, urllib.request, urllib.error
base, pw = sys.argv[1], sys.argv[2]
def sign_in(i):
    body = json.dumps({"username": f"burst{i % 20 + 1}", "password": pw}).encode()
    first = None
    for _ in range(100):
        req = urllib.request.Request(base + "/api/v1/auth/token", body, {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return first or r.status, r.status
        except urllib.error.HTTPError as e:
            first = first or e.code
            retry = int(e.headers.get("retry-after", "0"))
            if e.code in (429, 503) and retry <= 5:
                time.sleep(retry)
                continue
            return first, e.code
with concurrent.futures.ThreadPoolExecutor(200) as pool:
    results = list(pool.map(sign_in, range(200)))
print(" ".join(f"{k}:{v}" for k, v in sorted(collections.Counter(r[1] for r in results).items())),
      "| first answers", " ".join(f"{k}:{v}" for k, v in sorted(collections.Counter(r[0] for r in results).items())))
PY
}
echo "== burst 1" >&2
answers1=$(burst)
after1=$(rss)
sleep 30
idle=$(rss)
echo "== burst 2" >&2
answers2=$(burst)
after2=$(rss)

out=$(mktemp)
cat >"$out" <<MD
## Memory of a password-hashing burst (bench/hash_memory.sh)

Measured $(date -u +%Y-%m-%d) on $(machine_description). Binary \`${bin#"$repo_root"/}\`${label:+ ($label)},
default argon2id parameters (m=19 MiB, t=2, p=1), hashing pool of $(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 )) slot(s).
200 concurrent correct sign-ins (20 users × 10), short retries honoured.

| moment | RSS of \`berth serve\` |
|---|---|
| before (20 users created) | ${before} MB |
| right after burst 1 | ${after1} MB |
| 30 s later | ${idle} MB |
| right after burst 2 | ${after2} MB |

Final answers, burst 1: ${answers1}; burst 2: ${answers2}.
MD
cat "$out"
if [ -z "${BENCH_NO_WRITE:-}" ]; then write_section hash_memory "$out"; fi
rm -f "$out"
