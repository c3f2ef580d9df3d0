"""Ordered SQL migrations: ``arrakis db upgrade`` and ``arrakis db status``.

Migration files are ``NNNN_name.sql`` in ``sql/`` and ``sql/rls/``, applied in number order
across both folders, each in its own transaction, as the schema owner, and recorded with its
SHA-256 in ``schema_migrations``. ``sql/rls/roles.sql`` is applied on every upgrade so that the
two roles are created or repaired. An advisory lock keeps two upgrades from racing.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager

import psycopg2

from ..errors import SchemaError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x41524B53  # "ARKS"


def default_sql_dir() -> Path:
    """The project's ``sql/`` folder (beside the packages in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "sql"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationStatus:
    version: str
    name: str
    state: str  # applied | pending | changed | unknown
    applied_at: str | None = None


def discover(sql_dir: Path) -> list[Migration]:
    """All versioned migrations under ``sql_dir`` and ``sql_dir/rls``, in order."""
    if not sql_dir.is_dir():
        raise SchemaError(f"the migrations folder {sql_dir} does not exist")
    found: dict[str, Migration] = {}
    for folder in (sql_dir, sql_dir / "rls"):
        for path in sorted(folder.glob("*.sql")):
            m = _NAME.match(path.name)
            if not m:
                continue
            if m.group(1) in found:
                raise SchemaError(f"two migrations share number {m.group(1)}: {found[m.group(1)].path.name}, {path.name}")
            found[m.group(1)] = Migration(m.group(1), m.group(2), path)
    return [found[k] for k in sorted(found)]


class Migrator:
    """Applies migrations with an owner connection factory (``Database.owner_connection``)."""

    def __init__(self, connect: Callable[[], ContextManager[Any]], sql_dir: Path | None = None) -> None:
        self._connect = connect
        self.sql_dir = sql_dir or default_sql_dir()

    def _ensure_table(self, cur) -> None:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )

    def _applied(self, cur) -> dict[str, tuple[str, str]]:
        cur.execute("SELECT version, checksum, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS') FROM schema_migrations")
        return {v: (c, at) for v, c, at in cur.fetchall()}

    def status(self) -> list[MigrationStatus]:
        migrations = discover(self.sql_dir)
        conn = self._connect()
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
                applied = self._applied(cur) if cur.fetchone()[0] else {}
        finally:
            conn.close()
        out: list[MigrationStatus] = []
        for m in migrations:
            if m.version not in applied:
                out.append(MigrationStatus(m.version, m.name, "pending"))
            else:
                checksum, at = applied[m.version]
                out.append(MigrationStatus(m.version, m.name, "applied" if checksum == m.checksum else "changed", at))
        known = {m.version for m in migrations}
        out += [MigrationStatus(v, "?", "unknown", at) for v, (_, at) in sorted(applied.items()) if v not in known]
        return out

    @staticmethod
    def _ensure_roles(conn, cur, roles_sql: str, tries: int = 10) -> None:
        """Create or repair the roles. Roles belong to the whole server, not to one database, so
        the advisory lock (per database) does not keep two upgrades of different databases apart.
        The script changes a role only when it differs (so upgrades at once seldom write the same
        rows); when two still do, PostgreSQL refuses one with "tuple concurrently updated" (or a
        duplicate role), and that one tries again."""
        import random

        for attempt in range(tries):
            try:
                cur.execute(roles_sql)
                return
            except psycopg2.Error as exc:
                text = exc.diag.message_primary or str(exc)
                if attempt == tries - 1 or not ("concurrently" in text or "already exists" in text):
                    raise
                conn.rollback()
                time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))

    def upgrade(self, progress=None) -> list[str]:
        """Ensure the roles, then apply every pending migration. Returns the versions applied.

        Raises :class:`SchemaError` if an applied file was changed afterwards or one fails (that
        one is rolled back; those before it stay applied).
        """
        migrations = discover(self.sql_dir)
        roles_sql = (self.sql_dir / "rls" / "roles.sql").read_text()
        conn = self._connect()
        done: list[str] = []
        try:
            conn.autocommit = False
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
                conn.commit()
                try:
                    try:
                        self._ensure_roles(conn, cur, roles_sql)
                        self._ensure_table(cur)
                        conn.commit()
                    except psycopg2.Error as exc:
                        conn.rollback()
                        raise SchemaError(
                            f"could not create the arrakis_app / arrakis_admin roles: {exc.diag.message_primary or exc}",
                            hint="DATABASE_URL must name a role that may create roles (on a fresh server, the superuser)",
                        ) from exc
                    applied = self._applied(cur)
                    conn.commit()
                    for m in migrations:
                        if m.version in applied:
                            if applied[m.version][0] != m.checksum:
                                raise SchemaError(
                                    f"migration {m.version}_{m.name} was changed after it was applied",
                                    hint="add a new migration instead of editing an applied one",
                                )
                            continue
                        try:
                            cur.execute(m.path.read_text())
                            cur.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                        (m.version, m.name, m.checksum))
                            conn.commit()
                        except psycopg2.Error as exc:
                            conn.rollback()
                            raise SchemaError(
                                f"migration {m.version}_{m.name} failed: {exc.diag.message_primary or exc}"
                            ) from exc
                        done.append(m.version)
                        if progress:
                            progress(m)
                finally:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
                    conn.commit()
        finally:
            conn.close()
        return done
