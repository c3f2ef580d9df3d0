"""One known world for every console test: a database of its own (real PostgreSQL, the app
role under RLS), its own Redis database, a fake Discord guild per community, seeded through the
engine's own use cases. Ids and Discord ids are fixed so the pictures are the same every run."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

import pytest
from textual.widgets import DataTable

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.storage.outbox import RestoreRepository
from arrakis_engine.themes import get_theme
from tests.conftest import create_database, drop_database, make_settings
from tests.fakes.discord_api import FakeDiscord
from tests.fixtures.legacy_sqlite import build_legacy_db

SIZE = (120, 36)

ARRAKEEN = "00000000-0000-4000-8000-00000000a001"
CALADAN = "00000000-0000-4000-8000-00000000a002"
GIEDI = "00000000-0000-4000-8000-00000000a003"
COMMUNITIES = ((ARRAKEEN, "Arrakeen", "100000000000000001", "sietch", "premium", (1, 8, 70, 150, 999)),
               (CALADAN, "Caladan", "100000000000000002", "basic", "free", (1, 5)),
               (GIEDI, "Giedi Prime", "100000000000000003", "sietch", "enterprise", ()))


@dataclass
class World:
    engine: object
    discord: FakeDiscord
    seeded_at: float
    files: object  # folder with legacy SQLite files

    def clock(self) -> float:
        """Half a minute after seeding: every seeded time reads 'just now'."""
        return self.seeded_at + 30


@pytest.fixture(scope="session")
def world(pg_server_url, redis_url, tmp_path_factory):
    url = create_database(pg_server_url, prefix="arrakis_tui")
    discord = FakeDiscord()
    redis_db = redis_url.rsplit("/", 1)[0] + "/7" if redis_url.startswith("redis://") else redis_url
    settings = replace(make_settings(url, redis_db, tmp_path_factory.mktemp("tui")),
                       discord_api_base=discord.url, discord_bot_token=discord.token, retry_backoff=(1, 1, 1),
                       policy_profile="strict")  # the approval pictures were drawn with the strict tables
    engine = build_engine(settings)
    engine.redis.flushdb()
    engine.migrator.upgrade()
    for cid, name, guild, theme, plan, ranks in COMMUNITIES:
        with engine.db.platform():
            RestoreRepository(engine.db).insert_community(uuid.UUID(cid), {
                "name": name, "guild_id": guild, "theme_id": theme, "subscription_tier": plan})
        discord.guild(guild)
        with engine.db.tenant(cid):
            for i, rank in enumerate(ranks):
                p = engine.repos.profiles.create(discord_id=f"2{guild[-1]}{i:016d}")
                tier = get_theme(theme).tier_for_rank(rank)
                engine.repos.profiles.update_standing(p.id, tier=tier, rank=rank)
                engine.repos.tier_history.record(p.id, from_tier=None, to_tier=tier, rank=rank)
                discord.guilds[guild].members[p.discord_id] = set()
            if ranks:
                engine.repos.audit.append("sync", "eligibility.synced", {
                    "members": len(ranks), "promoted": 0, "demoted": 0, "joined": len(ranks), "left": 0,
                    "unknown": 0, "badges_earned": 1, "badges_revoked": 0, "rank_source": "native"})
        if ranks:
            engine.synthesis.synthesize(cid, queued=False, actor="seed")
    with engine.db.tenant(ARRAKEEN):
        first = engine.repos.profiles.by_discord_id("210000000000000000")
        engine.repos.badges.award(first.id, "water_sharer")
    # Arrakeen's guild drifted: the Naib role was deleted by hand, and a moderator role made by hand.
    g = discord.guilds["100000000000000001"]
    naib = next(r for r in g.roles.values() if r["name"] == "Naib")
    del g.roles[naib["id"]]
    g.roles["1200000000000000001"] = {"id": "1200000000000000001", "name": "Moderators", "color": 0,
                                      "permissions": "0", "position": 1, "managed": False}
    for cid in (ARRAKEEN, CALADAN):
        engine.operations.drift(cid)
    engine.archive.flush()
    files = tmp_path_factory.mktemp("legacy")
    build_legacy_db(files / "profiles.db", members=60)
    build_legacy_db(files / "bad.db", members=10, bad=("wallet",))
    build_legacy_db(files / "large.db", members=6000)
    yield World(engine, discord, time.time(), files)
    engine.close()
    discord.close()
    drop_database(pg_server_url, url)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def console(world, **kwargs):
    from arrakis_tui.app import ArrakisConsole

    kwargs.setdefault("health_every", None)
    kwargs.setdefault("approvals_every", None)
    return ArrakisConsole(world.engine, clock=world.clock, files_dir=world.files, **kwargs)


async def wait_for(pilot, check, what: str, timeout: float = 10.0):
    """Let the app run until ``check()`` is true (workers finish off the UI thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        value = check()
        if value:
            return value
    raise AssertionError(f"timed out waiting for {what}")


async def fleet_loaded(pilot) -> DataTable:
    table = pilot.app.screen.query_one("#fleet", DataTable)
    # every community loaded (the first page by name is painted before the rest arrives)
    await wait_for(pilot, lambda: table.row_count and not getattr(pilot.app.screen, "partial", False),
                   "the fleet to load")
    return table
