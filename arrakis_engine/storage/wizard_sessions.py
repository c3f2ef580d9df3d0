"""Wizard sessions in Redis.

Keys:
    arrakis:wizard:session:{id}          JSON session, sliding TTL (15 minutes while active)
    arrakis:wizard:active:{guild}:{user} the user's active session id in that guild (same TTL)

Every write is a compare-and-set on the session's ``revision`` (one Lua script), so two
submissions racing for the same step cannot both apply: the loser re-reads and either finds its
own submission already applied (same idempotency key) or is told the session moved on.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import keys
from ..domain.wizard_session import WizardSession

if TYPE_CHECKING:
    from redis import Redis

ACTIVE_TTL = 15 * 60
TERMINAL_TTL = 60 * 60

# KEYS[1] session, KEYS[2] active index; ARGV[1] expected revision, ARGV[2] new JSON, ARGV[3] ttl,
# ARGV[4] active ttl (0: drop the index if it points here), ARGV[5] session id.
# Returns 1 written, 0 revision moved on, -1 session gone.
CAS_LUA = """
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if tonumber(cjson.decode(cur)['revision']) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[2], ARGV[5], 'EX', tonumber(ARGV[4]))
elseif redis.call('GET', KEYS[2]) == ARGV[5] then
  redis.call('DEL', KEYS[2])
end
return 1
"""


def session_key(session_id: str) -> str:
    return keys.wizard_session(session_id)


def active_key(guild_id: str, user_id: str) -> str:
    return keys.wizard_active(guild_id, user_id)


# KEYS[1] an index zset (all, a guild's or a user's sessions); ARGV[1] now. Deletes every session
# the index lists (and its active-session pointer) and the index itself; returns how many sessions
# were still alive.
REVOKE_LUA = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local n = 0
for _, id in ipairs(ids) do
  local raw = redis.call('GET', 'arrakis:wizard:session:' .. id)
  if raw then
    local s = cjson.decode(raw)
    if s['state'] ~= 'COMPLETE' and s['state'] ~= 'FAILED' then n = n + 1 end
    redis.call('DEL', 'arrakis:wizard:session:' .. id)
    local active = 'arrakis:wizard:active:' .. s['guild_id'] .. ':' .. s['user_id']
    if redis.call('GET', active) == id then redis.call('DEL', active) end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
return n
"""

INDEX_TTL = TERMINAL_TTL + ACTIVE_TTL  # an id older than this in an index is surely gone


class SessionStore:
    def __init__(self, redis: Redis, *, ttl: int = ACTIVE_TTL, terminal_ttl: int = TERMINAL_TTL) -> None:
        self.redis = redis
        self.ttl = ttl
        self.terminal_ttl = terminal_ttl
        self._cas = redis.register_script(CAS_LUA)
        self._revoke = redis.register_script(REVOKE_LUA)

    def create(self, session: WizardSession) -> bool:
        """Store a new session if the user has no active one in that guild (atomic)."""
        idx = active_key(session.guild_id, session.user_id)
        if not self.redis.set(idx, session.id, nx=True, ex=self.ttl):
            return False
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.set(session_key(session.id), session.to_json(), ex=self.ttl)
        # Indexes for the kill switch (revoke all, a guild's, or a user's sessions at once). Each
        # entry is scored by when it surely expires; stale ones are trimmed as new ones arrive.
        for index in (keys.wizard_index("all"), keys.wizard_index("guild", session.guild_id),
                      keys.wizard_index("user", session.user_id)):
            pipe.zadd(index, {session.id: now + INDEX_TTL})
            pipe.zremrangebyscore(index, "-inf", now)
            pipe.expire(index, INDEX_TTL)
        pipe.execute()
        return True

    def revoke(self, *, guild_id: str | None = None, user_id: str | None = None) -> int:
        """Delete every wizard session (none given), a guild's, or a user's (the kill switch).
        Returns how many were still in progress. A revoked session is gone: its owner starts over."""
        if guild_id is not None:
            index = keys.wizard_index("guild", guild_id)
        elif user_id is not None:
            index = keys.wizard_index("user", user_id)
        else:
            index = keys.wizard_index("all")
        return int(self._revoke(keys=[index], args=[time.time()]))

    def forget_active(self, guild_id: str, user_id: str) -> None:
        """Drop the user's active-session index in a guild (its session is gone)."""
        self.redis.delete(active_key(guild_id, user_id))

    def get(self, session_id: str, *, touch: bool = True) -> WizardSession | None:
        raw = self.redis.get(session_key(session_id))
        if raw is None:
            return None
        session = WizardSession.from_json(raw)
        if touch and not session.terminal:
            pipe = self.redis.pipeline()
            pipe.expire(session_key(session_id), self.ttl)
            pipe.expire(active_key(session.guild_id, session.user_id), self.ttl)
            pipe.execute()
        return session

    def active_id(self, guild_id: str, user_id: str) -> str | None:
        value = self.redis.get(active_key(guild_id, user_id))
        return value.decode() if isinstance(value, bytes) else value

    def save(self, session: WizardSession, expected_revision: int) -> int:
        terminal = session.terminal
        return int(self._cas(keys=[session_key(session.id), active_key(session.guild_id, session.user_id)],
                             args=[expected_revision, session.to_json(),
                                   self.terminal_ttl if terminal else self.ttl, 0 if terminal else self.ttl,
                                   session.id]))

    def ttl_of(self, session_id: str) -> int:
        return int(self.redis.ttl(session_key(session_id)))
