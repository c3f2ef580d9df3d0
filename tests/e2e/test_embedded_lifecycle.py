"""The embedded servers stop when their last user does (with ``ARRAKIS_EMBEDDED_GRACE=0``): a
burst worker that finishes, and processes that are killed without letting go (the janitor stops
what they leave); with a grace period they outlive the last command for that long, so the next
one answers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.e2e.test_cli import _processes_naming
from tests.fixtures.workers import wait_for


def _env(data: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DISCORD_API_BASE", "DISCORD_BOT_TOKEN")}
    env["ARRAKIS_DATA_DIR"] = str(data)
    env["ARRAKIS_EMBEDDED_GRACE"] = "0"
    return env


def _servers(data: Path) -> list[str]:
    """The kinds of server still running on the data folder."""
    names = []
    for pid in _processes_naming(data):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        for kind in (b"postgres", b"redis-server", b"discord_server", b"arrakis_engine.embedded"):
            if kind in cmd:
                names.append(kind.decode())
    return sorted(names)


def test_a_burst_worker_leaves_no_server_running(tmp_path):
    data = tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "worker", "--burst"], env=_env(data),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "still used by" not in done.stderr
    wait_for(lambda: not _servers(data), timeout=10, explain=lambda: f"still running: {_servers(data)}")
    assert not (data / "redis" / "pid").exists() and not (data / "postgres" / "postmaster.pid").exists()


@pytest.mark.slow
def test_killed_users_do_not_keep_the_servers_alive(tmp_path):
    data = tmp_path / "data"
    env = _env(data)
    workers = [subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        wait_for(lambda: {"postgres", "redis-server"} <= set(_servers(data)), timeout=60,
                 explain=lambda: f"running: {_servers(data)}")
        wait_for(lambda: len(_users(data / "redis")) == 2, timeout=60)
        first, second = workers
        first.send_signal(signal.SIGKILL)
        first.wait()
        time.sleep(1.5)  # three janitor rounds: the survivor still uses every server
        assert {"postgres", "redis-server"} <= set(_servers(data))
        conf = (data / "redis" / "redis.conf").read_text()
        password = next(x.split(" ", 1)[1] for x in conf.splitlines() if x.startswith("requirepass "))
        client = redis.Redis(unix_socket_path=str(data / "redis" / "redis.sock"), password=password)
        assert client.ping()
        client.close()
        second.send_signal(signal.SIGKILL)
        second.wait()
        wait_for(lambda: not _servers(data), timeout=15, explain=lambda: f"still running: {_servers(data)}")
        assert not (data / "postgres" / "postmaster.pid").exists()
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()


def _users(folder: Path) -> list:
    import json

    try:
        return json.loads((folder / "users.json").read_text())
    except (OSError, ValueError):
        return []


def _postgres_pid(data: Path) -> str | None:
    try:
        return (data / "postgres" / "postmaster.pid").read_text().split("\n", 1)[0]
    except OSError:
        return None


@pytest.mark.slow
def test_servers_outlive_the_last_command_for_the_grace_period(tmp_path):
    """The first command on a new folder says what it is doing, a line per phase; a second one
    within the grace period finds the servers up (same PostgreSQL, nothing started, no phase
    line); once the grace period is over with nobody using them the janitor stops them."""
    data = tmp_path / "data"
    env = {**_env(data), "ARRAKIS_EMBEDDED_GRACE": "15"}  # room for a second command's start on a busy machine
    cmd = [sys.executable, "-m", "arrakis_engine.cli", "community", "list"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stderr
    lines = first.stderr.strip().splitlines()
    assert lines[0].startswith(f"creating the embedded PostgreSQL in {data / 'postgres'} (first run in this folder)")
    assert "starting the embedded Redis…" in lines
    assert "bringing the database schema up to date…" in lines
    assert "Traceback" not in first.stderr
    pg = _postgres_pid(data)
    assert pg and {"postgres", "redis-server"} <= set(_servers(data))  # still up after the command ended
    started = time.monotonic()
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr
    assert second.stderr.strip() == ""  # nothing to start, nothing to say
    assert second.stdout == first.stdout
    assert _postgres_pid(data) == pg
    time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))
    assert {"postgres", "redis-server"} <= set(_servers(data))  # within the grace period
    wait_for(lambda: not _servers(data), timeout=15 + 15, explain=lambda: f"still running: {_servers(data)}")
    assert not (data / "postgres" / "postmaster.pid").exists() and not (data / "redis" / "pid").exists()
