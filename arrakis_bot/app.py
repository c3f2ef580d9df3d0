"""The bot's client, built from the engine (the composition root hands it over), with one
extension per feature and one error listener."""

from __future__ import annotations

import logging

import interactions
from interactions import Intents, listen
from interactions.api.events import CommandError, ComponentError, ModalError
from interactions.api.http.route import Route

from arrakis_engine.errors import ConfigError

from .common import reply_error

log = logging.getLogger("arrakis.bot")

EXTENSIONS = ("arrakis_bot.members", "arrakis_bot.admin", "arrakis_bot.onboard")


class Errors(interactions.Extension):
    """The one place a failed command is answered: the engine's message, ephemeral, one line."""

    def __init__(self, bot, engine=None) -> None:
        self.engine = engine

    @listen(CommandError, disable_default_listeners=True)
    async def on_command_error(self, event: CommandError) -> None:
        await reply_error(event.ctx, event.error)

    @listen(ComponentError, disable_default_listeners=True)
    async def on_component_error(self, event: ComponentError) -> None:
        await reply_error(event.ctx, event.error)

    @listen(ModalError, disable_default_listeners=True)
    async def on_modal_error(self, event: ModalError) -> None:
        await reply_error(event.ctx, event.error)


def build_bot(engine, *, token: str | None = None, api_base: str | None = None) -> interactions.Client:
    """The client for ``engine``: its token and REST base come from the engine's settings unless
    given. Raises :class:`ConfigError` without a token."""
    settings = engine.settings
    token = token or settings.discord_bot_token
    if not token:
        raise ConfigError("the bot needs DISCORD_BOT_TOKEN (and DISCORD_API_BASE for a test server); "
                          "the local sandbox has no gateway for a bot to connect to")
    base = (api_base or settings.discord_api_base or "https://discord.com/api/v10").rstrip("/")
    Route.BASE = base  # interactions.py reads its REST base from here (one bot per process)
    bot = interactions.Client(
        token=token, intents=Intents.GUILDS, sync_interactions=True, delete_unused_application_cmds=True,
        send_command_tracebacks=False, send_not_ready_messages=True, logger=log,
        disable_dm_commands=True)
    bot.load_extension("arrakis_bot.app", engine=engine)
    for name in EXTENSIONS:
        bot.load_extension(name, engine=engine)
    return bot


def run_bot(engine) -> None:
    """Connect and serve until stopped (Ctrl-C or SIGTERM)."""
    bot = build_bot(engine)
    bot.start()
