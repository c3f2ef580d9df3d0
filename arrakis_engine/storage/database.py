"""Connections by role and tenant-scoped transactions.

Three kinds of connection to one PostgreSQL database:

* **owner** (``DATABASE_URL``): migrations only; opened on demand, never pooled.
* **app** (``arrakis_app``): every tenant query. A tenant transaction sets
  ``app.current_tenant`` with ``SET LOCAL``, sent with ``BEGIN`` and the first statement in one
  round trip, so the setting dies with the transaction and a pooled connection never carries a
  tenant over.
* **admin** (``arrakis_admin``, BYPASSRLS): platform operations across communities.

Use :meth:`Database.tenant` and :meth:`Database.platform` as context managers; repositories find
the open transaction through a context variable, so a repository call outside either one fails
with a clear :class:`~arrakis_engine.errors.TenantError` instead of running unscoped.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
from playhouse.pool import PooledPostgresqlDatabase

from .constraints import words_for
from ..errors import (
    Conflict,
    DatabaseUnreachable,
    InvalidTenantId,
    NotFound,
    SchemaError,
    StorageError,
    TenantError,
    TenantIsolationError,
    ValidationError,
)

log = logging.getLogger(__name__)

psycopg2.extras.register_uuid()
psycopg2.extensions.register_adapter(dict, psycopg2.extras.Json)

APP_ROLE = "arrakis_app"
ADMIN_ROLE = "arrakis_admin"


def validate_tenant_id(value: object) -> uuid.UUID:
    """Return ``value`` as a UUID if it is a canonical tenant id, else raise :class:`InvalidTenantId`.

    Accepts a :class:`uuid.UUID` or its canonical 36-character lower-case text form. Refuses
    anything else (other types, upper case, braces, surrounding space, the nil UUID and the max
    UUID), so that no crafted string ever reaches SQL as a tenant.
    """
    if isinstance(value, uuid.UUID):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            raise InvalidTenantId("the community id is not a valid UUID") from None
        if str(parsed) != value:
            raise InvalidTenantId("the community id must be a UUID in canonical lower-case form")
    else:
        raise InvalidTenantId(f"the community id must be a UUID, not {type(value).__name__}")
    if parsed.int == 0 or parsed.int == (1 << 128) - 1:
        raise InvalidTenantId("the nil and max UUIDs are not community ids")
    return parsed


def role_dsn(base_url: str, role: str) -> dict[str, str]:
    """Connection parameters for ``role`` on the database named by ``base_url`` (no password)."""
    params = psycopg2.extensions.parse_dsn(base_url)
    params.pop("password", None)
    params["user"] = role
    return params


@dataclass
class Tx:
    """One open transaction. ``tenant_id`` is None for platform (admin) transactions.

    The transaction is opened lazily: ``BEGIN`` (and, for a tenant, ``SET LOCAL
    app.current_tenant``) travel in the same round trip as the first statement. A transaction
    that never ran a statement sends nothing at all.
    """

    conn: Any
    role: str
    tenant_id: uuid.UUID | None
    begun: bool = False

    def _opening(self) -> str:
        if self.begun:
            return ""
        self.begun = True
        if self.tenant_id is None:
            return "BEGIN; "
        # The id was checked to be a canonical UUID (hex digits and dashes only), so it is safe
        # as a literal here; it contains no '%' that parameter interpolation could misread.
        return f"BEGIN; SET LOCAL app.current_tenant = '{self.tenant_id}'; "

    def begin(self) -> None:
        """Open the transaction now, if no statement has done it yet."""
        opening = self._opening()
        if opening:
            try:
                self.conn.cursor().execute(opening)
            except psycopg2.Error as exc:
                raise translate_db_error(exc) from exc

    def execute(self, sql: str, params: Sequence[Any] | dict | None = None):
        """Run one statement and return the cursor; database errors become engine errors."""
        cur = self.conn.cursor()
        try:
            cur.execute(self._opening() + sql, params)
        except psycopg2.Error as exc:
            raise translate_db_error(exc) from exc
        return cur

    def all(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[dict[str, Any]]:
        cur = self.execute(sql, params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] | dict | None = None) -> dict[str, Any] | None:
        cur = self.execute(sql, params)
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d.name for d in cur.description], row))

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def execute_values(self, sql: str, rows: Sequence[Sequence[Any]], *, page_size: int = 500,
                       template: str | None = None) -> list[tuple]:
        """Multi-row statement (``VALUES %s``); returns what ``RETURNING`` gives, if anything."""
        self.begin()
        cur = self.conn.cursor()
        try:
            return psycopg2.extras.execute_values(cur, sql, rows, template=template, page_size=page_size,
                                                  fetch="RETURNING" in sql.upper())
        except psycopg2.Error as exc:
            raise translate_db_error(exc) from exc

    def savepoint(self):
        """A nested savepoint, so one failed statement can be undone without losing the rest."""
        return _Savepoint(self)


class _Savepoint:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.name = f"sp_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> Tx:
        self.tx.begin()
        self.tx.conn.cursor().execute(f"SAVEPOINT {self.name}")
        return self.tx

    def __exit__(self, exc_type, exc, tb) -> bool:
        cur = self.tx.conn.cursor()
        if exc_type is None:
            cur.execute(f"RELEASE SAVEPOINT {self.name}")
        else:
            cur.execute(f"ROLLBACK TO SAVEPOINT {self.name}")
        return False


def translate_db_error(exc: psycopg2.Error) -> Exception:
    """Turn a driver error into one of ours, keeping the database's own words out of secrets."""
    diag = getattr(exc, "diag", None)
    detail = (diag.message_primary if diag and diag.message_primary else str(exc)).strip()
    detail = detail.splitlines()[0].strip() if detail else type(exc).__name__
    # A refused row: the constraint's sentence (constraints.py), never the database's own text.
    constraint = getattr(diag, "constraint_name", None) if diag else None
    known = words_for(constraint)
    if isinstance(exc, psycopg2.errors.UniqueViolation):
        return Conflict(known[1] if known else "this already exists")
    if isinstance(exc, psycopg2.errors.ForeignKeyViolation):
        if detail.startswith("update or delete on"):  # a row others still point at
            return Conflict(f"{(known or ('it', ''))[0].replace('_', ' ')} is still in use and cannot be removed")
        return NotFound(known[1] if known else "it refers to something that does not exist in this community")
    if isinstance(exc, psycopg2.errors.InsufficientPrivilege):
        if "row-level security" in detail:
            return TenantIsolationError("refused by tenant isolation: that row belongs to another community")
        return TenantIsolationError("permission denied: Arrakis's database role may not do this")
    if isinstance(exc, psycopg2.errors.CheckViolation):
        return ValidationError(known[1] if known else "a value is out of the allowed range",
                               field=known[0] if known else None)
    if isinstance(exc, psycopg2.errors.NotNullViolation):
        column = getattr(diag, "column_name", None) if diag else None
        return ValidationError(f"{column.replace('_', ' ') if column else 'a value'} is required", field=column)
    if isinstance(exc, (psycopg2.errors.InvalidTextRepresentation, psycopg2.errors.DataException)):
        return ValidationError("a value is not in a form the database accepts (a number, date or id)")
    if isinstance(exc, psycopg2.OperationalError):
        return StorageError(f"the database is unreachable or failed: {detail}",
                            hint="check that PostgreSQL is running and DATABASE_URL is right")
    return StorageError(f"database error: {detail}")


def connect_error(exc: Exception, role: str) -> StorageError:
    """One line saying why a connection failed and what to do: the driver's first line only
    (its second is a generic question), and for a missing Arrakis role, the command that makes it."""
    cause = exc.__cause__ if isinstance(exc.__cause__, psycopg2.Error) else exc
    text = str(cause).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(cause).__name__)
    if f'role "{role}" does not exist' in text:
        return SchemaError(f"the database has no {role} role yet: it has not been set up for Arrakis",
                           hint="run `arrakis db upgrade` once")
    if not isinstance(cause, psycopg2.OperationalError) and isinstance(cause, psycopg2.Error):
        return translate_db_error(cause)
    return DatabaseUnreachable(f"could not connect to PostgreSQL as {role}: {first}",
                        hint="check that PostgreSQL is running and DATABASE_URL is right")


_current: contextvars.ContextVar[Tx | None] = contextvars.ContextVar("arrakis_tx", default=None)


class Database:
    """Pools for the app and admin roles, and the owner URL for migrations.

    Args:
        owner_url: URL of a role that owns the schema (runs migrations).
        app_params / admin_params: connection parameters for ``arrakis_app`` / ``arrakis_admin``.
        max_connections: pool size per role.
    """

    def __init__(self, owner_url: str, app_params: dict, admin_params: dict, *, max_connections: int = 16) -> None:
        self.owner_url = owner_url
        self.app_params = dict(app_params)
        self.admin_params = dict(admin_params)
        self._app = self._pool(self.app_params, max_connections)
        self._admin = self._pool(self.admin_params, max_connections)

    @staticmethod
    def _pool(params: dict, max_connections: int) -> PooledPostgresqlDatabase:
        params = dict(params)
        name = params.pop("dbname", None) or params.pop("database", None)
        # Peewee keeps the driver in autocommit; transactions are opened explicitly (BEGIN in the
        # same round trip as the tenant setting).
        return PooledPostgresqlDatabase(name, max_connections=max_connections, stale_timeout=300, **params)

    @property
    def app_pool(self) -> PooledPostgresqlDatabase:
        return self._app

    @property
    def admin_pool(self) -> PooledPostgresqlDatabase:
        return self._admin

    def current(self) -> Tx:
        """The transaction opened by :meth:`tenant` or :meth:`platform`; raises if there is none."""
        tx = _current.get()
        if tx is None:
            raise TenantError("no community is selected for this operation",
                              hint="wrap the call in `with db.tenant(community_id):` or `db.platform()`")
        return tx

    def current_tenant(self) -> uuid.UUID:
        tx = self.current()
        if tx.tenant_id is None:
            raise TenantError("this operation needs a community, but a platform transaction is open")
        return tx.tenant_id

    @contextmanager
    def tenant(self, community_id: object) -> Iterator[Tx]:
        """Open a transaction as ``arrakis_app`` scoped to one community.

        Nested use with the same community joins the open transaction; with a different
        community, or inside a platform transaction, it raises :class:`TenantError`.
        """
        tenant_id = validate_tenant_id(community_id)
        open_tx = _current.get()
        if open_tx is not None:
            if open_tx.tenant_id == tenant_id and open_tx.role == APP_ROLE:
                yield open_tx
                return
            raise TenantError("a transaction for another community (or the platform) is already open; "
                              "finish it before switching community")
        with self._transaction(self._app, APP_ROLE, tenant_id) as tx:
            yield tx

    @contextmanager
    def platform(self) -> Iterator[Tx]:
        """Open a transaction as ``arrakis_admin`` (sees every community)."""
        open_tx = _current.get()
        if open_tx is not None:
            if open_tx.role == ADMIN_ROLE:
                yield open_tx
                return
            raise TenantError("a community transaction is already open; platform work must run outside it")
        with self._transaction(self._admin, ADMIN_ROLE, None) as tx:
            yield tx

    @contextmanager
    def _transaction(self, pool: PooledPostgresqlDatabase, role: str, tenant_id: uuid.UUID | None) -> Iterator[Tx]:
        try:
            pool.connect(reuse_if_open=True)
            conn = pool.connection()
        except Exception as exc:
            raise connect_error(exc, role) from exc
        tx = Tx(conn=conn, role=role, tenant_id=tenant_id)
        token = _current.set(tx)
        try:
            yield tx
        except BaseException:
            _current.reset(token)
            self._finish(pool, conn, "ROLLBACK" if tx.begun else None)
            raise
        _current.reset(token)
        self._finish(pool, conn, "COMMIT" if tx.begun else None)

    @staticmethod
    def _finish(pool: PooledPostgresqlDatabase, conn: Any, statement: str | None) -> None:
        try:
            if statement is not None:
                conn.cursor().execute(statement)
        except psycopg2.Error as exc:
            pool.manual_close()  # drop it: a broken connection must not go back to the pool
            if statement == "COMMIT":
                raise translate_db_error(exc) from exc
            log.warning("rollback failed; the connection is dropped from the pool")
            return
        pool.close()  # back to the pool

    def close(self) -> None:
        for pool in (self._app, self._admin):
            try:
                pool.close_all()
            except Exception:
                log.debug("pool already closed")

    def owner_connection(self):
        """A fresh connection as the schema owner (for migrations). The caller closes it."""
        try:
            return psycopg2.connect(self.owner_url)
        except psycopg2.Error as exc:
            raise StorageError("could not connect to PostgreSQL with DATABASE_URL",
                               hint="check that the server runs and the URL names a role that may create tables") from exc
