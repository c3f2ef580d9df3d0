"""The whole platform on one machine, as the README says: the Procfile's release step first, then
every long-running process together under honcho, on the embedded default: the bot connects to
the local Discord sandbox's gateway, the watcher follows a local anvil (or, with no chain
configured, waits with one line), a member's /profile sent through the sandbox is answered, and
Ctrl-C stops every process cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import _processes_naming
from tests.fixtures.workers import wait_for

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("worker", "scheduler", "web", "bot", "watcher")
GUILD, MEMBER = "123456789012345678", "223456789012345678"


def _env(data: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "REDIS_URL", "DISCORD_", "RPC_URLS_", "VAULT_", "S3_", "SLACK_"))
           and k not in ("PORT", "ARRAKIS_PUBLIC_URL")}
    bin_dir = str(Path(sys.executable).parent)
    env.update({"ARRAKIS_DATA_DIR": str(data), "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
                "ARRAKIS_EMBEDDED_GRACE": "10"})
    return env


def _honcho(env: dict) -> str:
    found = shutil.which("honcho", path=env["PATH"])
    if not found:
        pytest.fail("honcho is not installed (it is in the test extras: pip install -e '.[test]')")
    return found


@pytest.mark.parametrize("with_chain", [False, True], ids=["no-chain", "anvil"])
@pytest.mark.slow
def test_release_then_every_process_under_honcho_on_the_embedded_default(tmp_path, request, with_chain):
    data = tmp_path / "data"
    env = _env(data)
    if with_chain:
        env["RPC_URLS_BERACHAIN"] = request.getfixturevalue("anvil").url
    honcho = _honcho(env)
    release = subprocess.run([honcho, "start", "-f", str(ROOT / "Procfile"), "-d", str(tmp_path), "release"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert release.returncode == 0, release.stdout + release.stderr
    assert "release.1 stopped (rc=0)" in release.stdout
    made = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "community", "create", "--name", "Procfile",
                           "--guild-id", GUILD, "--theme", "basic", "--subscription", "free"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr

    log_path = tmp_path / "honcho.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([honcho, "start", "-f", str(ROOT / "Procfile"), "-d", str(tmp_path), *PROCESSES],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def port():
            try:
                return int((data / "discord" / "port").read_text())
            except (OSError, ValueError):
                return None

        sent = {}

        def send_profile() -> bool:
            if proc.poll() is not None:
                raise AssertionError("honcho stopped early:\n" + log_path.read_text())
            if not port():
                return False
            r = httpx.post(f"http://127.0.0.1:{port()}/sandbox/interactions", timeout=10,
                           json={"guild_id": GUILD, "user_id": MEMBER, "command": "profile"})
            if r.status_code in (404, 409):  # the bot has not connected or registered /profile yet
                return False
            assert r.status_code == 200, r.text
            sent["id"] = r.json()["id"]
            return True

        wait_for(send_profile, timeout=120, explain=lambda: log_path.read_text())
        answer = {}

        def answered() -> bool:
            r = httpx.get(f"http://127.0.0.1:{port()}/sandbox/interactions/{sent['id']}", timeout=10)
            answer.update(r.json())
            return bool(answer.get("callbacks"))

        wait_for(answered, timeout=20, explain=lambda: json.dumps(answer))
        assert answer["original"]["flags"] & 64  # ephemeral
        assert "not a member of this community yet: /verify links a wallet" in answer["text"]
        ready = ["connecting to the local Discord sandbox at http://127.0.0.1:", "Listening on discord-synthesis",
                 "wallet page on http://0.0.0.0:", "reconcile round: 1 active communities",
                 "berachain: watching with 2 confirmation(s), from block " if with_chain else
                 "no chain is configured (RPC_URLS_<CHAIN>): nothing to watch; waiting until stopped"]
        wait_for(lambda: all(line in log_path.read_text() for line in ready), timeout=60,
                 explain=lambda: log_path.read_text())
        out = log_path.read_text()
        if with_chain:
            assert "no chain is configured" not in out and "step failed" not in out, out
        for name in PROCESSES:
            assert f"{name}.1 stopped" not in out, out
        sandbox = port()
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out = log_path.read_text()
    for name in PROCESSES:
        assert f"{name}.1 stopped (rc=0)" in out, out
    assert "Traceback" not in out, out
    stats = httpx.get(f"http://127.0.0.1:{sandbox}/sandbox/stats", timeout=10).json()
    assert stats["gateway_client_closes"] == [1000]  # the bot ended its session properly
    # nobody uses the embedded servers any more: the janitor stops them once the grace period is over
    wait_for(lambda: not _processes_naming(data), timeout=60,
             explain=lambda: f"still running on the data folder: {_processes_naming(data)}")
