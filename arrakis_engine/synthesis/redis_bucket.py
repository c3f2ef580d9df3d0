"""The one global token bucket for Discord calls, shared by every worker process and tenant.

Key layout (one bucket per bot token, ``name``):
    arrakis:bucket:{name}            hash  tokens, ts      -- state, refilled from timestamps
    arrakis:bucket:{name}:stats      hash  granted, waited_ms, refused, rate_limited
    arrakis:bucket:{name}:sec:{t}    int   grants in second t (kept 10 minutes, for sparklines)
    arrakis:bucket:{name}:429:{t}    int   429s Discord answered in second t (kept 10 minutes)

Refill is computed from Redis' own clock inside the script, so no process runs a refill loop and
every process sees the same time. ``acquire_with_wait`` *reserves* a token: the bucket may go
into debt by up to ``timeout`` seconds of refill, and the caller sleeps exactly until its token
is due. Callers are therefore paced in arrival order without polling, and a caller that would
wait longer than ``timeout`` is refused at once with a clear error (nothing is reserved).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..errors import ArrakisError

# KEYS[1] state hash, KEYS[2] stats hash, KEYS[3] per-second counter prefix
# ARGV[1] rate (tokens/s)  ARGV[2] capacity  ARGV[3] n  ARGV[4] max debt in seconds (0: no debt)
# Returns {granted (1/0), wait seconds as a string}
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, cap, n, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or cap
local ts = tonumber(state[2]) or now
if now > ts then tokens = math.min(cap, tokens + (now - ts) * rate) end
if tokens - n < -(rate * max_wait) then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('HINCRBY', KEYS[2], 'refused', 1)
  return {0, tostring((n - tokens) / rate)}
end
tokens = tokens - n
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
local wait = 0
redis.call('HINCRBY', KEYS[2], 'granted', n)
if tokens < 0 then
  wait = -tokens / rate
  redis.call('HINCRBY', KEYS[2], 'waited_ms', math.floor(wait * 1000))
end
local sec = KEYS[3] .. math.floor(now + wait)
if redis.call('INCRBY', sec, n) == n then redis.call('EXPIRE', sec, 600) end
return {1, tostring(wait)}
"""


class BucketTimeout(ArrakisError):
    """Waiting for a Discord token would take longer than allowed."""


@dataclass(frozen=True)
class BucketStats:
    rate: float
    capacity: float
    tokens: float
    granted: int
    refused: int
    waited_seconds: float
    rate_limited: int
    per_second: list[int]  # grants in each of the last 60 seconds, oldest first

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class RedisTokenBucket:
    def __init__(self, redis, *, name: str = "discord", rate: float = 50.0, capacity: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.redis = redis
        self.name = name
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.sleep = sleep
        self._key = f"arrakis:bucket:{name}"
        self._stats = f"{self._key}:stats"
        self._sec = f"{self._key}:sec:"
        self._429 = f"{self._key}:429:"
        self._script = redis.register_script(ACQUIRE_LUA)

    def _run(self, n: float, max_wait: float) -> tuple[bool, float]:
        ok, wait = self._script(keys=[self._key, self._stats, self._sec],
                                args=[self.rate, self.capacity, n, max_wait])
        return bool(ok), float(wait)

    def acquire(self, n: float = 1) -> bool:
        """Take ``n`` tokens if they are there now; never waits, never goes into debt."""
        ok, _ = self._run(n, 0)
        return ok

    def acquire_with_wait(self, n: float = 1, timeout: float = 30.0) -> float:
        """Reserve ``n`` tokens and sleep until they are due. Returns the seconds waited.
        Raises BucketTimeout (reserving nothing) if that would take longer than ``timeout``."""
        ok, wait = self._run(n, timeout)
        if not ok:
            raise BucketTimeout(
                f"Discord calls are backed up: the next slot is {wait:.1f} s away (limit {timeout:.0f} s)",
                hint="the work will be retried; if this persists, fewer workers or a higher rate limit may help")
        if wait > 0:
            self.sleep(wait)
        return wait

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
        state = self.redis.hmget(self._key, "tokens", "ts")
        stats = self.redis.hgetall(self._stats)
        now_s, now_us = self.redis.time()
        now = now_s + now_us / 1e6
        tokens = self.capacity
        if state[0] is not None:
            tokens = min(self.capacity, float(state[0]) + max(0.0, now - float(state[1])) * self.rate)
        seconds = [f"{self._sec}{int(now) - i}" for i in range(59, -1, -1)]
        per_second = [int(v or 0) for v in self.redis.mget(seconds)]
        get = lambda k: int(stats.get(k.encode(), stats.get(k, 0)) or 0)  # noqa: E731
        return BucketStats(self.rate, self.capacity, round(tokens, 3), get("granted"), get("refused"),
                           get("waited_ms") / 1000, get("rate_limited"), per_second)

    def reset(self) -> None:
        """Forget state and statistics (tests and benchmarks)."""
        keys = ([self._key, self._stats] + list(self.redis.scan_iter(f"{self._sec}*"))
                + list(self.redis.scan_iter(f"{self._429}*")))
        self.redis.delete(*keys)
