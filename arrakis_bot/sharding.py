"""Gateway shards: which ones this process runs, and when each may identify.

Discord sends a guild's events to one shard, ``(guild_id >> 22) % num_shards``. ``arrakis bot``
runs the number of shards ``GET /gateway/bot`` recommends unless told otherwise
(``--shard-count`` / ``DISCORD_SHARD_COUNT``), all of them unless given a part
(``--shard-ids 0-3`` or ``0,2`` / ``DISCORD_SHARD_IDS``) so that several processes split them.

Identifying is limited by Discord per bucket ``shard_id % max_concurrency``: one IDENTIFY per
bucket every 5 seconds, for every process of the bot together. :class:`IdentifyGate` keeps that
pace through Redis when the bot has one (every process of the bot shares it), else within the
process; and the start stops with one line when ``session_start_limit.remaining`` would not cover
the shards to start (Discord resets the token of a bot that goes over).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arrakis_engine.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger("arrakis.bot")

IDENTIFY_SPACING = 5.25  # seconds between two identifies of one bucket (Discord: 5, plus a margin)
MAX_SHARDS = 100_000


def _bad_count(message: str) -> ValidationError:
    return ValidationError(message, field="shard_count")  # a bad value of --shard-count: exit 2


def _bad_ids(message: str) -> ValidationError:
    return ValidationError(message, field="shard_ids")


@dataclass(frozen=True)
class ShardPlan:
    """``count``: the number of shards (None: what Discord recommends); ``ids``: the shards this
    process runs (None: all of them)."""

    count: int | None = None
    ids: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, count: str | int | None, ids: str | None, dyno: str | None = None) -> "ShardPlan":
        """From the flags or the environment; a ValidationError (one line) for anything wrong.
        ``ids`` may also be ``dyno/K``: this process's part when the bot runs as K dynos (the
        Procfile's ``bot`` scaled to K), read from ``dyno`` (the platform's ``DYNO``, ``bot.N``):
        dyno N runs the shards whose id % K is N - 1."""
        n = None
        if count is not None and str(count).strip() != "":
            text = str(count).strip()
            if not text.isdigit():
                raise _bad_count(f"--shard-count (DISCORD_SHARD_COUNT) must be a whole number of shards, not "
                                 f"{text[:40]!r}")
            n = int(text)
            if not 1 <= n <= MAX_SHARDS:
                raise _bad_count(f"--shard-count (DISCORD_SHARD_COUNT) must be between 1 and {MAX_SHARDS:,}, "
                                 f"not {n}")
        if ids is None or str(ids).strip() == "":
            return cls(n, None)
        if n is None:
            raise _bad_ids("--shard-ids (DISCORD_SHARD_IDS) needs --shard-count (DISCORD_SHARD_COUNT): every "
                           "process must agree on the number of shards")
        if str(ids).strip().lower().startswith("dyno"):
            return cls(n, dyno_ids(str(ids).strip(), n, dyno))
        return cls(n, parse_ids(str(ids), n))

    def shards(self, recommended: int) -> tuple[int, list[int]]:
        """(number of shards, the ids this process runs) once Discord's recommendation is known."""
        count = self.count or max(1, int(recommended))
        return count, list(self.ids) if self.ids is not None else list(range(count))

    def describe(self) -> str:
        count = "Discord's recommended number of" if self.count is None else str(self.count)
        which = "all" if self.ids is None else ", ".join(map(str, self.ids)) + " of the"
        return f"{which} {count} shard(s)"


def parse_ids(text: str, count: int) -> tuple[int, ...]:
    """``0-3``, ``0,2`` or both (``0-2,5``): sorted, each once, each below ``count``."""
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise _bad_ids(f"--shard-ids (DISCORD_SHARD_IDS): {part[:40]!r} is not a shard id or a range like "
                           f"0-3 (write ids as 0,2 or 0-3)")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise _bad_ids(f"--shard-ids (DISCORD_SHARD_IDS): the range {part} goes backwards")
        if last >= count:
            raise _bad_ids(f"--shard-ids (DISCORD_SHARD_IDS): shard {last} does not exist with --shard-count "
                           f"{count} (ids go from 0 to {count - 1})")
        span = range(first, last + 1)
        if out.intersection(span):
            raise _bad_ids(f"--shard-ids (DISCORD_SHARD_IDS): shard {min(out.intersection(span))} is named "
                           "twice")
        out.update(span)
    return tuple(sorted(out))


def dyno_ids(text: str, count: int, dyno: str | None) -> tuple[int, ...]:
    """``dyno/K`` with ``DYNO=bot.N``: the shards i with i % K == N - 1."""
    k = text[4:].lstrip("/")
    if not k.isdigit() or int(k) < 1:
        raise _bad_ids(f"--shard-ids (DISCORD_SHARD_IDS): write dyno/K, K being the number of bot dynos "
                       f"(as in dyno/3), not {text[:40]!r}")
    k = int(k)
    if k > count:
        raise _bad_ids(f"--shard-ids (DISCORD_SHARD_IDS): {k} dynos for {count} shard(s) leaves a dyno without "
                       "a shard; run at most as many dynos as shards")
    _, _, n = (dyno or "").rpartition(".")
    if not n.isdigit() or not 1 <= int(n) <= k:
        raise _bad_ids(f"--shard-ids (DISCORD_SHARD_IDS) dyno/{k} needs DYNO set by the platform to a name ending "
                       f"in .1 to .{k} ({'it is unset' if dyno is None else f'it is {dyno[:40]!r}'})")
    return tuple(i for i in range(count) if i % k == int(n) - 1)


def shard_of(guild_id, count: int) -> int:
    """The shard Discord sends a guild's events to."""
    return (int(guild_id) >> 22) % count


def in_words(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m} min" if h else (f"{m} min {s} s" if m else f"{s} s")


def check_session_starts(limit: dict, needed: int) -> None:
    """Stop (ConfigError, one line) when Discord's remaining session starts do not cover the
    shards to identify; going over makes Discord end every session and reset the token."""
    try:
        remaining, total = int(limit["remaining"]), int(limit["total"])
        reset_after = float(limit["reset_after"]) / 1000
    except (KeyError, TypeError, ValueError):
        # Unknown is not "none left", nor "plenty": said, and the shards identify one at a time.
        log.warning("GET /gateway/bot gave no usable session_start_limit: the session starts left are unknown; "
                    "identifying one shard every 5 s")
        return
    if remaining >= needed:
        return
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=reset_after)
    raise ConfigError(f"Discord allows no more gateway session starts now ({remaining} of {total} left today, "
                      f"{needed} needed: one per shard); they reset in {in_words(reset_after)} "
                      f"(at {at:%Y-%m-%d %H:%M} UTC)")


class IdentifyGate:
    """One IDENTIFY per bucket (``shard_id % max_concurrency``) every :data:`IDENTIFY_SPACING`
    seconds. With ``redis`` the pace holds across every process of the bot (a key per bucket,
    set only if absent, expiring after the spacing); without, within this process."""

    KEY = "arrakis:bot:identify:{bucket}"

    def __init__(self, redis: Redis | None = None, max_concurrency: int = 1, spacing: float = IDENTIFY_SPACING) -> None:
        self.redis = redis
        self.max_concurrency = max(1, int(max_concurrency))
        self.spacing = spacing
        self._locks: dict[int, asyncio.Lock] = {}
        self._last: dict[int, float] = {}

    def bucket(self, shard_id: int) -> int:
        return shard_id % self.max_concurrency

    async def wait(self, shard_id: int) -> None:
        bucket = self.bucket(shard_id)
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        async with lock:
            last = self._last.get(bucket)
            if last is not None:
                await asyncio.sleep(max(0.0, last + self.spacing - time.monotonic()))
            if self.redis is not None:
                await self._take_shared(bucket, shard_id)
            self._last[bucket] = time.monotonic()

    async def _take_shared(self, bucket: int, shard_id: int) -> None:
        key = self.KEY.format(bucket=f"{bucket}/{self.max_concurrency}")
        ms = int(self.spacing * 1000)
        while True:
            try:
                taken = await asyncio.to_thread(self.redis.set, key, str(shard_id), nx=True, px=ms)
                if taken:
                    return
                left = await asyncio.to_thread(self.redis.pttl, key)
            except Exception as exc:  # Redis unreachable: the pace within this process still holds
                log.warning("identify pacing across processes unavailable (%s); pacing this process only",
                            type(exc).__name__)
                return
            wait = (left if left and left > 0 else 100) / 1000
            log.info("shard %s waits %.1f s to identify (another shard of bucket %s identified)", shard_id, wait,
                     bucket)
            await asyncio.sleep(wait)
