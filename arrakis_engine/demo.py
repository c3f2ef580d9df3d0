"""``arrakis demo``: a demo community with members, tiers and badges on whatever stack is configured.

Safe to run again: it reuses the demo community and adds only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from .ports import Clock, moment, system_clock
from .storage.database import Database
from .themes import theme_of

DEMO_GUILD = "arrakis-demo"
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

    def run(self, *, now: datetime | None = None) -> dict:
        return _run_demo(self, now or moment(self.clock))


def _run_demo(engine: Demo, now: datetime) -> dict:
    engine.migrator.upgrade()
    with engine.db.platform():
        community = engine.repos.communities.by_guild(DEMO_GUILD)
    created = community is None
    if created:
        community = engine.communities.create(name="Arrakis Demo", guild_id=DEMO_GUILD, theme_id="basic",
                                              subscription="free", actor="demo")
    theme = theme_of(community)
    repos = engine.repos
    added = 0
    with engine.db.tenant(community.id):
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
        for p in members:
            if now - p.joined_at >= timedelta(days=30) and repos.badges.active(p.id, "early_adopter") is None:
                repos.badges.award(p.id, "early_adopter", awarded_at=p.joined_at + timedelta(days=30))
        # A short chain of contributor awards, to show lineage.
        for giver, receiver in zip(members[:3], members[1:4]):
            if repos.badges.active(receiver.id, "contributor") is None:
                if giver is not founder and repos.badges.active(giver.id, "contributor") is None:
                    continue
                repos.badges.award(receiver.id, "contributor", awarded_by=giver.id)
        repos.audit.append("demo", "demo.seeded", {"members_added": added})
        lineage = repos.badges.lineage(members[3].id, "contributor")
        summary = {
            "community": community.name,
            "community_id": str(community.id),
            "created": created,
            "members": repos.profiles.count(),
            "members_added": added,
            "tiers": {k or "none": v for k, v in sorted(repos.profiles.count_by_tier().items(),
                                                        key=lambda kv: (kv[0] is None, kv[0] or ""))},
            "badges": dict(sorted(repos.badges.count_by_type().items())),
            "contributor_lineage_depth": len(lineage),
        }
    with engine.db.platform():
        summary["audit_chain"] = repos.audit.verify_chain(community.id).as_dict()
    summary["stack"] = "embedded" if engine.embedded else "configured servers"
    summary["health"] = engine.services()
    return summary
