"""An in-memory Discord guild behind the engine's DiscordGuild port (no HTTP): for tests that
exercise use cases through ``build_engine(settings, discord=...)``. Wire-format behaviour (rate
limits, 429s) is the HTTP fake's job (tests/fakes/discord_api.py)."""

from __future__ import annotations

import itertools

from arrakis_engine.errors import DiscordError
from arrakis_engine.ports import CHANNEL_TYPES


class InMemoryGuilds:
    def __init__(self) -> None:
        self.roles: dict[str, dict[str, dict]] = {}
        self.channels: dict[str, dict[str, dict]] = {}
        self.members: dict[str, dict[str, list[str]]] = {}
        self.calls = 0
        self.direct_messages: dict[str, list[dict]] = {}
        self._ids = itertools.count(1_300_000_000_000_000_000)

    def guild(self, guild_id: str, members: list[str] = ()) -> None:
        self.roles.setdefault(guild_id, {})
        self.channels.setdefault(guild_id, {})
        self.members.setdefault(guild_id, {m: [] for m in members})

    def _call(self, guild_id: str) -> None:
        self.calls += 1
        if guild_id not in self.roles:
            raise DiscordError(f"unknown guild {guild_id}", status=404)

    def _guild_of_channel(self, channel_id: str) -> str:
        for gid, chans in self.channels.items():
            if channel_id in chans:
                return gid
        raise DiscordError("unknown channel", status=404)

    def list_roles(self, guild_id, *, community_id=None):
        self._call(guild_id)
        return [dict(r) for r in self.roles[guild_id].values()]

    def create_role(self, guild_id, *, name, color, permissions, hoist=False, community_id=None, patience=None):
        self._call(guild_id)
        role = {"id": str(next(self._ids)), "name": name, "color": color, "permissions": str(permissions),
                "hoist": hoist}
        self.roles[guild_id][role["id"]] = role
        return dict(role)

    def update_role(self, guild_id, role_id, *, community_id=None, **fields):
        self._call(guild_id)
        self.roles[guild_id][role_id].update({k: (str(v) if k == "permissions" else v) for k, v in fields.items()})
        return dict(self.roles[guild_id][role_id])

    def delete_role(self, guild_id, role_id, *, community_id=None):
        self._call(guild_id)
        del self.roles[guild_id][role_id]

    def list_channels(self, guild_id, *, community_id=None):
        self._call(guild_id)
        return [dict(c) for c in self.channels[guild_id].values()]

    def create_channel(self, guild_id, *, name, type="text", parent_id=None, topic=None, overwrites=None,
                       community_id=None):
        self._call(guild_id)
        ch = {"id": str(next(self._ids)), "name": name, "type": CHANNEL_TYPES[type], "parent_id": parent_id,
              "topic": topic, "permission_overwrites": list(overwrites or [])}
        self.channels[guild_id][ch["id"]] = ch
        return dict(ch)

    def update_channel(self, channel_id, *, community_id=None, guild_id="", **fields):
        gid = self._guild_of_channel(channel_id)
        self._call(gid)
        self.channels[gid][channel_id].update(fields)
        return dict(self.channels[gid][channel_id])

    def delete_channel(self, channel_id, *, community_id=None, guild_id=""):
        gid = self._guild_of_channel(channel_id)
        self._call(gid)
        del self.channels[gid][channel_id]

    def get_member(self, guild_id, user_id, *, community_id=None):
        self._call(guild_id)
        if user_id not in self.members[guild_id]:
            raise DiscordError("unknown member", status=404)
        return {"user": {"id": user_id}, "roles": list(self.members[guild_id][user_id])}

    def list_members(self, guild_id, *, after="0", limit=1000, community_id=None):
        self._call(guild_id)
        ids = sorted((u for u in self.members[guild_id] if int(u) > int(after)), key=int)[:limit]
        return [{"user": {"id": u}, "roles": list(self.members[guild_id][u])} for u in ids]

    def set_member_roles(self, guild_id, user_id, roles, *, community_id=None, patience=None):
        member = self.get_member(guild_id, user_id)
        self.members[guild_id][user_id] = sorted(set(roles))
        return {**member, "roles": self.members[guild_id][user_id]}

    def send_message(self, channel_id, content, *, community_id=None):
        self._call(self._guild_of_channel(channel_id))
        return {"id": str(next(self._ids)), "content": content}

    def send_direct_message(self, user_id, content):
        """Kept per user in ``direct_messages`` (what the user would read in their Discord)."""
        message = {"id": str(next(self._ids)), "content": content}
        self.direct_messages.setdefault(str(user_id), []).append(message)
        return message

    def close(self) -> None:
        pass
