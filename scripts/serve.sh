#!/usr/bin/env bash
# Builds Berth and runs the server with its own PostgreSQL in ./berth-data.
# Extra arguments go to `berth serve` (see `berth serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prereqs.sh
cargo build --release --bin berth

# As root, Berth runs PostgreSQL as the `postgres` user, which must be able to reach the data
# directory. A checkout under a private home directory (/root is 0700) is out of its reach, so
# fall back to /var/lib/berth unless a data directory was chosen explicitly.
if [ "$(id -u)" = 0 ] && [ -z "${BERTH_DATA_DIR:-}" ] && [[ " $* " != *" --data-dir"* ]] \
   && ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
  echo "note: the postgres user cannot reach $PWD; using --data-dir /var/lib/berth" >&2
  set -- --data-dir /var/lib/berth "$@"
fi
exec ./target/release/berth serve "$@"
