"""/resume after the bot process is replaced: the wizard session lives in Redis, not in the bot;
only this module's bots are connected, so the second one is the one that answers."""

from __future__ import annotations

from tests.bot.conftest import ADMIN_PERMS, RunningBot, component_of, new_guild_id
from tests.bot.test_onboard import ADMIN, MEMBER, TOKEN, Wizard


def test_resume_after_the_bot_process_is_replaced(bot_engine, fake):
    guild = new_guild_id()
    first = RunningBot(bot_engine, fake)
    try:
        fake.join(guild)
        w = Wizard(fake, guild).to_asset_step("Resume Test", "base")
    finally:
        first.stop()
    puts_after_first = fake.command_puts
    second = RunningBot(bot_engine, fake)
    try:
        w._wait(fake.command(guild, ADMIN, "resume", permissions=ADMIN_PERMS))
        assert "step 3 of 8: Asset" in w.title  # where it was left
        w.fill(w.choose("kind", "erc721"), {"address": TOKEN})
        assert "step 4 of 8: Tiers" in w.title
        other = fake.wait(fake.command(guild, MEMBER, "resume", permissions=ADMIN_PERMS))
        assert "you have no wizard session in progress in this server" in other.text()
        # a click on the admin's message by someone else is refused by the engine
        c = component_of(w.message, "cancel")
        stolen = fake.wait(fake.component(guild, MEMBER, c["custom_id"], message=w.message, permissions=ADMIN_PERMS),
                           check=lambda i: i.original and i.original.get("content"))
        assert "belongs to someone else" in stolen.original["content"]
        w.click("cancel")
        assert "Not deployed: abandoned by the user" in w.text
    finally:
        second.stop()
    assert puts_after_first == fake.command_puts  # the second start found every command in place


def test_resume_names_a_session_and_refuses_someone_elses(bot, fake):
    guild = new_guild_id()
    fake.join(guild)
    w = Wizard(fake, guild).start("Named")
    sid = w.message["embeds"][0]["footer"]["text"].split()[-1]
    w._wait(fake.command(guild, ADMIN, "resume", [{"name": "session", "type": 3, "value": sid}],
                         permissions=ADMIN_PERMS))
    assert "step 1 of 8: Welcome" in w.title
    other = fake.wait(fake.command(guild, MEMBER, "resume", [{"name": "session", "type": 3, "value": sid}],
                                   permissions=ADMIN_PERMS))
    assert "you have no wizard session in progress in this server" in other.text()
