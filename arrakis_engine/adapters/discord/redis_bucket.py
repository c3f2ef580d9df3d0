"""The one global limit on Discord calls, shared by every worker process and tenant.

Discord allows 50 requests per second per bot token. The strictest reading of that rule is: in
*any* sliding one-second window, counted where the requests arrive, at most 50. A token bucket
does not keep that promise (it lets capacity + rate through in one second), so this is a sliding
window log: every request sent is a timestamp in a Redis sorted set, and a request may go only
while fewer than ``limit`` timestamps are younger than ``window`` seconds.

The defaults keep a margin, so that what Discord counts stays under 50 even when requests take a
little longer to arrive than to be granted:

* ``limit`` = 49: one request fewer than Discord allows;
* ``window`` = 1.06 s: a grant must stay clear of 60 ms more than a second, which absorbs up to
  60 ms of difference in the time from grant to arrival between two requests.

That paces a busy bot at 49 / 1.06 = 46.2 requests per second, 92 % of Discord's 50.

A request's entry stays in the logs until its answer comes back: when it does, the entry is
moved to the time of the answer (``DiscordREST`` does it in the same step that reads the answer's
rate-limit headers, so it costs no extra round trip). Discord counts a request when it arrives,
which is between our send and its answer; counted from send to answer plus the window, every
request that can fall in one of Discord's seconds is in our count whenever another is sent, so a
slow network or a stalled process that delivers requests in a bunch cannot push a second past
the limit.

:meth:`RedisTokenBucket.take_for_send` is the one gate every Discord request passes right before
it is sent. In one atomic script it checks the freeze flags (and that their cache is whole: a
missing cache lets nothing out) and the global 429 pause, checks the
route's bucket (as Discord's headers last described it), checks the global window, and only if
all say yes takes the route slot and the global slot together. So a request never holds a slot
while it waits for something else, and a request that goes out was counted at the moment it went.

Key layout (one limit per bot token, ``name``):
    arrakis:bucket:{name}            zset  one member per request sent, scored by Redis time
    arrakis:bucket:{name}:stats      hash  granted, waited_ms, refused, rate_limited, frozen
    arrakis:bucket:{name}:sec:{t}    int   grants in second t (kept 10 minutes, for sparklines)
    arrakis:bucket:{name}:429:{t}    int   429s Discord answered in second t (kept 10 minutes)

All times come from Redis' own clock (``TIME``), so every process sees the same time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from redis.exceptions import NoScriptError

from ... import keys as redis_keys
from ...errors import BucketTimeout

if TYPE_CHECKING:
    from redis import Redis

DEFAULT_LIMIT = 49
DEFAULT_WINDOW = 1.06

# KEYS[1] log zset  KEYS[2] stats hash  and, all optional (left out or '' to skip): KEYS[3] route
# hash  KEYS[4] freeze flags hash (keys.FREEZE_FLAGS)  KEYS[5] global 429 pause  KEYS[6] the route's
# own log of sends (zset)
# ARGV[1] limit  ARGV[2] window (s)  ARGV[3] per-second counter prefix  ARGV[4] margin (s) added to
# a route's window  ARGV[5] the community's freeze field  ARGV[6] the member's freeze field ('' for none)
# Returns {status, wait seconds as a string}: 0 sent (slots taken), 1 global window full,
# 2 route bucket empty, 3 frozen, 4 Discord asked every caller to pause (global 429), 5 the freeze
# cache is missing or does not add up (closed: rebuild it from PostgreSQL, then ask again).
#
# A route's bucket: until its X-RateLimit-* headers have been seen once (limit, window), one
# probe request goes and every other caller waits for its answer. Once known, a request goes
# only if fewer than ``limit`` of our sends to the route fall in the last window + margin (a
# sliding log shared by every worker: it holds whether Discord counts in fixed windows or in any
# sliding one, and counts requests still in flight, which no header can), and not while the
# headers last said none remain before the reset.
TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local route, frozen, paused = KEYS[3] or '', KEYS[4] or '', KEYS[5] or ''
local route_log = KEYS[6] or ''
if frozen ~= '' then
  local fc, fu = ARGV[5] or '', ARGV[6] or ''
  local f = redis.call('HMGET', frozen, '@count', '@gen', 'global', fc ~= '' and fc or 'global',
                       fu ~= '' and fu or 'global')
  if not f[1] or not f[2] or tonumber(f[1]) ~= redis.call('HLEN', frozen) - 2 then return {5, '0'} end
  if f[3] or f[4] or f[5] then return {3, '0'} end
end
if paused ~= '' then
  local pause = redis.call('PTTL', paused)
  if pause > 0 then return {4, tostring(pause / 1000)} end
end
local route_mode = 'none'
local span = nil
if route ~= '' then
  local r = redis.call('HMGET', route, 'remaining', 'reset_at', 'limit', 'window', 'probe')
  local remaining, reset_at = tonumber(r[1]), tonumber(r[2])
  local rlimit, rwindow = tonumber(r[3]), tonumber(r[4])
  local probe = tonumber(r[5])
  if rlimit == nil or rwindow == nil then
    -- a route never seen: one probe call goes; the others wait for its headers
    if probe ~= nil and now - probe <= 5 then return {2, '0.02'} end
    route_mode = 'probe'
  else
    if remaining ~= nil and reset_at ~= nil and remaining <= 0 and now < reset_at then
      return {2, tostring(reset_at - now)}
    end
    span = rwindow + math.max(tonumber(ARGV[4]), rwindow * 0.06)
    if route_log ~= '' then
      redis.call('ZREMRANGEBYSCORE', route_log, '-inf', now - span)
      if redis.call('ZCARD', route_log) >= rlimit then
        local oldest = redis.call('ZRANGE', route_log, 0, 0, 'WITHSCORES')
        return {2, tostring(math.max(0.001, tonumber(oldest[2]) + span - now))}
      end
    end
    route_mode = 'take'
  end
end
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
-- Entries older than the window only ever lower the count, so the log is trimmed only when it
-- looks full: fewer than limit entries in all means fewer than limit in the window.
if redis.call('ZCARD', KEYS[1]) >= limit then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {1, tostring(math.max(0.001, tonumber(oldest[2]) + window - now))}
  end
end
-- The grant counter names the entry (unique: reset() clears both together). The log holds at
-- most limit entries (trimmed above), so it needs no expiry.
local granted = redis.call('HINCRBY', KEYS[2], 'granted', 1)
redis.call('ZADD', KEYS[1], now, granted)
if route_mode == 'probe' then
  redis.call('HSET', route, 'probe', tostring(now))
  redis.call('EXPIRE', route, 3600)
end
if route_mode ~= 'none' and route_log ~= '' then
  redis.call('ZADD', route_log, now, granted)
  redis.call('EXPIRE', route_log, 3600)
end
if route_mode == 'take' then
  redis.call('HINCRBYFLOAT', route, 'remaining', -1)
end
local sec = ARGV[3] .. math.floor(now)
if redis.call('INCR', sec) == 1 then redis.call('EXPIRE', sec, 600) end
return {0, '0', tostring(granted)}
"""

SENT, GLOBAL_FULL, ROUTE_EMPTY, FROZEN, PAUSED, FREEZE_CACHE_COLD = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class BucketStats:
    rate: float  # the paced rate: limit / window, requests per second
    capacity: float  # the limit: requests in any one window
    tokens: float  # requests that could go right now
    granted: int
    refused: int
    waited_seconds: float
    rate_limited: int
    per_second: list[int]  # grants in each of the last 60 seconds, oldest first
    window: float = DEFAULT_WINDOW

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Take:
    """What :meth:`RedisTokenBucket.take_for_send` answered: ``status`` (SENT, GLOBAL_FULL,
    ROUTE_EMPTY, FROZEN or PAUSED), how long to wait before asking again, and (SENT) the slot's
    name in the logs, to hold it until Discord answers (``settle``)."""

    status: int
    wait: float
    slot: str = ""


class RedisTokenBucket:
    """The global Discord limit (a sliding window log; the name is kept from the token bucket it
    replaced). ``limit`` requests in any ``window`` seconds, across every process."""

    def __init__(self, redis: Redis, *, name: str = "discord", limit: int = DEFAULT_LIMIT,
                 window: float = DEFAULT_WINDOW, sleep: Callable[[float], None] = time.sleep) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("the Discord limit needs at least one request per window")
        self.redis = redis
        self.name = name
        self.limit = int(limit)
        self.window = float(window)
        self.rate = self.limit / self.window
        self.sleep = sleep
        self._key = redis_keys.bucket(name)
        self._stats = f"{self._key}:stats"
        self._sec = f"{self._key}:sec:"
        self._429 = f"{self._key}:429:"
        self._script = redis.register_script(TAKE_LUA)
        # A route's window is kept a margin longer than its headers say: 6 % (the share the global
        # window keeps over one second), at least 60 ms, so that what Discord counts where requests
        # arrive stays within its limit even when they take a little longer to arrive than others.
        self._args = (str(self.limit), repr(self.window), self._sec, repr(max(0.0, self.window - 1.0)))

    def _run(self, *keys: str):
        """The gate script by its SHA (one round trip; loaded again if Redis forgot it)."""
        try:
            return self.redis.evalsha(self._script.sha, len(keys), *keys, *self._args)
        except NoScriptError:
            return self._script(keys=list(keys), args=list(self._args))

    # --- the gate ----------------------------------------------------------------------------

    def take_for_send(self, *, route_key: str = "", freeze_fields: tuple[str, str] = ("", "")) -> Take:
        """One atomic try: the freeze cache present and whole, not frozen (globally, for the
        community, for the member: ``freeze_fields``), no global pause, a route slot (the route's
        own log of sends, shared by every worker) and a global slot free? Then both slots are
        taken and the caller sends at once. Otherwise nothing is taken."""
        fc, fu = (tuple(freeze_fields) + ("", ""))[:2]
        keys = (self._key, self._stats, route_key, redis_keys.FREEZE_FLAGS, redis_keys.DISCORD_GLOBAL_PAUSE,
                redis_keys.route_log(route_key) if route_key else "")
        try:
            answer = self.redis.evalsha(self._script.sha, len(keys), *keys, *self._args, fc, fu)
        except NoScriptError:
            answer = self._script(keys=list(keys), args=list(self._args) + [fc, fu])
        slot = answer[2] if len(answer) > 2 else b""
        return Take(int(answer[0]), float(answer[1]), slot.decode() if isinstance(slot, bytes) else str(slot))

    @property
    def log_key(self) -> str:
        """The sorted set of sends the global window counts."""
        return self._key

    def acquire(self) -> bool:
        """Take a global slot if one is free now; never waits (freeze flags are not checked)."""
        return self._take_global().status == SENT

    def acquire_with_wait(self, timeout: float = 30.0) -> float:
        """Wait for a global slot and take it. Returns the seconds waited. Raises BucketTimeout
        if none frees up within ``timeout`` (nothing is taken then)."""
        waited = 0.0
        while True:
            take = self._take_global()
            if take.status == SENT:
                self.record_wait(waited)
                return waited
            if waited + take.wait > timeout:
                raise self.backed_up(timeout)
            self.sleep(take.wait)
            waited += take.wait

    def _take_global(self) -> Take:
        answer = self._run(self._key, self._stats)
        return Take(int(answer[0]), float(answer[1]))

    # --- figures -----------------------------------------------------------------------------

    def record_wait(self, seconds: float) -> None:
        if seconds > 0:
            self.redis.hincrby(self._stats, "waited_ms", int(seconds * 1000))

    def backed_up(self, timeout: float) -> BucketTimeout:
        """Count a caller that gave up waiting for a slot; the error it raises, in plain words."""
        self.redis.hincrby(self._stats, "refused", 1)
        return BucketTimeout(f"Discord calls are backed up: no slot freed up within {timeout:.0f} s",
                             hint="the work will be retried; if this persists, fewer workers may help")

    def record_rate_limited(self) -> None:
        sec = f"{self._429}{int(self.redis.time()[0])}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(self._stats, "rate_limited", 1)
        pipe.incr(sec)
        pipe.expire(sec, 600)
        pipe.execute()

    def history(self, *, seconds: int = 600, step: int = 10) -> tuple[list[int], list[int]]:
        """(grants, 429s) summed per ``step`` seconds over the last ``seconds`` (at most the ten
        minutes Redis keeps), oldest first: the console's sparklines."""
        seconds = max(step, min(int(seconds), 600))
        now = int(self.redis.time()[0])
        span = range(now - seconds + 1, now + 1)
        grants = [int(v or 0) for v in self.redis.mget([f"{self._sec}{t}" for t in span])]
        limited = [int(v or 0) for v in self.redis.mget([f"{self._429}{t}" for t in span])]
        fold = lambda xs: [sum(xs[i:i + step]) for i in range(0, len(xs), step)]  # noqa: E731
        return fold(grants), fold(limited)

    def stats(self) -> BucketStats:
        now_s, now_us = self.redis.time()
        now = now_s + now_us / 1e6
        in_window = self.redis.zcount(self._key, now - self.window, "+inf")
        stats = self.redis.hgetall(self._stats)
        seconds = [f"{self._sec}{int(now) - i}" for i in range(59, -1, -1)]
        per_second = [int(v or 0) for v in self.redis.mget(seconds)]
        get = lambda k: int(stats.get(k.encode(), stats.get(k, 0)) or 0)  # noqa: E731
        return BucketStats(round(self.rate, 3), float(self.limit), float(max(0, self.limit - in_window)),
                           get("granted"), get("refused"), get("waited_ms") / 1000, get("rate_limited"), per_second,
                           self.window)

    def reset(self) -> None:
        """Forget state and statistics (tests and benchmarks)."""
        keys = ([self._key, self._stats] + list(self.redis.scan_iter(f"{self._sec}*"))
                + list(self.redis.scan_iter(f"{self._429}*")))
        self.redis.delete(*keys)
