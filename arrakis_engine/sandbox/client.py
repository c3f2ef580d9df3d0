"""Discord on the embedded default: the sandbox process, reached through the same REST client
as real Discord (so the same pacing, route buckets and freeze flags apply).

The sandbox is started on the first Discord call, not when the engine is built, so commands
that never touch Discord never start it. A guild Arrakis works on is made in the sandbox the
first time it is used (real Discord has no such call; guilds there exist already).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import httpx

from ..embedded import EmbeddedDiscord
from ..errors import DiscordError
from ..metrics import NULL_METRICS, Metrics
from ..adapters.discord.rest import DiscordREST
from . import SANDBOX_TOKEN

if TYPE_CHECKING:
    from redis import Redis

    from ..synthesis.freeze import FreezeFlags
    from ..adapters.discord.redis_bucket import RedisTokenBucket


class SandboxDiscord:
    """The DiscordGuild port on the local sandbox."""

    is_sandbox = True

    def __init__(self, server: EmbeddedDiscord, redis: Redis, bucket: RedisTokenBucket, freeze: FreezeFlags, *,
                 metrics: Metrics = NULL_METRICS) -> None:
        self.metrics = metrics
        self.server = server
        self._args = (redis, bucket, freeze)
        self._rest: DiscordREST | None = None
        self._base: str | None = None
        self._guilds: set[str] = set()
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return self._rest.calls if self._rest else 0

    @property
    def base_url(self) -> str:
        self._client()
        return self._base

    @property
    def _root(self) -> str:
        """The sandbox's own address (its control endpoints live beside the API, not under it)."""
        return self.base_url.rsplit("/api/", 1)[0]

    def _client(self) -> DiscordREST:
        with self._lock:
            if self._rest is None:
                self._base = self.server.start()
                self._rest = DiscordREST(self._base, SANDBOX_TOKEN, *self._args, metrics=self.metrics)
            return self._rest

    def _again_if_gone(self, call):
        """``call()``, once more after joining the sandbox afresh if it could not be reached (another
        engine of this process may have let it go: the server is shared per process)."""
        try:
            return call()
        except DiscordError as exc:
            if not (exc.retryable and "could not be reached" in str(exc)):
                raise
            with self._lock:
                if self._rest is not None:
                    self._rest.close()
                self._rest, self._base = None, None
                self._guilds.clear()
            return call()

    def add_guild(self, guild_id: str, *, name: str = "", members: list[str] = ()) -> dict:
        """Make (or fill) a sandbox guild: its members are the ids given."""
        return self._again_if_gone(lambda: self._add_guild(guild_id, name=name, members=members))

    def _add_guild(self, guild_id: str, *, name: str = "", members: list[str] = ()) -> dict:
        try:
            resp = httpx.post(f"{self._root}/sandbox/guilds", timeout=10,
                              json={"id": str(guild_id), "name": name, "members": list(members)})
        except httpx.HTTPError as exc:
            raise DiscordError(f"the Discord sandbox could not be reached ({type(exc).__name__})",
                               retryable=True) from exc
        if resp.status_code != 200:
            raise DiscordError(f"the Discord sandbox refused the guild: {resp.text[:200]}", status=resp.status_code)
        self._guilds.add(str(guild_id))
        return resp.json()

    def stats(self) -> dict:
        """What the sandbox saw: requests, 429s, the busiest one-second window."""
        return httpx.get(f"{self._root}/sandbox/stats", timeout=10).json()

    def _guild(self, guild_id: str) -> DiscordREST:
        client = self._client()
        if str(guild_id) not in self._guilds:
            self.add_guild(guild_id)
        return client

    # --- the port ----------------------------------------------------------------------------

    def list_roles(self, guild_id, **kw):
        return self._guild(guild_id).list_roles(guild_id, **kw)

    def create_role(self, guild_id, **kw):
        return self._guild(guild_id).create_role(guild_id, **kw)

    def update_role(self, guild_id, role_id, **kw):
        return self._guild(guild_id).update_role(guild_id, role_id, **kw)

    def delete_role(self, guild_id, role_id, **kw):
        return self._guild(guild_id).delete_role(guild_id, role_id, **kw)

    def list_channels(self, guild_id, **kw):
        return self._guild(guild_id).list_channels(guild_id, **kw)

    def create_channel(self, guild_id, **kw):
        return self._guild(guild_id).create_channel(guild_id, **kw)

    def update_channel(self, channel_id, **kw):
        return self._client().update_channel(channel_id, **kw)

    def delete_channel(self, channel_id, **kw):
        return self._client().delete_channel(channel_id, **kw)

    def get_member(self, guild_id, user_id, **kw):
        return self._guild(guild_id).get_member(guild_id, user_id, **kw)

    def list_members(self, guild_id, **kw):
        return self._guild(guild_id).list_members(guild_id, **kw)

    def set_member_roles(self, guild_id, user_id, roles, **kw):
        return self._guild(guild_id).set_member_roles(guild_id, user_id, roles, **kw)

    def send_message(self, channel_id, content, **kw):
        return self._client().send_message(channel_id, content, **kw)

    def send_direct_message(self, user_id, content):
        return self._again_if_gone(lambda: self._client().send_direct_message(user_id, content))

    def direct_messages(self, user_id: str) -> list[dict]:
        """What the bot sent ``user_id`` in the sandbox (real Discord shows it in their app)."""
        def read():
            try:
                return httpx.get(f"{self._root}/sandbox/users/{user_id}/messages", timeout=10).json()
            except httpx.HTTPError as exc:
                raise DiscordError(f"the Discord sandbox could not be reached ({type(exc).__name__})",
                                   retryable=True) from exc
        return self._again_if_gone(read)

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
        self.server.stop()
