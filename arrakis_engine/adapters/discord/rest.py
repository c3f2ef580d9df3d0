"""Discord REST (API v10) over httpx, behind the global limit, per-route buckets and the
freeze flags.

Every request passes one gate right before it is sent (``RedisTokenBucket.take_for_send``): in
one atomic step it checks the freeze flags and any global pause Discord asked for, the route's
bucket (as Discord's ``X-RateLimit-*`` headers last described it, shared in Redis by all
workers), and the global sliding window; only when all say yes are the route slot and the global
slot taken, and the request goes out at once. A 429 is counted, honoured (``retry_after``; a
global one pauses every worker) and retried a few times; every retry passes the gate again and
counts again. 401, 403 and 404 are final (``retryable=False``); 5xx and network errors are
``retryable`` so the queue tries the job again later. Invalid requests (401/403/429) are counted
per 10 minutes, and calls stop well before Discord's 10,000 ban line.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable

import httpx

from ... import keys
from ...errors import DiscordError, RouteBusy
from ...ports import CHANNEL_TYPES
from ...metrics import NULL_METRICS, Metrics
from ...synthesis.freeze import FreezeFlags
from ...synthesis.freeze import field as freeze_field
from .redis_bucket import FREEZE_CACHE_COLD, FROZEN, GLOBAL_FULL, ROUTE_EMPTY, SENT, RedisTokenBucket

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)
GATE_NAP = 5.0  # seconds at most between two looks at the rate limits while waiting

INVALID_LIMIT = 5_000  # half of Discord's 10,000 per 10 minutes

# One step per answer from Discord. KEYS[1] route hash, KEYS[2] the global log of sends, KEYS[3]
# the route's log of sends; ARGV[1] remaining, ARGV[2] reset-after seconds, ARGV[3] bucket id,
# ARGV[4] limit (ARGV[1] '' when the answer had no rate-limit headers), ARGV[5] the request's slot
# in the logs, ARGV[6] the global limit, ARGV[7] the global window.
# First the slot is moved to now, the time of the answer (the request arrived before it). Then
# the headers: answers arrive out of order: within one window keep the lowest "remaining"; a
# later window replaces it; an answer from an older window is ignored. An answer without headers
# on a route never described: only the global limit holds for it.
REMEMBER_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('ZADD', KEYS[3], now, ARGV[5]) end
end
if ARGV[1] == '' then
  if ARGV[6] ~= '' then
    redis.call('HSETNX', KEYS[1], 'limit', ARGV[6])
    redis.call('HSETNX', KEYS[1], 'window', ARGV[7])
    redis.call('EXPIRE', KEYS[1], 3600)
  end
  return 1
end
local new_reset = now + tonumber(ARGV[2])
local remaining = tonumber(ARGV[1])
local r = redis.call('HMGET', KEYS[1], 'remaining', 'reset_at')
local old_remaining, old_reset = tonumber(r[1]), tonumber(r[2])
if old_reset ~= nil and now < old_reset then
  if math.abs(new_reset - old_reset) < 0.25 then
    if old_remaining ~= nil and old_remaining < remaining then remaining = old_remaining end
  elseif new_reset < old_reset then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'remaining', tostring(remaining), 'reset_at', tostring(new_reset), 'bucket', ARGV[3],
           'limit', ARGV[4])
local window = tonumber(redis.call('HGET', KEYS[1], 'window'))
if window == nil or tonumber(ARGV[2]) > window then
  redis.call('HSET', KEYS[1], 'window', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], 3600)
return 1
"""


class DiscordREST:
    def __init__(self, base_url: str, token: str, redis: Redis, bucket: RedisTokenBucket, freeze: FreezeFlags, *,
                 timeout: float = 10.0, max_rate_limit_retries: int = 5,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None,
                 global_timeout: float = 30.0, metrics: Metrics = NULL_METRICS) -> None:
        self.metrics = metrics
        self.redis = redis
        self.bucket = bucket
        self.freeze = freeze
        self.sleep = sleep
        self.max_rate_limit_retries = max_rate_limit_retries
        self.global_timeout = global_timeout
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bot {token}", "User-Agent": "Arrakis (arrakis, 0.1)"})
        self._remember = redis.register_script(REMEMBER_LUA)
        self.calls = 0

    def close(self) -> None:
        self._http.close()

    # --- the one way out ----------------------------------------------------------------------

    def request(self, method: str, path: str, *, route: str, community_id: uuid.UUID | str | None = None,
                json: Any = None, reason: str | None = None, patience: float | None = None,
                user_id: str | None = None) -> Any:
        """``patience``: the longest to wait for the route's bucket; past it, RouteBusy is raised
        (before any token is taken) so a worker can serve other communities meanwhile."""
        headers = {"X-Audit-Log-Reason": reason[:512]} if reason else None
        for attempt in range(self.max_rate_limit_retries + 1):
            self._check_invalid_budget()
            slot = self._pass_the_gate(route, community_id, patience, user_id)
            self.calls += 1
            try:
                resp = self._http.request(method, path, json=json, headers=headers)
            except httpx.HTTPError as exc:
                self._settle(route, slot)  # it may have arrived all the same
                raise DiscordError(f"Discord could not be reached ({type(exc).__name__})", retryable=True) from exc
            self._remember_route(route, resp, slot)
            self.metrics.discord(method, path, resp.status_code, resp.headers)
            if resp.status_code == 429:
                if resp.headers.get("X-RateLimit-Scope") != "shared":  # shared-resource 429s are not held against us
                    self._invalid()
                self.bucket.record_rate_limited()
                body = _json(resp) or {}
                retry_after = float(body.get("retry_after") or resp.headers.get("Retry-After") or 1)
                if body.get("global") or resp.headers.get("X-RateLimit-Global") == "true":
                    self.redis.set(keys.DISCORD_GLOBAL_PAUSE, "1", px=max(1, int(retry_after * 1000)))
                log.warning("Discord rate limited %s %s (%s); waiting %.2f s", method, route,
                            "global" if body.get("global") else "route", retry_after)
                self.sleep(retry_after)
                continue
            if resp.status_code in (401, 403):
                self._invalid()
                raise DiscordError("Discord refused the bot's access" if resp.status_code == 401
                                   else "the bot lacks the permission for this change",
                                   status=resp.status_code, code=(_json(resp) or {}).get("code"), retryable=False,
                                   hint="check DISCORD_BOT_TOKEN and the bot's role in the guild")
            if resp.status_code == 404:
                raise DiscordError(f"Discord does not know {path}", status=404,
                                   code=(_json(resp) or {}).get("code"), retryable=False)
            if resp.status_code >= 500:
                raise DiscordError(f"Discord answered {resp.status_code}", status=resp.status_code, retryable=True)
            if resp.status_code >= 400:
                body = _json(resp) or {}
                raise DiscordError(f"Discord refused the change: {body.get('message', resp.status_code)}",
                                   status=resp.status_code, code=body.get("code"), retryable=False)
            return _json(resp) if resp.status_code != 204 else None
        raise DiscordError(f"still rate limited after {self.max_rate_limit_retries} tries", status=429,
                           retryable=True)

    def _pass_the_gate(self, route: str, community_id, patience: float | None, user_id: str | None = None) -> str:
        """Wait until the freeze flags, the global pause, the route's bucket and the global window
        all let this request go, then take its slots (all in one atomic step) and return their
        name: the caller sends at once, and holds the slots until the answer (``_settle``)."""
        freeze_fields = (freeze_field(community_id) if community_id is not None else "",
                         freeze_field(user_id=user_id) if user_id is not None else "")
        waited_global, started = 0.0, time.monotonic()
        while True:
            take = self.bucket.take_for_send(route_key=keys.route(route), freeze_fields=freeze_fields)
            if take.status == SENT:
                self.bucket.record_wait(waited_global)
                self.metrics.bucket_wait(time.monotonic() - started)
                return take.slot
            if take.status == FREEZE_CACHE_COLD:
                # Redis lost (or was made to lose) the freeze flags: nothing goes out until they are
                # rebuilt from PostgreSQL; if it cannot be read, this call fails and is retried.
                self.freeze.ensure()
                continue
            if take.status == FROZEN:
                self.freeze.wait_while_frozen(community_id, user_id=user_id)
                continue
            if take.status == ROUTE_EMPTY and patience is not None and take.wait > patience:
                raise RouteBusy(take.wait)
            # A long wait is slept in short naps, each followed by a fresh look: what Redis says
            # may change meanwhile (a pause lifted, or a pause or bucket written there by hand).
            nap = min(take.wait, GATE_NAP)
            if take.status == GLOBAL_FULL:
                waited_global += nap
                if waited_global > self.global_timeout:
                    raise self.bucket.backed_up(self.global_timeout)
            self.sleep(nap)

    def _remember_route(self, route: str, resp: httpx.Response, slot: str = "") -> None:
        """One step per answer: the request's slots held until now, and what the headers say of
        the route's bucket (a route Discord answers without one: only the global limit holds for
        it, and its probe is answered, so callers stop waiting for headers that will not come)."""
        h = resp.headers
        route_key = keys.route(route)
        if "X-RateLimit-Remaining" in h and "X-RateLimit-Reset-After" in h:
            args = [h["X-RateLimit-Remaining"], h["X-RateLimit-Reset-After"], h.get("X-RateLimit-Bucket", ""),
                    h.get("X-RateLimit-Limit", "1"), slot, "", ""]
        elif resp.status_code < 500 and resp.status_code != 429:
            args = ["", "", "", "", slot, str(self.bucket.limit), repr(self.bucket.window)]
        else:
            self._settle(route, slot)
            return
        self._remember(keys=[route_key, self.bucket.log_key, keys.route_log(route_key)], args=args)

    def _settle(self, route: str, slot: str) -> None:
        """Hold the request's slots until now (no answer came: it may still have arrived)."""
        if slot:
            route_key = keys.route(route)
            self._remember(keys=[route_key, self.bucket.log_key, keys.route_log(route_key)],
                           args=["", "", "", "", slot, "", ""])

    def _invalid(self) -> None:
        key = keys.discord_invalid(int(time.time() // 600))
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 1200)
        pipe.execute()

    def _check_invalid_budget(self) -> None:
        count = int(self.redis.get(keys.discord_invalid(int(time.time() // 600))) or 0)
        if count >= INVALID_LIMIT:
            raise DiscordError(f"{count} invalid Discord requests in the last 10 minutes; calls are paused to "
                               "stay clear of Discord's ban line", retryable=True)

    # --- guild resources ------------------------------------------------------------------------

    def list_roles(self, guild_id: str, *, community_id=None) -> list[dict]:
        return self.request("GET", f"/guilds/{guild_id}/roles", route=f"GET roles {guild_id}", community_id=community_id)

    def create_role(self, guild_id: str, *, name: str, color: int, permissions: int | str, hoist: bool = False,
                    community_id=None, patience: float | None = None) -> dict:
        return self.request("POST", f"/guilds/{guild_id}/roles", route=f"POST roles {guild_id}",
                            community_id=community_id, patience=patience,
                            json={"name": name, "color": color, "permissions": str(permissions), "hoist": hoist})

    def update_role(self, guild_id: str, role_id: str, *, community_id=None, **fields) -> dict:
        if "permissions" in fields:
            fields["permissions"] = str(fields["permissions"])
        return self.request("PATCH", f"/guilds/{guild_id}/roles/{role_id}", route=f"PATCH roles {guild_id}",
                            community_id=community_id, json=fields)

    def delete_role(self, guild_id: str, role_id: str, *, community_id=None) -> None:
        self.request("DELETE", f"/guilds/{guild_id}/roles/{role_id}", route=f"DELETE roles {guild_id}",
                     community_id=community_id)

    def list_channels(self, guild_id: str, *, community_id=None) -> list[dict]:
        return self.request("GET", f"/guilds/{guild_id}/channels", route=f"GET channels {guild_id}",
                            community_id=community_id)

    def create_channel(self, guild_id: str, *, name: str, type: str = "text", parent_id: str | None = None,
                       topic: str | None = None, overwrites: list | None = None, community_id=None) -> dict:
        body = {"name": name, "type": CHANNEL_TYPES[type]}
        if parent_id:
            body["parent_id"] = parent_id
        if topic:
            body["topic"] = topic
        if overwrites is not None:
            body["permission_overwrites"] = overwrites
        return self.request("POST", f"/guilds/{guild_id}/channels", route=f"POST channels {guild_id}",
                            community_id=community_id, json=body)

    def update_channel(self, channel_id: str, *, community_id=None, guild_id: str = "", **fields) -> dict:
        return self.request("PATCH", f"/channels/{channel_id}", route=f"PATCH channel {guild_id or channel_id}",
                            community_id=community_id, json=fields)

    def delete_channel(self, channel_id: str, *, community_id=None, guild_id: str = "") -> None:
        self.request("DELETE", f"/channels/{channel_id}", route=f"DELETE channel {guild_id or channel_id}",
                     community_id=community_id)

    def get_member(self, guild_id: str, user_id: str, *, community_id=None) -> dict:
        # the member route's bucket: reading a member counts against it too (Discord may share
        # the bucket between the two; treating them as one never draws a 429 either way)
        return self.request("GET", f"/guilds/{guild_id}/members/{user_id}", route=f"member {guild_id}",
                            community_id=community_id)

    def list_members(self, guild_id: str, *, after: str = "0", limit: int = 1000, community_id=None) -> list[dict]:
        """Up to ``limit`` (1 to 1000) members whose user id is above ``after``, in id order
        (needs the GUILD_MEMBERS intent: 403 without it). Counted against the member route."""
        return self.request("GET", f"/guilds/{guild_id}/members?limit={int(limit)}&after={int(after)}",
                            route=f"member {guild_id}", community_id=community_id)

    def set_member_roles(self, guild_id: str, user_id: str, roles: list[str], *, community_id=None,
                         patience: float | None = None) -> dict:
        """One PATCH with the member's full role list (RouteBusy, before anything is sent, when
        the guild's member bucket frees up later than ``patience`` seconds)."""
        return self.request("PATCH", f"/guilds/{guild_id}/members/{user_id}", route=f"member {guild_id}",
                            community_id=community_id, json={"roles": sorted(set(roles))}, user_id=user_id,
                            patience=patience)

    def send_message(self, channel_id: str, content: str, *, community_id=None) -> dict:
        return self.request("POST", f"/channels/{channel_id}/messages", route=f"message {channel_id}",
                            community_id=community_id, json={"content": content})

    def send_direct_message(self, user_id: str, content: str) -> dict:
        channel = self.request("POST", "/users/@me/channels", route="dm open", json={"recipient_id": str(user_id)})
        return self.send_message(channel["id"], content)


def _json(resp: httpx.Response):
    try:
        return resp.json()
    except ValueError:
        return None


class DiscordNotConfigured:
    """Stands in for Discord when no API base or bot token is set: every call says so plainly
    (commands that never call Discord work as usual)."""

    calls = 0

    def _refuse(self, *args, **kwargs):
        from ...errors import ConfigError

        raise ConfigError("Discord is not configured: only one of DISCORD_API_BASE and DISCORD_BOT_TOKEN "
                          "is set; set both, or neither to use the local sandbox")

    list_roles = create_role = update_role = delete_role = _refuse
    list_channels = create_channel = update_channel = delete_channel = _refuse
    send_direct_message = _refuse
    get_member = list_members = set_member_roles = send_message = _refuse

    def close(self) -> None:
        pass
