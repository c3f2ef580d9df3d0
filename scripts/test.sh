#!/usr/bin/env bash
# Set up everything and run the whole test suite: services, a virtualenv, the package, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
exec .venv/bin/python -m pytest "$@"
