"""The fake Discord of the bot tests: the product's bot sandbox
(``arrakis_engine/sandbox/gateway.py``: REST, the gateway with zlib-stream, application commands,
interaction callbacks, follow-ups, with Discord's rules at their strictest reading) served from a
thread on a free loopback port, plus what a test does from its own thread: send interactions and
wait for the answers, add the bot to a server."""

from __future__ import annotations

import asyncio
import time

from arrakis_engine.sandbox.gateway import (  # noqa: F401 (re-exported for the tests)
    APP_ID, CALLBACK_DEADLINE, EPHEMERAL, MANAGE_GUILD, DiscordBotSandbox, Interaction, InvalidForm, Session,
)
from tests.fakes.loopback import LoopbackServer


class FakeDiscordBot(DiscordBotSandbox, LoopbackServer):
    """Start with ``FakeDiscordBot()``; ``url`` is the REST base (``Route.BASE``)."""

    def __init__(self, token: str = "test-bot-token", *, heartbeat_interval_ms: int = 41250,
                 granted_intents: int = 0, **kwargs) -> None:
        super().__init__(token, heartbeat_interval_ms=heartbeat_interval_ms, granted_intents=granted_intents,
                         **kwargs)
        self.serve(self.app())
        self.url = f"http://127.0.0.1:{self.port}/api/v10"

    slow_commands = 0.0  # seconds the command list takes to answer (a bot still starting up)

    async def get_commands(self, request):
        if self.slow_commands:
            await asyncio.sleep(self.slow_commands)
        return await super().get_commands(request)

    def live_session(self) -> Session:
        session = self.session_for(None)
        if session is None:
            raise AssertionError("no bot is connected to the gateway")
        return session

    def invalidate_session(self, *, resumable: bool = False) -> float:
        """Send op 9 INVALID_SESSION, as Discord does; a session that may not be resumed is
        forgotten. Returns when it was sent (``time.monotonic()``)."""
        session = self.live_session()

        async def send() -> float:
            if not resumable:
                self.sessions.pop(session.id, None)
            await self._send(session.ws, session, {"op": 9, "d": resumable, "s": None, "t": None})
            return time.monotonic()

        return self.run(send())

    def drop(self, code: int = 4000, reason: str = "Unknown error") -> None:
        """Close the bot's connection with ``code`` (4000: resumable, as Discord documents)."""
        session = self.live_session()
        self.run(self._close(session.ws, code, reason))

    def run(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def join(self, guild_id: str, members: list | int = 0, name: str = "") -> None:
        """The bot is added to a server: the guild is made (if new) and, with a bot connected on
        the guild's shard, it gets GUILD_CREATE as Discord sends it (the bot's commands are global:
        nothing is registered there)."""
        new = guild_id not in self.guilds
        self.guild(guild_id, members=members, name=name)
        session = self.session_for(guild_id)
        if session is None or not new:
            return
        self.run(self._dispatch(session, "GUILD_CREATE", self._guild_payload(guild_id)))

    def wait_identified(self, timeout: float = 20) -> None:
        if not self.identified.wait(timeout):
            raise AssertionError("the bot did not identify on the gateway")

    def command(self, guild_id: str, user_id: str, name: str, options: list | None = None, *,
                permissions: int = 0, subcommand: str | None = None) -> Interaction:
        """Send an APPLICATION_COMMAND interaction as Discord does (see ``command_data``)."""
        try:
            data = self.command_data(guild_id, name, options, subcommand=subcommand)
        except KeyError as exc:
            raise AssertionError(str(exc)) from None
        return self._interact(2, guild_id, user_id, data, permissions)

    def raw_command(self, guild_id: str, user_id: str, data: dict, *, permissions: int = 0) -> Interaction:
        """Send an APPLICATION_COMMAND whose ``data`` is exactly ``data`` (a malformed one, as a
        forged or buggy client could make Discord relay)."""
        return self._interact(2, guild_id, user_id, data, permissions)

    def autocomplete(self, guild_id: str, user_id: str, name: str, options: list, *, subcommand: str | None = None,
                     permissions: int = 0) -> Interaction:
        """An APPLICATION_COMMAND_AUTOCOMPLETE interaction: ``options`` with one ``"focused": True``."""
        if subcommand:
            options = [{"name": subcommand, "type": 1, "options": options}]
        scope = self.commands.get(guild_id, {}) | self.commands.get("global", {})
        data = {"id": scope[name]["id"], "name": name, "type": 1, "options": options, "guild_id": guild_id}
        return self._interact(4, guild_id, user_id, data, permissions)

    def component(self, guild_id: str, user_id: str, custom_id: str, *, values: list | None = None,
                  message: dict | None = None, permissions: int = 0) -> Interaction:
        data = {"custom_id": custom_id, "component_type": 3 if values is not None else 2}
        if values is not None:
            data["values"] = values
        return self._interact(3, guild_id, user_id, data, permissions, message=message)

    def modal_submit(self, guild_id: str, user_id: str, custom_id: str, fields: dict, *,
                     message: dict | None = None, permissions: int = 0) -> Interaction:
        """A MODAL_SUBMIT; ``message``: the message whose component opened the modal, if any."""
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in fields.items()]
        return self._interact(5, guild_id, user_id, {"custom_id": custom_id, "components": rows}, permissions,
                              message=message)

    def _interact(self, kind: int, guild_id: str, user_id: str, data: dict, permissions: int,
                  message: dict | None = None) -> Interaction:
        it = self.new_interaction(kind, guild_id, user_id, data, permissions, message)
        if not self.run(self.deliver(it)):
            raise AssertionError("no bot is connected to the gateway")
        return it

    def wait(self, it: Interaction, what: str = "an answer", *, timeout: float = 10, followups: int = 0,
             check=None) -> Interaction:
        """Wait until the interaction is answered (and has ``followups`` follow-ups, or
        ``check(it)`` is true)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if it.callbacks and len(it.followups) >= followups and (check is None or check(it)):
                return it
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; got callbacks={it.callbacks!r} "
                             f"original={it.original!r} followups={it.followups!r}")
