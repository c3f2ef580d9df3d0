"""Freeze flags (the kill switch's brake): global, per community and per member, in Redis.

Workers check them before every Discord call. A frozen call waits -- it is not lost and not
failed -- and goes ahead as soon as the flag is lifted.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Callable

from .. import keys as redis_keys

GLOBAL_KEY = redis_keys.FREEZE_GLOBAL
community_key = redis_keys.freeze_community


class FreezeFlags:
    def __init__(self, redis, *, poll: float = 0.2, sleep: Callable[[float], None] = time.sleep) -> None:
        self.redis = redis
        self.poll = poll
        self.sleep = sleep

    @staticmethod
    def _key(community_id=None, user_id: str | None = None) -> str:
        if user_id is not None:
            return redis_keys.freeze_user(user_id)
        return GLOBAL_KEY if community_id is None else community_key(community_id)

    def freeze(self, community_id: uuid.UUID | str | None = None, *, reason: str = "frozen by an operator",
               user_id: str | None = None) -> None:
        """Freeze everything (no argument), one community, or one member (``user_id``)."""
        self.redis.set(self._key(community_id, user_id), reason)

    def unfreeze(self, community_id: uuid.UUID | str | None = None, *, user_id: str | None = None) -> None:
        self.redis.delete(self._key(community_id, user_id))

    def frozen(self, community_id: uuid.UUID | str | None = None, *, user_id: str | None = None) -> str | None:
        """The reason, if Discord calls for this community (or all, or this member) are frozen."""
        keys = [GLOBAL_KEY] + ([community_key(community_id)] if community_id is not None else [])
        if user_id is not None:
            keys.append(redis_keys.freeze_user(user_id))
        for value in self.redis.mget(keys):
            if value is not None:
                return value.decode() if isinstance(value, bytes) else value
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
        self.redis.hset(redis_keys.FREEZE_WAITING, token,
                        json.dumps({"community": str(community_id) if community_id else None, "since": time.time(),
                                    "reason": reason}))
        try:
            while reason is not None:
                if on_wait:
                    on_wait(reason)
                self.sleep(self.poll)
                waited += self.poll
                reason = self.frozen(community_id, user_id=user_id)
        finally:
            self.redis.hdel(redis_keys.FREEZE_WAITING, token)
        return waited

    def waiting(self) -> list[dict]:
        """The calls held by a freeze right now: community (None: global), since, reason."""
        return [json.loads(v) for v in self.redis.hvals(redis_keys.FREEZE_WAITING)]
