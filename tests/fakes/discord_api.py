"""The fake Discord of the tests: the product's own Discord sandbox
(``arrakis_engine/sandbox/discord_server.py``, which enforces Discord's rules at their strictest
reading), served from a thread on a free loopback port, with its state in memory so a test can
read and change guilds directly (``discord.guilds[...]``)."""

from __future__ import annotations

from arrakis_engine.sandbox.discord_server import DiscordSandbox, Guild, SlidingWindow, Window  # noqa: F401
from tests.fakes.loopback import LoopbackServer


class FakeDiscord(DiscordSandbox, LoopbackServer):
    def __init__(self, token: str = "test-bot-token", *, global_limit: int = 50,
                 route_limits: dict | None = None) -> None:
        super().__init__(token, global_limit=global_limit, route_limits=route_limits)
        self.serve(self.app())
        self.url = f"http://127.0.0.1:{self.port}/api/v10"
