"""SQL for legacy imports: tagged bulk writes, the rows an import wrote, and their removal."""

from __future__ import annotations

import uuid
from typing import Any, Iterable, Sequence

from ..errors import NotFound
from .database import Database

CHUNK = 500


class LegacyImportRepository:
    """Tenant repository; every method runs inside ``db.tenant(...)``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def discord_ids(self) -> set[str]:
        return {r["discord_id"] for r in self.db.current().all("SELECT discord_id FROM profiles")}

    def start(self, import_id: uuid.UUID, *, source_name: str, source_checksum: str, counts: dict,
              actor: str) -> None:
        self.db.current().execute(
            """INSERT INTO legacy_imports (id, community_id, source_name, source_checksum, counts, imported_by)
               VALUES (%s, %s, %s, %s, %s, %s)""",
            (import_id, self.db.current_tenant(), source_name, source_checksum, counts, actor))

    def insert_profiles(self, import_id: uuid.UUID, rows: Sequence[tuple]) -> None:
        """rows: (id, discord_id, wallet, tier, joined_at)."""
        tenant = self.db.current_tenant()
        self.db.current().execute_values(
            "INSERT INTO profiles (id, community_id, discord_id, wallet_address, tier, joined_at, legacy_import_id) "
            "VALUES %s", [(pid, tenant, d, w, t, j, import_id) for pid, d, w, t, j in rows], page_size=CHUNK)

    def insert_wallet_links(self, import_id: uuid.UUID, rows: Sequence[tuple]) -> None:
        """rows: (profile_id, wallet)."""
        tenant = self.db.current_tenant()
        self.db.current().execute_values(
            "INSERT INTO wallet_links (community_id, profile_id, wallet_address, source, legacy_import_id) VALUES %s",
            [(tenant, pid, w, "legacy", import_id) for pid, w in rows], page_size=CHUNK)

    def insert_badges(self, import_id: uuid.UUID, rows: Sequence[tuple]) -> None:
        """rows: (profile_id, badge_type, awarded_at, awarded_by or None, metadata)."""
        tenant = self.db.current_tenant()
        self.db.current().execute_values(
            "INSERT INTO badges (community_id, profile_id, badge_type, awarded_at, awarded_by, metadata, "
            "legacy_import_id) VALUES %s",
            [(tenant, p, t, at, by, meta, import_id) for p, t, at, by, meta in rows], page_size=CHUNK)

    def latest_or_none(self) -> dict[str, Any] | None:
        return self.db.current().one(
            "SELECT id, source_name, source_checksum, counts, imported_at, imported_by FROM legacy_imports "
            "ORDER BY imported_at DESC LIMIT 1")

    def latest(self) -> dict[str, Any]:
        row = self.latest_or_none()
        if row is None:
            raise NotFound("this community has no legacy import to act on")
        return row

    def written(self, import_id: uuid.UUID) -> dict[str, list[tuple]]:
        """What the import wrote, in the comparison form of the importer's canonical rows
        (timestamps as datetimes)."""
        tx = self.db.current()
        return {
            "profiles": [(r["discord_id"], r["wallet_address"] or "", r["tier"] or "", r["joined_at"])
                         for r in tx.all("SELECT discord_id, wallet_address, tier, joined_at FROM profiles "
                                         "WHERE legacy_import_id = %s", (import_id,))],
            "badges": [(r["holder"], r["badge_type"], r["awarded_at"], r["giver"] or "") for r in tx.all(
                """SELECT p.discord_id AS holder, b.badge_type, b.awarded_at, g.discord_id AS giver
                     FROM badges b JOIN profiles p ON p.id = b.profile_id
                     LEFT JOIN profiles g ON g.id = b.awarded_by
                    WHERE b.legacy_import_id = %s""", (import_id,))],
            "wallet_links": [(r["discord_id"], r["wallet_address"]) for r in tx.all(
                """SELECT p.discord_id, w.wallet_address FROM wallet_links w
                     JOIN profiles p ON p.id = w.profile_id WHERE w.legacy_import_id = %s""", (import_id,))],
        }

    def references_from_outside(self, import_id: uuid.UUID) -> int:
        """Badges not written by the import that name an imported member as their giver."""
        return int(self.db.current().scalar(
            """SELECT count(*) FROM badges b JOIN profiles p ON p.id = b.awarded_by
                WHERE p.legacy_import_id = %s AND b.legacy_import_id IS DISTINCT FROM %s""",
            (import_id, import_id)))

    def remove(self, import_id: uuid.UUID) -> dict[str, int]:
        """Delete every row the import wrote, and the import's own record."""
        tx = self.db.current()
        removed = {}
        for table in ("badges", "wallet_links", "profiles"):
            removed[table] = tx.execute(f"DELETE FROM {table} WHERE legacy_import_id = %s", (import_id,)).rowcount
        tx.execute("DELETE FROM legacy_imports WHERE id = %s", (import_id,))
        return removed


def chunks(rows: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]
