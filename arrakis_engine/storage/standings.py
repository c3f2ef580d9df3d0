"""SQL for the eligibility sync: one read of every member's standing, bulk writes of the result."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Sequence

from .database import Database


@dataclass(frozen=True)
class MemberStanding:
    profile_id: uuid.UUID
    discord_id: str
    joined_at: datetime
    tier: str | None
    highest_tier: str | None
    rank: int | None
    demotion_pending_since: datetime | None
    activity: Decimal
    conviction: Decimal
    metadata: dict
    wallets: tuple[str, ...]
    badges: frozenset


@dataclass(frozen=True)
class StandingUpdate:
    profile_id: uuid.UUID
    tier: str | None
    highest_tier: str | None
    rank: int | None
    demotion_pending_since: datetime | None
    activity: Decimal
    conviction: Decimal
    metadata: dict


class EligibilityRepository:
    """Tenant repository for the sync."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def standings(self) -> list[MemberStanding]:
        """Every member's standing with their wallets and active badges: three plain reads of
        the community's rows (profiles, wallet links, badges) put together here, rather than a
        sub-select per member (100,000 members: 200,000 index lookups) or a join whose plan
        depends on the table statistics."""
        tx = self.db.current()
        wallets: dict[str, list[str]] = {}
        for pid, address in tx.execute("SELECT profile_id::text, wallet_address FROM wallet_links "
                                       "ORDER BY wallet_address").fetchall():
            wallets.setdefault(pid, []).append(address)
        badges: dict[str, list[str]] = {}
        for pid, badge in tx.execute("SELECT profile_id::text, badge_type FROM badges "
                                     "WHERE revoked_at IS NULL").fetchall():
            badges.setdefault(pid, []).append(badge)
        rows = tx.execute("""SELECT id, id::text, discord_id, joined_at, tier, highest_tier, rank, demotion_pending_since,
                                    activity, conviction, metadata, wallet_address
                               FROM profiles ORDER BY joined_at, discord_id""").fetchall()
        return [MemberStanding(pid, discord_id, joined, tier, highest, rank, pending, activity, conviction,
                               metadata or {}, tuple(wallets.get(key) or ([own] if own else [])),
                               frozenset(badges.get(key, ())))
                for (pid, key, discord_id, joined, tier, highest, rank, pending, activity, conviction, metadata, own)
                in rows]

    def tiers_and_badges(self) -> dict[str, tuple[str | None, frozenset[str]]]:
        """Each member's tier and active badges (discord id -> (tier, badges)): what a manifest
        needs, without the wallets, scores and metadata of :meth:`standings`."""
        rows = self.db.current().all(
            """SELECT p.discord_id, p.tier,
                      coalesce((SELECT array_agg(b.badge_type) FROM badges b
                                 WHERE b.profile_id = p.id AND b.revoked_at IS NULL), '{}'::text[]) AS badges
                 FROM profiles p""")
        return {r["discord_id"]: (r["tier"], frozenset(r["badges"])) for r in rows}

    def top_tier_seats(self) -> int:
        """How many members already hold a seat number for reaching the top tier."""
        return int(self.db.current().scalar(
            "SELECT coalesce(max((metadata->>'top_tier_seat')::int), 0) FROM profiles "
            "WHERE metadata ? 'top_tier_seat'"))

    def apply(self, updates: Sequence[StandingUpdate], *, synced_at: datetime) -> int:
        """Write the standings a sync changed (``last_synced_at``: the sync that last changed the
        member's standing; the community's last sync is in its audit log)."""
        if not updates:
            return 0
        # One statement over parallel arrays (unnest): a re-rank that shifts 100,000 ranks sends
        # ten arrays, not 100,000 quoted rows.
        self.db.current().execute(
            """UPDATE profiles AS p SET tier = v.tier, highest_tier = v.highest_tier, rank = v.rank,
                      demotion_pending_since = v.pending, activity = v.activity, conviction = v.conviction,
                      metadata = v.metadata::jsonb, last_synced_at = %s, updated_at = now()
                 FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::int[], %s::timestamptz[], %s::numeric[],
                             %s::numeric[], %s::text[])
                      AS v(id, tier, highest_tier, rank, pending, activity, conviction, metadata)
                WHERE p.id = v.id""",
            (synced_at, [str(u.profile_id) for u in updates], [u.tier for u in updates],
             [u.highest_tier for u in updates], [u.rank for u in updates],
             [u.demotion_pending_since for u in updates], [u.activity for u in updates],
             [u.conviction for u in updates], [json.dumps(u.metadata) for u in updates]))
        return len(updates)

    def record_tier_changes(self, changes: Sequence[tuple[uuid.UUID, str | None, str | None, int | None, str]]) -> None:
        """(profile id, from tier, to tier, rank, reason) rows."""
        if changes:
            tenant = self.db.current_tenant()
            self.db.current().execute_values(
                "INSERT INTO tier_history (community_id, profile_id, from_tier, to_tier, rank, reason) VALUES %s",
                [(tenant, *c) for c in changes], page_size=1000)

    def award(self, awards: Sequence[tuple[uuid.UUID, str]], *, at: datetime) -> None:
        if awards:
            tenant = self.db.current_tenant()
            self.db.current().execute_values(
                "INSERT INTO badges (community_id, profile_id, badge_type, awarded_at) VALUES %s",
                [(tenant, p, t, at) for p, t in awards], page_size=1000)

    def revoke(self, revokes: Sequence[tuple[uuid.UUID, str]], *, reason: str) -> None:
        if revokes:
            tx = self.db.current()
            quoted = tx.conn.cursor().mogrify("%s", (reason,)).decode()  # a safely quoted literal
            tx.execute_values(
                f"""UPDATE badges AS b SET revoked_at = now(), revoked_reason = {quoted.replace('%', '%%')}
                      FROM (VALUES %s) AS v(profile_id, badge_type)
                     WHERE b.profile_id = v.profile_id::uuid AND b.badge_type = v.badge_type
                       AND b.revoked_at IS NULL""",
                [(str(p), t) for p, t in revokes], page_size=1000)
