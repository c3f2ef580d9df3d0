"""The bot's gateway session as Discord asks it to be handled: closed with 1000 on SIGTERM (and the
process exits 0 within 5 s), "starting up" in Arrakis's words, 1-5 s before identifying again
after op 9, and a resume on READY's resume_gateway_url after any resumable close."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from arrakis_bot.app import STARTING_UP
from tests.bot.conftest import RunningBot
from tests.bot.test_bot_process import process_env
from tests.fakes.discord_gateway import EPHEMERAL


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigterm_closes_the_session_with_1000_and_exits_0(database_url, redis_url, tmp_path, bot_engine, fake):
    env = process_env(database_url, redis_url, tmp_path, fake)
    fake.identified.clear()
    closes = len(fake.client_closes)
    proc = subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "bot"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        fake.wait_identified(60)
        _wait(lambda: "verify" in fake.commands.get("global", {}), 30, "the commands")
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = proc.wait(10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read()
    assert code == 0, out
    assert took < 5, f"took {took:.1f} s to stop"
    _wait(lambda: len(fake.client_closes) > closes, 5, "the close frame")
    assert fake.client_closes[closes:] == [1000]
    assert "Traceback" not in out


def test_a_command_before_the_bot_is_ready_is_answered_in_arrakis_words(bot_engine, fake):
    fake.slow_commands = 4.0  # the bot compares its commands with Discord's before it is ready
    fake.identified.clear()
    import asyncio
    import threading

    from arrakis_bot.app import build_bot, shutdown

    client = build_bot(bot_engine)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(client.astart()), daemon=True)
    thread.start()
    try:
        fake.wait_identified(30)
        it = fake.wait(fake.raw_command("100000000000000901", "230000000000000009",
                                        {"id": "1399999999999999998", "name": "profile", "type": 1, "options": []}))
        assert it.messages()[0]["flags"] & EPHEMERAL
        assert it.text() == STARTING_UP
        assert "Arrakis is starting up" in STARTING_UP
        _wait(lambda: client.is_ready, 30, "the bot ready")  # then no request is left half-way at shutdown
    finally:
        fake.slow_commands = 0.0
        asyncio.run_coroutine_threadsafe(shutdown(client), loop).result(15)
        thread.join(15)


@pytest.mark.slow
def test_after_op_9_it_waits_1_to_5_seconds_then_identifies(bot_engine, fake):
    running = RunningBot(bot_engine, fake)
    try:
        before = len(fake.connects)
        sent = fake.invalidate_session(resumable=False)
        _wait(lambda: any(c[1] == 2 for c in fake.connects[before:]), 15, "a new IDENTIFY")
        identify = next(c for c in fake.connects[before:] if c[1] == 2)
        waited = identify[2] - sent
        assert 1.0 <= waited <= 5.5, f"identified {waited:.2f} s after op 9"
        assert not any(c[1] == 6 for c in fake.connects[before:])  # an invalid session is not resumed
        _wait(lambda: running.client.is_ready, 20, "the bot ready again")
    finally:
        running.stop()


def test_a_resumable_close_resumes_on_the_resume_gateway_url(bot_engine, fake):
    running = RunningBot(bot_engine, fake)
    closes = len(fake.client_closes)
    try:
        before = len(fake.connects)
        fake.drop(4000)  # Discord: "Unknown error", reconnect and resume
        _wait(lambda: len(fake.connects) > before, 15, "a reconnect")
        path, op, _ = fake.connects[before]
        assert (path, op) == ("/gateway/resume", 6), fake.connects[before:]
        _wait(lambda: running.client.is_ready, 20, "the resumed session ready")
        closes = len(fake.client_closes)  # the dropped socket's own end may be recorded late (1006)
    finally:
        running.stop()
    _wait(lambda: 1000 in fake.client_closes[closes:], 5, "the close frame")
    assert 1000 in fake.client_closes[closes:]  # and the test's stop closed the resumed session properly
