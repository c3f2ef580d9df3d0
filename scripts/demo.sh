#!/usr/bin/env bash
# Install Arrakis into .venv and run the main job on the embedded default: with no DATABASE_URL
# or REDIS_URL set, it starts its own PostgreSQL and Redis in the data folder (ARRAKIS_DATA_DIR,
# or the platform's user-data folder) and reuses them on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/arrakis demo "$@"
