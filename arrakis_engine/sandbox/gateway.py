"""The Discord sandbox for a bot: the strict REST sandbox (guilds, roles, members, limits) plus what
a bot application talks to — its user and application, the gateway websocket, application
commands, interaction callbacks, follow-up webhooks and ``@original`` edits — in Discord's wire
format, with Discord's documented rules at their strictest reading:

Gateway (``GET /gateway``, ``GET /gateway/bot`` give the URL; READY's ``resume_gateway_url`` is
another one, as on Discord, and the sandbox records which URL each IDENTIFY and RESUME came on and
every close code a client sent): HELLO (op 10) first; the first
payload must be IDENTIFY (op 2, the bot's token, no privileged intent the application was not
granted) or RESUME (op 6); anything else before it closes 4003, a bad token 4004, a second
IDENTIFY 4005, an unknown opcode 4001, a frame that is not JSON 4002, privileged intents 4014.
Heartbeats (op 1) are answered with ACK (op 11); a connection that does not heartbeat within the
interval (plus a small grace) is closed 4009. READY carries ``session_id`` and
``resume_gateway_url``, then one GUILD_CREATE per guild. RESUME with a known session replays the
missed events and sends RESUMED; an unknown session gets op 9 (invalid session). With
``compress=zlib-stream`` every frame is binary, one zlib stream per connection, each message
ending in ``00 00 ff ff``.

Commands (``PUT /applications/{app}/commands`` and the guild form): names 1-32 lowercase
letters, digits, ``-`` and ``_``; descriptions 1-100; at most 25 options, required ones first,
at most 25 choices; at most 100 chat commands per scope; 4,000 characters per command; else 400
with code 50035 (Invalid Form Body).

Interactions: the first callback must arrive within 3 seconds of the interaction being sent and
only once (10062 Unknown interaction after the deadline, 40060 already acknowledged); a callback
type must suit the interaction (a modal cannot answer a modal); messages hold at most 2,000
characters, 10 embeds, 5 action rows of at most 5 buttons or one select menu, custom ids of at
most 100 characters; a modal has a title of at most 45 characters and 1-5 text inputs. Follow-ups
and ``@original`` work only after the callback and for 15 minutes. Attachments come as multipart
``payload_json`` + ``files[n]``.

The sandbox's own endpoints (not Discord's) let a person or a test act as Discord's users:
``POST /sandbox/interactions`` sends a slash command to the connected bot (``{"guild_id",
"user_id", "command", "options", "subcommand", "permissions"}``, answered with the interaction's
id) and ``GET /sandbox/interactions/{id}`` shows what the bot answered.

Sharding, as Discord documents it: ``GET /gateway/bot`` recommends one shard per 1,000 guilds and
gives ``session_start_limit`` (``total``, ``remaining`` counting down with every IDENTIFY over a
24-hour window, ``reset_after`` in ms, ``max_concurrency``). IDENTIFY carries ``shard: [id, count]``;
a shard that is not ``0 <= id < count`` closes 4010 (Invalid shard); a session that would hold
2,500 guilds or more (an unsharded one included) closes 4011 (Sharding required). Identifies are
limited per bucket ``shard_id % max_concurrency``: a second IDENTIFY of a bucket within 5 seconds
gets op 9 (Invalid Session, ``d: false``). An IDENTIFY with no session start left terminates every
session of the application (4004: Discord resets the token). READY lists only the shard's guilds;
GUILD_CREATE and INTERACTION_CREATE of a guild go only to the session of its shard,
``(guild_id >> 22) % count`` (:meth:`DiscordBotSandbox.session_for`). An APPLICATION_COMMAND's
``data.guild_id`` is there only for a command registered in that guild, as on Discord.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import json
import re
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from . import SANDBOX_TOKEN
from .discord_server import DiscordSandbox, _json

APP_ID = "1300000000000000001"
OWNER_ID = "1300000000000000002"
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT
EPHEMERAL = 1 << 6
ALLOWED_FLAGS = EPHEMERAL | (1 << 2) | (1 << 12)  # ephemeral, suppress embeds, suppress notifications
NAME = re.compile(r"^[-_\w]{1,32}$")
CALLBACK_DEADLINE = 3.0
TOKEN_LIFETIME = 15 * 60.0
MANAGE_GUILD = 1 << 5
ALLOWED_CALLBACKS = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}  # interaction type -> callbacks
GUILDS_PER_SHARD = 1000       # GET /gateway/bot recommends one shard per 1,000 guilds
SHARDING_REQUIRED_AT = 2500   # a session with this many guilds or more is closed 4011
IDENTIFY_WINDOW = 5.0         # seconds: one IDENTIFY per bucket (shard_id % max_concurrency)
SESSION_START_WINDOW = 86_400.0


def shard_of(guild_id, count: int) -> int:
    """Discord's rule: the shard that receives a guild's events."""
    return (int(guild_id) >> 22) % count


class InvalidForm(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where, self.message = where, message

    def response(self) -> web.Response:
        return _json({"code": 50035, "message": "Invalid Form Body",
                      "errors": {self.where: {"_errors": [{"code": "BASE_TYPE_INVALID", "message": self.message}]}}},
                     400)


@dataclass
class Interaction:
    """One interaction the fake sent, and what the bot answered (in order of arrival)."""

    id: str
    token: str
    type: int
    payload: dict
    sent_at: float  # monotonic
    callbacks: list = field(default_factory=list)   # {"type", "data", "files", "at"}
    followups: list = field(default_factory=list)   # message objects
    original: dict | None = None
    answered = None  # threading.Event, set on the first callback
    shard: tuple[int, int] | None = None  # the session's shard it was sent to
    attempts: int = 0  # callbacks posted for it, refused ones included

    @property
    def first_response_after(self) -> float | None:
        return self.callbacks[0]["at"] - self.sent_at if self.callbacks else None

    def messages(self) -> list[dict]:
        """Every message the member sees: the original (as last edited) then the follow-ups."""
        return ([self.original] if self.original else []) + self.followups

    def text(self) -> str:
        """All the words shown, content and embeds, for assertions."""
        parts = []
        for m in self.messages():
            parts.append(m.get("content") or "")
            for e in m.get("embeds") or []:
                parts += [e.get("title") or "", e.get("description") or ""]
                parts += [f"{f.get('name')} {f.get('value')}" for f in e.get("fields") or []]
        for c in self.callbacks:
            if c["type"] == 9:
                parts.append(c["data"].get("title", ""))
        return "\n".join(p for p in parts if p)


class Session:
    def __init__(self, shard: tuple[int, int] = (0, 1)) -> None:
        self.id = uuid.uuid4().hex
        self.shard = shard
        self.seq = 0
        self.events: list[tuple[int, str, dict]] = []
        self.ws: web.WebSocketResponse | None = None
        self.compressor = None
        self.heartbeats: list[float] = []


class DiscordBotSandbox(DiscordSandbox):
    """The REST sandbox plus the gateway and the application's endpoints; :meth:`app` builds the
    aiohttp application."""

    def __init__(self, token: str = SANDBOX_TOKEN, *, heartbeat_interval_ms: int = 41250,
                 granted_intents: int = 0, max_concurrency: int = 1, session_start_total: int = 1000,
                 **kwargs: Any) -> None:
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.granted_intents = granted_intents
        self.max_concurrency = max_concurrency
        self.session_start_total = session_start_total
        self.session_starts: list[float] = []  # time.monotonic() of each IDENTIFY in the window
        self.bucket_identified: dict[int, float] = {}  # bucket -> last IDENTIFY (time.monotonic())
        # every IDENTIFY: (shard [id, count], time.monotonic(), "ready" or why it was refused)
        self.identifies: list[tuple[tuple[int, int], float, str]] = []
        self.commands: dict[str, dict[str, dict]] = {}  # scope ("global" or guild id) -> name -> command
        self.command_puts = 0
        self.put_bodies: list[tuple[str, list]] = []  # (scope, commands) of every bulk overwrite
        self.interactions: dict[str, Interaction] = {}
        # token -> interaction: the webhook routes' lookup (a scan of ``interactions`` grew with every
        # interaction sent, and raced the thread that adds them)
        self._by_token: dict[str, Interaction] = {}
        self.sessions: dict[str, Session] = {}
        self.identified = threading.Event()
        self.closes: list[int] = []  # close codes the sandbox sent
        self.client_closes: list[int] = []  # close codes a client sent
        # (path the socket was opened on, 2 IDENTIFY or 6 RESUME, time.monotonic())
        self.connects: list[tuple[str, int, float]] = []
        self.ops_seen: list[int] = []
        self._snowflakes = itertools.count(1_400_000_000_000_000_000)
        super().__init__(token, **kwargs)

    def stats(self) -> dict:
        """The REST counts, plus the gateway's: how clients connected and how they closed."""
        return {**super().stats(), "gateway_connects": [[path, op] for path, op, _ in self.connects],
                "gateway_client_closes": list(self.client_closes)}

    # --- the application ------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = super().app()
        r = app.router
        r.add_get("/api/v10/users/@me", self.me)
        r.add_get("/api/v10/oauth2/applications/@me", self.application)
        r.add_get("/api/v10/applications/@me", self.application)
        r.add_get("/api/v10/gateway", self.gateway)
        r.add_get("/api/v10/gateway/bot", self.gateway_bot)
        r.add_get("/gateway/ws", self.websocket)
        r.add_get("/gateway/resume", self.websocket)  # READY's resume_gateway_url
        r.add_post("/sandbox/interactions", self.sandbox_interact)
        r.add_get("/sandbox/interactions/{i}", self.sandbox_interaction)
        for base in ("/api/v10/applications/{app}/commands", "/api/v10/applications/{app}/guilds/{g}/commands"):
            r.add_get(base, self.get_commands)
            r.add_put(base, self.put_commands)
        r.add_get("/api/v10/applications/{app}/guilds/{g}/commands/permissions", self.command_permissions)
        r.add_post("/api/v10/interactions/{i}/{token}/callback", self.callback)
        r.add_post("/api/v10/webhooks/{app}/{token}", self.followup)
        r.add_route("*", "/api/v10/webhooks/{app}/{token}/messages/{m}", self.webhook_message)
        return app

    @staticmethod
    def gateway_url(request, path: str = "/gateway/ws") -> str:
        """The gateway's address as the client reached this server (host and port of the request)."""
        return f"ws://{request.host}{path}"

    def _user(self) -> dict:
        return {"id": APP_ID, "username": "Arrakis", "discriminator": "0", "global_name": None, "avatar": None,
                "bot": True, "flags": 0, "public_flags": 0, "verified": True, "mfa_enabled": False}

    async def me(self, request):
        return _json(self._user())

    async def application(self, request):
        return _json({"id": APP_ID, "name": "Arrakis", "icon": None, "description": "", "summary": "",
                      "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64, "flags": 0,
                      "team": None, "owner": {"id": OWNER_ID, "username": "owner", "discriminator": "0",
                                              "global_name": None, "avatar": None, "public_flags": 0},
                      "bot": self._user()})

    async def gateway(self, request):
        return _json({"url": self.gateway_url(request)})

    def recommended_shards(self) -> int:
        return max(1, math.ceil(len(self.guilds) / GUILDS_PER_SHARD))

    def session_start_limit(self) -> dict:
        now = time.monotonic()
        self.session_starts = [t for t in self.session_starts if now - t < SESSION_START_WINDOW]
        reset_after = (self.session_starts[0] + SESSION_START_WINDOW - now) if self.session_starts else \
            SESSION_START_WINDOW
        return {"total": self.session_start_total,
                "remaining": max(0, self.session_start_total - len(self.session_starts)),
                "reset_after": int(reset_after * 1000), "max_concurrency": self.max_concurrency}

    async def gateway_bot(self, request):
        return _json({"url": self.gateway_url(request), "shards": self.recommended_shards(),
                      "session_start_limit": self.session_start_limit()})

    def guilds_of(self, shard: tuple[int, int]) -> list[str]:
        return [g for g in list(self.guilds) if shard_of(g, shard[1]) == shard[0]]

    # --- commands -----------------------------------------------------------------------------

    async def get_commands(self, request):
        scope = request.match_info.get("g", "global")
        return _json(list(self.commands.get(scope, {}).values()))

    async def command_permissions(self, request):
        return _json([])

    async def put_commands(self, request):
        if request.match_info["app"] != APP_ID:
            return _json({"message": "Unknown Application", "code": 10002}, 404)
        scope = request.match_info.get("g", "global")
        if scope != "global" and scope not in self.guilds:
            return _json({"message": "Missing Access", "code": 50001}, 403)
        body = await request.json()
        try:
            if not isinstance(body, list):
                raise InvalidForm("_errors", "a list of commands is expected")
            chat = [c for c in body if c.get("type", 1) == 1]
            if len(chat) > 100:
                raise InvalidForm("_errors", "at most 100 chat input commands")
            seen = set()
            for i, cmd in enumerate(body):
                _check_command(cmd, str(i))
                key = (cmd.get("type", 1), cmd["name"])
                if key in seen:
                    raise InvalidForm(f"{i}.name", "Application command names must be unique")
                seen.add(key)
        except InvalidForm as exc:
            return exc.response()
        self.command_puts += 1
        self.put_bodies.append((scope, body))
        old = self.commands.get(scope, {})
        stored = {}
        for cmd in body:
            kept = old.get(cmd["name"])
            # Discord keeps what was sent and fills in what was not (a command without options has none)
            stored[cmd["name"]] = {
                "name_localizations": None, "description_localizations": None, "integration_types": [0],
                "contexts": None, "default_member_permissions": None, "nsfw": False,
                "description": "", "type": 1, **cmd,
                "id": kept["id"] if kept else str(next(self._snowflakes)), "application_id": APP_ID,
                "version": str(next(self._snowflakes)), **({"guild_id": scope} if scope != "global" else {})}
        self.commands[scope] = stored
        return _json(list(stored.values()))

    # --- the gateway ----------------------------------------------------------------------------

    async def websocket(self, request):
        ws = web.WebSocketResponse(autoping=True, max_msg_size=4096 * 1024)
        await ws.prepare(request)
        compress = request.query.get("compress") == "zlib-stream"
        if request.query.get("v", "10") != "10":
            await ws.close(code=4012, message=b"Invalid API version")
            return ws
        state = {"session": None, "compressor": zlib.compressobj() if compress else None}
        await self._send(ws, state, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None,
                                     "t": None})
        interval = self.heartbeat_interval_ms / 1000
        grace = min(1.0, interval * 0.25)
        deadline = time.monotonic() + interval + grace
        while not ws.closed:
            try:
                msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                await self._close(ws, 4009, "Session timed out")
                break
            if msg.type == WSMsgType.CLOSE:
                self.client_closes.append(int(msg.data))
                break
            if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                self.client_closes.append(1006)  # gone without a closing handshake
                break
            if msg.type != WSMsgType.TEXT:
                await self._close(ws, 4002, "Decode error")
                break
            try:
                payload = json.loads(msg.data)
                op = payload["op"]
            except (ValueError, KeyError, TypeError):
                await self._close(ws, 4002, "Decode error")
                break
            session: Session | None = state["session"]
            self.ops_seen.append(op)
            if op == 1:
                now = time.monotonic()
                if session:
                    session.heartbeats.append(now)
                deadline = now + interval + grace
                await self._send(ws, state, {"op": 11, "d": None, "s": None, "t": None})
            elif op == 2:
                if session is not None:
                    await self._close(ws, 4005, "Already authenticated")
                    break
                d = payload.get("d") or {}
                if d.get("token") not in (self.token, f"Bot {self.token}"):
                    await self._close(ws, 4004, "Authentication failed")
                    break
                intents = int(d.get("intents", 0))
                if intents & PRIVILEGED_INTENTS & ~self.granted_intents:
                    await self._close(ws, 4014, "Disallowed intent(s)")
                    break
                shard = d.get("shard") or [0, 1]
                if (not isinstance(shard, list) or len(shard) != 2 or not all(type(x) is int for x in shard)
                        or not 0 <= shard[0] < shard[1]):
                    self.identifies.append((tuple(shard) if isinstance(shard, list) else (), time.monotonic(),
                                            "4010"))
                    await self._close(ws, 4010, "Invalid shard")
                    break
                shard = (shard[0], shard[1])
                now = time.monotonic()
                limit = self.session_start_limit()
                if limit["remaining"] <= 0:
                    # Discord: over the session start limit, every session ends and the token is reset
                    self.identifies.append((shard, now, "session start limit"))
                    for other in list(self.sessions.values()):
                        if other.ws is not None and not other.ws.closed:
                            await self._close(other.ws, 4004, "Authentication failed")
                    self.sessions.clear()
                    self.token = "reset-" + uuid.uuid4().hex
                    await self._close(ws, 4004, "Authentication failed")
                    break
                self.session_starts.append(now)
                bucket = shard[0] % self.max_concurrency
                last = self.bucket_identified.get(bucket)
                self.bucket_identified[bucket] = now
                if last is not None and now - last < IDENTIFY_WINDOW:
                    self.identifies.append((shard, now, "identified too fast"))
                    await self._send(ws, state, {"op": 9, "d": False, "s": None, "t": None})
                    continue
                mine = self.guilds_of(shard)
                if len(mine) >= SHARDING_REQUIRED_AT:
                    self.identifies.append((shard, now, "4011"))
                    await self._close(ws, 4011, "Sharding required")
                    break
                self.identifies.append((shard, now, "ready"))
                self.connects.append((request.path, 2, now))
                session = Session(shard)
                session.ws, session.compressor = ws, state["compressor"]
                state["session"] = session
                self.sessions[session.id] = session
                await self._dispatch(session, "READY", {
                    "v": 10, "user": self._user(), "session_id": session.id,
                    "resume_gateway_url": self.gateway_url(request, "/gateway/resume"),
                    "guilds": [{"id": g, "unavailable": True} for g in mine],
                    "application": {"id": APP_ID, "flags": 0}, "shard": list(shard), "_trace": ["arrakis-sandbox"]})
                for g in mine:
                    await self._dispatch(session, "GUILD_CREATE", self._guild_payload(g))
                self.identified.set()
            elif op == 6:
                self.connects.append((request.path, 6, time.monotonic()))
                d = payload.get("d") or {}
                old = self.sessions.get(d.get("session_id"))
                if d.get("token") not in (self.token, f"Bot {self.token}"):
                    await self._close(ws, 4004, "Authentication failed")
                    break
                if old is None:
                    await self._send(ws, state, {"op": 9, "d": False, "s": None, "t": None})
                    continue
                seq = int(d.get("seq") or 0)
                if seq > old.seq:
                    await self._close(ws, 4007, "Invalid seq")
                    break
                old.ws, old.compressor = ws, state["compressor"]
                state["session"] = session = old
                for s, name, data in old.events:
                    if s > seq:
                        await self._send(ws, state, {"op": 0, "s": s, "t": name, "d": data})
                await self._dispatch(session, "RESUMED", {})
            elif session is None:
                await self._close(ws, 4003, "Not authenticated")
                break
            elif op not in (3, 4, 8):  # presence, voice state, request members: accepted, not acted on
                await self._close(ws, 4001, "Unknown opcode")
                break
        if state["session"] is not None and state["session"].ws is ws:
            state["session"].ws = None
        return ws

    async def _close(self, ws, code: int, reason: str) -> None:
        self.closes.append(code)
        await ws.close(code=code, message=reason.encode())

    async def _send(self, ws, state_or_session, payload: dict) -> None:
        data = json.dumps(payload)
        compressor = (state_or_session["compressor"] if isinstance(state_or_session, dict)
                      else state_or_session.compressor)
        if compressor is not None:
            await ws.send_bytes(compressor.compress(data.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))
        else:
            await ws.send_str(data)

    async def _dispatch(self, session: Session, name: str, data: dict) -> None:
        session.seq += 1
        session.events.append((session.seq, name, data))
        del session.events[:-1000]
        if session.ws is not None and not session.ws.closed:
            try:
                await self._send(session.ws, session, {"op": 0, "s": session.seq, "t": name, "d": data})
            except ConnectionError:
                pass  # replayed on RESUME

    def _guild_payload(self, guild_id: str) -> dict:
        g = self.guilds[guild_id]
        return {
            "id": g.id, "name": g.name or f"Guild {g.id}", "icon": None, "splash": None, "discovery_splash": None,
            "owner_id": OWNER_ID, "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "features": [], "mfa_level": 0,
            "application_id": None, "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None,
            "vanity_url_code": None, "description": None, "banner": None, "premium_tier": 0,
            "preferred_locale": "en-US", "public_updates_channel_id": None, "nsfw_level": 0,
            "premium_progress_bar_enabled": False, "roles": [
                {"id": r["id"], "name": r["name"], "color": r.get("color", 0), "hoist": False, "icon": None,
                 "unicode_emoji": None, "position": r.get("position", 0), "permissions": r.get("permissions", "0"),
                 "managed": False, "mentionable": False, "flags": 0} for r in g.roles.values()],
            "emojis": [], "stickers": [], "joined_at": "2026-01-01T00:00:00+00:00", "large": False,
            "unavailable": False, "member_count": len(g.members), "voice_states": [], "members": [],
            "channels": [dict(c) for c in g.channels.values()],
            "threads": [], "presences": [], "stage_instances": [], "guild_scheduled_events": [],
            "soundboard_sounds": []}

    # --- interactions: what Discord's users do -------------------------------------------------

    def session_for(self, guild_id: str | None) -> Session | None:
        """The connected session that receives ``guild_id``'s events: the one of its shard,
        ``(guild_id >> 22) % num_shards`` (with ``None``, any connected session)."""
        live = [s for s in list(self.sessions.values()) if s.ws is not None]
        for s in live:
            if guild_id is None or shard_of(guild_id, s.shard[1]) == s.shard[0]:
                return s
        return None

    def command_data(self, guild_id: str, name: str, options: list | None = None, *,
                     subcommand: str | None = None) -> dict:
        """The ``data`` of an APPLICATION_COMMAND as Discord sends it: ``options`` as Discord
        sends them (``[{"name", "type", "value"}]``); ``subcommand`` wraps them in one; the users
        an option names come resolved. KeyError if the command is not registered there."""
        if subcommand:
            options = [{"name": subcommand, "type": 1, "options": options or []}]
        scope = self.commands.get(guild_id, {}) | self.commands.get("global", {})
        if name not in scope:
            raise KeyError(f"/{name} is not registered for guild {guild_id} (registered: {sorted(scope)})")
        data = {"id": scope[name]["id"], "name": name, "type": 1, "options": options or []}
        if scope[name].get("guild_id"):
            data["guild_id"] = guild_id  # Discord: only for a command registered in that guild
        users = [o["value"] for o in _flat(options or []) if o.get("type") == 6]
        if users:
            data["resolved"] = {"users": {u: _user_object(u) for u in users},
                                "members": {u: _member_object(u, with_user=False) for u in users}}
        return data

    def new_interaction(self, kind: int, guild_id: str, user_id: str, data: dict, permissions: int = 0,
                        message: dict | None = None) -> Interaction:
        """An interaction as Discord makes it (not yet sent: :meth:`deliver`)."""
        iid = str(next(self._snowflakes))
        token = "aW50ZXJhY3Rpb24" + uuid.uuid4().hex + uuid.uuid4().hex
        channel_id = next(iter(self.guilds[guild_id].channels), guild_id) if guild_id in self.guilds else guild_id
        payload = {
            "id": iid, "application_id": APP_ID, "type": kind, "data": data, "guild_id": guild_id,
            "guild": {"id": guild_id, "locale": "en-US", "features": []},
            "channel_id": channel_id, "channel": {"id": channel_id, "type": 0, "guild_id": guild_id,
                                                  "name": "general", "position": 0, "permission_overwrites": [],
                                                  "nsfw": False, "parent_id": None, "flags": 0},
            "member": {**_member_object(user_id), "permissions": str(permissions),
                       "roles": sorted(self.guilds[guild_id].members.get(user_id, ())) if guild_id in self.guilds
                       else []},  # the member's role ids, as Discord puts them in every interaction
            "token": token, "version": 1, "app_permissions": str((1 << 41) - 1), "locale": "en-US",
            "guild_locale": "en-US", "entitlements": [], "authorizing_integration_owners": {"0": guild_id},
            "context": 0, "attachment_size_limit": 10 * 1024 * 1024}
        if message is not None:
            payload["message"] = message
        it = Interaction(iid, token, kind, payload, time.monotonic())
        it.answered = threading.Event()
        self.interactions[iid] = it
        self._by_token[token] = it
        return it

    async def deliver(self, it: Interaction) -> bool:
        """Send INTERACTION_CREATE to the bot's session for the guild; False if none is connected."""
        session = self.session_for(it.payload.get("guild_id"))
        if session is None:
            return False
        it.sent_at = time.monotonic()
        it.shard = session.shard
        await self._dispatch(session, "INTERACTION_CREATE", it.payload)
        return True

    async def sandbox_interact(self, request):
        """``POST /sandbox/interactions``: a member uses a slash command (the sandbox's own call)."""
        try:
            body = await request.json()
            guild_id, user_id = str(body["guild_id"]), str(body["user_id"])
            data = self.command_data(guild_id, str(body["command"]), body.get("options"),
                                     subcommand=body.get("subcommand"))
        except KeyError as exc:
            return _json({"message": f"not a command the bot registered there: {exc}"}, 404)
        except (ValueError, TypeError):
            return _json({"message": "expected {guild_id, user_id, command[, options, subcommand, permissions]}"},
                         400)
        self.guild(guild_id, members=[user_id])
        it = self.new_interaction(2, guild_id, user_id, data, int(body.get("permissions") or 0))
        if not await self.deliver(it):
            return _json({"message": "no bot is connected to the gateway"}, 409)
        return _json({"id": it.id})

    async def sandbox_interaction(self, request):
        """``GET /sandbox/interactions/{id}``: what the bot answered, with every word shown."""
        it = self.interactions.get(request.match_info["i"])
        if it is None:
            return _json({"message": "Unknown interaction"}, 404)

        def bare(m):
            return m and {k: v for k, v in m.items() if k != "attachments"}

        return _json({"id": it.id, "callbacks": [{"type": c["type"], "data": c["data"]} for c in it.callbacks],
                      "original": bare(it.original), "followups": [bare(m) for m in it.followups],
                      "text": it.text()})

    # --- interactions: what the bot does ------------------------------------------------------

    async def _body(self, request) -> tuple[dict, list]:
        if request.content_type.startswith("multipart/"):
            payload, files = {}, []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.name and part.name.startswith("files["):
                    content = await part.read()
                    if len(content) > 10 * 1024 * 1024:
                        raise InvalidForm("files", "Request entity too large")
                    files.append({"filename": part.filename, "content": bytes(content)})
            return payload, files
        return await request.json(), []

    def _message(self, it: Interaction, data: dict, files: list) -> dict:
        msg = {"id": str(next(self._snowflakes)), "type": 20 if it.type == 2 else 0,
               "channel_id": it.payload["channel_id"], "content": data.get("content") or "",
               "embeds": data.get("embeds") or [], "components": data.get("components") or [],
               "flags": int(data.get("flags") or 0), "author": self._user(), "attachments": [
                   {"id": str(next(self._snowflakes)), "filename": f["filename"], "size": len(f["content"]),
                    "content": f["content"]} for f in files],
               "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": None, "tts": False,
               "mention_everyone": False, "mentions": [], "mention_roles": [], "pinned": False,
               "webhook_id": APP_ID, "application_id": APP_ID,
               "allowed_mentions": data.get("allowed_mentions")}  # kept by the fake only, for the tests
        return msg

    async def callback(self, request):
        it = self.interactions.get(request.match_info["i"])
        now = time.monotonic()
        if it is not None:
            it.attempts += 1
        if it is None or it.token != request.match_info["token"]:
            return _json({"message": "Unknown interaction", "code": 10062}, 404)
        if it.callbacks:
            return _json({"message": "Interaction has already been acknowledged.", "code": 40060}, 400)
        if now - it.sent_at > CALLBACK_DEADLINE:
            return _json({"message": "Unknown interaction", "code": 10062}, 404)
        try:
            body, files = await self._body(request)
            kind = body.get("type")
            if kind not in ALLOWED_CALLBACKS.get(it.type, set()):
                raise InvalidForm("type", f"callback type {kind} cannot answer an interaction of type {it.type}")
            data = body.get("data") or {}
            if kind == 9:
                _check_modal(data)
            elif kind in (4, 7):
                _check_message(data, files, need_content=kind == 4)
            elif kind in (5, 6):
                _check_flags(data)
        except InvalidForm as exc:
            return exc.response()
        it.callbacks.append({"type": kind, "data": data, "files": files, "at": now})
        if kind in (4, 5):
            it.original = self._message(it, data, files) if kind == 4 else {
                **self._message(it, {"flags": data.get("flags", 0)}, []), "content": "", "loading": True}
        elif kind == 7 and it.payload.get("message"):
            it.original = {**it.payload["message"], **self._message(it, data, files), "id": it.payload["message"]["id"]}
        elif kind == 6 and it.payload.get("message"):
            # the message the component sits on, until the bot edits it ("loading" marks it unedited)
            it.original = {**it.payload["message"], "loading": True}
        it.answered.set()
        if request.query.get("with_response") == "true":
            return _json({"interaction": {"id": it.id, "type": it.type}, "resource": {
                "type": kind, **({"message": it.original} if it.original else {})}})
        return web.Response(status=204)

    def _live(self, request) -> Interaction | web.Response:
        if request.match_info["app"] != APP_ID:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        it = self._by_token.get(request.match_info["token"])
        if it is None or time.monotonic() - it.sent_at > TOKEN_LIFETIME:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        if not it.callbacks:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        return it

    async def followup(self, request):
        it = self._live(request)
        if isinstance(it, web.Response):
            return it
        try:
            body, files = await self._body(request)
            _check_message(body, files, need_content=True)
        except InvalidForm as exc:
            return exc.response()
        msg = self._message(it, body, files)
        it.followups.append(msg)
        return _json(msg)

    async def webhook_message(self, request):
        it = self._live(request)
        if isinstance(it, web.Response):
            return it
        mid = request.match_info["m"]
        target = it.original if mid == "@original" or (it.original and it.original["id"] == mid) else next(
            (m for m in it.followups if m["id"] == mid), None)
        if target is None or (mid == "@original" and it.callbacks[0]["type"] == 9):
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        if request.method == "GET":
            return _json(target)
        if request.method == "DELETE":
            if target is it.original:
                it.original = None
            else:
                it.followups.remove(target)
            return web.Response(status=204)
        if request.method != "PATCH":
            return _json({"message": "405: Method Not Allowed", "code": 0}, 405)
        try:
            body, files = await self._body(request)
            _check_message(body, files, need_content=False)
        except InvalidForm as exc:
            return exc.response()
        updated = self._message(it, {**target, **body}, files or [])
        updated["id"] = target["id"]
        updated["flags"] = target.get("flags", 0)  # an edit keeps the message ephemeral or not
        updated["edited_timestamp"] = "2026-01-01T00:00:01+00:00"
        if target is it.original:
            it.original = updated
        else:
            it.followups[it.followups.index(target)] = updated
        return _json(updated)


def _flat(options: list) -> list:
    out = []
    for o in options:
        out.append(o)
        out += _flat(o.get("options") or [])
    return out


def _user_object(user_id: str) -> dict:
    return {"id": user_id, "username": f"user{user_id[-4:]}", "discriminator": "0", "global_name": None,
            "avatar": None, "public_flags": 0}


def _member_object(user_id: str, *, with_user: bool = True) -> dict:
    m = {"roles": [], "premium_since": None, "pending": False, "nick": None, "mute": False, "deaf": False,
         "joined_at": "2026-01-01T00:00:00+00:00", "flags": 0, "avatar": None, "communication_disabled_until": None}
    if with_user:
        m["user"] = _user_object(user_id)
    return m


# --- the rules ----------------------------------------------------------------------------------

def _length(value, low: int, high: int, where: str) -> None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise InvalidForm(where, f"Must be between {low} and {high} in length.")


def _check_name(name, where: str) -> None:
    _length(name, 1, 32, where)
    if not NAME.match(name) or name != name.lower():
        raise InvalidForm(where, "Command name is invalid (lowercase letters, digits, - and _ only)")


def _check_command(cmd: dict, where: str) -> None:
    kind = cmd.get("type", 1)
    if kind == 1:
        _check_name(cmd.get("name"), f"{where}.name")
        _length(cmd.get("description"), 1, 100, f"{where}.description")
    else:
        _length(cmd.get("name"), 1, 32, f"{where}.name")
        if cmd.get("description"):
            raise InvalidForm(f"{where}.description", "Only chat input commands have a description")
    _check_options(cmd.get("options") or [], f"{where}.options", depth=0)
    if _chars(cmd) > 4000:
        raise InvalidForm(where, "Command exceeds maximum size (4000)")


def _chars(cmd: dict) -> int:
    n = len(cmd.get("name", "")) + len(cmd.get("description", ""))
    for o in cmd.get("options") or []:
        n += _chars(o)
        n += sum(len(str(c.get("name", ""))) + len(str(c.get("value", ""))) for c in o.get("choices") or [])
    return n


def _check_options(options: list, where: str, *, depth: int) -> None:
    if len(options) > 25:
        raise InvalidForm(where, "Must be 25 or fewer in length.")
    seen_optional = False
    names = set()
    for i, o in enumerate(options):
        w = f"{where}.{i}"
        _check_name(o.get("name"), f"{w}.name")
        _length(o.get("description"), 1, 100, f"{w}.description")
        if o["name"] in names:
            raise InvalidForm(f"{w}.name", "Option names must be unique")
        names.add(o["name"])
        kind = o.get("type")
        if kind in (1, 2):
            if depth >= (1 if kind == 2 else 2) or o.get("required"):
                raise InvalidForm(w, "Sub-command nesting is invalid")
            _check_options(o.get("options") or [], f"{w}.options", depth=depth + 1)
            continue
        if not isinstance(kind, int) or not 3 <= kind <= 11:
            raise InvalidForm(f"{w}.type", "Value must be one of the option types.")
        if o.get("required"):
            if seen_optional:
                raise InvalidForm(w, "Required options must be placed before non-required options")
        else:
            seen_optional = True
        choices = o.get("choices") or []
        if len(choices) > 25:
            raise InvalidForm(f"{w}.choices", "Must be 25 or fewer in length.")
        for j, c in enumerate(choices):
            _length(c.get("name"), 1, 100, f"{w}.choices.{j}.name")


def _check_flags(data: dict) -> None:
    flags = int(data.get("flags") or 0)
    if flags & ~ALLOWED_FLAGS:
        raise InvalidForm("data.flags", "Invalid message flags")


def _check_message(data: dict, files: list, *, need_content: bool) -> None:
    _check_flags(data)
    content = data.get("content")
    if content is not None and len(str(content)) > 2000:
        raise InvalidForm("data.content", "Must be 2000 or fewer in length.")
    embeds = data.get("embeds") or []
    if len(embeds) > 10:
        raise InvalidForm("data.embeds", "Must be 10 or fewer in length.")
    for i, e in enumerate(embeds):
        if len(e.get("title") or "") > 256 or len(e.get("description") or "") > 4096:
            raise InvalidForm(f"data.embeds.{i}", "Embed title 256, description 4096 at most")
        if len(e.get("fields") or []) > 25:
            raise InvalidForm(f"data.embeds.{i}.fields", "Must be 25 or fewer in length.")
        for j, f in enumerate(e.get("fields") or []):
            _length(f.get("name"), 1, 256, f"data.embeds.{i}.fields.{j}.name")
            _length(f.get("value"), 1, 1024, f"data.embeds.{i}.fields.{j}.value")
    rows = data.get("components") or []
    if len(rows) > 5:
        raise InvalidForm("data.components", "Must be 5 or fewer in length.")
    for i, row in enumerate(rows):
        items = row.get("components") or []
        if row.get("type") != 1 or not 1 <= len(items) <= 5:
            raise InvalidForm(f"data.components.{i}", "An action row holds 1 to 5 components")
        selects = [c for c in items if c.get("type") in (3, 5, 6, 7, 8)]
        if selects and len(items) > 1:
            raise InvalidForm(f"data.components.{i}", "A select menu fills its row alone")
        for j, c in enumerate(items):
            w = f"data.components.{i}.components.{j}"
            if c.get("type") == 2:
                if c.get("style") != 5:
                    _length(c.get("custom_id"), 1, 100, f"{w}.custom_id")
                if c.get("label") is not None and len(c["label"]) > 80:
                    raise InvalidForm(f"{w}.label", "Must be 80 or fewer in length.")
            elif c.get("type") in (3, 5, 6, 7, 8):
                _length(c.get("custom_id"), 1, 100, f"{w}.custom_id")
                if c.get("type") == 3:
                    opts = c.get("options") or []
                    if not 1 <= len(opts) <= 25:
                        raise InvalidForm(f"{w}.options", "Must be between 1 and 25 in length.")
                    for k, o in enumerate(opts):
                        _length(o.get("label"), 1, 100, f"{w}.options.{k}.label")
                        _length(o.get("value"), 1, 100, f"{w}.options.{k}.value")
            else:
                raise InvalidForm(f"{w}.type", "Unknown component type")
    if need_content and not (str(content or "").strip() or embeds or rows or files):
        raise InvalidForm("data", "Cannot send an empty message")


def _check_modal(data: dict) -> None:
    _length(data.get("custom_id"), 1, 100, "data.custom_id")
    _length(data.get("title"), 1, 45, "data.title")
    rows = data.get("components") or []
    if not 1 <= len(rows) <= 5:
        raise InvalidForm("data.components", "Must be between 1 and 5 in length.")
    for i, row in enumerate(rows):
        items = row.get("components") or []
        if row.get("type") != 1 or len(items) != 1 or items[0].get("type") != 4:
            raise InvalidForm(f"data.components.{i}", "A modal row holds one text input")
        t = items[0]
        w = f"data.components.{i}.components.0"
        _length(t.get("custom_id"), 1, 100, f"{w}.custom_id")
        _length(t.get("label"), 1, 45, f"{w}.label")
        if t.get("style") not in (1, 2):
            raise InvalidForm(f"{w}.style", "Value must be one of (1, 2).")
        if len(t.get("value") or "") > 4000 or len(t.get("placeholder") or "") > 100:
            raise InvalidForm(w, "value 4000, placeholder 100 at most")
