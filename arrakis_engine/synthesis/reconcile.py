"""Reconciliation: desired (latest manifest) vs shadow (what we recorded) vs actual (the guild).

Matching is by the Discord ids recorded in the shadow state. Missing resources are created (a
role deleted by hand comes back), drifted ones are updated (name, colour, permissions, topic,
parent, overwrites) rather than duplicated, and orphans -- resources we recorded that the
manifest no longer has -- are deleted only with ``destructive`` and only if Arrakis created
them. Anything made by hand in the guild is never touched. A dry run reports the plan and
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..errors import OperationCancelled, ValidationError
from ..ports import DiscordGuild
from ..storage.database import Database
from ..storage.synthesis import SynthesisRepository
from .community import CommunitySynthesizer
from .planning import CREATED, SEVERITY, Action, deletable, plan_reconcile  # noqa: F401 (SEVERITY, Action: used by callers)

if TYPE_CHECKING:
    from ..storage.repos import Repositories


@dataclass
class ReconcileReport:
    dry_run: bool
    destructive: bool
    actions: list[Action] = field(default_factory=list)
    skipped_deletes: list[str] = field(default_factory=list)
    calls: int = 0

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "destructive": self.destructive, "calls": self.calls,
                "actions": [a.as_dict() for a in self.actions], "skipped_deletes": self.skipped_deletes}

    def summary(self) -> str:
        counts = {op: sum(1 for a in self.actions if a.op == op) for op in ("create", "update", "delete")}
        verb = "would" if self.dry_run else "did"
        return (f"reconcile {verb}: create {counts['create']}, update {counts['update']}, delete {counts['delete']}"
                + (f"; {len(self.skipped_deletes)} orphan(s) kept (not destructive)" if self.skipped_deletes else "")
                + f"; {self.calls} Discord calls")


class Reconciler:
    def __init__(self, db: Database, repos: Repositories, discord: DiscordGuild, synthesizer: CommunitySynthesizer) -> None:
        self.db = db
        self.repos = repos
        self.discord = discord
        self.synthesizer = synthesizer
        self.store = SynthesisRepository(db)

    def plan(self, community_id) -> tuple[list[Action], list[Action], dict]:
        """(actions, orphan deletes, context): reads the manifest, the shadow state and the guild,
        and leaves the deciding to :func:`~arrakis_engine.synthesis.planning.plan_reconcile`."""
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            manifest = self.repos.manifests.latest()
            shadow = self.store.latest_shadow()
        if manifest is None or shadow is None:
            raise ValidationError("this community has not been synthesized yet", field="manifest")
        version, resources, _ = shadow
        guild, cid = community.guild_id, community.id
        roles = {r["id"]: r for r in self.discord.list_roles(guild, community_id=cid)}
        channels = {c["id"]: c for c in self.discord.list_channels(guild, community_id=cid)}
        actions, orphans = plan_reconcile(manifest.content, resources, roles, channels, guild)
        return actions, orphans, {"guild": guild, "community": cid, "version": version, "resources": resources,
                                  "manifest_version": manifest.version, "roles": roles, "channels": channels}

    def run(self, community_id, *, dry_run: bool = False, destructive: bool = False,
            progress: Callable[[int, int], None] | None = None) -> ReconcileReport:
        """``progress(done, total)`` is called before each step; raising from it (an operator
        cancelling) stops between two Discord calls. What ran is audited either way."""
        calls = self.discord.calls
        actions, orphans, ctx = self.plan(community_id)
        report = ReconcileReport(dry_run, destructive)
        deletes, report.skipped_deletes = deletable(orphans, destructive=destructive)
        report.actions = list(actions) + deletes
        if not dry_run:
            step = progress or (lambda done, total: None)
            creates = [a for a in report.actions if a.op == "create"]
            others = [a for a in report.actions if a.op != "create"]
            total, done = (1 if creates else 0) + len(others), 0
            try:
                if creates:
                    step(done, total)
                    # The synthesizer knows the order and dependencies; it creates what is missing.
                    self.synthesizer.apply(community_id, version=None)
                    done += 1
                for a in others:
                    step(done, total)
                    self.run_action(community_id, f"{a.op.upper()}_{a.kind.upper()}",
                                    {"discord_id": a.discord_id, "changes": a.changes, "manifest_id": a.manifest_id,
                                     "guild_id": ctx["guild"], "version": ctx["version"]})
                    done += 1
                step(done, total)
            except OperationCancelled:
                with self.db.tenant(community_id):
                    self.repos.audit.append("reconcile", "reconcile.cancelled", {
                        "actions": len(report.actions), "steps_done": done, "steps": total})
                raise
            with self.db.tenant(community_id):
                self.repos.audit.append("reconcile", "reconcile.applied", {
                    "actions": len(report.actions), "destructive": destructive})
        report.calls = self.discord.calls - calls
        return report

    def check_queued(self, community_id, job_type: str, payload: dict) -> None:
        """A structure change or a message taken from the queue, where anyone who can write to
        Redis can put one. Arrakis itself queues none of them: a synthesis creates, a reconcile
        runs its updates inline and its deletes only after their approval. So a queued delete or
        message is refused outright, and a queued update runs only if it is exactly one the
        community's reconcile plan asks for now (its own server, a role or channel Arrakis keeps
        for it, the changes the manifest wants) -- never, say, a role made administrator.

        Raises:
            ValidationError: the job is refused (it is dead-lettered, never retried).
        """
        op = job_type.split("_", 1)[0]
        if op in ("DELETE", "CREATE") or job_type == "SEND_MESSAGE":
            why = ("deletes run only inside an approved reconcile" if op == "DELETE" else
                   "a synthesis creates what the plan lacks" if op == "CREATE" else "it posts no message that way")
            raise ValidationError(f"a {job_type} job from the queue is refused: Arrakis queues none ({why}); "
                                  "nothing was sent", field="job_type")
        actions, _, ctx = self.plan(community_id)
        if str(payload.get("guild_id")) != ctx["guild"]:
            raise ValidationError(f"this {job_type} names server {str(payload.get('guild_id'))[:20]}, not the "
                                  "community's own; nothing was sent", field="guild_id")
        kind = job_type.split("_", 1)[1].lower()
        if not any(a.op == "update" and a.kind == kind and a.discord_id == str(payload.get("discord_id"))
                   and a.changes == payload.get("changes") for a in actions):
            raise ValidationError(f"this {job_type} is not a change the community's plan asks for (reconcile "
                                  "makes those itself); nothing was sent", field="changes")

    def run_action(self, community_id, job_type: str, payload: dict):
        """One update or delete (also the queue's job for these types)."""
        op, kind = job_type.split("_", 1)
        guild, did = payload["guild_id"], payload["discord_id"]
        if op == "UPDATE" and kind == "ROLE":
            return self.discord.update_role(guild, did, community_id=community_id, **payload["changes"])
        if op == "UPDATE":
            return self.discord.update_channel(did, guild_id=guild, community_id=community_id, **payload["changes"])
        if op == "DELETE":
            if kind == "ROLE":
                self.discord.delete_role(guild, did, community_id=community_id)
            else:
                self.discord.delete_channel(did, guild_id=guild, community_id=community_id)
            with self.db.tenant(community_id):
                self.store.record(payload["version"], payload["manifest_id"], None)
                self.store.record(payload["version"], CREATED + payload["manifest_id"], None)
            return None
        raise ValidationError(f"{job_type} is done by a synthesis, not a single action", field="job_type")
