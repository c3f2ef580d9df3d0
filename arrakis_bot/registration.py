"""Where the commands are registered: every command globally, once, when the bot starts (and only
when something changed: a restart with the same commands reads one list and sends nothing).

The admin commands (/onboard, /resume, /arrakis, /badge) carry ``default_member_permissions``
(Manage Server), so Discord shows them to a server's admins only, in every server, at once.
Nothing is sent per server: a bot in 3,000 servers starts with the same two requests as a bot
in one, and joining a server sends nothing (earlier versions registered the admin commands in
each server, one request per server at every start)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import interactions
from interactions import listen
from interactions.api.events import GuildJoin

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

log = logging.getLogger("arrakis.bot")


class Registration(interactions.Extension):
    def __init__(self, bot: interactions.Client, engine: Engine | None = None) -> None:
        pass

    @listen(GuildJoin)
    async def on_guild_join(self, event: GuildJoin) -> None:
        # The global commands already show there: nothing to send.
        log.debug("joined server %s", event.guild_id)
