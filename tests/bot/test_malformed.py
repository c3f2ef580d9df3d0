"""Malformed interactions, sent as raw INTERACTION_CREATE payloads through the fake gateway (what
a forged or buggy client can make Discord relay): each gets one clear ephemeral line, no handler
runs on a wrong value, nothing is said publicly, and no traceback is logged."""

from __future__ import annotations

import logging
import uuid

import pytest

from arrakis_engine.themes import get_theme
from tests.bot.conftest import ADMIN_PERMS
from tests.fakes.discord_gateway import EPHEMERAL

MEMBER = "230000000000000001"
OTHER = "230000000000000002"


@pytest.fixture(scope="module")
def guild(bot_engine, fake, bot):
    gid = str(10**18 + uuid.uuid4().int % (9 * 10**18))
    fake.join(gid, members=[MEMBER, OTHER], name="Malformed")
    c = bot_engine.communities.create(name="Malformed", guild_id=gid, theme_id="basic", subscription="free",
                                      actor="test")
    theme = get_theme("basic")
    with bot_engine.db.tenant(c.id):
        for i, did in enumerate((MEMBER, OTHER)):
            p = bot_engine.repos.profiles.create(discord_id=did)
            bot_engine.repos.profiles.update_standing(p.id, tier=theme.tier_for_rank(i + 1), rank=i + 1)
    return gid


def _data(fake, guild, name, options=None, **extra):
    scope = fake.commands.get(guild, {}) | fake.commands["global"]
    return {"id": scope[name]["id"] if name in scope else "1399999999999999999", "name": name, "type": 1,
            "options": options or [], "guild_id": guild, **extra}


def _refused(fake, it, words: str):
    fake.wait(it)
    assert len(it.callbacks) == 1 and it.callbacks[0]["type"] == 4
    msg = it.messages()[0]
    assert msg["flags"] & EPHEMERAL, "a refusal is shown to the sender only"
    assert not msg["embeds"], "no handler ran"
    text = it.text()
    assert words in text, text
    assert "Something went wrong" not in text and len(text.splitlines()) == 1
    return text


@pytest.fixture
def no_traceback(caplog):
    caplog.set_level(logging.INFO, logger="arrakis.bot")
    yield
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_a_boolean_sent_as_a_string_is_refused_not_posted_publicly(bot, fake, guild, no_traceback):
    it = fake.raw_command(guild, MEMBER, _data(fake, guild, "profile", [{"name": "public", "type": 5, "value": "yes"}]))
    _refused(fake, it, "/profile: public must be true or false.")
    assert it.original["flags"] & EPHEMERAL


def test_an_option_of_another_type_than_declared_is_refused(bot, fake, guild, no_traceback):
    it = fake.raw_command(guild, MEMBER, _data(fake, guild, "profile", [{"name": "public", "type": 3, "value": "true"}]))
    _refused(fake, it, "/profile: public is not the kind of value this command takes.")


@pytest.mark.parametrize("value", ["abc", 0, 26, 2.5, True])
def test_a_count_that_is_not_a_whole_number_in_range_is_refused(bot, fake, guild, value, no_traceback):
    it = fake.raw_command(guild, MEMBER, _data(fake, guild, "leaderboard", [{"name": "count", "type": 4, "value": value}]))
    _refused(fake, it, "/leaderboard: count must be a whole number from 1 to 25.")


def test_a_member_missing_from_resolved_is_refused(bot, fake, guild, no_traceback):
    it = fake.raw_command(guild, MEMBER, _data(fake, guild, "profile", [{"name": "member", "type": 6, "value": OTHER}]))
    _refused(fake, it, "/profile: member must name a member Discord sent along")


def test_an_unknown_command_is_answered(bot, fake, guild, no_traceback):
    it = fake.raw_command(guild, MEMBER, _data(fake, guild, "spice-harvest"))
    _refused(fake, it, "Unknown command: /spice-harvest is not one of Arrakis's commands.")


def test_an_unknown_subcommand_is_answered(bot, fake, guild, no_traceback):
    it = fake.raw_command(guild, MEMBER, _data(fake, guild, "arrakis", [{"name": "frobnicate", "type": 1, "options": []}]),
                          permissions=ADMIN_PERMS)
    _refused(fake, it, "Unknown command: /arrakis frobnicate is not one of Arrakis's commands")


def test_a_long_unknown_name_is_not_echoed_whole(bot, fake, guild, no_traceback):
    it = fake.raw_command(guild, MEMBER, _data(fake, guild, "arrakis", [{"name": "x" * 300, "type": 1, "options": []}]),
                          permissions=ADMIN_PERMS)
    text = _refused(fake, it, "Unknown command: /arrakis " + "x" * 32 + " is not")
    assert "x" * 33 not in text


def test_an_unknown_option_and_a_missing_required_one_are_refused(bot, fake, guild, no_traceback):
    it = fake.raw_command(guild, MEMBER, _data(fake, guild, "leaderboard", [{"name": "colour", "type": 3, "value": "x"}]))
    _refused(fake, it, "/leaderboard has no option colour.")
    it = fake.raw_command(guild, MEMBER, _data(fake, guild, "water-share"))
    _refused(fake, it, "/water-share needs member.")


def test_well_formed_commands_still_run(bot, fake, guild, no_traceback):
    it = fake.wait(fake.command(guild, MEMBER, "leaderboard", [{"name": "count", "type": 4, "value": 2},
                                                            {"name": "public", "type": 5, "value": True}]))
    msg = it.messages()[0]
    assert not msg["flags"] & EPHEMERAL and msg["embeds"]
    it = fake.wait(fake.command(guild, MEMBER, "profile", [{"name": "member", "type": 6, "value": OTHER}]))
    msg = it.messages()[0]
    assert msg["flags"] & EPHEMERAL and msg["embeds"][0]["description"] == f"<@{OTHER}>"
