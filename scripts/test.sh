#!/usr/bin/env bash
# Set up everything and run the whole test suite: services, a virtualenv, the package, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh
# Test-only chain tools (anvil, solc-js, OpenZeppelin), pinned by package-lock.json.
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: npm is missing; installing Node.js from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --no-audit --no-fund --loglevel=error
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# Three test processes side by side, whole files each (every process has its own PostgreSQL
# database and its own Redis server): much of the suite waits on Discord's pacing and on processes
# starting, so three keep two cores busy; ARRAKIS_TEST_WORKERS=0 runs everything in one process.
exec .venv/bin/python -m pytest -n "${ARRAKIS_TEST_WORKERS:-3}" --dist loadfile "$@"
