"""The fake Discord of the tests: the product's own Discord sandbox
(``arrakis_engine/sandbox/discord_server.py``, which enforces Discord's rules at their strictest
reading), served from a thread on a free loopback port, with its state in memory so a test can
read and change guilds directly (``discord.guilds[...]``)."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from arrakis_engine.sandbox.discord_server import DiscordSandbox, Guild, SlidingWindow, Window  # noqa: F401


class FakeDiscord(DiscordSandbox):
    def __init__(self, token: str = "test-bot-token", *, global_limit: int = 50,
                 route_limits: dict | None = None) -> None:
        super().__init__(token, global_limit=global_limit, route_limits=route_limits)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = None
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.url = f"http://127.0.0.1:{self.port}/api/v10"

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
