"""The bot's client, built from the engine (the composition root hands it over), with one
extension per feature and one error listener."""

from __future__ import annotations

import contextvars
import importlib
import logging

import interactions
from interactions import Intents, listen
from interactions.api.events import (CommandCompletion, CommandError, ComponentCompletion, ComponentError,
                                     ModalCompletion, ModalError)
from interactions.api.http.http_client import GlobalLock
from interactions.api.http.route import Route

from arrakis_engine.errors import ConfigError

from .common import reply_error

log = logging.getLogger("arrakis.bot")

EXTENSIONS = ("arrakis_bot.members", "arrakis_bot.admin", "arrakis_bot.onboard", "arrakis_bot.registration")


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

    # interactions.py's own completion listeners log what was typed (a code in a form included):
    # these replace them with the command's name only.

    @listen(CommandCompletion, disable_default_listeners=True)
    async def on_command_done(self, event: CommandCompletion) -> None:
        log.debug("command %s done", getattr(event.ctx, "invoke_target", "?"))

    @listen(ComponentCompletion, disable_default_listeners=True)
    async def on_component_done(self, event: ComponentCompletion) -> None:
        log.debug("component %s done", str(getattr(event.ctx, "custom_id", "?")).split(":", 1)[0])

    @listen(ModalCompletion, disable_default_listeners=True)
    async def on_modal_done(self, event: ModalCompletion) -> None:
        log.debug("form %s done", str(getattr(event.ctx, "custom_id", "?")).split(":", 1)[0])


_INTERACTION_ROUTE = contextvars.ContextVar("arrakis_interaction_route", default=False)


class _InteractionExemptLock(GlobalLock):
    """interactions.py paces every request at 45 a second, answers to members included. Discord
    does not count interaction callbacks and their follow-ups against the bot's global limit, and
    each must arrive within 3 seconds: under a burst of commands the pacing made answers miss the
    deadline (measured by bench/bot.py). Those routes skip the pacing; everything else keeps it."""

    async def wait(self) -> None:
        if _INTERACTION_ROUTE.get():
            return
        await super().wait()


def _exempt_interaction_routes(http) -> None:
    http.global_lock = _InteractionExemptLock()
    app_webhooks = "/webhooks/{application_id}/{webhook_token}"
    paced = http.request

    async def request(route, *args, **kwargs):
        exempt = route.path.startswith("/interactions/") or route.path.startswith(app_webhooks)
        token = _INTERACTION_ROUTE.set(exempt)
        try:
            return await paced(route, *args, **kwargs)
        finally:
            _INTERACTION_ROUTE.reset(token)

    http.request = request


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
    _exempt_interaction_routes(bot.http)
    bot.load_extension("arrakis_bot.app", engine=engine)
    for name in EXTENSIONS:
        # interactions.py keeps a command's callback on the class and binds it to the first
        # extension object made: a fresh module gives each client its own commands, bound to its
        # own engine (one client per process in production; several in a test run).
        importlib.reload(importlib.import_module(name))
        bot.load_extension(name, engine=engine)
    return bot


def run_bot(engine) -> None:
    """Connect and serve until stopped (Ctrl-C or SIGTERM)."""
    bot = build_bot(engine)
    bot.start()
