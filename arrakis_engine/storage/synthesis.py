"""SQL for synthesis: shadow states filled in step by step, and members' roles."""

from __future__ import annotations

import json
from typing import Sequence

from .database import Database
from ..domain.checksums import canonical_json, sha256_hex


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

    def latest_applied_version(self) -> int | None:
        return self.db.current().scalar("SELECT max(manifest_version) FROM shadow_states WHERE status = 'applied'")

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


    # --- member role decisions (one decision, one delivery) ------------------------------------

    def member_roles_and_pending(self, discord_ids: Sequence[str] | None = None
                                 ) -> tuple[dict[str, list[str]], dict[str, tuple[int, list[str]]]]:
        """Discord's last answer for every member (or those in ``discord_ids``), and each one's
        latest decision Discord has not got yet, read in one statement (one snapshot: a delivery
        recorded between two reads would otherwise look both undelivered and not yet made)."""
        sql = """SELECT m.discord_id, m.roles, d.seq, d.roles AS decided FROM discord_member_roles m
                   LEFT JOIN member_role_decisions d
                          ON d.community_id = m.community_id AND d.discord_id = m.discord_id AND d.seq > m.applied_seq"""
        rows = (self.db.current().all(sql) if discord_ids is None else
                self.db.current().all(sql + " WHERE m.discord_id = ANY(%s)", (list(discord_ids),)))
        current = {r["discord_id"]: list(r["roles"]) for r in rows}
        pending = {r["discord_id"]: (int(r["seq"]), list(r["decided"])) for r in rows if r["seq"] is not None}
        return current, pending

    def pending_decisions(self) -> dict[str, tuple[int, list[str]]]:
        """discord id -> (seq, roles) of each member's latest decision that Discord has not got yet."""
        rows = self.db.current().all(
            """SELECT d.discord_id, d.seq, d.roles FROM member_role_decisions d
                 LEFT JOIN discord_member_roles m USING (community_id, discord_id)
                WHERE d.seq > COALESCE(m.applied_seq, 0)""")
        return {r["discord_id"]: (int(r["seq"]), list(r["roles"])) for r in rows}

    def decide(self, decisions: Sequence[tuple[str, Sequence[str]]], *, actor: str,
               mined_at: float | None = None) -> dict[str, int]:
        """Record a new decision (the next number, above anything applied) per member; returns
        discord id -> its number. Two planners deciding at once each get their own number: the
        higher one wins, the other is dropped when its turn comes.

        ``mined_at`` (unix seconds): when the block that caused these decisions was mined (the
        live watcher's; None for bulk syncs). A decision that supersedes one still on its way
        keeps the earlier block's time: the role call that delivers it ends the member's wait
        since that block."""
        if not decisions:
            return {}
        tenant = self.db.current_tenant()
        rows = self.db.current().execute_values(
            """INSERT INTO member_role_decisions AS d (community_id, discord_id, seq, roles, decided_by, decided_at,
                                                       mined_at)
               SELECT v.community_id::uuid, v.discord_id,
                      COALESCE((SELECT applied_seq FROM discord_member_roles m
                                 WHERE m.community_id = v.community_id::uuid AND m.discord_id = v.discord_id), 0) + 1,
                      v.roles::text[], v.actor, now(), to_timestamp(v.mined_at::double precision)
                 FROM (VALUES %s) AS v (community_id, discord_id, roles, actor, mined_at)
               ON CONFLICT (community_id, discord_id) DO UPDATE
               SET seq = GREATEST(d.seq, EXCLUDED.seq - 1) + 1, roles = EXCLUDED.roles,
                   decided_by = EXCLUDED.decided_by, decided_at = now(),
                   -- d.seq >= EXCLUDED.seq: the old decision is still on its way (EXCLUDED.seq is applied + 1)
                   mined_at = CASE WHEN d.seq >= EXCLUDED.seq THEN LEAST(d.mined_at, EXCLUDED.mined_at)
                                   ELSE EXCLUDED.mined_at END
               RETURNING discord_id, seq""",
            [(str(tenant), did, sorted(set(roles)), actor, mined_at) for did, roles in decisions])
        return {did: int(seq) for did, seq in rows}

    def latest_decision(self, discord_id: str) -> tuple[int, list[str], float | None] | None:
        """(number, roles, when its block was mined: unix seconds, None for a bulk sync's) of the
        member's latest decision."""
        row = self.db.current().one("SELECT seq, roles, extract(epoch FROM mined_at) AS mined FROM member_role_decisions "
                                    "WHERE discord_id = %s", (discord_id,))
        return None if row is None else (int(row["seq"]), list(row["roles"]),
                                         None if row["mined"] is None else float(row["mined"]))

    def lock_member(self, discord_id: str) -> tuple[list[str], int] | None:
        """(roles Discord last answered, the decision applied last) of one member, locked until
        the transaction ends: deliveries to one member go out one at a time, in order."""
        row = self.db.current().one(
            "SELECT roles, applied_seq FROM discord_member_roles WHERE discord_id = %s FOR UPDATE", (discord_id,))
        return None if row is None else (list(row["roles"]), int(row["applied_seq"]))

    def forget_member(self, discord_id: str) -> None:
        """The member is not in the guild (Discord said so): no roles of theirs are known."""
        self.db.current().execute("DELETE FROM discord_member_roles WHERE discord_id = %s", (discord_id,))

    def mark_applied(self, discord_id: str, roles: Sequence[str], seq: int) -> None:
        self.db.current().execute(
            """INSERT INTO discord_member_roles (community_id, discord_id, roles, applied_seq, updated_at)
               VALUES (%s, %s, %s, %s, now())
               ON CONFLICT (community_id, discord_id) DO UPDATE
               SET roles = EXCLUDED.roles, applied_seq = GREATEST(discord_member_roles.applied_seq, EXCLUDED.applied_seq),
                   updated_at = now()""",
            (self.db.current_tenant(), discord_id, sorted(set(roles)), int(seq)))
