"""What a community's members and admins ask of it from Discord: where a member stands, the
leaderboard, the badges, the community's status, an export, admin-awarded badges.

The bot calls these with a guild id and Discord user ids; they know nothing of Discord's UI.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import Conflict, NotFound, PermissionDenied, ValidationError
from ..ports import MemberSyncGuard, UnknownMembersStore
from ..storage.database import Database
from ..storage.models import Community
from ..storage.operator_views import OperatorViewsRepository
from ..storage.synthesis import SynthesisRepository
from ..themes import theme_of
from ..domain.validation import check_discord_id

if TYPE_CHECKING:
    from .eligibility_sync import SyncDiff
    from .operations import Operations
    from ..policy.approvals import ApprovalService
    from ..security.mfa import MfaService
    from ..security.operators import OperatorService
    from ..storage.repos import Repositories
    from ..synthesis.results import MemberSyncResult
    from ..synthesis.reconcile import Reconciler

NOT_SET_UP = "this server is not set up with Arrakis yet: an admin runs /onboard"


@dataclass(frozen=True)
class BadgeView:
    id: str
    name: str
    description: str
    held: bool
    awarded_at: datetime | None = None


@dataclass(frozen=True)
class MemberView:
    community: str
    discord_id: str
    tier: str | None
    rank: int | None
    unknown: bool  # the last read of this member's holdings failed: their standing is not known
    wallets: list[str]
    badges: list[BadgeView]
    joined_at: datetime
    last_refresh: datetime | None  # the community's last eligibility sync, which read this member too
    member_title: str
    missing: list[str] = field(default_factory=list)  # what the gating rule still asks ("needs 120 more BGT")


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    discord_id: str
    tier: str | None


@dataclass(frozen=True)
class Leaderboard:
    title: str
    rows: list[LeaderboardRow]
    members: int


@dataclass
class CommunityStatus:
    name: str
    theme: str
    members: int
    last_sync: datetime | None
    last_synthesis: datetime | None
    drift: str
    approvals: int
    frozen: bool
    discord: str  # "Discord" or "the local Discord sandbox"
    tiers: dict[str, int] = field(default_factory=dict)
    unknown_members: int = 0


def _badge_views(theme, held: dict) -> list[BadgeView]:
    """The theme's badges, each marked held (with when) from ``held``: badge type -> Badge."""
    return [BadgeView(b.id, b.name, b.description, b.id in held, held[b.id].awarded_at if b.id in held else None)
            for b in theme.badges]


REFRESH_EVERY = 300  # a member may ask for a refresh once in 5 minutes
SYNC_LOCK_SECONDS = 600


@dataclass(frozen=True)
class SyncReport:
    summary: str          # the eligibility sync, in one line
    role_updates: int     # member role updates queued (one PATCH each)
    paused: MemberSyncResult | None  # a mass strip waiting for approval, if the role sync paused
    unknown: int          # members whose holdings could not be read (left as they were)


class MemberDesk:
    def __init__(self, db: Database, repos: Repositories, operations: Operations, unknown: UnknownMembersStore, *,
                 sandbox: bool, guards: MemberSyncGuard | None = None,
                 resync: Callable[..., tuple[SyncDiff, MemberSyncResult]] | None = None, reconciler: Reconciler | None = None,
                 approvals: ApprovalService | None = None, mfa: MfaService | None = None,
                 operators: OperatorService | None = None) -> None:
        """``operations``: the operators' read models (fleet, community detail), shared here;
        ``unknown``: who the last sync could not read; the rest run syncs, reconciles and
        approvals for admins (each may be None where a caller only reads)."""
        self.db, self.repos, self.operations, self.unknown = db, repos, operations, unknown
        self.sandbox = sandbox
        self.guards, self.resync = guards, resync  # resync: LiveRoleSync.resync, the one path to roles
        self.reconciler, self.approvals, self.mfa, self.operators = reconciler, approvals, mfa, operators

    def community(self, guild_id: str) -> Community:
        with self.db.platform():
            c = self.repos.communities.by_guild(str(guild_id))
        if c is None:
            raise NotFound(NOT_SET_UP)
        return c

    # --- a member ---------------------------------------------------------------------------

    def profile(self, guild_id: str, discord_id: str) -> MemberView:
        check_discord_id(discord_id)
        c = self.community(guild_id)
        theme = theme_of(c)
        with self.db.tenant(c.id):
            p = self.repos.profiles.by_discord_id(discord_id)
            if p is None:
                raise NotFound("not a member of this community yet: /verify links a wallet")
            wallets = [w.wallet_address for w in self.repos.wallets.for_profile(p.id)]
            held = {b.badge_type: b for b in self.repos.badges.for_profile(p.id)}
            last_sync = OperatorViewsRepository(self.db).last_eligibility_sync()
        badges = _badge_views(theme, held)
        gate = (p.metadata or {}).get("gate") or {}
        return MemberView(c.name, discord_id, p.tier, p.rank, discord_id in set(self.unknown.of(c.id)), wallets,
                          badges, p.joined_at, last_sync["created_at"] if last_sync else None,
                          theme.naming.member_title, list(gate.get("missing", [])))

    def badges(self, guild_id: str, discord_id: str) -> list[BadgeView]:
        """The theme's badges, each marked held or not for this member (all unheld for a
        non-member)."""
        c = self.community(guild_id)
        with self.db.tenant(c.id):
            p = self.repos.profiles.by_discord_id(discord_id)
            held = {b.badge_type: b for b in self.repos.badges.for_profile(p.id)} if p else {}
        return _badge_views(theme_of(c), held)

    # --- the community ------------------------------------------------------------------------

    def leaderboard(self, guild_id: str, limit: int = 10) -> Leaderboard:
        if not 1 <= int(limit) <= 25:
            raise ValidationError("the leaderboard shows 1 to 25 members", field="limit")
        c = self.community(guild_id)
        theme = theme_of(c)
        with self.db.tenant(c.id):
            top = self.repos.profiles.top_by_rank(int(limit))
            members = self.repos.profiles.count()
        title = "The census" if theme.id == "sietch" else "Leaderboard"
        return Leaderboard(f"{title} of {theme.naming.community_name(c.name)}",
                           [LeaderboardRow(p.rank, p.discord_id, p.tier) for p in top if p.rank is not None], members)

    def status(self, guild_id: str) -> CommunityStatus:
        c = self.community(guild_id)
        entry = next(iter(self.operations.fleet(only=c.id)), None)  # its own line, not the whole fleet
        detail = self.operations.community(c.id)
        return CommunityStatus(
            c.name, c.theme_id, detail.members, entry.last_sync if entry else None,
            entry.last_synthesis if entry else None, entry.drift if entry else "unknown",
            entry.approvals if entry else 0, entry.frozen if entry else False,
            "the local Discord sandbox" if self.sandbox else "Discord",
            {t.tier: t.members for t in detail.tiers}, detail.unknown_members)

    def export_csv(self, guild_id: str) -> tuple[str, bytes]:
        """Every member: Discord id, tier, rank, wallets, active badges. Returns (file name, bytes)."""
        c = self.community(guild_id)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["discord_id", "tier", "rank", "wallets", "badges", "joined_at"])
        with self.db.tenant(c.id):
            profiles = sorted(self.repos.profiles.all(), key=lambda p: (p.rank is None, p.rank or 0, p.discord_id))
            for p in profiles:
                wallets = ";".join(x.wallet_address for x in self.repos.wallets.for_profile(p.id))
                badges = ";".join(sorted(b.badge_type for b in self.repos.badges.for_profile(p.id)))
                w.writerow([p.discord_id, p.tier or "", "" if p.rank is None else p.rank, wallets, badges,
                            p.joined_at.isoformat()])
        safe = "".join(ch if ch.isalnum() else "-" for ch in c.name.lower()).strip("-") or "community"
        return f"{safe}-members.csv", out.getvalue().encode()

    # --- admin-awarded badges -----------------------------------------------------------------

    def _manual_badge(self, c: Community, badge_id: str):
        spec = next((b for b in theme_of(c).badges if b.id == badge_id), None)
        if spec is None:
            raise ValidationError(f"this community's theme has no badge '{badge_id}'", field="badge")
        if spec.kind != "manual":
            raise ValidationError(f"{spec.name} is earned, not awarded: Arrakis gives it by its rule", field="badge")
        return spec

    def manual_badges(self, guild_id: str) -> list[tuple[str, str]]:
        """The badges an admin may award in this community: (id, name)."""
        c = self.community(guild_id)
        return [(b.id, b.name) for b in theme_of(c).badges if b.kind == "manual"]

    def award(self, guild_id: str, discord_id: str, badge_id: str, *, actor: str) -> str:
        check_discord_id(discord_id)
        c = self.community(guild_id)
        spec = self._manual_badge(c, badge_id)
        with self.db.tenant(c.id):
            p = self.repos.profiles.by_discord_id(discord_id)
            if p is None:
                raise NotFound(f"member {discord_id} is not a member of this community yet")
            self.repos.profiles.lock(p.id)
            if self.repos.badges.active(p.id, badge_id) is not None:
                raise ValidationError(f"they already hold {spec.name}", field="member")
            self.repos.badges.award(p.id, badge_id)
            self.repos.audit.append(actor, "badge.awarded", {"badge": badge_id, "to": discord_id})
        return spec.name

    def revoke(self, guild_id: str, discord_id: str, badge_id: str, *, actor: str, reason: str = "") -> str:
        check_discord_id(discord_id)
        c = self.community(guild_id)
        spec = self._manual_badge(c, badge_id)
        reason = " ".join(reason.split())[:200] or "revoked by an admin"
        with self.db.tenant(c.id):
            p = self.repos.profiles.by_discord_id(discord_id)
            badge = self.repos.badges.active(p.id, badge_id) if p else None
            if badge is None:
                raise NotFound(f"member {discord_id} does not hold {spec.name}")
            self.repos.badges.revoke(badge.id, reason=reason)
            self.repos.audit.append(actor, "badge.revoked", {"badge": badge_id, "holder": discord_id,
                                                             "reason": reason})
        return spec.name


    # --- syncing ------------------------------------------------------------------------------

    def sync_now(self, guild_id: str, *, actor: str) -> SyncReport:
        """Read every member's holdings, re-rank, and queue one role update per member whose
        roles change (a mass strip pauses for approval). One sync per community at a time."""
        c = self.community(guild_id)
        with self.guards.sync_lock(c.id, seconds=SYNC_LOCK_SECONDS) as held:
            if not held:
                raise Conflict("a sync of this community is running now; its result will show in /arrakis status")
            diff, roles = self.resync(c.id, actor=actor)
        paused = roles if roles.status == "paused" else None
        return SyncReport(diff.summary(), roles.changes, paused, len(diff.unknown))

    def refresh(self, guild_id: str, discord_id: str, roles: Sequence[str] | None = None) -> SyncReport:
        """A member's "refresh now": the community's standings are re-read (ranks depend on
        everyone's holdings) and only changed roles are updated; once per member in 5 minutes.
        ``roles``: the member's role ids as Discord gave them in the command itself, kept as
        Discord's last answer (a gating rule's discord_role reads it; no Discord call)."""
        check_discord_id(discord_id)
        c = self.community(guild_id)
        with self.db.tenant(c.id):
            p = self.repos.profiles.by_discord_id(discord_id)
            linked = bool(p and self.repos.wallets.for_profile(p.id))
            if p is not None and roles is not None:
                SynthesisRepository(self.db).save_member_roles(discord_id, [str(r) for r in roles if str(r).isdigit() and len(str(r)) <= 20])
        if not linked:
            raise NotFound("you have no linked wallet here yet: /verify links one")
        wait = self.guards.start_refresh(c.id, discord_id, every=REFRESH_EVERY)
        if wait is not None:
            raise Conflict(f"you refreshed a moment ago; try again in {wait // 60} min {wait % 60} s")
        try:
            return self.sync_now(guild_id, actor=f"discord:{discord_id}")
        except Exception:
            self.guards.forget_refresh(c.id, discord_id)  # a refresh that did not happen does not count
            raise

    def unlink(self, guild_id: str, discord_id: str, wallet: str | None = None) -> str:
        """Unlink one of the member's wallets (the only one, or the one named: a member with several
        must name it). Their roles follow at the next sync, where a member without a wallet holds
        no tier. When the primary wallet goes, the oldest remaining link becomes the primary."""
        check_discord_id(discord_id)
        c = self.community(guild_id)
        with self.db.tenant(c.id):
            p = self.repos.profiles.by_discord_id(discord_id)
            links = self.repos.wallets.for_profile(p.id) if p else []
            if not links:
                raise NotFound("you have no linked wallet here")
            if wallet is None:
                if len(links) > 1:
                    raise ValidationError(f"you have {len(links)} wallets linked here; name the one to unlink "
                                          f"({', '.join(x.wallet_address for x in links)})", field="wallet")
                target = links[0].wallet_address
            else:
                target = next((x.wallet_address for x in links if x.wallet_address.lower() == wallet.lower()), None)
                if target is None:
                    raise NotFound("that wallet is not linked to you here")
            self.repos.wallets.unlink(target)
            if p.wallet_address == target:
                rest = [x.wallet_address for x in links if x.wallet_address != target]
                self.repos.profiles.set_wallet(p.id, rest[0] if rest else None)
            self.repos.audit.append(f"discord:{discord_id}", "wallet.unlinked", {"discord_id": discord_id,
                                                                                 "wallet": target})
        return target

    # --- reconcile and approvals (admins) --------------------------------------------------------

    def reconcile(self, guild_id: str, *, dry_run: bool, destructive: bool = False, discord_user_id: str = "",
                  code: str | None = None):
        """Compare plan, record and guild and fix what drifted. Deleting orphans (destructive) needs
        a platform operator linked to this Discord user, with their code."""
        c = self.community(guild_id)
        if destructive and not dry_run:
            op = self._operator(discord_user_id, "a destructive reconcile")
            self.mfa.verify(op.name, code or "", action="DELETE_ROLE")
        return self.reconciler.run(c.id, dry_run=dry_run, destructive=destructive)

    def approve_strip(self, guild_id: str, *, discord_user_id: str, code: str | None):
        """Approve the mass strip waiting here (an approver linked to this Discord user, not the
        one who ran the sync, with their code); the sync then runs on the queue."""
        c = self.community(guild_id)
        op = self._operator(discord_user_id, "approving a mass strip")
        return self.approvals.approve_strip_of(str(c.id), by=op.name, code=code)

    def _operator(self, discord_user_id: str, what: str):
        op = self.operators.by_discord(str(discord_user_id))
        if op is None:
            raise PermissionDenied(f"{what} needs a platform operator with a second factor; your Discord account "
                                   "is not linked to one (arrakis operators add NAME --discord ID)")
        return op
