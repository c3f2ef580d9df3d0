"""SQL behind the audit chain's signed checkpoints (platform tables ``audit_heads`` and
``audit_checkpoints``) and what the audit log says of key rotations; inside the caller's
``db.platform()`` transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .database import Database


class AuditCheckpointRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def head(self, chain: str) -> dict[str, Any] | None:
        """``seq`` and ``hash`` of a chain's newest row (None: the chain is empty)."""
        return self.db.current().one("SELECT seq, hash FROM audit_heads WHERE chain = %s", (chain,))

    def add(self, chain: str, seq: int, hash_: str, signature: str) -> None:
        self.db.current().execute("INSERT INTO audit_checkpoints (chain, seq, hash, signature) VALUES (%s, %s, %s, %s)",
                                  (chain, seq, hash_, signature))

    def of_chain(self, chain: str, community_id: uuid.UUID | None) -> list[dict[str, Any]]:
        """A chain's checkpoints, oldest first, each with the hash its row has now (``row_hash``;
        None when the row is gone)."""
        return self.db.current().all(
            """SELECT c.seq, c.hash, c.signature, l.hash AS row_hash
                 FROM audit_checkpoints c
                 LEFT JOIN audit_log l ON l.seq = c.seq AND l.community_id IS NOT DISTINCT FROM %s
                WHERE c.chain = %s ORDER BY c.seq""", (community_id, chain))

    def last_key_rotations(self) -> dict[str, datetime]:
        """Key name -> when it was last rotated (from the platform's audit log)."""
        rows = self.db.current().all("""SELECT payload->>'key' AS key, max(created_at) AS at FROM audit_log
                                         WHERE community_id IS NULL AND action = 'signing.rotated' GROUP BY 1""")
        return {r["key"]: r["at"] for r in rows}
