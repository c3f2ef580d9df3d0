"""SQL behind approval requests (a platform table): rows in, rows out, inside the caller's
``db.platform()`` transaction. The rules (who may answer, when a request expires) are the
approval service's (policy/approvals.py); here is only how requests are kept."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .database import Database

COLS = ("id, kind, community_id, status, title, requested_by, created_at, expires_at, decision, risk_score, "
        "risk_level, plan_checksum, report, decided_by, decided_at, reason, mfa, notified, used_at")

Row = dict[str, Any]


class ApprovalRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- asking -------------------------------------------------------------------------------

    def insert_plan(self, *, title: str, requested_by: str, created_at: datetime, expires_at: datetime,
                    decision: str, risk_score: int, risk_level: str, plan_checksum: str, report: dict) -> Row:
        return self.db.current().one(
            f"""INSERT INTO approval_requests (kind, title, requested_by, created_at, expires_at, decision,
                    risk_score, risk_level, plan_checksum, report)
                VALUES ('terraform_plan', %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {COLS}""",
            (title, requested_by, created_at, expires_at, decision, risk_score, risk_level, plan_checksum,
             json.dumps(report)))

    def lock_strips(self, community_id: str) -> None:
        """One mass-strip request of a community made at a time (until the transaction ends)."""
        self.db.current().execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"strip:{community_id}",))

    def pending_strip(self, community_id: str, now: datetime) -> Row | None:
        return self.db.current().one(f"""SELECT {COLS} FROM approval_requests WHERE kind = 'member_role_strip'
                                           AND community_id = %s AND status = 'pending' AND expires_at > %s""",
                                     (community_id, now))

    def community_name(self, community_id: str) -> str | None:
        return self.db.current().scalar("SELECT name FROM communities WHERE id = %s", (community_id,))

    def insert_strip(self, community_id: str, *, title: str, requested_by: str, created_at: datetime,
                     expires_at: datetime, risk_score: int, report: dict) -> Row:
        return self.db.current().one(
            f"""INSERT INTO approval_requests (kind, community_id, title, requested_by, created_at, expires_at,
                    decision, risk_score, risk_level, report)
                VALUES ('member_role_strip', %s, %s, %s, %s, %s, 'review', %s, 'high', %s) RETURNING {COLS}""",
            (community_id, title, requested_by, created_at, expires_at, risk_score, json.dumps(report)))

    def take_approved_strip(self, community_id: str, now: datetime, *, decided_after: datetime) -> Row | None:
        """Mark the newest approved, unused strip decided after ``decided_after`` used (of two
        callers at once, one gets it)."""
        return self.db.current().one(
            f"""UPDATE approval_requests SET used_at = %s
                 WHERE id = (SELECT id FROM approval_requests
                              WHERE kind = 'member_role_strip' AND community_id = %s
                                AND status = 'approved' AND used_at IS NULL AND decided_at > %s
                              ORDER BY decided_at DESC LIMIT 1)
                   AND used_at IS NULL RETURNING {COLS}""", (now, community_id, decided_after))

    def set_notified(self, request_id: str, where: dict) -> None:
        self.db.current().execute("UPDATE approval_requests SET notified = %s WHERE id = %s",
                                  (json.dumps(where), request_id))

    # --- reading ------------------------------------------------------------------------------

    def get(self, request_id: str) -> Row | None:
        return self.db.current().one(f"SELECT {COLS} FROM approval_requests WHERE id = %s", (request_id,))

    def status_of(self, request_id: str) -> str | None:
        return self.db.current().scalar("SELECT status FROM approval_requests WHERE id = %s", (request_id,))

    def list(self, status: str | None = None) -> list[Row]:
        return self.db.current().all(f"SELECT {COLS} FROM approval_requests"
                                     + (" WHERE status = %s" if status else "") + " ORDER BY created_at DESC",
                                     (status,) if status else ())

    def pending_for(self, community_id: str, now: datetime) -> list[Row]:
        return self.db.current().all(f"""SELECT {COLS} FROM approval_requests WHERE community_id = %s
                                           AND status = 'pending' AND expires_at > %s ORDER BY created_at""",
                                     (community_id, now))

    def pending_counts(self, now: datetime) -> dict[str, int]:
        rows = self.db.current().all("""SELECT community_id, count(*) AS n FROM approval_requests
                                         WHERE community_id IS NOT NULL AND status = 'pending' AND expires_at > %s
                                         GROUP BY community_id""", (now,))
        return {str(r["community_id"]): int(r["n"]) for r in rows}

    def history(self, request_id: str) -> list[Row]:
        """The platform audit entries about a request, oldest first."""
        return self.db.current().all("""SELECT created_at, actor, action, payload FROM audit_log
                                         WHERE community_id IS NULL AND payload->>'request' = %s ORDER BY seq""",
                                     (request_id,))

    # --- answering and time -------------------------------------------------------------------

    def finish(self, request_id: str, status: str, *, by: str, now: datetime, reason: str | None,
               mfa: str | None) -> Row | None:
        """Answer a pending, unexpired request; None when it is not (two answers at once, one loses)."""
        return self.db.current().one(f"""UPDATE approval_requests SET status = %s, decided_by = %s, decided_at = %s,
                                                reason = %s, mfa = %s
                                          WHERE id = %s AND status = 'pending' AND expires_at > %s RETURNING {COLS}""",
                                     (status, by, now, reason, mfa, request_id, now))

    def expire_due(self, now: datetime) -> list[Row]:
        return self.db.current().all(f"""UPDATE approval_requests SET status = 'expired', decided_at = %s
                                          WHERE status = 'pending' AND expires_at <= %s RETURNING {COLS}""",
                                     (now, now))

    def remind_due(self, now: datetime, *, created_before: datetime) -> list[Row]:
        return self.db.current().all(f"""UPDATE approval_requests SET reminded_at = %s
                                          WHERE status = 'pending' AND reminded_at IS NULL AND created_at <= %s
                                            AND expires_at > %s RETURNING {COLS}""", (now, created_before, now))
