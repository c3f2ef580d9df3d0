"""The Discord sandbox: a local stand-in for Discord's REST API (v10), for the embedded default
and for the tests.

It keeps guilds (roles, channels, members) and enforces Discord's documented rules at their
strictest reading, so that what passes here passes on Discord:

* ``Authorization: Bot <token>`` or 401.
* Global limit: at most 50 requests in *any* sliding one-second window, counted where requests
  arrive (every request counts, refused ones included). Past it: 429 with a JSON body
  ``{"message", "retry_after", "global": true}`` and the headers ``Retry-After``,
  ``X-RateLimit-Global: true`` and ``X-RateLimit-Scope: global``.
* Per-route buckets per major parameter (guild or channel), announced on every answer with
  ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset``, ``-Reset-After`` and ``-Bucket``. Read at
  their strictest: ``limit`` requests in *any* sliding window of ``per`` seconds where they
  arrive (so a burst at the end of one window and another at the start of the next is refused);
  ``Reset-After`` says when the oldest request in the window leaves it. Member reads and updates
  (``/guilds/{g}/members/{u}``) are 10 per 10 seconds per guild, role creation has its own slow
  bucket. Past a bucket: 429 with ``"global": false`` and ``X-RateLimit-Scope: user``.
* Invalid requests (401, 403, 429 other than ``shared``): 10,000 in ten minutes and every request
  is refused with 429 until the ten minutes are over (Discord's temporary ban).
* 250 roles and 500 channels per guild (400 with Discord's error codes 30005 / 30013).
* Every answer is ``Content-Type: application/json``.
* Direct messages as Discord sends them: ``POST /users/@me/channels`` with ``{"recipient_id"}``
  (a snowflake, else 400 with code 50035) opens (or returns) the DM channel, a channel object of
  ``type`` 1 with its ``recipients``; ``POST /channels/{id}/messages`` on it delivers only to a
  user who shares a guild with the bot (else 403 with code 50007, "Cannot send messages to this
  user"). What each user was sent is kept, and shown at ``GET /sandbox/users/{id}/messages``
  (real Discord shows it in the user's app).

It counts what it saw: ``requests``, ``count_429``, ``global_429`` and ``busiest_window`` (the
most requests that arrived in any one second), also served at ``GET /sandbox/stats``.

Guilds are made with ``POST /sandbox/guilds`` (``{"id", "name", "members": [...]}``), which real
Discord does not have. With a ``state`` file, guilds survive restarts.

Run as a process: ``python -m arrakis_engine.sandbox.discord_server --state FILE --port-file FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from . import SANDBOX_TOKEN  # noqa: F401 (re-exported)
INVALID_LIMIT, INVALID_WINDOW = 10_000, 600.0


@dataclass
class Window:
    """A per-route bucket as Discord describes it: ``limit`` requests per window of ``per``
    seconds, the window starting with its first request."""

    limit: int
    per: float
    used: int = 0
    ends: float = 0.0

    def take(self, now: float) -> float:
        if now >= self.ends:
            self.used, self.ends = 0, now + self.per
        if self.used < self.limit:
            self.used += 1
            return 0.0
        return self.ends - now

    def remaining(self, now: float) -> int:
        return self.limit - self.used if now < self.ends else self.limit

    def reset_after(self, now: float) -> float:
        return max(0.0, self.ends - now)


class RouteWindow:
    """A per-route bucket at its strictest: at most ``limit`` accepted requests in any sliding
    window of ``per`` seconds, counted where they arrive."""

    def __init__(self, limit: int, per: float) -> None:
        self.limit, self.per = limit, per
        self.times: collections.deque[float] = collections.deque()

    def _trim(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.per:
            self.times.popleft()

    def take(self, now: float) -> float:
        self._trim(now)
        if len(self.times) < self.limit:
            self.times.append(now)
            return 0.0
        return max(0.001, self.times[0] + self.per - now)

    def remaining(self, now: float) -> int:
        self._trim(now)
        return self.limit - len(self.times)

    def reset_after(self, now: float) -> float:
        self._trim(now)
        return max(0.0, self.times[0] + self.per - now) if self.times else 0.0


class SlidingWindow:
    """Arrival times of the last ``per`` seconds; ``add`` answers 0 when there is room."""

    def __init__(self, limit: int, per: float = 1.0) -> None:
        self.limit = limit
        self.per = per
        self.times: collections.deque[float] = collections.deque()
        self.busiest = 0

    def add(self, now: float) -> float:
        while self.times and self.times[0] <= now - self.per:
            self.times.popleft()
        full = len(self.times) >= self.limit
        self.times.append(now)  # a refused request still arrived, and still counts
        self.busiest = max(self.busiest, len(self.times))
        if full:
            return max(0.001, self.times[-self.limit - 1] + self.per - now)
        return 0.0


@dataclass
class Guild:
    id: str
    name: str = ""
    roles: dict = field(default_factory=dict)
    channels: dict = field(default_factory=dict)
    members: dict = field(default_factory=dict)  # user id -> set of role ids
    messages: list = field(default_factory=list)

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "roles": self.roles, "channels": self.channels,
                "members": {u: sorted(r) for u, r in self.members.items()}, "messages": self.messages[-100:]}

    @classmethod
    def from_json(cls, d: dict) -> "Guild":
        return cls(d["id"], d.get("name", ""), d.get("roles", {}), d.get("channels", {}),
                   {u: set(r) for u, r in d.get("members", {}).items()}, d.get("messages", []))


# Discord's caps on a guild: how many, and the error code for "maximum reached".
GUILD_CAPS = {"roles": (250, 30005), "channels": (500, 30013)}


def _at_cap(existing: dict, kind: str) -> web.Response | None:
    """Discord's 400 answer when a guild already holds as many roles or channels as it may."""
    cap, code = GUILD_CAPS[kind]
    if len(existing) < cap:
        return None
    return _json({"message": f"Maximum number of guild {kind} reached ({cap})", "code": code}, 400)


def _json(data, status: int = 200, headers: dict | None = None) -> web.Response:
    """Discord's answers say ``Content-Type: application/json`` exactly, with no charset (some
    clients, interactions.py among them, compare the whole header)."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})


class DiscordSandbox:
    """The server's state and handlers. :meth:`app` builds the aiohttp application."""

    ROUTE_LIMITS = {"create_role": (5, 5.0), "member": (10, 10.0), "default": (20, 1.0)}

    def __init__(self, token: str = SANDBOX_TOKEN, *, global_limit: int = 50, route_limits: dict | None = None,
                 state: Path | None = None) -> None:
        self.token = token
        self.route_limits = {**self.ROUTE_LIMITS, **(route_limits or {})}
        self.state = Path(state) if state else None
        self.guilds: dict[str, Guild] = {}
        self.dm_channels: dict[str, dict] = {}  # channel id -> DM channel object
        self.direct_messages: dict[str, list[dict]] = {}  # user id -> messages the bot sent them
        self.global_window = SlidingWindow(global_limit, 1.0)
        self.route_buckets: dict[tuple, RouteWindow] = {}
        self.invalid: collections.deque[float] = collections.deque()
        self.banned_until = 0.0
        self.count_429 = 0
        self.global_429 = 0
        self.route_429: collections.Counter = collections.Counter()  # 429s per route kind
        self.unchanged_member_updates = 0  # member PATCHes that set the roles the member had already
        self.requests = 0
        self.request_log: list[tuple[float, str, str]] = []
        self.outage_until = 0.0
        self.outage_status = 503
        self.outage_after_channel_creates: int | None = None  # start an outage after that many creates
        self.channel_creates = 0
        self.members_intent = True  # False: the bot lacks the GUILD_MEMBERS intent (listing is refused)
        self._lock = threading.Lock()
        self._dirty = False
        start = 1_100_000_000_000_000_000
        if self.state and self.state.exists():
            saved = json.loads(self.state.read_text())
            self.guilds = {g["id"]: Guild.from_json(g) for g in saved.get("guilds", [])}
            self.dm_channels = saved.get("dm_channels", {})
            self.direct_messages = saved.get("direct_messages", {})
            start = max(start, int(saved.get("next_id", start)))
        self._ids = itertools.count(start)

    # --- state ------------------------------------------------------------------------------

    def guild(self, guild_id: str, members: int | list = 0, name: str = "") -> Guild:
        """Create (or get) a guild, with an @everyone role whose id is the guild id; ``members``
        is a count of made-up members or a list of user ids."""
        with self._lock:
            if guild_id not in self.guilds:
                g = Guild(guild_id, name)
                g.roles[guild_id] = {"id": guild_id, "name": "@everyone", "color": 0, "permissions": "0",
                                     "position": 0, "managed": False}
                self.guilds[guild_id] = g
            g = self.guilds[guild_id]
            if isinstance(members, int):
                for i in range(len(g.members), members):
                    g.members[str(900_000_000_000_000_000 + i)] = set()
            else:
                for uid in members:
                    g.members.setdefault(str(uid), set())
            self._dirty = True
            return g

    def save(self) -> None:
        if not self.state or not self._dirty:
            return
        with self._lock:
            data = {"guilds": [g.as_json() for g in self.guilds.values()], "next_id": next(self._ids),
                    "dm_channels": self.dm_channels, "direct_messages": self.direct_messages}
            self._dirty = False
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state)

    def outage(self, seconds: float, status: int = 503) -> None:
        self.outage_until = time.monotonic() + seconds
        self.outage_status = status

    @property
    def busiest_window(self) -> int:
        return self.global_window.busiest

    def stats(self) -> dict:
        return {"requests": self.requests, "rate_limited": self.count_429, "global_rate_limited": self.global_429,
                "route_rate_limited": dict(self.route_429), "unchanged_member_updates": self.unchanged_member_updates,
                "busiest_window": self.busiest_window, "guilds": len(self.guilds),
                "invalid_last_10_min": len(self.invalid)}

    # --- limits -------------------------------------------------------------------------------

    def _route_key(self, request: web.Request) -> tuple[str, str]:
        info = request.match_info
        major = info.get("g") or info.get("c") or ""
        if request.method == "POST" and request.path.endswith("/roles"):
            return ("create_role", major)
        if "/members/" in request.path or request.path.endswith("/members"):
            return ("member", major)  # listing, reading and updating members: one bucket per guild
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else request.path
        return ("default", f"{request.method}:{template}:{major}")  # one bucket per route and guild/channel

    def _count_invalid(self, now: float) -> None:
        self.invalid.append(now)
        while self.invalid and self.invalid[0] <= now - INVALID_WINDOW:
            self.invalid.popleft()
        if len(self.invalid) >= INVALID_LIMIT:
            self.banned_until = now + INVALID_WINDOW

    def _limited(self, wait: float, *, scope: str, headers: dict | None = None) -> web.Response:
        self.count_429 += 1
        body = {"message": "You are being rate limited.", "retry_after": round(wait, 3), "global": scope == "global"}
        h = {**(headers or {}), "Retry-After": str(max(1, int(wait + 0.999))), "X-RateLimit-Scope": scope}
        if scope == "global":
            self.global_429 += 1
            h["X-RateLimit-Global"] = "true"
        return _json(body, 429, h)

    # Paths outside the bot's token and global limit: the sandbox's own, the gateway's websocket,
    # and (as Discord documents) interaction callbacks and their webhooks, whose token is in the URL.
    UNMETERED = ("/sandbox/", "/gateway/", "/api/v10/interactions/", "/api/v10/webhooks/")

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        if request.path.startswith(self.UNMETERED):
            return await handler(request)
        now = time.monotonic()
        with self._lock:
            self.requests += 1
            self.request_log.append((now, request.method, request.path))
            busy = self.global_window.add(now)
            if now < self.banned_until:
                return _json({"message": "You are being blocked from accessing our API temporarily due to "
                                         "exceeding our rate limits frequently.", "code": 0, "global": True,
                              "retry_after": round(self.banned_until - now, 3)}, 429,
                             {"Retry-After": str(int(self.banned_until - now) + 1), "X-RateLimit-Global": "true",
                              "X-RateLimit-Scope": "global"})
            if request.headers.get("Authorization") != f"Bot {self.token}":
                self._count_invalid(now)
                return _json({"message": "401: Unauthorized", "code": 0}, 401)
            if busy:
                self._count_invalid(now)
                return self._limited(busy, scope="global")
            if now < self.outage_until:
                return _json({"message": "Service Unavailable"}, self.outage_status)
            kind, major = self._route_key(request)
            limit, per = self.route_limits[kind]
            bucket = self.route_buckets.setdefault((kind, major), RouteWindow(limit, per))
            wait = bucket.take(now)
            reset_after = bucket.reset_after(now)
            headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(bucket.remaining(now)),
                       "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                       "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                       "X-RateLimit-Bucket": f"{kind}-bucket"}
            if wait:
                self._count_invalid(now)
                self.route_429[kind] += 1
                return self._limited(wait, scope="user", headers={**headers, "X-RateLimit-Remaining": "0",
                                                                  "X-RateLimit-Reset-After": f"{wait:.3f}",
                                                                  "X-RateLimit-Reset": f"{time.time() + wait:.3f}"})
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            resp = _json(json.loads(exc.text or "{}"), exc.status)
        if resp.status in (401, 403):
            with self._lock:
                self._count_invalid(now)
        if request.method != "GET" and resp.status < 300:
            self._dirty = True
        resp.headers.update(headers)
        return resp

    # --- the application ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/api/v10/guilds/{g}/roles", self.list_roles)
        r.add_post("/api/v10/guilds/{g}/roles", self.create_role)
        r.add_patch("/api/v10/guilds/{g}/roles/{r}", self.update_role)
        r.add_delete("/api/v10/guilds/{g}/roles/{r}", self.delete_role)
        r.add_get("/api/v10/guilds/{g}/channels", self.list_channels)
        r.add_post("/api/v10/guilds/{g}/channels", self.create_channel)
        r.add_patch("/api/v10/channels/{c}", self.update_channel)
        r.add_delete("/api/v10/channels/{c}", self.delete_channel)
        r.add_get("/api/v10/guilds/{g}/members", self.list_members)
        r.add_get("/api/v10/guilds/{g}/members/{u}", self.get_member)
        r.add_patch("/api/v10/guilds/{g}/members/{u}", self.set_member_roles)
        r.add_post("/api/v10/users/@me/channels", self.open_dm)
        r.add_post("/api/v10/channels/{c}/messages", self.send_message)
        r.add_get("/sandbox/users/{u}/messages", self.sandbox_direct_messages)
        r.add_get("/sandbox/stats", self.sandbox_stats)
        r.add_post("/sandbox/guilds", self.sandbox_guild)
        r.add_get("/sandbox/guilds/{g}", self.sandbox_show_guild)
        return app

    # --- sandbox-only endpoints ------------------------------------------------------------------

    async def sandbox_stats(self, request):
        return _json(self.stats())

    async def sandbox_guild(self, request):
        body = await request.json()
        if not isinstance(body, dict) or not str(body.get("id", "")).strip():
            return _json({"message": "a guild needs an id"}, 400)
        g = self.guild(str(body["id"]), list(body.get("members", [])), body.get("name", ""))
        return _json({"id": g.id, "roles": len(g.roles), "channels": len(g.channels), "members": len(g.members)})

    async def sandbox_show_guild(self, request):
        return _json(self._g(request).as_json())

    async def sandbox_direct_messages(self, request):
        return _json(self.direct_messages.get(request.match_info["u"], []))

    # --- Discord's endpoints ------------------------------------------------------------------------

    def _g(self, request) -> Guild:
        g = self.guilds.get(request.match_info["g"])
        if g is None:
            raise web.HTTPNotFound(text='{"message": "Unknown Guild", "code": 10004}', content_type="application/json")
        return g

    def _channel(self, cid: str) -> tuple[Guild, dict]:
        for g in self.guilds.values():
            if cid in g.channels:
                return g, g.channels[cid]
        raise web.HTTPNotFound(text='{"message": "Unknown Channel", "code": 10003}', content_type="application/json")

    async def list_roles(self, request):
        return _json(list(self._g(request).roles.values()))

    async def list_channels(self, request):
        return _json(list(self._g(request).channels.values()))

    async def create_role(self, request):
        g, body = self._g(request), await request.json()
        if full := _at_cap(g.roles, "roles"):
            return full
        rid = str(next(self._ids))
        role = {"id": rid, "name": body.get("name", "new role"), "color": int(body.get("color", 0)),
                "permissions": str(body.get("permissions", "0")), "hoist": bool(body.get("hoist", False)),
                "position": len(g.roles), "managed": False}
        g.roles[rid] = role
        return _json(role)

    async def update_role(self, request):
        g, body = self._g(request), await request.json()
        role = g.roles.get(request.match_info["r"])
        if role is None:
            return _json({"message": "Unknown Role", "code": 10011}, 404)
        for k in ("name", "color", "permissions", "hoist"):
            if k in body:
                role[k] = str(body[k]) if k == "permissions" else body[k]
        return _json(role)

    async def delete_role(self, request):
        g = self._g(request)
        if g.roles.pop(request.match_info["r"], None) is None:
            return _json({"message": "Unknown Role", "code": 10011}, 404)
        for roles in g.members.values():
            roles.discard(request.match_info["r"])
        return web.Response(status=204)

    async def create_channel(self, request):
        g, body = self._g(request), await request.json()
        if full := _at_cap(g.channels, "channels"):
            return full
        if body.get("parent_id") and body["parent_id"] not in g.channels:
            return _json({"message": "Invalid Form Body", "code": 50035}, 400)
        self.channel_creates += 1
        if self.outage_after_channel_creates is not None and self.channel_creates > self.outage_after_channel_creates:
            self.outage(60)
            return _json({"message": "Service Unavailable"}, 503)
        cid = str(next(self._ids))
        ch = {"id": cid, "guild_id": g.id, "name": body.get("name"), "type": int(body.get("type", 0)),
              "topic": body.get("topic"), "parent_id": body.get("parent_id"), "position": len(g.channels),
              "permission_overwrites": body.get("permission_overwrites", [])}
        g.channels[cid] = ch
        return _json(ch)

    async def update_channel(self, request):
        g, ch = self._channel(request.match_info["c"])
        body = await request.json()
        for k in ("name", "topic", "parent_id", "permission_overwrites", "position"):
            if k in body:
                ch[k] = body[k]
        return _json(ch)

    async def delete_channel(self, request):
        g, ch = self._channel(request.match_info["c"])
        del g.channels[ch["id"]]
        return _json(ch)

    async def list_members(self, request):
        """List Guild Members: ``limit`` 1 to 1000 (default 1), ``after`` a user id (default 0),
        members in ascending user id order. Needs the privileged GUILD_MEMBERS intent: without it
        (``members_intent = False``) Discord answers 403 Missing Access."""
        g = self._g(request)
        if not self.members_intent:
            return _json({"message": "Missing Access", "code": 50001}, 403)
        q = request.query
        try:
            limit = int(q.get("limit", "1"))
            after = int(q.get("after", "0"))
        except ValueError:
            return _json({"message": "Invalid Form Body", "code": 50035}, 400)
        if not 1 <= limit <= 1000 or after < 0:
            return _json({"message": "Invalid Form Body", "code": 50035,
                          "errors": {"limit": {"_errors": [{"code": "NUMBER_TYPE_MAX",
                                                            "message": "int value should be between 1 and 1000."}]}}},
                         400)
        ids = sorted((u for u in g.members if int(u) > after), key=int)[:limit]
        return _json([{"user": {"id": u}, "roles": sorted(g.members[u])} for u in ids])

    async def get_member(self, request):
        g = self._g(request)
        roles = g.members.get(request.match_info["u"])
        if roles is None:
            return _json({"message": "Unknown Member", "code": 10007}, 404)
        return _json({"user": {"id": request.match_info["u"]}, "roles": sorted(roles)})

    async def set_member_roles(self, request):
        g, body = self._g(request), await request.json()
        uid = request.match_info["u"]
        if uid not in g.members:
            return _json({"message": "Unknown Member", "code": 10007}, 404)
        roles = body.get("roles", [])
        unknown = [r for r in roles if r not in g.roles]
        if unknown:
            return _json({"message": "Unknown Role", "code": 10011}, 400)
        if set(roles) == g.members[uid]:
            self.unchanged_member_updates += 1
        g.members[uid] = set(roles)
        return _json({"user": {"id": uid}, "roles": sorted(roles)})

    async def open_dm(self, request):
        try:
            body = await request.json()
        except ValueError:
            body = None
        recipient = str((body or {}).get("recipient_id", "")) if isinstance(body, dict) else ""
        if not recipient.isdigit() or not 17 <= len(recipient) <= 20:
            return _json({"message": "Invalid Form Body", "code": 50035,
                          "errors": {"recipient_id": {"_errors": [{"code": "NUMBER_TYPE_COERCE",
                                                                   "message": "Value is not snowflake."}]}}}, 400)
        with self._lock:
            channel = next((c for c in self.dm_channels.values() if c["recipients"][0]["id"] == recipient), None)
            if channel is None:
                cid = str(next(self._ids))
                channel = self.dm_channels[cid] = {"id": cid, "type": 1, "last_message_id": None, "flags": 0,
                                                   "recipients": [{"id": recipient, "username": f"user{recipient[-4:]}",
                                                                   "discriminator": "0", "global_name": None,
                                                                   "avatar": None}]}
        return _json(channel)

    async def _send_direct(self, channel: dict, request) -> web.Response:
        body = await request.json()
        content = body.get("content", "") if isinstance(body, dict) else ""
        if not isinstance(content, str) or not content.strip() or len(content) > 2000:
            return _json({"message": "Cannot send an empty message" if not content else "Invalid Form Body",
                          "code": 50006 if not content else 50035}, 400)
        user = channel["recipients"][0]["id"]
        if not any(user in g.members for g in self.guilds.values()):
            return _json({"message": "Cannot send messages to this user", "code": 50007}, 403)
        msg = {"id": str(next(self._ids)), "channel_id": channel["id"], "content": content, "type": 0,
               "author": {"id": "0", "bot": True}}
        with self._lock:
            channel["last_message_id"] = msg["id"]
            self.direct_messages.setdefault(user, []).append(msg)
        return _json(msg)

    async def send_message(self, request):
        if request.match_info["c"] in self.dm_channels:
            return await self._send_direct(self.dm_channels[request.match_info["c"]], request)
        g, ch = self._channel(request.match_info["c"])
        body = await request.json()
        msg = {"id": str(next(self._ids)), "channel_id": ch["id"], "content": body.get("content", "")}
        g.messages.append(msg)
        return _json(msg)


async def _serve(sandbox: DiscordSandbox, host: str, port: int, port_file: Path | None) -> None:
    runner = web.AppRunner(sandbox.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    if port_file:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(bound))
        os.replace(tmp, port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
            sandbox.save()
    finally:
        sandbox.save()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="The Arrakis Discord sandbox (a local stand-in for Discord's REST API "
                                            "and gateway).")
    p.add_argument("--state", type=Path, default=None, help="JSON file the guilds are kept in across restarts.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port (written to --port-file).")
    p.add_argument("--port-file", type=Path, default=None)
    p.add_argument("--token", default=SANDBOX_TOKEN)
    args = p.parse_args(argv)
    from .gateway import DiscordBotSandbox  # the REST sandbox plus the gateway a bot connects to

    asyncio.run(_serve(DiscordBotSandbox(args.token, state=args.state), args.host, args.port, args.port_file))


if __name__ == "__main__":
    main()
