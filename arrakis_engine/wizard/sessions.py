"""Wizard sessions in Redis.

Keys:
    arrakis:wizard:session:{id}          JSON session, sliding TTL (15 minutes while active)
    arrakis:wizard:active:{guild}:{user} the user's active session id in that guild (same TTL)

Every write is a compare-and-set on the session's ``revision`` (one Lua script), so two
submissions racing for the same step cannot both apply: the loser re-reads and either finds its
own submission already applied (same idempotency key) or is told the session moved on.
"""

from __future__ import annotations

import json

from .. import keys

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


class SessionStore:
    def __init__(self, redis, *, ttl: int = ACTIVE_TTL, terminal_ttl: int = TERMINAL_TTL) -> None:
        self.redis = redis
        self.ttl = ttl
        self.terminal_ttl = terminal_ttl
        self._cas = redis.register_script(CAS_LUA)

    def create(self, session: dict) -> bool:
        """Store a new session if the user has no active one in that guild (atomic)."""
        idx = active_key(session["guild_id"], session["user_id"])
        if not self.redis.set(idx, session["id"], nx=True, ex=self.ttl):
            return False
        self.redis.set(session_key(session["id"]), json.dumps(session), ex=self.ttl)
        return True

    def forget_active(self, guild_id: str, user_id: str) -> None:
        """Drop the user's active-session index in a guild (its session is gone)."""
        self.redis.delete(active_key(guild_id, user_id))

    def get(self, session_id: str, *, touch: bool = True) -> dict | None:
        raw = self.redis.get(session_key(session_id))
        if raw is None:
            return None
        session = json.loads(raw)
        if touch and session["state"] not in ("COMPLETE", "FAILED"):
            pipe = self.redis.pipeline()
            pipe.expire(session_key(session_id), self.ttl)
            pipe.expire(active_key(session["guild_id"], session["user_id"]), self.ttl)
            pipe.execute()
        return session

    def active_id(self, guild_id: str, user_id: str) -> str | None:
        value = self.redis.get(active_key(guild_id, user_id))
        return value.decode() if isinstance(value, bytes) else value

    def save(self, session: dict, expected_revision: int) -> int:
        terminal = session["state"] in ("COMPLETE", "FAILED")
        return int(self._cas(keys=[session_key(session["id"]), active_key(session["guild_id"], session["user_id"])],
                             args=[expected_revision, json.dumps(session),
                                   self.terminal_ttl if terminal else self.ttl, 0 if terminal else self.ttl,
                                   session["id"]]))

    def ttl_of(self, session_id: str) -> int:
        return int(self.redis.ttl(session_key(session_id)))
