"""SQL for synthesis: shadow states filled in step by step, and members' roles."""

from __future__ import annotations

import json
from typing import Sequence

from .database import Database
from .repositories import canonical_json, sha256_hex


class SynthesisRepository:
    """Tenant repository."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- shadow state -----------------------------------------------------------------------

    def open_shadow(self, manifest_version: int) -> dict:
        """The resources recorded for this version, starting it from the latest earlier shadow
        state (the same Discord objects carry over between versions)."""
        tx = self.db.current()
        row = tx.one("SELECT resources FROM shadow_states WHERE manifest_version = %s", (manifest_version,))
        if row is not None:
            tx.execute("UPDATE shadow_states SET status = 'applying' WHERE manifest_version = %s AND status <> 'applied'",
                       (manifest_version,))
            return dict(row["resources"])
        prev = tx.one("SELECT resources FROM shadow_states WHERE manifest_version < %s "
                      "ORDER BY manifest_version DESC LIMIT 1", (manifest_version,))
        resources = dict(prev["resources"]) if prev else {}
        text = canonical_json(resources)
        tx.execute("""INSERT INTO shadow_states (community_id, manifest_version, resources, checksum, status)
                      VALUES (%s, %s, %s::jsonb, %s, 'applying')""",
                   (self.db.current_tenant(), manifest_version, text, sha256_hex(text)))
        return resources

    def record(self, manifest_version: int, manifest_id: str, discord_id: str | None) -> None:
        """Record (or forget, with None) the Discord id of one manifest resource."""
        patch = json.dumps({manifest_id: discord_id}) if discord_id is not None else None
        if patch is not None:
            self.db.current().execute(
                "UPDATE shadow_states SET resources = resources || %s::jsonb WHERE manifest_version = %s",
                (patch, manifest_version))
        else:
            self.db.current().execute(
                "UPDATE shadow_states SET resources = resources - %s WHERE manifest_version = %s",
                (manifest_id, manifest_version))

    def finish(self, manifest_version: int, status: str) -> None:
        tx = self.db.current()
        row = tx.one("SELECT resources FROM shadow_states WHERE manifest_version = %s", (manifest_version,))
        text = canonical_json(row["resources"])
        tx.execute("UPDATE shadow_states SET status = %s, checksum = %s, applied_at = now() "
                   "WHERE manifest_version = %s", (status, sha256_hex(text), manifest_version))
        if status == "applied":
            from .outbox import OutboxRepository, shadow_key

            OutboxRepository(self.db).add(shadow_key(self.db.current_tenant(), manifest_version), canonical_json(
                {"manifest_version": manifest_version, "resources": row["resources"], "status": status,
                 "checksum": sha256_hex(text)}))

    def latest_shadow(self) -> tuple[int, dict, str] | None:
        row = self.db.current().one("SELECT manifest_version, resources, status FROM shadow_states "
                                    "ORDER BY manifest_version DESC LIMIT 1")
        return None if row is None else (row["manifest_version"], dict(row["resources"]), row["status"])

    # --- members ------------------------------------------------------------------------------

    def member_roles(self, discord_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
        if discord_ids is None:
            rows = self.db.current().all("SELECT discord_id, roles FROM discord_member_roles")
        else:
            rows = self.db.current().all("SELECT discord_id, roles FROM discord_member_roles "
                                         "WHERE discord_id = ANY(%s)", (list(discord_ids),))
        return {r["discord_id"]: list(r["roles"]) for r in rows}

    def save_member_roles(self, discord_id: str, roles: Sequence[str]) -> None:
        self.db.current().execute(
            """INSERT INTO discord_member_roles (community_id, discord_id, roles, updated_at)
               VALUES (%s, %s, %s, now())
               ON CONFLICT (community_id, discord_id) DO UPDATE SET roles = EXCLUDED.roles, updated_at = now()""",
            (self.db.current_tenant(), discord_id, sorted(set(roles))))

