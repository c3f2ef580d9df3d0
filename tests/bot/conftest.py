"""The bot against the fake Discord: one fake (REST + gateway) and one engine for the module,
the real interactions.py client running on an event loop of its own thread, a community with
ranked members."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

import pytest

from arrakis_engine.bootstrap import build_engine
from tests.fakes.discord_gateway import FakeDiscordBot

ADMIN_PERMS = 1 << 5  # MANAGE_GUILD


class RunningBot:
    """The bot's client on a thread with its own loop; :meth:`stop` closes it cleanly."""

    def __init__(self, engine, fake: FakeDiscordBot) -> None:
        from arrakis_bot.app import build_bot

        fake.identified.clear()
        self.client = build_bot(engine)
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bot", daemon=True)
        self.thread.start()
        fake.wait_identified()
        deadline = time.monotonic() + 20
        while not self.client.is_ready and time.monotonic() < deadline:
            if self.error:
                raise self.error
            time.sleep(0.05)
        assert self.client.is_ready, "the bot did not become ready"

    def _run(self) -> None:
        self.task = self.loop.create_task(self.client.astart())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # surfaced by the test that waits on it
            self.error = exc

    def stop(self) -> None:
        """The bot's own shutdown (the session closed with code 1000; 12 s for the closing
        handshake, not the product's 4, as the suite shares two cores with a second test
        process); if it has not ended within 16 s the run is cancelled instead."""
        from arrakis_bot.app import shutdown

        if self.thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(shutdown(self.client, 12.0), self.loop).result(16)
            except TimeoutError:
                self.loop.call_soon_threadsafe(self.task.cancel)
            self.thread.join(15)


@pytest.fixture(scope="module")
def fake():
    d = FakeDiscordBot(heartbeat_interval_ms=1000)
    yield d
    d.close()


@pytest.fixture(scope="module")
def bot_engine(settings, engine, fake, anvil):  # engine: the session database, migrated
    """An engine on the session database and Redis, its Discord the fake, berachain on anvil.
    Redis is emptied when the module ends: the jobs it queued and did not run were for this
    module's fake Discord, which ends with it, so the next module's worker would only dead-letter
    them ("Discord does not know" that guild) and leave dead letters to later tests."""
    eng = build_engine(replace(settings, discord_api_base=fake.url, discord_bot_token=fake.token,
                               retry_backoff=(1, 1, 1), rpc_urls={"berachain": (anvil.url,)}))
    yield eng
    eng.close()
    engine.redis.flushdb()


@pytest.fixture(scope="module")
def bot(bot_engine, fake):
    running = RunningBot(bot_engine, fake)
    yield running
    running.stop()


def new_guild_id() -> str:
    import uuid

    return str(10**18 + uuid.uuid4().int % (9 * 10**18))


def component_of(message: dict, action: str) -> dict:
    """The button or menu of ``message`` whose custom id ends with ``:action``."""
    for row in message.get("components") or []:
        for c in row.get("components") or []:
            if str(c.get("custom_id", "")).endswith(f":{action}"):
                return c
    raise AssertionError(f"no component {action!r} in {message.get('components')!r}")
