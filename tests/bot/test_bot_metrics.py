"""The bot's figures, with the real client against the fake Discord gateway: each command answered
(ok or error) with its response time, a dropped gateway counted as a reconnect, and the gateway
reported up; no member or guild id in any label."""

from __future__ import annotations

import time
import uuid

import pytest

from arrakis_engine.themes import get_theme

MEMBER = "220000000000000001"
STRANGER = "220000000000000009"


@pytest.fixture(scope="module")
def guild(bot_engine, fake):
    gid = str(10**18 + uuid.uuid4().int % (9 * 10**18))
    fake.join(gid, members=[MEMBER, STRANGER], name="Metrics Test")
    c = bot_engine.communities.create(name="Metrics Test", guild_id=gid, theme_id="basic", subscription="free",
                                      actor="test")
    with bot_engine.db.tenant(c.id):
        p = bot_engine.repos.profiles.create(discord_id=MEMBER)
        bot_engine.repos.profiles.update_standing(p.id, tier=get_theme("basic").tier_for_rank(1), rank=1)
    return gid


def counters(engine) -> dict:
    return engine.metrics.totals().counters


def test_commands_reconnects_and_the_gateway_are_counted(bot, bot_engine, fake, guild):
    before = counters(bot_engine)
    ok = fake.wait(fake.command(guild, MEMBER, "profile"))
    assert "Gold" in ok.text()
    refused = fake.wait(fake.command(guild, STRANGER, "unlink"))  # answered with a plain refusal
    assert "no linked wallet" in refused.text()
    deadline = time.monotonic() + 5
    key = ("arrakis_bot_interactions_total", ("profile", "ok"))
    while time.monotonic() < deadline and counters(bot_engine).get(key, 0) <= before.get(key, 0):
        time.sleep(0.05)
    after = counters(bot_engine)
    assert after[key] == before.get(key, 0) + 1
    answered = sum(v for (f, labels), v in after.items() if f == "arrakis_bot_interactions_total")
    assert answered >= sum(v for (f, _), v in before.items() if f == "arrakis_bot_interactions_total") + 2
    hist = bot_engine.metrics.totals().histograms[("arrakis_bot_response_seconds", ())]
    assert hist[-1] >= 2 and 0 < hist[-2] < 3 * hist[-1]  # count, and a sum of sub-3-second answers
    assert bot_engine.metrics.totals().gauges[("arrakis_gateway_connected", ("0",))] == 1

    reconnects = after.get(("arrakis_gateway_reconnects_total", ("0",)), 0)
    session = next(s for s in fake.sessions.values() if s.ws is not None)
    fake.run(session.ws.close(code=4000, message=b"test drop"))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and counters(bot_engine).get(("arrakis_gateway_reconnects_total", ("0",)),
                                                                      0) <= reconnects:
        time.sleep(0.05)
    assert counters(bot_engine)[("arrakis_gateway_reconnects_total", ("0",))] == reconnects + 1
    labels = [v for (_, ls) in counters(bot_engine) for v in ls]
    assert not any(MEMBER in v or STRANGER in v or guild in v for v in labels)
