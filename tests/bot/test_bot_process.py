"""`arrakis bot` as the Procfile runs it: without a token it says so in one line and stops; with
one it connects to the (fake) Discord, registers its commands once (a restart sends nothing new)
and answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.bot.conftest import new_guild_id


def process_env(database_url: str, redis_url: str, data_dir, fake=None) -> dict:
    """The environment of an `arrakis bot` process on the test servers (and the fake Discord)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(data_dir)})
    if fake is not None:
        env.update({"DISCORD_API_BASE": fake.url, "DISCORD_BOT_TOKEN": fake.token})
    return env


def test_a_test_server_without_a_token_one_line_and_a_failing_status(database_url, redis_url, tmp_path):
    """DISCORD_API_BASE without DISCORD_BOT_TOKEN is a mistake (with neither, the bot connects to
    the local sandbox: tests/e2e/test_procfile.py)."""
    env = {**process_env(database_url, redis_url, tmp_path), "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10"}
    out = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "bot"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: the bot needs DISCORD_BOT_TOKEN with DISCORD_API_BASE (or neither of them for the local Discord "
        "sandbox)"]
    assert "Traceback" not in out.stderr + out.stdout


@pytest.mark.slow
def test_the_bot_process_registers_once_and_answers(database_url, redis_url, tmp_path, bot_engine, fake):
    env = process_env(database_url, redis_url, tmp_path, fake)
    guild = new_guild_id()
    fake.guild(guild)
    puts = []
    for _ in range(2):
        fake.identified.clear()
        log = open(tmp_path / "bot.log", "a")
        proc = subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "bot"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            fake.wait_identified(60)
            deadline = time.monotonic() + 30
            while "verify" not in fake.commands.get("global", {}) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)  # the client is ready once its commands are compared
            it = fake.wait(fake.command(guild, "610000000000000001", "leaderboard"), timeout=20)
            assert "not set up with Arrakis yet" in it.text()
            puts.append(fake.command_puts)
        finally:
            proc.terminate()
            assert proc.wait(30) is not None
            log.close()
    assert puts[0] >= 1 and puts[1] == puts[0]  # the second start found the commands as they were


def test_resume_after_the_bot_process_is_killed(database_url, redis_url, tmp_path, bot_engine, fake):
    """The wizard lives in Redis: a bot killed outright (SIGKILL) and started again picks the
    admin's setup up where it was."""
    from tests.bot.conftest import ADMIN_PERMS
    from tests.bot.test_onboard import Wizard

    env = process_env(database_url, redis_url, tmp_path, fake)
    guild = new_guild_id()
    fake.guild(guild)

    def start():
        fake.identified.clear()
        proc = subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "bot"], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "bot.log", "a"))
        fake.wait_identified(60)
        deadline = time.monotonic() + 30
        while "onboard" not in fake.commands.get(guild, {}) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        return proc

    proc = start()
    try:
        w = Wizard(fake, guild).to_asset_step("Killed Bot", "arbitrum")
    finally:
        proc.kill()
        proc.wait(10)
    proc = start()
    try:
        w._wait(fake.command(guild, "310000000000000001", "resume", permissions=ADMIN_PERMS))
        assert "step 3 of 8: Asset" in w.title  # where it was left
        w.click("cancel")
        assert "Not deployed: abandoned by the user" in w.text
    finally:
        proc.terminate()
        proc.wait(30)
