"""Small pieces of engine state kept in Redis, each behind a plain class the use cases are handed.

Use cases never touch a Redis client: they get a :class:`ScoreCache`, :class:`UnknownMembers`,
:class:`SignInNonces`, :class:`DriftChecks` or :class:`RedisCommunityLocks` from bootstrap. Key
names come from :mod:`arrakis_engine.keys`.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from .. import keys
from ..domain.chain import Score
from ..errors import StorageError, SynthesisBusy
from ..ports import Clock, system_clock
from ..processes import pid_alive

if TYPE_CHECKING:
    from redis import Redis

KEEP_SECONDS = 86_400


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _json(raw):
    """A value stored as JSON, or None when there was none."""
    return None if raw is None else json.loads(raw)


class _RedisStore:
    """A store whose only part is the Redis client it talks to."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis


class ScoreCache:
    """Score Service answers per address, with when they were stored (kept a day)."""

    def __init__(self, redis: Redis, *, clock: Clock = system_clock, keep_for: int = KEEP_SECONDS) -> None:
        self.redis = redis
        self.clock = clock
        self.keep_for = keep_for

    def put(self, scores: Sequence[Score]) -> None:
        if not scores:
            return
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        for s in scores:
            pipe.set(keys.score(s.address), json.dumps({"at": now, "score": s.as_json()}), ex=self.keep_for)
        pipe.set(keys.SCORE_LAST_STORED, now, ex=self.keep_for)
        pipe.execute()

    def get_many(self, addresses: Sequence[str]) -> dict[str, tuple[Score, float]]:
        """address -> (score, age in seconds) for what is cached."""
        if not addresses:
            return {}
        raw = self.redis.mget([keys.score(a) for a in addresses])
        now = self.clock()
        out = {}
        for a, value in zip(addresses, raw):
            if value:
                d = json.loads(value)
                out[a] = (Score.from_json(d["score"]), max(0.0, now - float(d["at"])))
        return out

    def newest_age(self) -> float | None:
        at = self.redis.get(keys.SCORE_LAST_STORED)
        return None if at is None else max(0.0, self.clock() - float(at))


class UnknownMembers:
    """The members a community's last eligibility sync could not read (kept a day): the member
    role sync that follows leaves them alone, since unknown is not zero."""

    def __init__(self, redis: Redis, *, keep_for: int = KEEP_SECONDS) -> None:
        self.redis = redis
        self.keep_for = keep_for

    def remember(self, community_id, discord_ids: Sequence[str]) -> None:
        self.redis.set(keys.unknown_members(community_id), json.dumps(list(discord_ids)), ex=self.keep_for)

    def of(self, community_id) -> list[str]:
        raw = self.redis.get(keys.unknown_members(community_id))
        return json.loads(raw) if raw else []


class SignInNonces(_RedisStore):
    """One-time Sign-In with Ethereum challenges: stored with a TTL, taken at most once."""

    def put(self, nonce: str, pending: dict, ttl: int) -> None:
        self.redis.set(keys.siwe_nonce(nonce), json.dumps(pending), ex=ttl)

    def take(self, nonce: str) -> dict | None:
        return _json(self.redis.getdel(keys.siwe_nonce(nonce)))


@contextmanager
def redis_reachable() -> Iterator[None]:
    """A Redis error inside becomes StorageError in plain words (the kind of error, no URL), for
    readers whose caller shows what it can without Redis (``arrakis status``)."""
    import redis as redis_lib

    try:
        yield
    except redis_lib.RedisError as exc:
        raise StorageError(f"Redis could not be reached ({type(exc).__name__})") from exc


class DriftChecks(_RedisStore):
    """The last drift check of every community (status, counts, when), for the fleet."""

    def remember(self, community_id, check: dict) -> None:
        self.redis.hset(keys.DRIFT_CHECKS, str(community_id), json.dumps(check))

    def all(self) -> dict[str, dict]:
        """Raises StorageError (in plain words) when Redis cannot be reached."""
        with redis_reachable():
            raw = self.redis.hgetall(keys.DRIFT_CHECKS)
        return {_text(k): json.loads(v) for k, v in raw.items()}


class RedisCommunityLocks:
    """One synthesis at a time per community, across every worker (and an orphaned work horse of
    a worker that was killed): a Redis key with an owner token and a TTL renewed per step. The
    owner's host and process are in the token, so a lock left by a dead process is taken over."""

    def __init__(self, redis: Redis, *, ttl_ms: int = 120_000) -> None:
        self.redis = redis
        self.ttl_ms = ttl_ms

    @contextmanager
    def hold(self, community_id) -> Iterator[Callable[[], None]]:
        key = keys.synthesis_lock(community_id)
        token = f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex}"
        if not self.redis.set(key, token, nx=True, px=self.ttl_ms):
            held = _text(self.redis.get(key)) or ""
            host, _, rest = held.partition("|")
            pid = rest.partition("|")[0]
            dead_owner = host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))
            # Take over from a dead owner only if nobody else did meanwhile.
            if not (dead_owner and self.redis.set(key, token, xx=True, px=self.ttl_ms, get=True)
                    in (held, held.encode())):
                raise SynthesisBusy()
        try:
            yield lambda: self.redis.pexpire(key, self.ttl_ms)
        finally:
            if self.redis.get(key) in (token, token.encode()):
                self.redis.delete(key)


class MemberSyncGuards(_RedisStore):
    """What keeps members' own syncs in bounds: one member-asked sync per community at a time,
    and one refresh per member in a while."""

    @contextmanager
    def sync_lock(self, community_id, *, seconds: int) -> Iterator[bool]:
        """Hold the community's sync lock for a ``with`` block (at most ``seconds``); the value is
        False, and nothing is held, when another sync holds it."""
        lock = self.redis.lock(keys.member_sync_lock(community_id), timeout=seconds, blocking_timeout=0)
        if not lock.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            try:
                lock.release()
            except Exception:  # expired meanwhile: nothing to release
                pass

    def start_refresh(self, community_id, discord_id: str, *, every: int) -> int | None:
        """Note a member's refresh; None when it may run, else the seconds until it may."""
        key = keys.member_refresh(community_id, discord_id)
        if self.redis.set(key, "1", nx=True, ex=every):
            return None
        return max(1, int(self.redis.ttl(key)))

    def forget_refresh(self, community_id, discord_id: str) -> None:
        """A refresh that did not happen does not count."""
        self.redis.delete(keys.member_refresh(community_id, discord_id))


class VerifyLinks(_RedisStore):
    """The one-time /verify links (what each names, for 15 minutes) and the address the running
    `arrakis web` announced for them."""

    def put(self, token: str, link: dict, ttl: int) -> None:
        self.redis.set(keys.verify_link(token), json.dumps(link), ex=ttl)

    def get(self, token: str) -> dict | None:
        return _json(self.redis.get(keys.verify_link(token)))

    def use_up(self, token: str) -> None:
        self.redis.delete(keys.verify_link(token))

    def claim(self, token: str, *, seconds: int = 60) -> bool:
        """Mark a completion of the link as under way; False when one already is."""
        return bool(self.redis.set(keys.verify_link_busy(token), "1", nx=True, ex=seconds))

    def unclaim(self, token: str) -> None:
        self.redis.delete(keys.verify_link_busy(token))

    def announced(self) -> str | None:
        """Where `arrakis web` said it serves, if it did."""
        served = self.redis.get(keys.WEB_PUBLIC_URL)
        return served.decode(errors="replace") if isinstance(served, bytes) else served

    def announce(self, url: str) -> None:
        self.redis.set(keys.WEB_PUBLIC_URL, url)

    def withdraw(self, url: str) -> None:
        """Forget the announced address if it is still ``url`` (another web process may have
        announced its own since)."""
        served = self.redis.get(keys.WEB_PUBLIC_URL)
        if served is not None and _text(served) == url:
            self.redis.delete(keys.WEB_PUBLIC_URL)


class MfaStepCopies:
    """A copy, for reading only, of each operator's newest accepted TOTP step (PostgreSQL decides)."""

    def __init__(self, redis: Redis, *, keep_for: int = 3600) -> None:
        self.redis = redis
        self.keep_for = keep_for

    def remember(self, operator: str, step: int) -> None:
        self.redis.set(keys.mfa_last_step(operator), int(step), ex=self.keep_for)

    def forget(self, operator: str) -> None:
        self.redis.delete(keys.mfa_last_step(operator))


class SigningCutoffs(_RedisStore):
    """The kill switch's signing cut-off flags: one per key, or 'all'."""

    def cut(self, key_name: str, reason: str) -> None:
        self.redis.set(keys.signing_cutoff(key_name), reason)

    def lift(self, key_name: str) -> None:
        self.redis.delete(keys.signing_cutoff(key_name))

    def reason(self, *key_names: str) -> str | None:
        """The reason of the first of ``key_names`` that is cut off, or None."""
        for value in self.redis.mget([keys.signing_cutoff(k) for k in key_names]):
            if value is not None:
                return _text(value)
        return None


class DrillReports:
    """Past kill-switch drill reports, newest first, the last ``keep`` of them."""

    def __init__(self, redis: Redis, *, keep: int = 20) -> None:
        self.redis = redis
        self.keep = keep

    def add(self, report: dict) -> None:
        pipe = self.redis.pipeline()
        pipe.lpush(keys.KILLSWITCH_DRILLS, json.dumps(report))
        pipe.ltrim(keys.KILLSWITCH_DRILLS, 0, self.keep - 1)
        pipe.execute()

    def past(self) -> list[dict]:
        return [json.loads(x) for x in self.redis.lrange(keys.KILLSWITCH_DRILLS, 0, self.keep - 1)]


class WatcherStatus(_RedisStore):
    """Each chain watcher's last step as it reported it, and the changes the safety net found
    it had missed (a hash per chain)."""

    def write(self, chain: str, fields: dict) -> None:
        self.redis.hset(keys.watcher_status(chain), mapping=fields)

    def add_missed(self, chain: str, n: int) -> None:
        self.redis.hincrby(keys.watcher_status(chain), "missed", n)

    def read(self, chain: str) -> dict[str, str] | None:
        """The chain's fields as text, or None when its watcher never reported."""
        raw = self.redis.hgetall(keys.watcher_status(chain))
        return {_text(k): _text(v) for k, v in raw.items()} or None
