"""SQL behind the operator views (the fleet and one community in detail)."""

from __future__ import annotations

from typing import Any

from .database import Database

# The communities first (all of them, or the first page by name), then each one's figures by
# index lookups: the first page of a fleet of 10,000 costs as much as a fleet of 60.
FLEET_SQL = """
SELECT c.id, c.name, c.guild_id, c.theme_id, c.subscription_tier, c.is_active,
       coalesce(p.n, 0) AS members, s.last_sync, m.version AS manifest_version,
       sh.manifest_version AS shadow_version, sh.status AS shadow_status, sh.applied_at AS last_synthesis
FROM (SELECT * FROM communities WHERE %(only)s::uuid IS NULL OR id = %(only)s::uuid
      ORDER BY lower(name), id LIMIT %(limit)s) c
LEFT JOIN LATERAL (SELECT count(*) AS n FROM profiles WHERE community_id = c.id) p ON true
LEFT JOIN LATERAL (SELECT max(created_at) AS last_sync FROM audit_log
                   WHERE community_id = c.id AND action = 'eligibility.synced') s ON true
LEFT JOIN LATERAL (SELECT version FROM manifests WHERE community_id = c.id
                   ORDER BY version DESC LIMIT 1) m ON true
LEFT JOIN LATERAL (SELECT manifest_version, status, applied_at FROM shadow_states WHERE community_id = c.id
                   ORDER BY manifest_version DESC LIMIT 1) sh ON true
ORDER BY lower(c.name), c.id
"""


class OperatorViewsRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def fleet(self, limit: int | None = None, only=None) -> list[dict[str, Any]]:
        """Platform: every community (or the first ``limit`` by name, or the one ``only``) with
        members, last sync, latest manifest and shadow state."""
        return self.db.current().all(FLEET_SQL, {"limit": limit, "only": str(only) if only else None})

    def recent_tier_changes(self, limit: int) -> list[dict[str, Any]]:
        """Tenant: the newest tier changes with the member's Discord id."""
        return self.db.current().all(
            """SELECT p.discord_id, h.from_tier, h.to_tier, h.rank, h.reason, h.changed_at
               FROM tier_history h JOIN profiles p ON p.id = h.profile_id
               ORDER BY h.changed_at DESC, h.id DESC LIMIT %s""", (int(limit),))

    def manifest_versions(self) -> list[dict[str, Any]]:
        """Tenant: every manifest version, newest first, with the status of its shadow state."""
        return self.db.current().all(
            """SELECT m.version, m.created_at, m.created_by, m.checksum, s.status AS synthesized
               FROM manifests m LEFT JOIN shadow_states s ON s.manifest_version = m.version
               ORDER BY m.version DESC""")

    def delivered_keys(self) -> set[str]:
        """Tenant: the shadow-store keys the outbox has delivered."""
        return {r["object_key"] for r in self.db.current().all(
            "SELECT object_key FROM manifest_outbox WHERE delivered_at IS NOT NULL")}

    def last_eligibility_sync(self) -> dict[str, Any] | None:
        """Tenant: the audit entry of the last eligibility sync."""
        return self.db.current().one("SELECT actor, payload, created_at FROM audit_log "
                                     "WHERE action = 'eligibility.synced' ORDER BY seq DESC LIMIT 1")

    def communities_of_member(self, discord_id: str) -> set[str]:
        """Platform: the ids of every community where this Discord user is a member."""
        rows = self.db.current().all("SELECT DISTINCT community_id FROM profiles WHERE discord_id = %s",
                                     (discord_id,))
        return {str(r["community_id"]) for r in rows}
