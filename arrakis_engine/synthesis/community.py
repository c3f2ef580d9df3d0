"""Community synthesis: make the guild match a manifest, step by step, resumable.

Order: categories, roles, channels (inside their categories, with their permission
overwrites), then the categories' overwrites. Before the first call the guild's caps (250 roles,
500 channels) are checked. What to do with each item -- keep, adopt or create -- is decided by
:func:`~arrakis_engine.synthesis.planning.plan_synthesis` from the shadow state and the guild;
this module carries the plan out. Every id is recorded as soon as Discord answers, so a
synthesis killed half-way resumes without creating anything twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..errors import RouteBusy, ValidationError
from ..ports import CommunityLocks, DiscordGuild
from ..storage.database import Database
from ..storage.synthesis import SynthesisRepository
from .planning import (CREATED, MAX_CHANNELS, MAX_ROLES, OVERWRITES, cap_problem, normal_overwrites,  # noqa: F401
                       overwrites_digest, overwrites_for, plan_synthesis)

if TYPE_CHECKING:
    from ..storage.repos import Repositories

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)


@dataclass
class SynthesisReport:
    manifest_version: int
    dry_run: bool = False
    created: list = field(default_factory=list)
    adopted: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    overwrites_set: list = field(default_factory=list)
    calls: int = 0
    complete: bool = True
    retry_after: float = 0.0  # when incomplete because Discord's route bucket was empty
    steps_done: int = 0
    steps_total: int = 0
    missing: list = field(default_factory=list)  # recorded, yet not in the guild when checked at the end

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def summary(self) -> str:
        verb = "would create" if self.dry_run else "created"
        return (f"manifest v{self.manifest_version}: {verb} {len(self.created)}, adopted {len(self.adopted)}, "
                f"kept {len(self.kept)}, overwrites {'to set' if self.dry_run else 'set'} on "
                f"{len(self.overwrites_set)}; {self.calls} Discord calls")


class CommunitySynthesizer:
    def __init__(self, db: Database, repos: Repositories, discord: DiscordGuild, locks: CommunityLocks) -> None:
        self.db = db
        self.repos = repos
        self.discord = discord
        self.locks = locks
        self.store = SynthesisRepository(db)

    def applied_version(self, community_id: uuid.UUID | str) -> int | None:
        """The newest manifest version whose synthesis finished in the guild (None: none yet)."""
        with self.db.tenant(community_id):
            return self.store.latest_applied_version()

    def apply(self, community_id: uuid.UUID | str, **kwargs) -> SynthesisReport:
        if kwargs.get("dry_run"):
            return self._apply(community_id, **kwargs)
        with self.locks.hold(community_id) as renew:
            return self._apply(community_id, renew=renew, **kwargs)

    def _apply(self, community_id: uuid.UUID | str, *, version: int | None = None, dry_run: bool = False,
               progress: Progress | None = None, read_guild: bool = True,
               budget: int | None = None, renew: Callable[[], None] | None = None,
               patience: float | None = None) -> SynthesisReport:
        """Make the guild match the manifest.

        ``budget`` caps the changes this call makes (creates and overwrite updates); when it runs
        out the report says ``complete=False`` and a later call carries on -- the queue runs a
        synthesis as such slices, so that many communities progress side by side.
        ``read_guild=False`` (a continuation slice) trusts the shadow state instead of reading the
        guild again; a first slice, a retry and a recovered job always read.
        """
        progress = progress or (lambda done, total: None)
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            manifest = self.repos.manifests.by_version(version) if version else self.repos.manifests.latest()
            if manifest is None:
                raise ValidationError("this community has no manifest yet; publish one first", field="manifest")
            if dry_run:
                latest = self.store.latest_shadow()
                resources = dict(latest[1]) if latest else {}
            else:
                resources = self.store.open_shadow(manifest.version)
        m, guild, cid = manifest.content, community.guild_id, community.id
        calls_before = self.discord.calls
        report = SynthesisReport(manifest.version, dry_run=dry_run)
        if read_guild:
            roles_now = {r["id"]: r for r in self.discord.list_roles(guild, community_id=cid)}
            channels_now = {c["id"]: c for c in self.discord.list_channels(guild, community_id=cid)}
        else:  # what we recorded stands for the guild
            recorded = {did for mid, did in resources.items() if not mid.startswith(CREATED)}
            roles_now = {did: {"id": did, "name": None} for did in recorded}
            channels_now = dict(roles_now)

        plan = plan_synthesis(m, resources, roles_now, channels_now)
        problem = cap_problem(plan, len(roles_now), len(channels_now)) if read_guild else None
        if problem:  # nothing is created if the result would not fit
            raise ValidationError(problem[1], field=problem[0])

        items = {x["id"]: x for x in m["categories"] + m["roles"] + m["channels"]}
        total = len(m["categories"]) * 2 + len(m["roles"]) + len(m["channels"])
        done = 0
        spent = 0

        class _OutOfBudget(Exception):
            pass

        def spend() -> None:
            nonlocal spent
            if budget is not None and spent >= budget:
                raise _OutOfBudget
            spent += 1

        def record(mid: str, did: str) -> None:
            resources[mid] = did
            if renew is not None:
                renew()
            if not dry_run:
                with self.db.tenant(community_id):
                    self.store.record(manifest.version, mid, did)

        def create(kind: str, item: dict) -> dict:
            if kind == "role":
                return self.discord.create_role(guild, name=item["name"], color=item["color"],
                                                 permissions=item["permissions"], hoist=item["hoist"],
                                                 community_id=cid, patience=patience)
            if kind == "category":
                return self.discord.create_channel(guild, name=item["name"], type="category", community_id=cid)
            return self.discord.create_channel(guild, name=item["name"], type=item["type"],
                                               parent_id=resources.get(item["parent"]), topic=item["topic"],
                                               overwrites=overwrites_for(item["overwrites"], guild, resources),
                                               community_id=cid)

        try:
            for step in plan.steps:
                if step.how == "create":
                    if not dry_run:
                        spend()
                    report.created.append(step.manifest_id)
                    if not dry_run:
                        obj = create(step.kind, items[step.manifest_id])
                        record(step.manifest_id, obj["id"])
                        record(CREATED + step.manifest_id, obj["id"])  # only what we created may ever be deleted
                else:
                    (report.kept if step.how == "keep" else report.adopted).append(step.manifest_id)
                    if step.how == "adopt":
                        record(step.manifest_id, step.discord_id)
                done += 1
                progress(done, total)
            for cat in m["categories"]:
                did = resources.get(cat["id"])
                wanted = overwrites_for(cat["overwrites"], guild, resources)
                mark = OVERWRITES + cat["id"]
                digest = overwrites_digest(wanted)
                if read_guild:
                    current = channels_now.get(did, {}).get("permission_overwrites", []) if did else []
                    differs = normal_overwrites(current) != normal_overwrites(wanted)
                else:
                    differs = resources.get(mark) != digest
                if did and differs:
                    report.overwrites_set.append(cat["id"])
                    if not dry_run:
                        spend()
                        channels_now[did] = self.discord.update_channel(did, guild_id=guild, community_id=cid,
                                                                        permission_overwrites=wanted)
                        record(mark, digest)
                elif did and read_guild and resources.get(mark) != digest and not dry_run:
                    record(mark, digest)
                elif not did:
                    report.overwrites_set.append(cat["id"])
                done += 1
                progress(done, total)
        except _OutOfBudget:
            report.complete = False
        except RouteBusy as busy:  # role creation is slow on Discord: come back when it frees up
            report.complete = False
            report.retry_after = busy.wait
            report.created.pop()
        report.steps_done, report.steps_total = done, total
        if report.complete and not read_guild and not dry_run:
            # The slices after the first trusted what was recorded; before calling the guild done,
            # look once: anything recorded that the guild does not hold (removed meanwhile, or an
            # id that was never this guild's) is forgotten and made again by the next slice.
            held = {r["id"] for r in self.discord.list_roles(guild, community_id=cid)}
            held |= {c["id"] for c in self.discord.list_channels(guild, community_id=cid)}
            missing = sorted(mid for mid, did in resources.items()
                             if not mid.startswith((CREATED, OVERWRITES)) and did not in held)
            if missing:
                log.warning("community %s: %d recorded object(s) are not in guild %s (%s); they are made again",
                            cid, len(missing), guild, ", ".join(missing[:5]))
                with self.db.tenant(community_id):
                    for mid in missing:
                        for key in (mid, CREATED + mid, OVERWRITES + mid):
                            if resources.pop(key, None) is not None:
                                self.store.record(manifest.version, key, None)
                report.complete = False
                report.missing = missing
        if not report.complete:
            report.calls = self.discord.calls - calls_before
            return report

        if not dry_run:
            with self.db.tenant(community_id):
                self.store.finish(manifest.version, "applied")
                self.repos.audit.append("synthesis", "synthesis.applied", {
                    "version": manifest.version, "created": len(report.created), "adopted": len(report.adopted)})
        report.calls = self.discord.calls - calls_before
        return report
