"""Where the commands are registered: members' commands globally, when the bot starts; admins'
commands (/onboard, /resume, /arrakis, /badge) in each server the bot is in, when it joins one
(and, at start, in every server it is already in), so they show at once in a new server and
nowhere else. Both only when something changed: a restart with the same commands sends nothing."""

from __future__ import annotations

import logging

import interactions
from interactions import GLOBAL_SCOPE, SlashCommand, listen, to_snowflake
from interactions.api.events import GuildJoin, Startup

log = logging.getLogger("arrakis.bot")

GUILD_EXTENSIONS = ("Admin", "Onboarding")


class GuildCommands:
    """The admin commands, taken out of the global scope and added per guild."""

    def __init__(self, bot: interactions.Client) -> None:
        self.bot = bot
        self.commands = [c for name in GUILD_EXTENSIONS for c in bot.ext[name]._commands
                         if isinstance(c, SlashCommand)]
        by_name = bot.interactions_by_scope.get(GLOBAL_SCOPE, {})
        tree = bot.interaction_tree.get(GLOBAL_SCOPE, {})
        for c in self.commands:
            by_name.pop(c.resolved_name, None)
            tree.pop(str(c.name), None)
            c.scopes = []

    def add(self, guild_id) -> bool:
        """Register the admin commands for this guild here; False when they already were."""
        gid = to_snowflake(guild_id)
        known = self.bot.interactions_by_scope.get(gid, {})
        if all(c.resolved_name in known for c in self.commands):
            return False
        for c in self.commands:
            if c.resolved_name in known:
                continue
            scopes = list(c.scopes)
            c.scopes = [gid]
            self.bot.add_interaction(c)  # adds the command to the scopes it names: this guild only
            c.scopes = [*scopes, gid]
        return True


class Registration(interactions.Extension):
    def __init__(self, bot, engine=None) -> None:
        self.guild_commands = GuildCommands(bot)
        self.started = False

    @listen(GuildJoin)
    async def on_guild_join(self, event: GuildJoin) -> None:
        if self.guild_commands.add(event.guild_id) and self.started:
            log.info("joined server %s: registering the admin commands there", event.guild_id)
            await self.bot.synchronise_interactions(scopes=[to_snowflake(event.guild_id)], delete_commands=True)

    @listen(Startup)
    async def on_startup(self, event: Startup) -> None:
        # Servers whose GUILD_CREATE came after the client compared its commands are done here;
        # where nothing changed, this only reads.
        guilds = [g.id for g in self.bot.guilds]
        for g in guilds:
            self.guild_commands.add(g)
        self.started = True
        if guilds:
            await self.bot.synchronise_interactions(scopes=guilds, delete_commands=True)
