"""``arrakis demo``: a demo community with members, tiers and badges, and -- on the Discord
sandbox -- the whole loop: manifest, synthesis through the queue and a worker, member roles,
a drift check.

Safe to run again: it reuses the demo community and adds only what is missing. A run that finds
everything in place makes no Discord call at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from ..errors import ArrakisError
from ..ports import Clock, DiscordGuild, moment, system_clock
from ..storage.database import Database
from ..storage.synthesis import SynthesisRepository
from ..themes import theme_of

Phase = Callable[[str, int, int], None]  # (what, done, total)

DEMO_GUILD = "990000000000000042"  # a guild id of Discord's shape (a snowflake), in the sandbox
_EARLIER_DEMO_GUILD = "arrakis-demo"  # what data folders from before the sandbox hold
DEMO_MEMBERS = 40
_BASE_ID = 700000000000000000


@dataclass(frozen=True, kw_only=True)
class Demo:
    """Apply migrations, seed the demo community, and return a summary. ``services`` reports
    PostgreSQL and Redis reachability; ``embedded`` says whether they are the embedded ones."""

    migrator: object
    db: Database
    repos: object
    communities: object
    services: Callable[[], dict[str, str]]
    embedded: bool
    clock: Clock = system_clock
    # The Discord part (left out: the demo stops after seeding).
    discord: DiscordGuild | None = None
    manifests: object = None  # ManifestService
    synthesis: object = None  # SynthesisService
    drift: Callable | None = None  # community_id -> DriftReport (and remembered for the fleet)
    checked_drift: Callable[[], dict] | None = None
    drain: Callable | None = None  # (after_job=...) -> None: run the queued work to the end
    discord_stats: Callable[[], dict] | None = None  # the sandbox's own counts

    def run(self, *, now: datetime | None = None, progress: Phase | None = None) -> dict:
        summary = _run_demo(self, now or moment(self.clock))
        summary["discord"] = self._discord_loop(summary["community_id"], progress or (lambda *a: None))
        with self.db.platform():  # last, so it covers what the Discord part recorded too
            summary["audit_chain"] = self.repos.audit.verify_chain(summary["community_id"]).as_dict()
        return summary

    def _discord_loop(self, community_id: str, progress: Phase) -> dict:
        """Manifest -> synthesis on the queue -> member roles -> drift check, on the sandbox."""
        if self.discord is None or not getattr(self.discord, "is_sandbox", False):
            return {"where": "skipped", "note": "the demo only builds a guild in the local Discord sandbox: "
                                                "unset DISCORD_API_BASE and DISCORD_BOT_TOKEN to see it"}
        with self.db.tenant(community_id):
            members = [p.discord_id for p in self.repos.profiles.all()]
            guild_id = self.repos.communities.current().guild_id
        self.discord.add_guild(guild_id, name="Arrakis Demo", members=members)
        before_calls, before = self.discord.calls, self.discord_stats()
        out: dict = {"where": "sandbox", "guild_id": guild_id}
        manifest, _new = self.manifests.publish(community_id, actor="demo")  # a new version only if it changed
        out["manifest_version"] = manifest.version
        changed = False
        if not self.synthesis.status(community_id).synthesized:
            changed = True
            planned = self.synthesis.synthesize(community_id, dry_run=True)
            self.synthesis.synthesize(community_id, queued=True, actor="demo")
            total = len(planned.get("created", [])) + len(planned.get("overwrites_set", [])) or 1
            start = self.discord.calls
            self.drain(after_job=lambda job: progress("synthesis", min(self.discord.calls - start, total), total))
            progress("synthesis", total, total)
        if not self.synthesis.status(community_id).synthesized:
            raise ArrakisError("the demo guild's synthesis did not finish",
                               hint="`arrakis dlq list` shows what failed; run `arrakis demo` again to retry")
        sync = self.synthesis.sync_members(community_id, queued=True, actor="demo")
        out["member_updates"] = sync.changes
        if sync.status == "paused":  # a mass strip waits for an operator, as anywhere else
            out["member_sync"] = f"paused: approval {sync.approval} is waiting"
        elif sync.changes:
            changed = True
            total, done = sync.changes, [0]

            def member_done(job) -> None:
                if job.meta.get("waiting"):  # put back for when the guild's member bucket frees up
                    return
                done[0] += 1
                progress("member roles", min(done[0], total), total)

            self.drain(after_job=member_done)
        last = self.checked_drift().get(str(community_id))
        if changed or last is None:
            progress("drift check", 0, 1)
            report = self.drift(community_id)
            progress("drift check", 1, 1)
            out["drift"], out["drift_checked"] = report.status, "this run"
        else:  # nothing was changed: the last check stands, and Discord is left alone
            out["drift"], out["drift_checked"] = last["status"], "on an earlier run; nothing changed since"
        after = self.discord_stats()
        out.update(_built(self.db, self.repos, community_id))
        out["calls"] = self.discord.calls - before_calls
        out["rate_limited"] = after["rate_limited"] - before["rate_limited"]
        out["busiest_window"] = after["busiest_window"]
        return out


def _built(db: Database, repos, community_id) -> dict:
    """What the demo guild holds now, read from our own records (no Discord call)."""
    store = SynthesisRepository(db)
    with db.tenant(community_id):
        manifest = repos.manifests.latest().content
        shadow = store.latest_shadow()
        held = store.member_roles()
    resources = shadow[1] if shadow else {}
    names = {resources[r["id"]]: r["name"] for r in manifest["roles"] if r["id"] in resources}
    by_role: dict[str, int] = {}
    for roles in held.values():
        for rid in roles:
            if rid in names:
                by_role[names[rid]] = by_role.get(names[rid], 0) + 1
    return {"roles": [r["name"] for r in manifest["roles"]],
            "categories": [c["name"] for c in manifest["categories"]],
            "channels": [c["name"] for c in manifest["channels"]],
            "members_with_roles": sum(1 for roles in held.values() if set(roles) & set(names)),
            "members_by_role": dict(sorted(by_role.items()))}


def _in_theme_order(counts: dict, tier_names) -> dict:
    """Members per tier, best tier first as the theme orders them, then any the theme does not
    name, then those with no tier ("none")."""
    order = {name: i for i, name in enumerate(tier_names)}
    ranked = sorted(counts.items(), key=lambda kv: (kv[0] is None, order.get(kv[0], len(order)), kv[0] or ""))
    return {name or "none": n for name, n in ranked}


def _run_demo(demo: Demo, now: datetime) -> dict:
    demo.migrator.upgrade()
    with demo.db.platform():
        community = (demo.repos.communities.by_guild(DEMO_GUILD)
                     or demo.repos.communities.by_guild(_EARLIER_DEMO_GUILD))
    created = community is None
    if created:
        community = demo.communities.create(name="Arrakis Demo", guild_id=DEMO_GUILD, theme_id="basic",
                                              subscription="free", actor="demo")
    theme = theme_of(community)
    repos = demo.repos
    added = 0
    with demo.db.tenant(community.id):
        members = []
        for i in range(1, DEMO_MEMBERS + 1):
            discord_id = str(_BASE_ID + i)
            profile = repos.profiles.by_discord_id(discord_id)
            if profile is None:
                profile = repos.profiles.create(
                    discord_id=discord_id, wallet_address=f"0x{i:040x}", rank=i * 3,
                    tier=theme.tier_for_rank(i * 3), joined_at=now - timedelta(days=4 * i))
                repos.wallets.link(profile.id, profile.wallet_address, source="import")
                if profile.tier:
                    repos.tier_history.record(profile.id, from_tier=None, to_tier=profile.tier, rank=profile.rank,
                                              reason="demo")
                added += 1
            members.append(profile)
        founder = members[0]
        awarded = 0
        for p in members:
            if now - p.joined_at >= timedelta(days=30) and repos.badges.active(p.id, "early_adopter") is None:
                repos.badges.award(p.id, "early_adopter", awarded_at=p.joined_at + timedelta(days=30))
                awarded += 1
        # A short chain of contributor awards, to show lineage.
        for giver, receiver in zip(members[:3], members[1:4]):
            if repos.badges.active(receiver.id, "contributor") is None:
                if giver is not founder and repos.badges.active(giver.id, "contributor") is None:
                    continue
                repos.badges.award(receiver.id, "contributor", awarded_by=giver.id)
                awarded += 1
        if added or awarded:  # a re-run that changes nothing leaves the audit log as it was
            repos.audit.append("demo", "demo.seeded", {"members_added": added, "badges_awarded": awarded})
        lineage = repos.badges.lineage(members[3].id, "contributor")
        summary = {
            "community": community.name,
            "community_id": str(community.id),
            "created": created,
            "members": repos.profiles.count(),
            "members_added": added,
            "tiers": _in_theme_order(repos.profiles.count_by_tier(), theme.tier_names),
            "badges": dict(sorted(repos.badges.count_by_type().items())),
            "contributor_lineage_depth": len(lineage),
        }
    summary["stack"] = "embedded" if demo.embedded else "configured servers"
    summary["health"] = demo.services()
    return summary
