"""SQL for the S3 outbox: objects queued in the same transaction as what they describe."""

from __future__ import annotations

import uuid

from ..domain.checksums import sha256_hex
from .database import Database


def manifest_key(community_id, version: int) -> str:
    return f"manifests/{community_id}/v{version:06d}.json"


def shadow_key(community_id, version: int) -> str:
    return f"shadows/{community_id}/v{version:06d}.json"


def community_key(community_id) -> str:
    return f"communities/{community_id}/community.json"


def index_key(community_id) -> str:
    return f"manifests/{community_id}/index.json"


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, object_key: str, body: str) -> None:
        """Tenant: queue an object for the shadow store."""
        self.db.current().execute(
            "INSERT INTO manifest_outbox (community_id, object_key, body, checksum) VALUES (%s, %s, %s, %s)",
            (self.db.current_tenant(), object_key, body, sha256_hex(body)))

    def pending(self, limit: int = 500) -> list[dict]:
        """Platform: undelivered objects, oldest first."""
        return self.db.current().all(
            "SELECT id, community_id, object_key, body, checksum, attempts FROM manifest_outbox "
            "WHERE delivered_at IS NULL ORDER BY id LIMIT %s", (int(limit),))

    def delivered(self, ids: list[int]) -> None:
        if ids:
            self.db.current().execute("UPDATE manifest_outbox SET delivered_at = now() WHERE id = ANY(%s)", (ids,))

    def failed(self, row_id: int, error: str) -> None:
        self.db.current().execute(
            "UPDATE manifest_outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s", (error[:500], row_id))

    def counts(self) -> dict:
        """Platform: pending and delivered objects."""
        row = self.db.current().one(
            "SELECT count(*) FILTER (WHERE delivered_at IS NULL) AS pending, "
            "count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered FROM manifest_outbox")
        return {"pending": int(row["pending"]), "delivered": int(row["delivered"])}

    def manifest_index(self, community_id: uuid.UUID) -> list[dict]:
        """Platform: the versions of a community with their checksums (for index.json)."""
        rows = self.db.current().all(
            "SELECT version, checksum, created_at, created_by, signature FROM manifests WHERE community_id = %s "
            "ORDER BY version", (community_id,))
        return [{"version": r["version"], "checksum": r["checksum"], "created_at": r["created_at"].isoformat(),
                 "created_by": r["created_by"], "signature": r["signature"],
                 "key": manifest_key(community_id, r["version"])} for r in rows]


class RestoreRepository:
    """Writes for restoring a community from the shadow store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert_community(self, community_id: uuid.UUID, record: dict) -> None:
        """Platform: the community row, unless it is there already."""
        self.db.current().execute(
            """INSERT INTO communities (id, name, guild_id, theme_id, subscription_tier, settings, is_active)
               VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
            (community_id, record["name"], record["guild_id"], record["theme_id"], record["subscription_tier"],
             record.get("settings") or {}, record.get("is_active", True)))

    def manifest_versions(self) -> set[int]:
        return {r["version"] for r in self.db.current().all("SELECT version FROM manifests")}

    def insert_manifest(self, version: int, body: str, checksum: str, created_at: str, created_by: str,
                        signature: str | None = None) -> None:
        """Tenant: a manifest version exactly as archived (the text its checksum covers)."""
        self.db.current().execute(
            """INSERT INTO manifests (community_id, version, content, checksum, created_at, created_by, signature)
               VALUES (%s, %s, %s::jsonb, %s, %s, %s, %s)""",
            (self.db.current_tenant(), version, body, checksum, created_at, created_by, signature))

    def has_shadow(self, version: int) -> bool:
        return self.db.current().scalar("SELECT 1 FROM shadow_states WHERE manifest_version = %s", (version,)) == 1

    def insert_shadow(self, version: int, resources_json: str, checksum: str, status: str) -> None:
        self.db.current().execute(
            """INSERT INTO shadow_states (community_id, manifest_version, resources, checksum, status)
               VALUES (%s, %s, %s::jsonb, %s, %s)""",
            (self.db.current_tenant(), version, resources_json, checksum, status))
