"""SQL behind platform operators: their rows, their second factor (TOTP secret, accepted step,
backup codes, failed attempts) and their one-time enrolment tokens. Platform tables, read and
written inside the caller's ``db.platform()`` transaction. Rows come back as dicts; the
security use cases make them :class:`~arrakis_engine.security.operators.Operator` objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from .database import Database

OPERATOR_COLS = ("name, roles, discord_user_id, slack_user_id, totp_secret IS NOT NULL AS enrolled, created_at, "
                 "created_by")


class OperatorRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> dict[str, Any] | None:
        return self.db.current().one(f"SELECT {OPERATOR_COLS} FROM operators WHERE name = %s", (name,))

    def by_discord_id(self, discord_user_id: str) -> dict[str, Any] | None:
        return self.db.current().one(f"SELECT {OPERATOR_COLS} FROM operators WHERE discord_user_id = %s",
                                     (discord_user_id,))

    def by_slack_id(self, slack_user_id: str) -> dict[str, Any] | None:
        return self.db.current().one(f"SELECT {OPERATOR_COLS} FROM operators WHERE slack_user_id = %s",
                                     (slack_user_id,))

    def all(self) -> list[dict[str, Any]]:
        return self.db.current().all(f"SELECT {OPERATOR_COLS} FROM operators ORDER BY name")

    def count(self) -> int:
        return int(self.db.current().scalar("SELECT count(*) FROM operators"))

    def lock_additions(self) -> None:
        """One addition of an operator at a time (until the transaction ends), so two first
        operators cannot both be made."""
        self.db.current().execute("SELECT pg_advisory_xact_lock(hashtext('arrakis:operators:add'))")

    def insert(self, name: str, roles: Sequence[str], *, discord_user_id: str | None, slack_user_id: str | None,
               created_by: str) -> None:
        self.db.current().execute("INSERT INTO operators (name, roles, discord_user_id, slack_user_id, created_by) "
                                  "VALUES (%s, %s, %s, %s, %s)",
                                  (name, list(roles), discord_user_id, slack_user_id, created_by))

    def set_roles(self, name: str, roles: Sequence[str]) -> None:
        self.db.current().execute("UPDATE operators SET roles = %s WHERE name = %s", (list(roles), name))

    def ever_another_platform_admin(self, name: str) -> bool:
        """Whether anyone besides ``name`` holds, or ever was given, platform_admin: from then on
        approving power takes two people, even if the others are gone or not enrolled now."""
        return bool(self.db.current().scalar(
            """SELECT EXISTS (SELECT 1 FROM operators WHERE name <> %s AND 'platform_admin' = ANY(roles))
                   OR EXISTS (SELECT 1 FROM operator_grants WHERE operator <> %s AND role = 'platform_admin'
                                 AND status IN ('first', 'sole_admin', 'confirmed'))""", (name, name)))

    def other_platform_admin_names(self, name: str) -> list[str]:
        return [r["name"] for r in self.db.current().all(
            "SELECT name FROM operators WHERE name <> %s AND 'platform_admin' = ANY(roles) ORDER BY name", (name,))]

    def other_platform_admins(self, name: str) -> int:
        """How many operators besides ``name`` hold platform_admin."""
        return int(self.db.current().scalar(
            "SELECT count(*) FROM operators WHERE name <> %s AND 'platform_admin' = ANY(roles)", (name,)))


class MfaRepository:
    """Operators' second factor as PostgreSQL keeps it (the system of record)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enrolled(self, name: str) -> bool:
        return bool(self.db.current().scalar("SELECT totp_secret IS NOT NULL FROM operators WHERE name = %s",
                                             (name,)))

    def install(self, name: str, sealed_secret: str, code_hashes: Sequence[str]) -> None:
        """A new secret and new backup codes; the accepted step and past failures are forgotten."""
        tx = self.db.current()
        tx.execute("UPDATE operators SET totp_secret = %s, totp_enrolled_at = now(), totp_last_step = NULL "
                   "WHERE name = %s", (sealed_secret, name))
        tx.execute("DELETE FROM operator_backup_codes WHERE operator = %s", (name,))
        tx.execute("DELETE FROM operator_mfa_failures WHERE operator = %s", (name,))
        for h in code_hashes:
            tx.execute("INSERT INTO operator_backup_codes (operator, code_hash) VALUES (%s, %s)", (name, h))

    def clear(self, name: str) -> None:
        tx = self.db.current()
        tx.execute("UPDATE operators SET totp_secret = NULL, totp_enrolled_at = NULL, totp_last_step = NULL "
                   "WHERE name = %s", (name,))
        tx.execute("DELETE FROM operator_backup_codes WHERE operator = %s", (name,))

    def secrets(self) -> list[dict[str, Any]]:
        """``name``, ``totp_secret`` of every enrolled operator."""
        return self.db.current().all("SELECT name, totp_secret FROM operators WHERE totp_secret IS NOT NULL")

    def secret(self, name: str) -> str | None:
        return self.db.current().scalar("SELECT totp_secret FROM operators WHERE name = %s", (name,))

    def replace_secret(self, name: str, new: str, *, old: str) -> bool:
        """Store ``new`` if the secret is still ``old``; whether it was stored."""
        return bool(self.db.current().scalar(
            "UPDATE operators SET totp_secret = %s WHERE name = %s AND totp_secret = %s RETURNING 1",
            (new, name, old)))

    def failure_times(self, name: str, *, after: float) -> list[float]:
        """When (epoch seconds) ``name``'s failed attempts since ``after`` happened, oldest first."""
        return [float(r["t"]) for r in self.db.current().all(
            "SELECT extract(epoch FROM at) AS t FROM operator_mfa_failures WHERE operator = %s "
            "AND at > to_timestamp(%s) ORDER BY at", (name, after))]

    def record_failure(self, name: str, at: float, *, forget_before: float) -> None:
        tx = self.db.current()
        tx.execute("INSERT INTO operator_mfa_failures (operator, at) VALUES (%s, to_timestamp(%s))", (name, at))
        tx.execute("DELETE FROM operator_mfa_failures WHERE operator = %s AND at < to_timestamp(%s)",
                   (name, forget_before))

    def accept_step(self, name: str, step: int) -> tuple[bool, int | None]:
        """Move the last accepted step to ``step`` if it is newer (one atomic UPDATE). Returns
        (whether it moved, the last accepted step now)."""
        tx = self.db.current()
        ok = tx.scalar("UPDATE operators SET totp_last_step = %s WHERE name = %s "
                       "AND (totp_last_step IS NULL OR totp_last_step < %s) RETURNING 1", (step, name, step))
        last = step if ok else tx.scalar("SELECT totp_last_step FROM operators WHERE name = %s", (name,))
        return bool(ok), last

    def backup_codes(self, name: str) -> list[dict[str, Any]]:
        """``code_hash``, ``used_at`` of each of ``name``'s backup codes."""
        return self.db.current().all("SELECT code_hash, used_at FROM operator_backup_codes WHERE operator = %s",
                                     (name,))

    def use_backup(self, name: str, code_hash: str) -> bool:
        """Mark an unused backup code used; False when it was used already (of two at once, one wins)."""
        return bool(self.db.current().scalar(
            "UPDATE operator_backup_codes SET used_at = now() WHERE operator = %s "
            "AND code_hash = %s AND used_at IS NULL RETURNING 1", (name, code_hash)))


class EnrolmentTokenRepository:
    """One-time enrolment tokens (their hashes), one per operator."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, name: str, token_hash: str, *, created_by: str, created_at: datetime, expires_at: datetime,
            delivered_to: str) -> None:
        self.db.current().execute(
            """INSERT INTO operator_enrolment_tokens (operator, token_hash, created_by, created_at, expires_at,
                                                      delivered_to)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (operator) DO UPDATE SET token_hash = EXCLUDED.token_hash,
                   created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at,
                   expires_at = EXCLUDED.expires_at, delivered_to = EXCLUDED.delivered_to""",
            (name, token_hash, created_by, created_at, expires_at, delivered_to))

    def take(self, name: str, token_hash: str) -> datetime | None:
        """Remove the token if it matches; when it expires (None: no such token)."""
        row = self.db.current().one("DELETE FROM operator_enrolment_tokens WHERE operator = %s AND token_hash = %s "
                                    "RETURNING expires_at", (name, token_hash))
        return None if row is None else row["expires_at"]


GRANT_COLS = ("id, operator, role, requested_by, requested_at, expires_at, status, decided_by, decided_at, "
              "expires_at <= now() AS expired")


class GrantRepository:
    """Grants of approving power (approver, platform_admin): asked by one platform admin,
    confirmed by another (sql/0062). Platform table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, operator: str, role: str, *, requested_by: str, hours: int) -> dict[str, Any]:
        """A pending grant good for ``hours`` (or the one already pending for that operator and role)."""
        tx = self.db.current()
        row = tx.one(f"SELECT {GRANT_COLS} FROM operator_grants WHERE operator = %s AND role = %s "
                     "AND status = 'pending' AND expires_at > now()", (operator, role))
        if row is not None:
            return row
        return tx.one(f"INSERT INTO operator_grants (operator, role, requested_by, expires_at) "
                      f"VALUES (%s, %s, %s, now() + make_interval(hours => %s)) RETURNING {GRANT_COLS}",
                      (operator, role, requested_by, int(hours)))

    def applied(self, operator: str, role: str, *, requested_by: str, status: str) -> None:
        """A grant given at once (``sole_admin`` or ``first``), applied in this transaction."""
        self.db.current().execute(
            "INSERT INTO operator_grants (operator, role, requested_by, expires_at, status, decided_at, applied_in) "
            "VALUES (%s, %s, %s, now(), %s, now(), txid_current())", (operator, role, requested_by, status))

    def get(self, grant_id: int, *, for_update: bool = False) -> dict[str, Any] | None:
        return self.db.current().one(f"SELECT {GRANT_COLS} FROM operator_grants WHERE id = %s"
                                     + (" FOR UPDATE" if for_update else ""), (grant_id,))

    def decide(self, grant_id: int, *, status: str, decided_by: str) -> None:
        self.db.current().execute(
            "UPDATE operator_grants SET status = %s, decided_by = %s, decided_at = now(), "
            "applied_in = CASE WHEN %s = 'confirmed' THEN txid_current() END WHERE id = %s",
            (status, decided_by, status, grant_id))

    def pending(self) -> list[dict[str, Any]]:
        """Pending grants, oldest first; those past their time are marked expired first."""
        tx = self.db.current()
        tx.execute("UPDATE operator_grants SET status = 'expired' WHERE status = 'pending' AND expires_at <= now()")
        return tx.all(f"SELECT {GRANT_COLS} FROM operator_grants WHERE status = 'pending' ORDER BY id")
