"""build_engine with a Discord port passed in (no URL): a community synthesis, member role sync
and reconcile run against it, with real PostgreSQL (as arrakis_app) and real Redis."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.errors import ConfigError
from arrakis_engine.ports import DiscordGuild
from arrakis_engine.themes import get_theme
from tests.fakes.guild_port import InMemoryGuilds


@pytest.fixture
def guilds():
    return InMemoryGuilds()


@pytest.fixture
def wired(settings, engine, guilds, clock):
    engine.redis.flushdb()
    eng = build_engine(replace(settings, discord_api_base=None, discord_bot_token=None), discord=guilds, clock=clock)
    yield eng
    eng.close()


def test_a_synthesis_runs_against_a_discord_port_given_to_build_engine(wired, guilds):
    assert isinstance(guilds, DiscordGuild) and wired.discord is guilds
    guild = str(700_000_000_000_000_000 + uuid.uuid4().int % 10**17)
    c = wired.communities.create(name="Wired", guild_id=guild, theme_id="sietch", subscription="premium", actor="t")
    ids = [str(800_000_000_000_000_000 + i) for i in range(3)]
    guilds.guild(guild, members=ids)
    with wired.db.tenant(c.id):
        for d, rank in zip(ids, (1, 8, 70)):
            p = wired.repos.profiles.create(discord_id=d)
            wired.repos.profiles.update_standing(p.id, tier=get_theme("sietch").tier_for_rank(rank), rank=rank)

    out = wired.synthesis.synthesize(c.id, queued=False)
    assert len(out["created"]) == 10 + 7 + 15 and out["calls"] == guilds.calls
    assert {r["name"] for r in guilds.roles[guild].values()} >= {"Naib", "Fedaykin", "Usul"}
    assert len(guilds.channels[guild]) == 7 + 15

    synced = wired.synthesis.sync_members(c.id, queued=False)
    naib = next(r["id"] for r in guilds.roles[guild].values() if r["name"] == "Naib")
    assert synced.changes == 3 and guilds.members[guild][ids[0]] == [naib]

    assert wired.synthesis.synthesize(c.id, queued=False)["created"] == []
    del guilds.roles[guild][naib]  # deleted by hand: reconcile brings it back
    report = wired.reconciler.run(c.id)
    assert [(a.op, a.manifest_id) for a in report.actions] == [("create", "role:naib")]
    assert "Naib" in {r["name"] for r in guilds.roles[guild].values()}


def test_the_engine_uses_the_clock_it_is_given(wired, clock, guilds):
    s = wired.wizard.start("123456789012345678", "42")
    assert s.created_at == clock()


def test_half_a_discord_configuration_says_what_to_set(settings, engine):
    eng = build_engine(replace(settings, discord_api_base=None, discord_bot_token="a-token"))
    try:
        c = eng.communities.create(name="No Discord", guild_id=str(600_000_000_000_000_000 + uuid.uuid4().int % 10**17),
                                   theme_id="basic", subscription="free", actor="t")
        with pytest.raises(ConfigError, match="DISCORD_API_BASE"):
            eng.synthesis.synthesize(c.id, queued=False)
        assert any(i.name == "discord" and "not configured" in i.detail for i in eng.operations.health().items)
    finally:
        eng.close()
