#!/usr/bin/env bash
# Installs what Berth needs from the system that cargo cannot fetch: the PostgreSQL server
# binaries (Berth runs its own PostgreSQL and provisions instances with them), and with --test the
# test suite's browser and Python tools.
# Usage: scripts/prereqs.sh [--test]   (--test also installs what the test suite needs)
set -euo pipefail

with_test=false
for arg in "$@"; do
  case "$arg" in
    --test) with_test=true ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
  return 1
}

packages=()
have_pg || packages+=(postgresql)
# Every instance archives its WAL and is backed up with pgBackRest.
command -v pgbackrest >/dev/null 2>&1 || packages+=(pgbackrest)
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client)
command -v curl >/dev/null 2>&1 || packages+=(curl)
if $with_test; then
  # The activation-page tests drive headless Chromium through ChromeDriver (Debian packages).
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || packages+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)
fi

if $with_test; then
  # The OpenAPI tests run Python tools (below) in a virtualenv of their own.
  command -v python3 >/dev/null 2>&1 || packages+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv python3-pip)
fi

install_packages() {
  [ ${#packages[@]} -eq 0 ] && return 0
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null 2>&1 || { echo "Please install as root: apt-get install ${packages[*]}" >&2; exit 1; }
      sudo="sudo"
    fi
    echo "Installing ${packages[*]} ..." >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  else
    echo "Berth needs the PostgreSQL server binaries (initdb, postgres) and psql." >&2
    echo "Install your distribution's PostgreSQL server package (e.g. 'dnf install postgresql-server')" >&2
    echo "or put the PostgreSQL server's bin directory on PATH." >&2
    exit 1
  fi
}
install_packages

# The OpenAPI tests (crates/berth/tests/api/openapi.rs) check the served document with a real
# validator, generate a Python client from it and fuzz the API with schemathesis. Pinned, in a
# virtualenv of their own; reinstalled only when the pins change. scripts/test.sh passes the
# location as BERTH_PYTOOLS (the tests fall back to the same default).
pytools_pins="openapi-spec-validator==0.9.0
openapi-python-client==0.29.1
schemathesis==4.32.5
authlib==1.9.6"
# The console test checks every main page for accessibility problems with axe-core (the
# engine of Lighthouse's and Chrome's accessibility audits), loaded into Chromium: one pinned
# file from the npm registry, checked against its hash at every run. scripts/test.sh passes
# its path as BERTH_AXE (keep the version there and in tests/api/console.rs the same).
axe_version=4.10.2
axe_sha256=b511cd9dec01c76f4b2ad1723b66b6db37d4c2eb4ed199076e1829d9ee7b75e3
if $with_test; then
  axe="${BERTH_AXE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/axe-core-$axe_version.min.js}"
  if ! echo "$axe_sha256  $axe" | sha256sum -c --quiet >/dev/null 2>&1; then
    echo "Fetching axe-core $axe_version ..." >&2
    mkdir -p "$(dirname "$axe")"
    # Unpacked beside its destination, so the final rename is atomic.
    tmp="$(mktemp -d "$(dirname "$axe")/.axe.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL -o "$tmp/axe.tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$axe_version.tgz"
    tar -xzf "$tmp/axe.tgz" -C "$tmp" package/axe.min.js
    echo "$axe_sha256  $tmp/package/axe.min.js" | sha256sum -c --quiet
    mv "$tmp/package/axe.min.js" "$axe"
    rm -rf "$tmp"
    trap - EXIT
  fi
fi

if $with_test; then
  venv="${BERTH_PYTOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/pytools}"
  if [ "$(cat "$venv/.berth-pins" 2>/dev/null)" != "$pytools_pins" ]; then
    echo "Installing the Python test tools into $venv ..." >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $pytools_pins
    printf '%s' "$pytools_pins" >"$venv/.berth-pins"
  fi
fi
