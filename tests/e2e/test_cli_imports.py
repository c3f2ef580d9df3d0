"""Commands load only the stacks they use: `community list` reads the database and nothing else,
so it must not pay for web3 / eth_account / py_ecc (about two seconds to import), hvac, regopy,
Textual or interactions.py, even with a chain and Vault configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HEAVY = ("web3", "eth_account", "py_ecc", "hvac", "regopy", "textual", "interactions")

PROBE = """
import atexit, json, sys
path = sys.argv[1]
atexit.register(lambda: open(path, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["arrakis", "community", "list", "--json"]
from arrakis_engine.cli import main
main()
"""


def test_community_list_imports_no_chain_vault_rego_or_ui_stack(database_url, redis_url, tmp_path, engine):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "VAULT_", "RPC_URLS_"))}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path),
                "RPC_URLS_BERACHAIN": "http://127.0.0.1:9", "VAULT_ADDR": "http://127.0.0.1:9",
                "VAULT_TOKEN": "not-used-by-this-command"})
    out = tmp_path / "modules.json"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PROBE, str(out)], env=env, capture_output=True, text=True,
                          timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)  # the communities, as --json lists them
    loaded = {m.split(".")[0] for m in json.loads(out.read_text())}
    assert not loaded & set(HEAVY), f"community list imported {sorted(loaded & set(HEAVY))} ({took:.2f} s)"
    print(f"community list: {took:.2f} s wall time on a server PostgreSQL")


def test_the_console_command_still_loads_from_its_entry_point(tmp_path):
    """Front ends' commands are looked up only when asked for: `arrakis console --help` finds it."""
    env = {**os.environ, "ARRAKIS_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "console", "--help"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "operator console" in done.stdout
    listed = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "--help"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert "console" in listed.stdout
