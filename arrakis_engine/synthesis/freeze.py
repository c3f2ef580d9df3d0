"""Freeze flags (the kill switch's brake): global, per community and per member.

The holds themselves live in PostgreSQL (``storage/freezes.py``); Redis keeps a cache of them in
one hash, ``keys.FREEZE_FLAGS``, which the Discord gate (``redis_bucket.TAKE_LUA``) checks in the
same atomic step that lets a call out:

    @gen    the database generation the cache was built from
    @count  how many flags follow (so a flag deleted on its own shows)
    global | community:<id> | user:<id>   the reason, one field per frozen scope

The cache fails closed. A gate that finds the hash missing (a FLUSHDB, the key deleted) or its
count wrong (a field deleted) lets nothing out: the caller rebuilds the cache from PostgreSQL
(:meth:`FreezeFlags.sync`) and asks again, and if PostgreSQL cannot be read the call fails and is
retried later. Whenever a rebuild finds holds the cache had lost, an audit entry and an alert say
so. Every process also re-asserts the cache from PostgreSQL when it starts, and the scheduler every
round (:meth:`FreezeFlags.check`), which also repairs a cache that was changed to look consistent.

Workers check the flags before every Discord call. A frozen call waits -- it is not lost and not
failed -- and goes ahead as soon as the flag is lifted.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING, Callable

from .. import keys as redis_keys
from ..errors import StorageError

if TYPE_CHECKING:
    from redis import Redis

    from ..storage.freezes import FreezeStateRepository

log = logging.getLogger(__name__)

GEN, COUNT = "@gen", "@count"

# KEYS[1] the flags hash. ARGV[1] generation, ARGV[2] '1' to replace whatever is there (a repair),
# ARGV[3..] field, reason pairs. Replaces the cache unless it was built from a newer generation.
# Returns 1 if written, 0 if a newer cache was kept.
SYNC_LUA = """
local cur = tonumber(redis.call('HGET', KEYS[1], '@gen') or '-1')
if ARGV[2] ~= '1' and cur > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
local args = {'@gen', ARGV[1], '@count', tostring((#ARGV - 2) / 2)}
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(args))
return 1
"""


def field(community_id=None, user_id: str | None = None) -> str:
    """The hash field of a scope: 'global', 'community:<id>' or 'user:<id>'."""
    if user_id is not None:
        return f"user:{user_id}"
    return "global" if community_id is None else f"community:{community_id}"


def _scope(community_id=None, user_id: str | None = None) -> tuple[str, str]:
    if user_id is not None:
        return "user", str(user_id)
    return ("global", "*") if community_id is None else ("community", str(community_id))


def _field_of(hold: dict) -> str:
    return {"global": "global", "community": f"community:{hold['target']}",
            "user": f"user:{hold['target']}"}[hold["scope"]]


class FreezeFlags:
    """``state``: the holds in PostgreSQL (``FreezeStateRepository``). Without one (a Discord
    client built by hand in a test), Redis is the only record, as it was before."""

    def __init__(self, redis: Redis, *, state: FreezeStateRepository | None = None, notify: Callable[[str, str], None] | None = None, poll: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.redis = redis
        self.state = state
        self.notify = notify  # (subject, body): told when a rebuild restored lost holds
        self.poll = poll
        self.sleep = sleep
        self._sync = redis.register_script(SYNC_LUA)

    # --- holding -------------------------------------------------------------------------------

    def freeze(self, community_id: uuid.UUID | str | None = None, *, reason: str = "frozen by an operator",
               user_id: str | None = None, source: str = "pause", by: str = "operator") -> bool:
        """Freeze everything (no argument), one community, or one member (``user_id``): recorded
        in PostgreSQL first, then the cache. False if ``source`` already held this scope."""
        if self.state is None:
            self.redis.hset(redis_keys.FREEZE_FLAGS, field(community_id, user_id), reason)
            self._recount()
            return True
        scope, target = _scope(community_id, user_id)
        added = self.state.hold(scope, target, source, reason=reason, by=by)
        self.sync(changed=True)
        return added

    def unfreeze(self, community_id: uuid.UUID | str | None = None, *, user_id: str | None = None,
                 source: str = "pause") -> dict | None:
        """Lift ``source``'s hold of a scope (another source's hold of it stays). The hold lifted."""
        if self.state is None:
            self.redis.hdel(redis_keys.FREEZE_FLAGS, field(community_id, user_id))
            self._recount()
            return {}
        scope, target = _scope(community_id, user_id)
        lifted = self.state.lift(scope, target, source)
        self.sync(changed=True)
        return lifted

    def hold(self, scope: str, target: str | None, source: str) -> dict | None:
        """The record of one hold (who, why, since), or None."""
        if self.state is None:
            return None
        return self.state.get(scope, target or "*", source)

    def holds(self, source: str | None = None) -> list[dict]:
        """Every hold in the system of record (of one source, if given)."""
        if self.state is None:
            return []
        return [h for h in self.state.snapshot()[1] if source is None or h["source"] == source]

    # --- the cache ------------------------------------------------------------------------------

    def _recount(self) -> None:
        names = [k.decode() if isinstance(k, bytes) else k for k in self.redis.hkeys(redis_keys.FREEZE_FLAGS)]
        self.redis.hsetnx(redis_keys.FREEZE_FLAGS, GEN, 0)
        self.redis.hset(redis_keys.FREEZE_FLAGS, COUNT, len([n for n in names if n not in (GEN, COUNT)]))

    def _cached(self) -> dict[str, str] | None:
        """The cache's flags, or None when it is missing or does not add up."""
        raw = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
               for k, v in self.redis.hgetall(redis_keys.FREEZE_FLAGS).items()}
        if GEN not in raw or COUNT not in raw:
            return None
        flags = {k: v for k, v in raw.items() if k not in (GEN, COUNT)}
        try:
            if int(raw[COUNT]) != len(flags):
                return None
        except ValueError:
            return None
        return flags

    def sync(self, *, force: bool = False, changed: bool = False) -> list[str]:
        """Rebuild the cache from PostgreSQL. Returns the flags the cache lacked that the database
        holds (then audited and alerted, unless ``changed``: this process just changed the holds
        itself). Raises StorageError when PostgreSQL cannot be read: the cache stays as it was
        (missing means closed)."""
        if self.state is None:
            if self._cached() is None:
                self._recount()
            return []
        before = self._cached()
        gen, holds = self.state.snapshot()
        wanted: dict[str, str] = {}
        for h in holds:
            wanted.setdefault(_field_of(h), f"{h['reason']} (by {h['held_by']})")
        args = [str(gen), "1" if force else "0"]
        for k, v in wanted.items():
            args += [k, v]
        self._sync(keys=[redis_keys.FREEZE_FLAGS], args=args)
        lost = [] if changed else sorted(set(wanted) - set(before or {}))
        if lost:
            details = {"cache": "missing" if before is None else "altered", "restored": lost}
            log.warning("the freeze cache in Redis had lost %s; rebuilt from the database", ", ".join(lost))
            self.state.record_repair(details)
            if self.notify is not None:
                try:
                    self.notify("Freeze cache restored", f"Redis had lost {', '.join(lost)}; rebuilt from the "
                                "database (a flush or a deletion in Redis)")
                except Exception:  # an alert failing never undoes the repair
                    log.exception("could not send the freeze cache alert")
        return lost

    def check(self) -> list[str]:
        """Compare the cache with PostgreSQL and repair any difference (a flag missing, one too
        many, a count that was made to add up): the scheduler's round and every process start.
        Returns the flags restored."""
        if self.state is None:
            return self.sync()
        cached = self._cached()
        _, holds = self.state.snapshot()
        wanted = {_field_of(h) for h in holds}
        if cached is not None and set(cached) == wanted:
            return []
        return self.sync(force=True)

    # --- reading --------------------------------------------------------------------------------

    def ensure(self) -> dict[str, str]:
        """The cache's flags, rebuilt from PostgreSQL first if it is missing or does not add up
        (what the Discord gate asks for when it finds it so)."""
        flags = self._cached()
        if flags is None:
            self.sync()
            flags = self._cached()
            if flags is None:  # still unusable (e.g. a forged generation kept it): replace it
                self.sync(force=True)
                flags = self._cached()
        if flags is None:
            raise StorageError("the freeze flags in Redis could not be rebuilt; Discord calls wait")
        return flags

    def frozen(self, community_id: uuid.UUID | str | None = None, *, user_id: str | None = None) -> str | None:
        """The reason, if Discord calls for this community (or all, or this member) are frozen."""
        flags = self.ensure()
        wanted = ["global"] + ([field(community_id)] if community_id is not None else [])
        if user_id is not None:
            wanted.append(field(user_id=user_id))
        for f in wanted:
            if f in flags:
                return flags[f]
        return None

    def wait_while_frozen(self, community_id: uuid.UUID | str | None = None,
                          on_wait: Callable[[str], None] | None = None, *, user_id: str | None = None) -> float:
        """Block while frozen; returns the seconds spent waiting. While it waits, the caller is
        listed in :meth:`waiting` (what an operator -- or a test -- looks at to see work held)."""
        waited = 0.0
        reason = self.frozen(community_id, user_id=user_id)
        if reason is None:
            return waited
        token = f"{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
        entry = json.dumps({"community": str(community_id) if community_id else None, "user": user_id,
                            "since": time.time(), "reason": reason})
        try:
            while reason is not None:
                # Written on every turn: a flush of Redis while it waits does not hide it.
                self.redis.hset(redis_keys.FREEZE_WAITING, token, entry)
                if on_wait:
                    on_wait(reason)
                self.sleep(self.poll)
                waited += self.poll
                reason = self.frozen(community_id, user_id=user_id)
        finally:
            self.redis.hdel(redis_keys.FREEZE_WAITING, token)
        return waited

    def waiting(self) -> list[dict]:
        """The calls held by a freeze right now: community (None: global), since, reason.
        Raises StorageError (in plain words) when Redis cannot be reached."""
        from ..storage.redis_state import redis_reachable

        with redis_reachable():
            return [json.loads(v) for v in self.redis.hvals(redis_keys.FREEZE_WAITING)]
