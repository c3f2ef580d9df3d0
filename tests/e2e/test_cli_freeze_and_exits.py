"""What the ``arrakis`` command does when the kill switch holds a community (says so at once and
refuses, or waits visibly with a time-out), and the exit statuses the README promises: 0 done,
1 refused or failed, 2 a bad value on the command line, 130 interrupted by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin(engine):
    """A platform admin with MFA: (name, actor, backup codes)."""
    name = f"frz-{uuid.uuid4().hex[:8]}"
    from tests.fixtures.operators import add_operator

    codes = list(add_operator(engine, name, ["platform_admin"]).backup_codes)
    return name, engine.operators.get(name).actor(), codes


@pytest.fixture
def on_fake(run, discord):
    """``run`` pointed at the fake Discord."""
    extra = {"DISCORD_API_BASE": discord.url, "DISCORD_BOT_TOKEN": discord.token}
    return lambda *args: run(*args, extra_env=extra)


def test_work_on_a_frozen_community_is_refused_at_once_naming_scope_reason_who_since(
        on_fake, engine, discord, make_community, admin):
    name, actor, codes = admin
    c = make_community()
    discord.guild(c.guild_id)
    on = on_fake("killswitch", "activate", "--scope", "community", "--community", str(c.id),
                 "--reason", "admin account stolen", "--as", name, "--code", codes.pop())
    assert on.exit_code == 0, on.output
    try:
        for args in (["reconcile", str(c.id)], ["reconcile", str(c.id), "--dry-run"],
                     ["synthesize", str(c.id), "--now"], ["synthesize", str(c.id)],
                     ["members", "sync", str(c.id), "--now"],
                     ["drift", str(c.id)]):
            t = time.monotonic()
            out = on_fake(*args)
            assert time.monotonic() - t < 10, args
            assert out.exit_code == 1, (args, out.output)
            text = " ".join(out.output.split())
            for part in ("kill switch holds community", "scope community", f"by operator:{name}", "since 20",
                         "admin account stolen", "--wait",
                         f"arrakis killswitch release --scope community --community {c.id}"):
                assert part in text, (args, part, text)
        assert discord.requests == 0  # nothing reached Discord
        # --wait with a time-out: one visible line at once, then a refusal when the time is up.
        t = time.monotonic()
        waited = on_fake("reconcile", str(c.id), "--wait", "--wait-timeout", "1")
        assert waited.exit_code == 1 and 1 <= time.monotonic() - t < 10
        assert "waiting: the kill switch holds community" in waited.output
        assert "still frozen after waiting 1 s" in waited.output
    finally:
        engine.killswitch.release(actor, scope="community", community_id=str(c.id), code=codes.pop())


def test_wait_goes_ahead_when_the_freeze_is_lifted(on_fake, engine, discord, make_community, admin):
    name, actor, codes = admin
    c = make_community()
    discord.guild(c.guild_id)
    engine.killswitch.activate(actor, scope="global", reason="drill", code=codes.pop())
    releaser = threading.Timer(1.5, lambda: engine.killswitch.release(actor, scope="global", code=codes.pop()))
    releaser.start()
    try:
        out = on_fake("synthesize", str(c.id), "--now", "--wait", "--wait-timeout", "60")
    finally:
        releaser.join()
    assert out.exit_code == 0, out.output
    assert "waiting: the kill switch holds every community (scope global" in out.output
    assert "created" in out.output and discord.requests > 0


def test_demo_under_a_global_freeze_is_refused_at_once(on_fake, engine, admin):
    name, actor, codes = admin
    engine.killswitch.activate(actor, scope="global", reason="drill", code=codes.pop())
    try:
        out = on_fake("demo")
    finally:
        engine.killswitch.release(actor, scope="global", code=codes.pop())
    assert out.exit_code == 1 and "the kill switch holds every community (scope global" in out.output
    assert "arrakis killswitch release --scope global" in out.output


def test_ctrl_c_exits_130(database_url, redis_url, tmp_path, engine, discord, make_community, admin):
    """Ctrl-C (SIGINT) while a command waits: one line, exit status 130, not 1."""
    name, actor, codes = admin
    c = make_community()
    engine.killswitch.activate(actor, scope="community", community_id=str(c.id), reason="drill", code=codes.pop())
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path),
           "DISCORD_API_BASE": discord.url, "DISCORD_BOT_TOKEN": discord.token, "PYTHONFAULTHANDLER": "1"}
    # A shell starts a command with Ctrl-C's default; the test process may have it ignored (an
    # xdist worker), which a child would inherit and Python would then leave ignored.
    proc = subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "reconcile", str(c.id), "--wait"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = [proc.stderr.readline() for _ in range(1)]
        while not seen[-1].startswith("waiting:") and seen[-1] and len(seen) < 50:  # past any log line
            seen.append(proc.stderr.readline())
        assert seen[-1].startswith("waiting: the kill switch holds community"), seen
        proc.send_signal(signal.SIGINT)
        try:
            _, rest = proc.communicate(timeout=60)  # (a loaded machine: the exit is what counts)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints where every thread is stuck
            _, stuck = proc.communicate(timeout=30)
            raise AssertionError(f"no exit 60 s after Ctrl-C; where it was:\n{stuck[-6000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.killswitch.release(actor, scope="community", community_id=str(c.id), code=codes.pop())
    assert proc.returncode == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest and "Aborted" not in rest


@pytest.mark.parametrize("args, status, words", [
    # 2: a bad value on the command line, whoever checks it (click or the engine).
    (["community", "create", "--name", "X", "--guild-id", "123456789012340001", "--theme", "nope"], 2,
     "unknown theme 'nope'"),
    (["community", "create", "--name", "X", "--guild-id", "123456789012340001", "--subscription", "gold"], 2,
     "'gold' is not one of"),
    (["community", "create", "--name", "X", "--guild-id", "x"], 2, "is not a Discord server id"),
    (["community", "create", "--name", " ", "--guild-id", "123456789012340001"], 2, "name"),
    (["themes", "tier", "sietch", "0"], 2, "rank must be a whole number from 1 up"),
    (["themes", "tier", "sietch", "-1"], 2, "rank must be a whole number from 1 up"),
    (["themes", "tier", "sietch", "one"], 2, "'one' is not a valid integer"),
    (["themes", "show", "nope"], 2, "unknown theme 'nope'"),
    (["reconcile", "not-a-uuid"], 2, "not a valid UUID"),
    (["eligibility", "add-asset", "{cid}", "--chain", "berachain", "--kind", "erc20", "--address", "0x12"], 2,
     "asset address"),
    (["eligibility", "add-asset", "{cid}", "--chain", "berachain", "--kind", "native", "--min-amount", "-5"], 2,
     "--min-amount"),
    (["manifests", "list", "{cid}", "--last", "0"], 2, "--last"),
    (["no-such-command"], 2, "No such command"),
    # 1: refused (the value is fine, the answer is no) or not found.
    (["community", "create", "--name", "X", "--guild-id", "123456789012340002", "--theme", "sietch"], 1,
     "needs a premium subscription"),
    (["reconcile", "00000000-0000-4000-8000-000000000000"], 1, "no community"),
    # 0: done.
    (["themes", "tier", "sietch", "3"], 0, "Naib"),
])
def test_exit_status_table(run, make_community, args, status, words):
    cid = str(make_community().id)
    out = run(*[a.replace("{cid}", cid) for a in args])
    assert out.exit_code == status, out.output
    assert words in out.output
    assert "Traceback" not in out.output


def test_exit_statuses_are_those_the_readme_lists():
    readme = (ROOT / "README.md").read_text()
    line = " ".join(readme[readme.index("Exit statuses:"):].split("\n\n")[0].split())
    for said in ("0 done", "1 refused or failed", "2 wrong usage", "3 done in part", "130"):
        assert said in line, line
