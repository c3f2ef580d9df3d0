"""Repositories: the only place with SQL for tenant data.

Tenant repositories run inside ``db.tenant(community_id)`` and never name ``community_id`` in a
WHERE clause: row-level security scopes every statement, so a forgotten filter cannot leak.
They set ``community_id`` on inserts from the open transaction. Platform methods (marked) run
inside ``db.platform()``.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Iterable, Sequence

from ..errors import Conflict, IntegrityFailure, NotFound, ValidationError
from .database import Database, validate_tenant_id
from .outbox import OutboxRepository, community_key, manifest_key
from ..domain.checksums import canonical_json, sha256_hex
from ..domain.validation import check_discord_id
from .models import AuditEntry, Badge, Community, Manifest, Profile, ShadowState, TierChange, WalletLink

WALLET_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
BADGE_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def normalize_wallet(address: str) -> str:
    """Lower-case 0x address, or :class:`ValidationError` naming the field."""
    if not isinstance(address, str) or not WALLET_RE.match(address.strip()):
        raise ValidationError("wallet address must be 0x followed by 40 hex digits", field="wallet_address")
    return address.strip().lower()


class _Repo:
    def __init__(self, db: Database) -> None:
        self.db = db


class CommunityRepository(_Repo):
    _COLS = "id, name, guild_id, theme_id, subscription_tier, settings, is_active, created_at, updated_at"

    def create(self, *, name: str, guild_id: str, theme_id: str, subscription_tier: str,
               settings: dict | None = None) -> Community:
        """Platform: create a community. Raises :class:`Conflict` if the guild already has one."""
        tx = self.db.current()
        exists = tx.scalar("SELECT 1 FROM communities WHERE guild_id = %s", (guild_id,))
        if exists:
            raise Conflict(f"guild {guild_id} already has a community")
        row = tx.one(
            f"INSERT INTO communities (name, guild_id, theme_id, subscription_tier, settings) "
            f"VALUES (%s, %s, %s, %s, %s) RETURNING {self._COLS}",
            (name, guild_id, theme_id, subscription_tier, settings or {}),
        )
        return Community.from_row(row)

    def list_all(self) -> list[Community]:
        """Platform: every community, oldest first."""
        return [Community.from_row(r) for r in self.db.current().all(
            f"SELECT {self._COLS} FROM communities ORDER BY created_at, name")]

    def by_guild(self, guild_id: str) -> Community | None:
        """Platform: the community of a guild, if any."""
        row = self.db.current().one(f"SELECT {self._COLS} FROM communities WHERE guild_id = %s", (guild_id,))
        return Community.from_row(row) if row else None

    def get(self, community_id: uuid.UUID | str) -> Community:
        """The community by id (tenant: only its own row is visible)."""
        row = self.db.current().one(f"SELECT {self._COLS} FROM communities WHERE id = %s", (str(community_id),))
        if row is None:
            raise NotFound(f"no community {community_id}")
        return Community.from_row(row)

    def current(self) -> Community:
        """Tenant: the community the open transaction is scoped to."""
        return self.get(self.db.current_tenant())

    def set_theme(self, community_id: uuid.UUID, theme_id: str) -> None:
        """Platform: switch a community's theme."""
        self.db.current().execute("UPDATE communities SET theme_id = %s, updated_at = now() WHERE id = %s",
                                  (theme_id, community_id))

    def update_settings(self, settings: dict) -> Community:
        """Tenant: replace the community's settings."""
        row = self.db.current().one(
            f"UPDATE communities SET settings = %s, updated_at = now() RETURNING {self._COLS}", (settings,))
        if row is None:
            raise NotFound("the community is not visible in this transaction")
        return Community.from_row(row)


class ProfileRepository(_Repo):
    _COLS = ("id, community_id, discord_id, wallet_address, tier, rank, conviction, activity, joined_at, "
             "first_claim_at, metadata, legacy_import_id")

    def create(self, *, discord_id: str, wallet_address: str | None = None, tier: str | None = None,
               rank: int | None = None, joined_at: datetime | None = None, metadata: dict | None = None,
               conviction: Any = 0, activity: Any = 0, first_claim_at: datetime | None = None,
               legacy_import_id: uuid.UUID | None = None) -> Profile:
        tx = self.db.current()
        row = tx.one(
            f"""INSERT INTO profiles (community_id, discord_id, wallet_address, tier, rank, joined_at, metadata,
                                      conviction, activity, first_claim_at, legacy_import_id)
                VALUES (%s, %s, %s, %s, %s, coalesce(%s, now()), %s, %s, %s, %s, %s) RETURNING {self._COLS}""",
            (self.db.current_tenant(), check_discord_id(discord_id),
             normalize_wallet(wallet_address) if wallet_address else None, tier, _rank(rank), joined_at,
             metadata or {}, conviction, activity, first_claim_at, legacy_import_id),
        )
        return Profile.from_row(row)

    def get(self, profile_id: uuid.UUID | str) -> Profile:
        row = self.db.current().one(f"SELECT {self._COLS} FROM profiles WHERE id = %s", (str(profile_id),))
        if row is None:
            raise NotFound(f"no member profile {profile_id} in this community")
        return Profile.from_row(row)

    def by_discord_id(self, discord_id: str) -> Profile | None:
        row = self.db.current().one(f"SELECT {self._COLS} FROM profiles WHERE discord_id = %s",
                                    (check_discord_id(discord_id),))
        return Profile.from_row(row) if row else None

    def by_wallet(self, wallet_address: str) -> Profile | None:
        row = self.db.current().one(f"SELECT {self._COLS} FROM profiles WHERE wallet_address = %s",
                                    (normalize_wallet(wallet_address),))
        return Profile.from_row(row) if row else None

    def top_by_rank(self, limit: int = 10) -> list[Profile]:
        rows = self.db.current().all(
            f"SELECT {self._COLS} FROM profiles WHERE rank IS NOT NULL ORDER BY rank LIMIT %s", (int(limit),))
        return [Profile.from_row(r) for r in rows]

    def all(self) -> list[Profile]:
        return [Profile.from_row(r) for r in self.db.current().all(
            f"SELECT {self._COLS} FROM profiles ORDER BY rank NULLS LAST, discord_id")]

    def count(self) -> int:
        return int(self.db.current().scalar("SELECT count(*) FROM profiles"))

    def count_per_community(self) -> dict[uuid.UUID, int]:
        """Platform: member count of every community."""
        return {r["community_id"]: r["n"] for r in self.db.current().all(
            "SELECT community_id, count(*) AS n FROM profiles GROUP BY community_id")}

    def count_by_tier(self) -> dict[str | None, int]:
        return {r["tier"]: r["n"] for r in self.db.current().all(
            "SELECT tier, count(*) AS n FROM profiles GROUP BY tier")}

    def update_standing(self, profile_id: uuid.UUID, *, tier: str | None, rank: int | None) -> Profile:
        row = self.db.current().one(
            f"UPDATE profiles SET tier = %s, rank = %s, updated_at = now() WHERE id = %s RETURNING {self._COLS}",
            (tier, _rank(rank), profile_id))
        if row is None:
            raise NotFound(f"no member profile {profile_id} in this community")
        return Profile.from_row(row)

    def set_wallet(self, profile_id: uuid.UUID, wallet_address: str | None) -> None:
        """The member's primary wallet (None: they have none left)."""
        self.db.current().execute("UPDATE profiles SET wallet_address = %s, updated_at = now() WHERE id = %s",
                                  (None if wallet_address is None else normalize_wallet(wallet_address), profile_id))

    def lock(self, profile_id: uuid.UUID) -> None:
        """Hold the member's row until the transaction ends (serialises decisions about them)."""
        if self.db.current().scalar("SELECT 1 FROM profiles WHERE id = %s FOR UPDATE", (profile_id,)) is None:
            raise NotFound(f"no member profile {profile_id} in this community")

    def delete(self, profile_id: uuid.UUID) -> bool:
        return self.db.current().execute("DELETE FROM profiles WHERE id = %s", (profile_id,)).rowcount == 1


def _rank(rank: int | None) -> int | None:
    if rank is None:
        return None
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValidationError("rank must be a whole number from 1 up", field="rank")
    return rank


class WalletLinkRepository(_Repo):
    _COLS = "id, community_id, profile_id, wallet_address, source, verified_at, legacy_import_id"

    def link(self, profile_id: uuid.UUID, wallet_address: str, *, source: str = "siwe",
             verified_at: datetime | None = None, legacy_import_id: uuid.UUID | None = None) -> WalletLink:
        """Link a wallet to a member. Raises :class:`Conflict` if another member holds it."""
        tx = self.db.current()
        wallet = normalize_wallet(wallet_address)
        holder = tx.scalar("SELECT profile_id FROM wallet_links WHERE wallet_address = %s", (wallet,))
        if holder is not None and holder != profile_id:
            raise Conflict("this wallet is already linked to another member of this community")
        row = tx.one(
            f"""INSERT INTO wallet_links (community_id, profile_id, wallet_address, source, verified_at, legacy_import_id)
                VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (community_id, wallet_address) DO UPDATE SET verified_at = EXCLUDED.verified_at
                RETURNING {self._COLS}""",
            (self.db.current_tenant(), profile_id, wallet, source, verified_at, legacy_import_id))
        return WalletLink.from_row(row)

    def for_profile(self, profile_id: uuid.UUID) -> list[WalletLink]:
        return [WalletLink.from_row(r) for r in self.db.current().all(
            f"SELECT {self._COLS} FROM wallet_links WHERE profile_id = %s ORDER BY created_at", (profile_id,))]

    def by_wallet(self, wallet_address: str) -> WalletLink | None:
        row = self.db.current().one(f"SELECT {self._COLS} FROM wallet_links WHERE wallet_address = %s",
                                    (normalize_wallet(wallet_address),))
        return WalletLink.from_row(row) if row else None

    def unlink(self, wallet_address: str) -> bool:
        return self.db.current().execute("DELETE FROM wallet_links WHERE wallet_address = %s",
                                         (normalize_wallet(wallet_address),)).rowcount == 1


class BadgeRepository(_Repo):
    _COLS = ("id, community_id, profile_id, badge_type, awarded_at, awarded_by, revoked_at, revoked_reason, "
             "metadata, legacy_import_id")

    def award(self, profile_id: uuid.UUID, badge_type: str, *, awarded_by: uuid.UUID | None = None,
              awarded_at: datetime | None = None, metadata: dict | None = None,
              legacy_import_id: uuid.UUID | None = None) -> Badge:
        """Award a badge. Raises :class:`Conflict` if the member already holds it (active)."""
        if not isinstance(badge_type, str) or not BADGE_TYPE_RE.match(badge_type):
            raise ValidationError("badge type must be lower-case letters, digits and _", field="badge_type")
        if awarded_by is not None and awarded_by == profile_id:
            raise ValidationError("a member cannot award a badge to themselves", field="awarded_by")
        row = self.db.current().one(
            f"""INSERT INTO badges (community_id, profile_id, badge_type, awarded_by, awarded_at, metadata, legacy_import_id)
                VALUES (%s, %s, %s, %s, coalesce(%s, now()), %s, %s) RETURNING {self._COLS}""",
            (self.db.current_tenant(), profile_id, badge_type, awarded_by, awarded_at, metadata or {},
             legacy_import_id))
        return Badge.from_row(row)

    def for_profile(self, profile_id: uuid.UUID, *, include_revoked: bool = False) -> list[Badge]:
        extra = "" if include_revoked else " AND revoked_at IS NULL"
        return [Badge.from_row(r) for r in self.db.current().all(
            f"SELECT {self._COLS} FROM badges WHERE profile_id = %s{extra} ORDER BY awarded_at", (profile_id,))]

    def active(self, profile_id: uuid.UUID, badge_type: str) -> Badge | None:
        row = self.db.current().one(
            f"SELECT {self._COLS} FROM badges WHERE profile_id = %s AND badge_type = %s AND revoked_at IS NULL",
            (profile_id, badge_type))
        return Badge.from_row(row) if row else None

    def ever_held(self, profile_id: uuid.UUID, badge_type: str) -> bool:
        """True if the member holds or ever held this badge (revoked ones count)."""
        return self.db.current().scalar(
            "SELECT 1 FROM badges WHERE profile_id = %s AND badge_type = %s LIMIT 1", (profile_id, badge_type)) == 1

    def active_given_by(self, profile_id: uuid.UUID, badge_type: str) -> list[Badge]:
        """Active badges of this type that the member handed on."""
        return [Badge.from_row(r) for r in self.db.current().all(
            f"SELECT {self._COLS} FROM badges WHERE awarded_by = %s AND badge_type = %s AND revoked_at IS NULL",
            (profile_id, badge_type))]

    def count_by_type(self) -> dict[str, int]:
        return {r["badge_type"]: r["n"] for r in self.db.current().all(
            "SELECT badge_type, count(*) AS n FROM badges WHERE revoked_at IS NULL GROUP BY badge_type")}

    def lineage(self, profile_id: uuid.UUID, badge_type: str, *, max_depth: int = 1000) -> list[Badge]:
        """The chain of awards above a member's badge: their badge first, then who awarded it, up to
        the root. Follows ``awarded_by`` with a recursive CTE; stops at ``max_depth``."""
        rows = self.db.current().all(
            f"""WITH RECURSIVE chain AS (
                    SELECT b.*, 1 AS depth FROM badges b
                     WHERE b.profile_id = %(p)s AND b.badge_type = %(t)s AND b.revoked_at IS NULL
                    UNION ALL
                    SELECT up.*, chain.depth + 1 FROM chain
                      JOIN badges up ON up.profile_id = chain.awarded_by AND up.badge_type = chain.badge_type
                                    AND up.revoked_at IS NULL
                     WHERE chain.depth < %(d)s
                ) CYCLE profile_id SET is_cycle USING path
                SELECT {self._COLS} FROM chain WHERE NOT is_cycle ORDER BY depth""",
            {"p": profile_id, "t": badge_type, "d": max_depth})
        return [Badge.from_row(r) for r in rows]

    def downstream(self, profile_id: uuid.UUID, badge_type: str) -> list[Badge]:
        """Every active badge of this type handed on, directly or further down, from this member."""
        rows = self.db.current().all(
            f"""WITH RECURSIVE down AS (
                    SELECT b.*, 1 AS depth FROM badges b
                     WHERE b.awarded_by = %(p)s AND b.badge_type = %(t)s AND b.revoked_at IS NULL
                    UNION ALL
                    SELECT nxt.*, down.depth + 1 FROM down
                      JOIN badges nxt ON nxt.awarded_by = down.profile_id AND nxt.badge_type = down.badge_type
                                     AND nxt.revoked_at IS NULL
                ) CYCLE profile_id SET is_cycle USING path
                SELECT {self._COLS} FROM down WHERE NOT is_cycle ORDER BY depth, awarded_at""",
            {"p": profile_id, "t": badge_type})
        return [Badge.from_row(r) for r in rows]

    def revoke(self, badge_id: uuid.UUID, *, reason: str) -> Badge:
        row = self.db.current().one(
            f"""UPDATE badges SET revoked_at = now(), revoked_reason = %s
                 WHERE id = %s AND revoked_at IS NULL RETURNING {self._COLS}""", (reason, badge_id))
        if row is None:
            raise NotFound("no active badge with that id in this community")
        return Badge.from_row(row)

    def cascade_revoke(self, profile_id: uuid.UUID, badge_type: str, *, reason: str,
                       include_self: bool = True) -> list[Badge]:
        """Revoke a member's badge and every award handed on from it, in one statement."""
        targets = self.downstream(profile_id, badge_type)
        ids = [b.id for b in targets]
        if include_self:
            own = self.active(profile_id, badge_type)
            if own is not None:
                ids.insert(0, own.id)
        if not ids:
            return []
        rows = self.db.current().all(
            f"""UPDATE badges SET revoked_at = now(), revoked_reason = %s
                 WHERE id = ANY(%s) AND revoked_at IS NULL RETURNING {self._COLS}""", (reason, ids))
        return [Badge.from_row(r) for r in rows]


class ManifestRepository(_Repo):
    _COLS = "community_id, version, content, checksum, created_at, created_by, signature"

    def create_version(self, content: dict, *, created_by: str, sign=None) -> Manifest:
        """Store ``content`` as the next version with its SHA-256. Concurrent writers are
        serialised per community, so versions never collide. ``sign(version, checksum)`` gives the
        version's signature; if it raises, nothing is stored (nothing is published unsigned)."""
        if not isinstance(content, dict):
            raise ValidationError("a manifest must be a JSON object", field="content")
        tx = self.db.current()
        tenant = self.db.current_tenant()
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('arrakis.manifests'), hashtext(%s))", (str(tenant),))
        version = int(tx.scalar("SELECT coalesce(max(version), 0) + 1 FROM manifests"))
        text = canonical_json(content)
        checksum = sha256_hex(text)
        signature = sign(version, checksum) if sign is not None else None
        row = tx.one(
            f"""INSERT INTO manifests (community_id, version, content, checksum, created_by, signature)
                VALUES (%s, %s, %s::jsonb, %s, %s, %s) RETURNING {self._COLS}""",
            (tenant, version, text, checksum, created_by, signature))
        # Shadowed to S3 through the outbox, in this same transaction: a version never exists
        # without its copy being on the way.
        outbox = OutboxRepository(self.db)
        outbox.add(manifest_key(tenant, version), text)
        community = tx.one("SELECT id, name, guild_id, theme_id, subscription_tier, settings, is_active, created_at "
                           "FROM communities WHERE id = %s", (tenant,))
        if community is not None:
            outbox.add(community_key(tenant), canonical_json(community))
        return Manifest.from_row(row)

    def latest(self) -> Manifest | None:
        row = self.db.current().one(f"SELECT {self._COLS} FROM manifests ORDER BY version DESC LIMIT 1")
        return Manifest.from_row(row) if row else None

    def by_version(self, version: int) -> Manifest:
        row = self.db.current().one(f"SELECT {self._COLS} FROM manifests WHERE version = %s", (int(version),))
        if row is None:
            raise NotFound(f"no manifest version {version} for this community")
        return Manifest.from_row(row)

    def versions(self) -> list[int]:
        return [r["version"] for r in self.db.current().all("SELECT version FROM manifests ORDER BY version")]

    def verify(self, version: int) -> Manifest:
        """Return the version if its content still matches its checksum, else raise IntegrityFailure."""
        manifest = self.by_version(version)
        actual = sha256_hex(canonical_json(manifest.content))
        if actual != manifest.checksum:
            raise IntegrityFailure(f"manifest version {version} does not match its checksum; it was altered")
        return manifest


class ShadowStateRepository(_Repo):
    _COLS = "community_id, manifest_version, resources, checksum, status, applied_at"

    def record(self, manifest_version: int, resources: dict, *, status: str = "applied") -> ShadowState:
        text = canonical_json(resources)
        row = self.db.current().one(
            f"""INSERT INTO shadow_states (community_id, manifest_version, resources, checksum, status)
                VALUES (%s, %s, %s::jsonb, %s, %s) RETURNING {self._COLS}""",
            (self.db.current_tenant(), int(manifest_version), text, sha256_hex(text), status))
        return ShadowState.from_row(row)

    def latest(self) -> ShadowState | None:
        row = self.db.current().one(
            f"SELECT {self._COLS} FROM shadow_states ORDER BY applied_at DESC, id DESC LIMIT 1")
        return ShadowState.from_row(row) if row else None


class TierHistoryRepository(_Repo):
    _COLS = "community_id, profile_id, from_tier, to_tier, rank, reason, changed_at"

    def record(self, profile_id: uuid.UUID, *, from_tier: str | None, to_tier: str | None,
               rank: int | None, reason: str = "sync") -> TierChange:
        row = self.db.current().one(
            f"""INSERT INTO tier_history (community_id, profile_id, from_tier, to_tier, rank, reason)
                VALUES (%s, %s, %s, %s, %s, %s) RETURNING {self._COLS}""",
            (self.db.current_tenant(), profile_id, from_tier, to_tier, rank, reason))
        return TierChange.from_row(row)

    def for_profile(self, profile_id: uuid.UUID) -> list[TierChange]:
        return [TierChange.from_row(r) for r in self.db.current().all(
            f"SELECT {self._COLS} FROM tier_history WHERE profile_id = %s ORDER BY changed_at, id", (profile_id,))]

    def recent(self, limit: int = 20) -> list[TierChange]:
        return [TierChange.from_row(r) for r in self.db.current().all(
            f"SELECT {self._COLS} FROM tier_history ORDER BY changed_at DESC, id DESC LIMIT %s", (int(limit),))]


class AuditLogRepository(_Repo):
    """Append-only, hash-chained log. The chaining happens in the database (trigger)."""

    _COLS = "community_id, seq, actor, action, payload, created_at, prev_hash, hash"

    def append(self, actor: str, action: str, payload: dict | None = None) -> AuditEntry:
        """Append to the open transaction's chain: the community's, or the platform's."""
        tx = self.db.current()
        row = tx.one(
            f"INSERT INTO audit_log (community_id, actor, action, payload) "
            f"VALUES (%s, %s, %s, %s) RETURNING {self._COLS}",
            (tx.tenant_id, actor, action, payload or {}))
        return AuditEntry.from_row(row)

    def entries(self, community_id: uuid.UUID | None = None, *, limit: int | None = None) -> list[AuditEntry]:
        """Entries of one chain in order. In a tenant transaction ``community_id`` is that tenant."""
        tx = self.db.current()
        if tx.tenant_id is not None:
            community_id = tx.tenant_id
        where = "community_id IS NULL" if community_id is None else "community_id = %s"
        params: list[Any] = [] if community_id is None else [community_id]
        sql = f"SELECT {self._COLS} FROM audit_log WHERE {where} ORDER BY seq"
        if limit:
            sql += " DESC LIMIT %s"
            params.append(int(limit))
        rows = tx.all(sql, params)
        return sorted((AuditEntry.from_row(r) for r in rows), key=lambda e: e.seq)

    def verify_chain(self, community_id: uuid.UUID | None) -> "ChainReport":
        """Platform: recompute one chain and compare with the stored hashes and the chain head.

        Reports an edited row (hash mismatch), a deleted row (gap in ``seq`` or a broken
        ``prev_hash`` link) and deleted newest rows (the head records a later row).
        """
        tx = self.db.current()
        where = "community_id IS NULL" if community_id is None else "community_id = %s"
        params = [] if community_id is None else [community_id]
        rows = tx.all(
            f"""SELECT seq, prev_hash, hash,
                       audit_row_hash(prev_hash, community_id, seq, actor, action, payload, created_at) AS expected
                  FROM audit_log WHERE {where} ORDER BY seq""", params)
        head = tx.one("SELECT seq, hash FROM audit_heads WHERE chain = %s",
                      ("platform" if community_id is None else str(community_id),))
        problems: list[str] = []
        prev_hash = None
        expected_seq = 1
        for r in rows:
            if r["seq"] != expected_seq:
                problems.append(f"rows {expected_seq}..{r['seq'] - 1} are missing (deleted)")
            if r["prev_hash"] != prev_hash:
                problems.append(f"row {r['seq']} does not link to the row before it")
            if r["hash"] != r["expected"]:
                problems.append(f"row {r['seq']} was edited: its content no longer matches its hash")
            prev_hash = r["hash"]
            expected_seq = r["seq"] + 1
        if head is not None and (head["seq"] != expected_seq - 1 or head["hash"] != prev_hash):
            problems.append(f"the chain should end at row {head['seq']} but ends at row {expected_seq - 1}")
        if head is None and rows:
            problems.append("the chain has rows but no recorded head")
        return ChainReport(rows=len(rows), problems=problems)


    # --- what the audit digests anchor (platform transactions) -----------------------------------

    @staticmethod
    def _chain_where(chain: str) -> tuple[str, list[Any]]:
        if chain == "platform":
            return "community_id IS NULL", []
        return "community_id = %s", [validate_tenant_id(chain)]

    def chains(self) -> list[str]:
        """Every chain that has rows: 'platform' and community ids, read from the rows themselves
        (not from audit_heads)."""
        rows = self.db.current().all(
            "SELECT DISTINCT coalesce(community_id::text, 'platform') AS chain FROM audit_log")
        return sorted(r["chain"] for r in rows)

    def chain_rows(self, chain: str, *, from_seq: int = 0) -> list[dict[str, Any]]:
        """A chain's rows from ``from_seq`` on, in order: seq, prev_hash, the stored hash and the
        hash their content gives (``expected``), created_at."""
        where, params = self._chain_where(chain)
        return self.db.current().all(
            f"""SELECT seq, prev_hash, hash, created_at,
                       audit_row_hash(prev_hash, community_id, seq, actor, action, payload, created_at) AS expected
                  FROM audit_log WHERE {where} AND seq >= %s ORDER BY seq""", params + [int(from_seq)])

    def max_id(self) -> int:
        return int(self.db.current().scalar("SELECT coalesce(max(id), 0) FROM audit_log"))

    def security_event_after(self, row_id: int, kinds: Sequence[str]) -> bool:
        """Whether a row newer than ``row_id`` records a security event (its action's first word
        is one of ``kinds``)."""
        return bool(self.db.current().scalar(
            "SELECT EXISTS (SELECT 1 FROM audit_log WHERE id > %s AND split_part(action, '.', 1) = ANY(%s))",
            (int(row_id), list(kinds))))


class ChainReport:
    def __init__(self, rows: int, problems: Iterable[str]) -> None:
        self.rows = rows
        self.problems = list(problems)
        self.checkpoints = 0  # signed checkpoints checked
        self.anchoring: dict[str, Any] | None = None  # against the digests outside the database

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        out = {"rows": self.rows, "ok": self.ok, "problems": self.problems, "checkpoints": self.checkpoints}
        if self.anchoring is not None:
            out["anchoring"] = self.anchoring
        return out
