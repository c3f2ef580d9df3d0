"""A fake Discord REST API (v10) of our own: aiohttp on 127.0.0.1, keeping guild state and
enforcing what Discord enforces, so the real client code is what gets tested.

* ``Authorization: Bot <token>`` or 401.
* Global limit: 50 requests/s per bot token (a bucket of 50 refilled at 50/s); past it, 429 with
  ``"global": true``, ``X-RateLimit-Global: true`` and ``X-RateLimit-Scope: global``.
* Per-route buckets per guild, announced on every answer with ``X-RateLimit-Limit``,
  ``-Remaining``, ``-Reset``, ``-Reset-After`` and ``-Bucket``; role creation has its own slow
  bucket. Past one, 429 with ``retry_after`` and ``X-RateLimit-Scope: user``.
* 250 roles and 500 channels per guild (400 with Discord's error codes 30005 / 30013).
* ``outage`` makes every call answer 503 (or ``outage_status``) for a while.
Every 429 it sends is counted (``count_429``), and every request (``requests``).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

@dataclass
class Bucket:
    limit: int
    per: float  # seconds for a full refill
    tokens: float = 0.0
    stamp: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = float(self.limit)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 if allowed (and taken), else seconds until one token is back."""
        now = time.monotonic()
        rate = self.limit / self.per
        self.tokens = min(self.limit, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate

    def reset_after(self) -> float:
        return (self.limit - self.tokens) * self.per / self.limit


@dataclass
class Window:
    """A per-route bucket as Discord describes it: ``limit`` calls per window of ``per`` seconds,
    the window starting with its first call."""

    limit: int
    per: float
    used: int = 0
    ends: float = 0.0

    def take(self) -> float:
        now = time.monotonic()
        if now >= self.ends:
            self.used, self.ends = 0, now + self.per
        if self.used < self.limit:
            self.used += 1
            return 0.0
        return self.ends - now

    @property
    def remaining(self) -> int:
        return self.limit - self.used if time.monotonic() < self.ends else self.limit

    def reset_after(self) -> float:
        return max(0.0, self.ends - time.monotonic())


@dataclass
class Guild:
    id: str
    roles: dict = field(default_factory=dict)
    channels: dict = field(default_factory=dict)
    members: dict = field(default_factory=dict)  # user id -> set of role ids
    messages: list = field(default_factory=list)


class FakeDiscord:
    ROUTE_LIMITS = {"create_role": (5, 5.0), "member": (10, 1.0), "default": (20, 1.0)}

    def __init__(self, token: str = "test-bot-token", *, global_limit: int = 50,
                 route_limits: dict | None = None) -> None:
        self.token = token
        self.route_limits = {**self.ROUTE_LIMITS, **(route_limits or {})}
        self.guilds: dict[str, Guild] = {}
        self.global_bucket = Bucket(global_limit, 1.0)
        self.route_buckets: dict[tuple, Window] = {}
        self.count_429 = 0
        self.global_429 = 0
        self.requests = 0
        self.request_log: list[tuple[float, str, str]] = []
        self.outage_until = 0.0
        self.outage_status = 503
        self.outage_after_channel_creates: int | None = None  # start an outage after that many creates
        self.channel_creates = 0
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = None
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.url = f"http://127.0.0.1:{self.port}/api/v10"

    # --- lifecycle ----------------------------------------------------------------------------

    async def _start(self) -> None:
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
        r.add_get("/api/v10/guilds/{g}/members/{u}", self.get_member)
        r.add_patch("/api/v10/guilds/{g}/members/{u}", self.set_member_roles)
        r.add_post("/api/v10/channels/{c}/messages", self.send_message)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def guild(self, guild_id: str, members: int = 0) -> Guild:
        """Create (or get) a guild, with an @everyone role whose id is the guild id."""
        with self._lock:
            if guild_id not in self.guilds:
                g = Guild(guild_id)
                g.roles[guild_id] = {"id": guild_id, "name": "@everyone", "color": 0, "permissions": "0",
                                     "position": 0, "managed": False}
                self.guilds[guild_id] = g
            g = self.guilds[guild_id]
            for i in range(len(g.members), members):
                g.members[str(900_000_000_000_000_000 + i)] = set()
            return g

    def outage(self, seconds: float, status: int = 503) -> None:
        self.outage_until = time.monotonic() + seconds
        self.outage_status = status

    # --- limits -------------------------------------------------------------------------------

    def _route_key(self, request: web.Request) -> tuple[str, str]:
        info = request.match_info
        major = info.get("g") or info.get("c") or ""
        if request.method == "POST" and request.path.endswith("/roles"):
            return ("create_role", major)
        if "/members/" in request.path:
            return ("member", major)
        return ("default", f"{request.method}:{major}")

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        self.requests += 1
        self.request_log.append((time.monotonic(), request.method, request.path))
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        if time.monotonic() < self.outage_until:
            return web.json_response({"message": "Service Unavailable"}, status=self.outage_status)
        with self._lock:
            wait = self.global_bucket.take()
            if wait:
                self.count_429 += 1
                self.global_429 += 1
                return web.json_response(
                    {"message": "You are being rate limited.", "retry_after": round(wait, 3), "global": True},
                    status=429, headers={"Retry-After": str(max(1, round(wait))), "X-RateLimit-Global": "true",
                                         "X-RateLimit-Scope": "global"})
            kind, major = self._route_key(request)
            limit, per = self.route_limits[kind]
            bucket = self.route_buckets.setdefault((kind, major), Window(limit, per))
            wait = bucket.take()
            headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(bucket.remaining),
                       "X-RateLimit-Reset-After": f"{bucket.reset_after():.3f}",
                       "X-RateLimit-Reset": f"{time.time() + bucket.reset_after():.3f}",
                       "X-RateLimit-Bucket": f"{kind}-bucket"}
            if wait:
                self.count_429 += 1
                return web.json_response({"message": "You are being rate limited.", "retry_after": round(wait, 3),
                                          "global": False}, status=429,
                                         headers={**headers, "Retry-After": str(max(1, round(wait))),
                                                  "X-RateLimit-Scope": "user", "X-RateLimit-Remaining": "0"})
        resp = await handler(request)
        resp.headers.update(headers)
        return resp

    # --- handlers -----------------------------------------------------------------------------

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
        return web.json_response(list(self._g(request).roles.values()))

    async def create_role(self, request):
        g, body = self._g(request), await request.json()
        if len(g.roles) >= 250:
            return web.json_response({"message": "Maximum number of guild roles reached (250)", "code": 30005},
                                     status=400)
        rid = str(next(self._ids))
        role = {"id": rid, "name": body.get("name", "new role"), "color": int(body.get("color", 0)),
                "permissions": str(body.get("permissions", "0")), "hoist": bool(body.get("hoist", False)),
                "position": len(g.roles), "managed": False}
        g.roles[rid] = role
        return web.json_response(role)

    async def update_role(self, request):
        g, body = self._g(request), await request.json()
        role = g.roles.get(request.match_info["r"])
        if role is None:
            return web.json_response({"message": "Unknown Role", "code": 10011}, status=404)
        for k in ("name", "color", "permissions", "hoist"):
            if k in body:
                role[k] = str(body[k]) if k == "permissions" else body[k]
        return web.json_response(role)

    async def delete_role(self, request):
        g = self._g(request)
        if g.roles.pop(request.match_info["r"], None) is None:
            return web.json_response({"message": "Unknown Role", "code": 10011}, status=404)
        for roles in g.members.values():
            roles.discard(request.match_info["r"])
        return web.Response(status=204)

    async def list_channels(self, request):
        return web.json_response(list(self._g(request).channels.values()))

    async def create_channel(self, request):
        g, body = self._g(request), await request.json()
        if len(g.channels) >= 500:
            return web.json_response({"message": "Maximum number of guild channels reached (500)", "code": 30013},
                                     status=400)
        if body.get("parent_id") and body["parent_id"] not in g.channels:
            return web.json_response({"message": "Invalid Form Body", "code": 50035}, status=400)
        self.channel_creates += 1
        if self.outage_after_channel_creates is not None and self.channel_creates > self.outage_after_channel_creates:
            self.outage(60)
            return web.json_response({"message": "Service Unavailable"}, status=503)
        cid = str(next(self._ids))
        ch = {"id": cid, "guild_id": g.id, "name": body.get("name"), "type": int(body.get("type", 0)),
              "topic": body.get("topic"), "parent_id": body.get("parent_id"), "position": len(g.channels),
              "permission_overwrites": body.get("permission_overwrites", [])}
        g.channels[cid] = ch
        return web.json_response(ch)

    async def update_channel(self, request):
        g, ch = self._channel(request.match_info["c"])
        body = await request.json()
        for k in ("name", "topic", "parent_id", "permission_overwrites", "position"):
            if k in body:
                ch[k] = body[k]
        return web.json_response(ch)

    async def delete_channel(self, request):
        g, ch = self._channel(request.match_info["c"])
        del g.channels[ch["id"]]
        return web.json_response(ch)

    async def get_member(self, request):
        g = self._g(request)
        roles = g.members.get(request.match_info["u"])
        if roles is None:
            return web.json_response({"message": "Unknown Member", "code": 10007}, status=404)
        return web.json_response({"user": {"id": request.match_info["u"]}, "roles": sorted(roles)})

    async def set_member_roles(self, request):
        g, body = self._g(request), await request.json()
        uid = request.match_info["u"]
        if uid not in g.members:
            return web.json_response({"message": "Unknown Member", "code": 10007}, status=404)
        roles = body.get("roles", [])
        unknown = [r for r in roles if r not in g.roles]
        if unknown:
            return web.json_response({"message": "Unknown Role", "code": 10011}, status=400)
        g.members[uid] = set(roles)
        return web.json_response({"user": {"id": uid}, "roles": sorted(roles)})

    async def send_message(self, request):
        g, ch = self._channel(request.match_info["c"])
        body = await request.json()
        msg = {"id": str(next(self._ids)), "channel_id": ch["id"], "content": body.get("content", "")}
        g.messages.append(msg)
        return web.json_response(msg)
