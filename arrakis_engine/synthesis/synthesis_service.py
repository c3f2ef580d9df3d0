"""Use cases that tie manifests, synthesis, member sync and the queue together."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from .. import keys
from ..ports import JobQueue, UnknownMembersStore
from ..storage.database import Database
from ..storage.synthesis import SynthesisRepository
from .community import CommunitySynthesizer
from .member_roles import MemberRoleSync
from .results import MemberSyncResult

if TYPE_CHECKING:
    from ..manifests.manifest_service import ManifestService
    from ..storage.repos import Repositories


@dataclass(frozen=True)
class SynthesisStatus:
    """The latest plan version of a community and how far its synthesis got."""

    manifest_version: int | None  # the latest published version (None: none yet)
    shadow_version: int | None  # the version the last synthesis worked on (None: never synthesized)
    shadow_status: str | None  # that synthesis: "applying" or "applied"
    synthesized: bool  # the latest version is applied

    def as_dict(self) -> dict:
        return asdict(self)


class SynthesisService:
    def __init__(self, db: Database, repos: Repositories, manifests: ManifestService, synthesizer: CommunitySynthesizer,
                 member_sync: MemberRoleSync, queue: JobQueue, unknown: UnknownMembersStore) -> None:
        self.db = db
        self.repos = repos
        self.manifests = manifests
        self.synthesizer = synthesizer
        self.member_sync = member_sync
        self.queue = queue
        self.unknown = unknown

    def synthesize(self, community_id: uuid.UUID | str, *, dry_run: bool = False, queued: bool = True,
                   actor: str = "cli", progress: Callable[[int, int], None] | None = None) -> dict:
        """Publish the manifest (a new version only if it changed), then synthesize it: on the queue,
        or right here (``progress(done, planned)`` after each step). A dry run publishes nothing
        and changes nothing."""
        if dry_run:
            with self.db.tenant(community_id):
                self.repos.communities.current()  # NotFound "no community ..."
                has_manifest = self.repos.manifests.latest() is not None
            if not has_manifest:
                return {"dry_run": True, "manifest": None, "note": "no manifest yet: synthesis would create everything"}
            return self.synthesizer.apply(community_id, dry_run=True).as_dict()
        manifest, new = self.manifests.publish(community_id, actor=actor)
        if not queued:
            return {"manifest_version": manifest.version, "new_version": new,
                    **self.synthesizer.apply(community_id, version=manifest.version, progress=progress).as_dict()}
        job = self.queue_synthesis(community_id, manifest.version)
        return {"manifest_version": manifest.version, "new_version": new, "job_id": job.id,
                "status": _status_word(job.get_status(refresh=True))}

    def queue_synthesis(self, community_id: uuid.UUID | str, version: int):
        """Queue the synthesis of a published manifest version (once per version); returns its job."""
        return self.queue.enqueue("SYNTHESIZE_COMMUNITY", community_id, {"version": version, "part": 0},
                                  key=keys.synthesis_slice(community_id, version, 0), first_contact=True)

    def status(self, community_id: uuid.UUID | str) -> SynthesisStatus:
        """The latest manifest version and how far its synthesis got (applying / applied)."""
        with self.db.tenant(community_id):
            latest = self.repos.manifests.latest()
            shadow = SynthesisRepository(self.db).latest_shadow()
        return SynthesisStatus(
            manifest_version=latest.version if latest else None, shadow_version=shadow[0] if shadow else None,
            shadow_status=shadow[2] if shadow else None,
            synthesized=bool(latest and shadow and shadow[0] == latest.version and shadow[2] == "applied"))

    def sync_members(self, community_id: uuid.UUID | str, *, skip: Iterable[str] = (),
                     queued: bool = True, actor: str = "cli",
                     progress: Callable[[int, int], None] | None = None, first_contact: bool = False,
                     dry_run: bool = False, mined_at: float | None = None, only: Iterable[str] | None = None) -> MemberSyncResult:
        """One PATCH per member whose roles should change; unknown members skipped (those given, and
        those the last eligibility sync could not read); a mass strip waits for approval.
        ``first_contact``: the updates go in the shared lane every worker serves first (live
        changes do not wait behind a bulk synthesis). ``mined_at``: when the block that caused
        this sync was mined (the live watcher's; its decisions carry it so that their role calls
        are measured as live sync latency). ``only``: plan just these members (a live step:
        those whose standing moved; a plan that strips anyone is made for everyone, so the
        mass-strip guard weighs it against every tier holder)."""
        skip = set(skip) | set(self.unknown.of(community_id))
        if dry_run:  # what Discord's roles still lack, from its last answers; nothing decided or sent
            plan = self.member_sync.plan(community_id, skip=skip, with_pending=False)
            return MemberSyncResult("dry_run", changes=len(plan.changes), strips=plan.strips,
                                    tier_holders=plan.tier_holders, skipped_unknown=len(plan.skipped_unknown),
                                    would_pause=self.member_sync.needs_approval(plan),
                                    members=[{"discord_id": c.discord_id, "roles": c.roles, "added": c.added,
                                              "removed": c.removed,
                                              "added_names": [plan.role_names.get(r, r) for r in c.added],
                                              "removed_names": [plan.role_names.get(r, r) for r in c.removed]}
                                             for c in plan.changes])
        if not queued:
            return self.member_sync.run(community_id, skip=skip, actor=actor, progress=progress)
        sync = self.member_sync
        plan = sync.plan(community_id, skip=skip, only=only)
        if only is not None and plan.strips:
            # The mass-strip guard weighs strips against every tier holder: plan everyone.
            plan = sync.plan(community_id, skip=skip)
        paused = sync.gate(community_id, plan, actor=actor)
        if paused:
            return paused
        kinds = {c.discord_id: c.job_type for c in plan.changes}
        jobs = self.queue.enqueue_many(
            [(kinds.get(discord_id, "ASSIGN_ROLE"), community_id,
              {"guild_id": plan.guild_id, "discord_id": discord_id, "roles": roles, "seq": seq},
              keys.member_roles(community_id, discord_id, seq))
             for discord_id, roles, seq in sync.decide(community_id, plan, actor=actor, mined_at=mined_at)],
            first_contact=first_contact)
        return MemberSyncResult("queued", changes=len(plan.changes), jobs=jobs,
                                members=[c.discord_id for c in plan.changes],
                                skipped_unknown=len(plan.skipped_unknown), on_their_way=len(plan.pending))


def _status_word(status) -> str:
    """RQ's job status as a plain word ("queued", "started", ...), not its enum's repr."""
    return str(getattr(status, "value", status) or "unknown")
