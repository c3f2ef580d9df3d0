"""Member role sync: one PATCH per member with the full role list.

Desired roles come from the latest manifest; the managed roles are the manifest's roles as
recorded in the shadow state. A member's other roles (given by admins or other bots) are kept:
the new list is (their current roles - our managed roles) + the roles the manifest gives them.
Current roles are what Discord answered to our last PATCH (or read) for that member; members not
seen yet are read from a listing of the guild, 1,000 a call.

One decision, one delivery: each new role list decided for a member is a numbered decision
(``member_role_decisions``); the update queued for it carries that number. When it runs, an
update that a later decision superseded is dropped (not sent), one older than what Discord last
got is never sent, and deliveries to one member go out one at a time (the member's row is locked
around the PATCH). A member whose latest decision is still on its way is not planned again: the
same list is no new change, and the mass-strip check counts only new changes.

Members whose eligibility is unknown are skipped. If the change would leave more than
``max_strip_share`` of the members holding a tier role with none (default 10 %; moving between
tiers is no strip), nothing is sent: an
approval request is opened instead (the approvals of ``policy/approvals.py``: an approver who did
not run the sync, with their code), since a sudden mass strip is more often a bad read than a
market crash. The first sync after the approval goes ahead and uses it up.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

from ..errors import DiscordError, ValidationError
from ..metrics import NULL_METRICS, Metrics
from ..ports import DiscordGuild
from ..storage.database import Database
from ..storage.synthesis import SynthesisRepository
from . import planning
from .planning import MemberChange, MemberPlan  # noqa: F401 (part of this use case's answers)
from .results import MemberSyncResult

if TYPE_CHECKING:
    from ..storage.repos import Repositories


class StripApprovals(Protocol):
    """Where mass strips wait for a person (``ApprovalService``)."""

    def request_strip(self, community_id: str, *, strips: int, tier_holders: int, members: list[str],
                      requested_by: str):
        """The pending request of this community, or a new one (has ``id``)."""
        ...

    def take_approved_strip(self, community_id: str):
        """An approved, unused request of this community, now used; or None."""
        ...


class MemberRoleSync:
    LIST_FROM = 3  # unseen members from which one listing call is tried before reading each

    def __init__(self, db: Database, repos: Repositories, discord: DiscordGuild, approvals: StripApprovals, *,
                 max_strip_share: float = 0.10, metrics: Metrics = NULL_METRICS) -> None:
        self.metrics = metrics
        self.db = db
        self.repos = repos
        self.discord = discord
        self.approvals = approvals
        self.store = SynthesisRepository(db)
        self.max_strip_share = max_strip_share
        self._no_listing: set[str] = set()  # guilds whose members this bot may not list (403)

    def plan(self, community_id: uuid.UUID | str, *, skip: Iterable[str] = (), with_pending: bool = True,
             only: Iterable[str] | None = None) -> MemberPlan:
        """Read the manifest, the shadow state and members' current roles (asking Discord for
        those we have not seen yet), then let :func:`planning.plan_member_roles` decide.
        ``with_pending=False``: compare with Discord's last answers only (a dry run's view).
        ``only``: plan just these members (a live step: those whose standing moved), not all."""
        skip = set(skip)
        only = None if only is None else set(only)
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            manifest = self.repos.manifests.latest()
            shadow = self.store.latest_shadow()
            current, pending = self.store.member_roles_and_pending(None if only is None else sorted(only))
            if not with_pending:
                pending = {}
        if manifest is None or shadow is None:
            raise ValidationError("synthesize the community before syncing member roles", field="manifest")
        unseen = [d for d in planning.members_in_scope(manifest.content, current, only)
                  if d not in skip and d not in current]
        found = self._read_members(community, unseen)
        if found:
            with self.db.tenant(community_id):
                for discord_id, roles in found.items():
                    self.store.save_member_roles(discord_id, roles)
            current.update(found)
        plan = planning.plan_member_roles(manifest.content, shadow[1], current, community.guild_id, skip=skip,
                                          pending={d: roles for d, (_, roles) in pending.items()}, only=only)
        plan.pending_seqs = {d: pending[d][0] for d in plan.pending}
        return plan

    def _read_members(self, community, unseen: list[str]) -> dict[str, list[str]]:
        """The roles of members we have not seen yet, as Discord has them now; members who are
        not in the guild are left out.

        Discord lists members 1,000 a call in user-id order, so reading many members costs a
        page per 1,000 instead of a call each (a first sync of 100,000 members: 100 calls, not
        100,000 at the member route's 10 per 10 s). The listing starts at the lowest unseen id,
        and never costs more calls than reading each member would: past that many pages, the
        rest are read one by one. A bot that may not list members (Discord's GUILD_MEMBERS
        intent off: 403) reads them one by one as well."""
        if not unseen:
            return {}
        guild, cid = community.guild_id, community.id
        wanted = set(unseen)
        found: dict[str, list[str]] = {}
        if len(unseen) >= self.LIST_FROM and guild not in self._no_listing:
            order = sorted(wanted, key=int)
            last, after, pages = int(order[-1]), int(order[0]) - 1, 0
            try:
                while after < last and pages < len(unseen):
                    page = self.discord.list_members(guild, after=str(after), limit=1000, community_id=cid)
                    pages += 1
                    for member in page:
                        uid = str(member["user"]["id"])
                        if uid in wanted:
                            found[uid] = list(member.get("roles", []))
                    if len(page) < 1000:  # the end of the guild: whoever was not listed is not in it
                        return found
                    after = int(page[-1]["user"]["id"])
                if after >= last:
                    return found
            except DiscordError as exc:
                if exc.status != 403:
                    raise
                self._no_listing.add(guild)  # read one by one from now on (this process)
            unseen = [d for d in unseen if d not in found and int(d) > after] if pages else unseen
        for discord_id in unseen:
            try:
                found[discord_id] = self.discord.get_member(guild, discord_id, community_id=cid)["roles"]
            except DiscordError as exc:
                if exc.status == 404:
                    continue  # not in the guild (left, or never joined): nothing to do
                raise
        return found

    def decide(self, community_id, plan: MemberPlan, *, actor: str,
               mined_at: float | None = None) -> list[tuple[str, list[str], int]]:
        """Record the plan's changes as new decisions; returns (member, roles, decision number)
        for every update to deliver: the new ones, and those still on their way (to queue again
        if their job was lost; the queue keeps one job per decision). ``mined_at``: when the
        block that caused them was mined (the live watcher's decisions; stored with them, so the
        worker that sends one measures block mined -> role call)."""
        with self.db.tenant(community_id):
            seqs = self.store.decide([(c.discord_id, c.roles) for c in plan.changes], actor=actor, mined_at=mined_at)
            pending = self.store.pending_decisions() if plan.pending else {}
        out = [(c.discord_id, c.roles, seqs[c.discord_id]) for c in plan.changes]
        out += [(d, pending[d][1], pending[d][0]) for d in plan.pending if d in pending]
        return out

    def deliver(self, community_id, guild_id: str, discord_id: str, roles: list[str], seq: int | None, *,
                patience: float | None = None) -> dict:
        """Send one decision, unless a later one superseded it or Discord already has it (or a
        newer one). Returns ``{"status": "sent" | "superseded" | "already", "roles": [...]}``.
        ``patience``: the longest to wait for the guild's member bucket; past it RouteBusy is
        raised and nothing is sent or recorded (a worker then serves other work meanwhile)."""
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            if str(guild_id) != community.guild_id:  # a job written into Redis by hand, or gone astray
                raise DiscordError(f"this update names server {str(guild_id)[:20]}, not the community's own; "
                                   "nothing was sent", retryable=False)
            held = self.store.lock_member(discord_id)
            latest = self.store.latest_decision(discord_id)
            applied = held[1] if held else 0
            if not isinstance(seq, int) or isinstance(seq, bool):  # every update Arrakis queues names its decision
                raise DiscordError(f"this update for member {str(discord_id)[:20]} names no decision, so its roles "
                                   "are nobody's; nothing was sent (`arrakis members sync` decides again)",
                                   retryable=False)
            if latest is not None and seq < latest[0]:
                return {"status": "superseded", "roles": held[0] if held else []}
            elif seq <= applied:
                return {"status": "already", "roles": held[0] if held else []}
            elif latest is None or seq > latest[0]:  # no such decision was ever made
                raise DiscordError(f"this update carries decision {seq} for member {discord_id}, which was never "
                                   "made; nothing was sent", retryable=False)
            else:
                roles = list(latest[1])  # what was decided is sent, whatever the job's copy says
            if held is not None and sorted(set(held[0])) == sorted(set(roles)):
                self.store.mark_applied(discord_id, roles, seq)  # Discord has it already: no call
                return {"status": "already", "roles": sorted(set(roles))}
            try:
                member = self.discord.set_member_roles(guild_id, discord_id, roles, community_id=community_id,
                                                       patience=patience)
            except DiscordError as exc:
                if exc.status == 404:
                    gone = exc
                else:
                    raise
            else:
                answered = member.get("roles", roles)
                self.store.mark_applied(discord_id, answered, seq)
                if latest is not None and latest[0] == seq:
                    self.metrics.live_sync(latest[2])  # a live decision: block mined -> this role call
                return {"status": "sent", "roles": answered}
        # not in the guild (left): forgotten, so it is not planned again until seen; the update
        # fails for good (dead-lettered, not retried)
        with self.db.tenant(community_id):
            self.store.forget_member(discord_id)
        raise gone

    def needs_approval(self, plan: MemberPlan) -> bool:
        return planning.needs_approval(plan, self.max_strip_share)

    def gate(self, community_id, plan: MemberPlan, *, actor: str) -> MemberSyncResult | None:
        """The mass-strip guard, before anything is sent: a plan that strips too many goes ahead
        only with an approved request (used up here); otherwise one is opened (or the one pending
        is kept) and the summary of the pause is returned."""
        if not self.needs_approval(plan):
            return None
        cid = str(community_id)
        approved = self.approvals.take_approved_strip(cid)
        if approved is not None:
            with self.db.tenant(community_id):
                self.repos.audit.append(actor, "member_sync.approved", {"approval": approved.id,
                                                                        "approved_by": approved.decided_by,
                                                                        "strips": plan.strips})
            return None
        request = self.approvals.request_strip(
            cid, strips=plan.strips, tier_holders=plan.tier_holders, requested_by=actor,
            members=[c.discord_id for c in plan.changes if c.strips_tier])
        with self.db.tenant(community_id):
            self.repos.audit.append(actor, "member_sync.paused", {"approval": request.id, "strips": plan.strips,
                                                                  "tier_holders": plan.tier_holders})
        return MemberSyncResult("paused", approval=request.id, changes=len(plan.changes), strips=plan.strips,
                                tier_holders=plan.tier_holders)

    def run(self, community_id, *, skip: Iterable[str] = (), actor: str = "sync",
            progress: Callable[[int, int], None] | None = None) -> MemberSyncResult:
        """Plan and send now (without the queue). Returns a summary."""
        plan = self.plan(community_id, skip=skip)
        paused = self.gate(community_id, plan, actor=actor)
        if paused:
            return paused
        updates = self.decide(community_id, plan, actor=actor)
        for i, (discord_id, roles, seq) in enumerate(updates, start=1):
            self.deliver(community_id, plan.guild_id, discord_id, roles, seq)
            if progress:
                progress(i, len(updates))
        return MemberSyncResult("done", changes=len(plan.changes), strips=plan.strips,
                                skipped_unknown=len(plan.skipped_unknown))
