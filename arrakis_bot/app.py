"""The bot's client, built from the engine (the composition root hands it over), with one
extension per feature and one error listener."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import logging
import random
import signal
import zlib
from typing import TYPE_CHECKING, Any

import interactions
from interactions import Intents, listen
from interactions.api.gateway import gateway as gateway_module
from interactions.api.gateway import state as state_module
from interactions.client.const import MISSING
from interactions.client.errors import HTTPException
from interactions.models.discord.enums import InteractionType, MessageFlags
from interactions.api.events import (CommandCompletion, CommandError, ComponentCompletion, ComponentError,
                                     ModalCompletion, ModalError)
from interactions.api.http.http_client import GlobalLock
from interactions.api.http.route import Route
from interactions import GLOBAL_SCOPE, to_snowflake
from interactions.api import events
from interactions.models.internal.listener import Listener
from interactions.api.gateway.state import ConnectionState
from interactions.client.errors import LibraryException, WebSocketClosed

from arrakis_engine.errors import ConfigError

from .checks import check_command, schema_of
from .common import reply_error
from .sharding import IdentifyGate, ShardPlan, check_session_starts

if TYPE_CHECKING:
    from redis import Redis

    from arrakis_engine.bootstrap import Engine

log = logging.getLogger("arrakis.bot")

EXTENSIONS = ("arrakis_bot.members", "arrakis_bot.admin", "arrakis_bot.onboard", "arrakis_bot.registration",
              "arrakis_bot.metrics")


class Errors(interactions.Extension):
    """The one place a failed command is answered: the engine's message, ephemeral, one line."""

    def __init__(self, bot: interactions.Client, engine: Engine | None = None) -> None:
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


NEEDS_TOKEN = ("the bot needs DISCORD_BOT_TOKEN (and DISCORD_API_BASE for a test server), or neither of them "
               "for the local Discord sandbox")
STARTING_UP = "Arrakis is starting up: try the command again in a few seconds."
# Discord: after an invalid session (op 9) that cannot be resumed, wait 1 to 5 seconds before identifying.
INVALID_SESSION_WAIT = (1.0, 5.0)


class ArrakisClient(interactions.AutoShardedClient):
    """interactions.py's sharded client, with what Arrakis answers itself: the "starting up" reply
    in its own words, and every slash command checked against its schema before a handler runs
    (``checks.py``): a wrong value or an unknown command gets one ephemeral line.

    Shards (``sharding.py``): the count ``GET /gateway/bot`` recommends unless ``plan`` names one,
    all of them unless ``plan`` names some; every IDENTIFY waits for its bucket's turn
    (:class:`IdentifyGate`); the start stops with one line when Discord's session starts left do
    not cover the shards. Commands are compared and registered globally only (one scope, however
    many servers the bot is in)."""

    def __init__(self, *args: Any, plan: ShardPlan | None = None, redis: Redis | None = None, **kwargs: Any) -> None:
        self.plan = plan or ShardPlan()
        if self.plan.count is not None:
            kwargs["total_shards"] = self.plan.count
        if self.plan.ids is not None:
            kwargs["shard_ids"] = list(self.plan.ids)
        super().__init__(*args, **kwargs)
        self.identify_gate = IdentifyGate(redis)
        self.session_listeners: list = []  # f(shard_id, "ready" | "resumed")
        self._registering = asyncio.Lock()
        self._starting = asyncio.Lock()
        self._stopping: asyncio.Future | None = None
        self._registered = False
        self._servers_cleared: set[str] = set()
        self._background: set[asyncio.Future] = set()
        library = self.processors["raw_interaction_create"]

        async def checked(event) -> None:
            self._notice_server_commands(event.data)
            if not await self._refused(event.data):
                await library(event)

        self.processors["raw_interaction_create"] = checked

    def _notice_server_commands(self, data: dict) -> None:
        """A command registered in one server (``data.guild_id``, as Discord sends it for those
        only) is a copy an earlier version made there: every command is global now. It is answered
        as usual, and that server's copies are removed once, in the background (one request, for
        the servers where someone still uses them, never at start)."""
        body = data.get("data") or {}
        guild = body.get("guild_id") if data.get("type") in (InteractionType.APPLICATION_COMMAND,
                                                               InteractionType.AUTOCOMPLETE) else None
        if not guild or guild in self._servers_cleared:
            return
        self._servers_cleared.add(guild)
        task = asyncio.ensure_future(self._drop_server_commands(guild))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _drop_server_commands(self, guild: str) -> None:
        try:
            await self.http.overwrite_application_commands(self.app.id, [], guild)
            log.info("removed the commands an earlier version registered in server %s (they are global now)", guild)
        except HTTPException as exc:
            self._servers_cleared.discard(guild)  # tried again at the next use
            log.warning("could not remove the earlier commands of server %s (%s)", guild, exc.status)

    async def _refused(self, data: dict) -> bool:
        """Answer (and return True for) an application command that does not fit its schema."""
        if not self._startup or data.get("type") != InteractionType.APPLICATION_COMMAND:
            return False
        body = data.get("data") or {}
        if body.get("target_id") or body.get("type", 1) != 1:  # context menus: not ours
            return False
        problem = check_command(body, schema_of(self))
        if problem is None:
            return False
        log.info("refused /%s: %s", str(body.get("name"))[:32], problem)
        await self._say_ephemeral(data, f"⚠️ {problem}")
        return True

    async def _say_ephemeral(self, data: dict, text: str) -> None:
        with contextlib.suppress(HTTPException):
            await self.http.post_initial_response(
                {"type": 4, "data": {"content": text[:2000], "flags": MessageFlags.EPHEMERAL,
                                     "allowed_mentions": {"parse": []}}},
                token=data["token"], interaction_id=data["id"])

    async def handle_pre_ready_response(self, data: dict) -> None:
        if data.get("type") == InteractionType.AUTOCOMPLETE:
            return  # Discord caches autocomplete answers: none is better than a wrong one
        await self._say_ephemeral(data, STARTING_UP)

    def gateway_session(self, shard_id: int, what: str) -> None:
        for listener in self.session_listeners:
            try:
                listener(shard_id, what)
            except Exception:  # a figure not recorded must not stop the gateway
                log.exception("gateway session listener failed")

    async def login(self, token: str | None = None) -> None:
        """Log in, then ask ``GET /gateway/bot`` how many shards, how fast and how many session
        starts are left, and make one connection state per shard this process runs."""
        await interactions.Client.login(self, token)
        data = await self.http.get_gateway_bot()
        limit = data.get("session_start_limit") or {}
        try:
            self.max_start_concurrency = max(1, int(limit.get("max_concurrency") or 1))
        except (TypeError, ValueError):
            self.max_start_concurrency = 1  # unknown: the slowest pace
        self.identify_gate.max_concurrency = self.max_start_concurrency
        try:
            recommended = max(1, int(data["shards"]))
        except (KeyError, TypeError, ValueError):
            recommended = 1
            if self.plan.count is None:
                log.warning("GET /gateway/bot recommended no number of shards: running 1 (--shard-count sets it)")
        self.total_shards, ids = self.plan.shards(recommended)
        if self.plan.count is not None and self.plan.count < recommended:
            log.warning("running %d shard(s); Discord recommends %d for the servers the bot is in",
                        self.total_shards, recommended)
        check_session_starts(limit, len(ids))
        self.shard_ids = ids
        log.info("gateway: %d shard(s) in all, this process runs %s; %s identify(ies) per 5 s",
                 self.total_shards, ", ".join(map(str, ids)), self.max_start_concurrency)
        self._connection_states = [ConnectionState(self, self.intents, shard_id) for shard_id in ids]

    async def astart(self, token: str | None = None) -> None:
        """Start every shard of this process at once: each IDENTIFY waits its bucket's turn. A
        shard whose connection ends for good (not by :meth:`stop`) ends the process with one line,
        so that its supervisor starts it again rather than leaving that shard's servers unanswered."""
        await self.login(token)
        tasks = {asyncio.create_task(state.start()): state.shard_id for state in self._connection_states}
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    shard = tasks[task]
                    try:
                        task.result()
                    except WebSocketClosed as exc:
                        raise ConfigError(f"Discord closed the gateway session of shard {shard} "
                                          f"({getattr(exc, 'code', '?')}); stopping") from None
                    except LibraryException as exc:
                        raise ConfigError(_closed_in_words(str(exc), self.total_shards)) from None
                    if self._stopping is None:
                        raise ConfigError(f"the gateway connection of shard {shard} ended; stopping so that the "
                                          "bot is started again")
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            await self.stop()

    async def stop(self, timeout: float = 4.0) -> None:
        """Close every shard's session (code 1000) before the HTTP client (the library's order
        drops the sockets without a closing handshake). Once: a second call waits for the first
        (two closes of the HTTP client at once never end)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop_once(timeout))
        await asyncio.shield(self._stopping)

    async def _stop_once(self, timeout: float) -> None:
        self._ready.clear()
        try:
            await asyncio.wait_for(asyncio.gather(*(state.stop() for state in self._connection_states),
                                                  return_exceptions=True), timeout)
        except asyncio.TimeoutError:
            log.warning("the gateway did not close in time")
        await self.http.close()

    @Listener.create()
    async def _on_websocket_ready(self, event: events.RawGatewayEvent) -> None:
        """A shard's READY: once its servers are cached it is ready, and the first shard ready
        compares the commands and starts the client, so that each shard answers its servers as
        soon as it is up (the library waited for every shard: with 10 shards identifying 5 s
        apart, the first servers were told "starting up" for 45 s). ``Ready`` comes once all are."""
        data = event.data
        expected = {to_snowflake(guild["id"]) for guild in data["guilds"]}
        shard_id, _ = data["shard"]
        state = next((s for s in self._connection_states if s.shard_id == shard_id), None)
        while expected and not all(self.cache.get_guild(g) is not None for g in expected):
            try:
                await asyncio.wait_for(self._guild_event.wait(), self.guild_event_timeout)
            except asyncio.TimeoutError:
                log.warning("shard %s: not every server arrived in time; starting without them", shard_id)
                break
            self._guild_event.clear()
        if state is not None:
            state._shard_ready.set()
        self.dispatch(events.ShardConnect(shard_id))
        async with self._starting:
            if not self._startup:
                if self.async_startup_tasks:
                    try:
                        await asyncio.gather(*[task[0](*task[1] if len(task) > 1 else [],
                                                       **task[2] if len(task) == 3 else {})
                                               for task in self.async_startup_tasks])
                    except Exception as e:
                        self.dispatch(events.Error(source="async-extension-loader", error=e))
                await self._init_interactions()
                self._startup = True
                self.dispatch(events.Startup())
        if not self._ready.is_set() and all(s._shard_ready.is_set() for s in self._connection_states):
            self._ready.set()
            self.dispatch(events.Ready())

    async def _init_interactions(self) -> None:
        """Compare and register the commands in the global scope only: one read (and one write when
        something changed) whatever the number of servers, once however many shards become ready
        together (the library calls this from each shard's READY until the client has started)."""
        async with self._registering:
            if self._registered:
                return
            try:
                await self.synchronise_interactions(scopes=[GLOBAL_SCOPE], delete_commands=True)
                self._registered = True
            except Exception as e:
                self.dispatch(events.Error(source="Interaction Syncing", error=e))


def _closed_in_words(message: str, count: int) -> str:
    if "too large" in message:
        return (f"Discord closed the gateway session (4011, sharding required): a shard would hold 2,500 servers "
                f"or more with {count} shard(s); run more (--shard-count, or no flag for Discord's "
                "recommendation)")
    return f"the gateway refused the session: {message}"


class ArrakisGateway(gateway_module.GatewayClient):
    """interactions.py's gateway connection with three of Discord's rules it does not follow:

    * Every IDENTIFY (the first, after a session that could not be resumed, after op 9) waits for
      its bucket's turn (:class:`~arrakis_bot.sharding.IdentifyGate`), before its socket opens.
    * A resume goes to READY's ``resume_gateway_url`` after any resumable close (the library
      used it only after op 7 RECONNECT, and reconnected to the first URL otherwise).
    * After op 9 INVALID_SESSION it waits 1 to 5 seconds (at random) before identifying again,
      and resumes instead when Discord says the session may be resumed (``d: true``).
    """

    _turn_taken = False

    async def _take_identify_turn(self) -> None:
        """Wait for this shard's bucket's turn (Discord: one IDENTIFY per bucket every 5 s), before
        the socket is opened: a socket waiting open would miss its heartbeats' acknowledgements."""
        gate = getattr(self.state.client, "identify_gate", None)
        if gate is not None:
            await gate.wait(self.shard[0])
        self._turn_taken = True

    async def __aenter__(self):
        await self._take_identify_turn()
        return await super().__aenter__()

    async def _identify(self) -> None:
        if not self._turn_taken:
            await self._take_identify_turn()
        self._turn_taken = False
        await super()._identify()

    async def dispatch_event(self, data, seq, event) -> None:
        client = self.state.client
        if event in ("READY", "RESUMED") and hasattr(client, "gateway_session"):
            client.gateway_session(self.shard[0], event.lower())
        return await super().dispatch_event(data, seq, event)

    async def reconnect(self, *, resume: bool = False, code: int = 1012, url: str | None = None) -> None:
        if resume and url is None and self.ws_resume_url is not MISSING:
            url = self.ws_resume_url
        if not resume:
            await self._take_identify_turn()
        await super().reconnect(resume=resume, code=code, url=url)

    async def dispatch_opcode(self, data, op) -> None:
        if op == gateway_module.OPCODE.INVALIDATE_SESSION:
            if data is True and self.session_id and self.ws_resume_url is not MISSING:
                log.warning("gateway: session invalidated, resumable; resuming")
                return await self.reconnect(resume=True)
            return await self._identify_anew(random.uniform(*INVALID_SESSION_WAIT))
        return await super().dispatch_opcode(data, op)

    async def _identify_anew(self, wait: float) -> None:
        """The library's reconnect with Discord's wait between closing and identifying. It holds
        the send lock throughout, so the heartbeat waits too (rather than taking the silence
        for a dead connection and resuming the invalid session)."""
        log.warning("gateway: session invalidated; identifying again in %.1f s", wait)
        async with self._race_lock:
            self._closed.clear()
            self.state.clear_ready()
            self._ready.clear()
            if self.ws is not None:
                await self.ws.close(code=1000)  # the session is over
            self.ws = None
            self.session_id = self.sequence = None
            await asyncio.sleep(wait)
            await self._take_identify_turn()
            self._zlib = zlib.decompressobj()
            self.ws = await self.state.client.http.websocket_connect(self.ws_url)
            hello = await self.receive(force=True)
            self.heartbeat_interval = hello["d"]["heartbeat_interval"] / 1000
            await self._identify()
            self._closed.set()
            self._acknowledged.set()


def _use_our_gateway() -> None:
    """interactions.py's connection state builds ``GatewayClient`` by its module-level name:
    point that name at :class:`ArrakisGateway` (one bot per process)."""
    state_module.GatewayClient = ArrakisGateway


def build_bot(engine, *, token: str | None = None, api_base: str | None = None,
              plan: ShardPlan | None = None) -> interactions.Client:
    """The client for ``engine``: its token and REST base come from the engine's settings unless
    given; ``plan``: which shards (default: all those Discord recommends). Raises
    :class:`ConfigError` without a token."""
    settings = engine.settings
    token = token or settings.discord_bot_token
    if not token:
        raise ConfigError(NEEDS_TOKEN)
    base = (api_base or settings.discord_api_base or "https://discord.com/api/v10").rstrip("/")
    Route.BASE = base  # interactions.py reads its REST base from here (one bot per process)
    _use_our_gateway()
    bot = ArrakisClient(
        token=token, intents=Intents.GUILDS, sync_interactions=True, delete_unused_application_cmds=False,
        send_command_tracebacks=False, send_not_ready_messages=True, logger=log,
        disable_dm_commands=True, plan=plan, redis=getattr(engine, "redis", None))
    _exempt_interaction_routes(bot.http)
    bot.load_extension("arrakis_bot.app", engine=engine)
    for name in EXTENSIONS:
        # interactions.py keeps a command's callback on the class and binds it to the first
        # extension object made: a fresh module gives each client its own commands, bound to its
        # own engine (one client per process in production; several in a test run).
        importlib.reload(importlib.import_module(name))
        bot.load_extension(name, engine=engine)
    return bot


async def shutdown(bot: interactions.Client, timeout: float = 4.0) -> None:
    """Close the gateway session properly (close code 1000, so Discord ends the session at once
    instead of waiting for it to time out), then the HTTP client. interactions.py's own
    ``stop()`` closes the HTTP session first, which drops the websocket without a closing
    handshake (Discord sees 1006)."""
    if isinstance(bot, ArrakisClient):
        await bot.stop(timeout)
        return
    bot._ready.clear()
    try:
        await asyncio.wait_for(bot._connection_state.stop(), timeout)
    except (asyncio.TimeoutError, Exception) as exc:  # stopping: nothing more to do than log
        log.warning("the gateway did not close in time (%s)", type(exc).__name__)
    await bot.http.close()


async def serve(bot: interactions.Client) -> None:
    """Run ``bot`` until SIGTERM or SIGINT, then close it cleanly (within 5 seconds)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.ensure_future(bot.astart())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()  # the client ended by itself: its error, if any, goes up
            return
        log.info("stopping: closing the gateway session")
        await shutdown(bot)
        try:
            await asyncio.wait_for(running, 1.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
    finally:
        stopping.cancel()
        if not running.done():
            running.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run_bot(engine, *, token: str | None = None, api_base: str | None = None,
            plan: ShardPlan | None = None) -> None:
    """Connect and serve until stopped (Ctrl-C or SIGTERM: every session is closed with code 1000
    and the process exits 0)."""
    asyncio.run(serve(build_bot(engine, token=token, api_base=api_base, plan=plan)))
