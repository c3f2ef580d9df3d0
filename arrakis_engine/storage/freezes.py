"""The kill switch's state in PostgreSQL (``freezes``): the system of record for every freeze.
Redis holds only a cache of it (``synthesis/freeze.py``)."""

from __future__ import annotations

import contextvars
import functools
from typing import TYPE_CHECKING, Any

from .database import Database

if TYPE_CHECKING:
    from .repositories import AuditLogRepository

SOURCES = ("killswitch", "pause")


def _apart(method):
    """Run in a transaction of its own, whatever transaction the caller has open (a Discord call
    or a signature made inside a community's transaction still reads the freezes, and a hold is
    committed at once, whatever the caller does next)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        return contextvars.Context().run(method, *args, **kwargs)
    return wrapper


class FreezeStateRepository:
    """One row per hold of a scope (``scope``, ``target``: '*', a community id or a Discord user
    id; ``source``: the kill switch or the console's pause). Every change bumps the generation in
    the same transaction."""

    def __init__(self, db: Database, audit: AuditLogRepository | None = None) -> None:
        self.db = db
        self.audit = audit  # AuditLogRepository: repairs of the cache are recorded

    @_apart
    def hold(self, scope: str, target: str, source: str, *, reason: str, by: str) -> bool:
        """Record a hold. False when this source already holds the scope (nothing changes)."""
        with self.db.platform() as tx:
            added = tx.scalar(
                """INSERT INTO freezes (scope, target, source, reason, held_by) VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (scope, target, source) DO NOTHING RETURNING 1""",
                (scope, target, source, reason[:400], by[:200]))
            if added:
                tx.execute("UPDATE freeze_generation SET gen = gen + 1")
        return bool(added)

    @_apart
    def lift(self, scope: str, target: str, source: str) -> dict[str, Any] | None:
        """Remove a hold; the row removed, or None when there was none."""
        with self.db.platform() as tx:
            row = tx.one("""DELETE FROM freezes WHERE scope = %s AND target = %s AND source = %s
                            RETURNING scope, target, source, reason, held_by, extract(epoch FROM since) AS since""",
                         (scope, target, source))
            if row is not None:
                tx.execute("UPDATE freeze_generation SET gen = gen + 1")
        return _row(row) if row else None

    @_apart
    def get(self, scope: str, target: str, source: str) -> dict[str, Any] | None:
        with self.db.platform() as tx:
            row = tx.one("""SELECT scope, target, source, reason, held_by, extract(epoch FROM since) AS since
                              FROM freezes WHERE scope = %s AND target = %s AND source = %s""",
                         (scope, target, source))
        return _row(row) if row else None

    @_apart
    def snapshot(self) -> tuple[int, list[dict[str, Any]]]:
        """(generation, every hold) read in one statement, so both come from the same moment."""
        with self.db.platform() as tx:
            row = tx.one(
                """SELECT (SELECT gen FROM freeze_generation) AS gen,
                          coalesce((SELECT json_agg(json_build_object(
                                        'scope', scope, 'target', target, 'source', source, 'reason', reason,
                                        'held_by', held_by, 'since', extract(epoch FROM since)) ORDER BY since)
                                      FROM freezes), '[]'::json) AS holds""")
        return int(row["gen"] or 0), [_row(h) for h in row["holds"]]

    @_apart
    def record_repair(self, details: dict[str, Any]) -> None:
        """Audit that the Redis cache had lost (or been changed to lose) holds the database has."""
        if self.audit is None:
            return
        with self.db.platform():
            self.audit.append("system:freeze-cache", "killswitch.cache_restored", details)


def _row(row) -> dict[str, Any]:
    out = dict(row)
    out["since"] = float(out["since"])
    return out
