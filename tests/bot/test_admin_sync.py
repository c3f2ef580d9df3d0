"""Syncs and fixes from Discord: /arrakis sync reads anvil and queues one role update per member
whose roles change, /refresh (once in 5 minutes), /unlink, /arrakis reconcile (a dry run; the
destructive one asks for an operator's code in a form), /arrakis approve-strip."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlparse

import logging

import pyotp
import pytest

from arrakis_engine.domain.chain import Asset
from arrakis_engine.adapters.rq.queue import work_until_done
from tests.fixtures.operators import add_operator, reenrol, secret_of
from tests.bot.conftest import ADMIN_PERMS, new_guild_id
from tests.fixtures.chain import holder

ADMIN = "410000000000000001"
MEMBERS = ["410000000000000011", "410000000000000012", "410000000000000013"]


@pytest.fixture(scope="module")
def world(bot_engine, fake, chain):
    """A basic community on anvil: three members holding 300, 200 and 100 of a token, synthesized."""
    e = bot_engine
    token = chain.deploy("TestERC20", "Sync", "SYN", 18)
    wallets = [chain.w3.to_checksum_address(holder(int(token.address[-6:], 16) * 10 + i)) for i in range(3)]
    chain.send(token.functions.mintMany(wallets, [300, 200, 100]))
    guild = new_guild_id()
    fake.join(guild, members=[ADMIN, *MEMBERS], name="Sync Test")
    c = e.communities.create(name="Sync Test", guild_id=guild, theme_id="basic", subscription="free", actor="test")
    with e.db.tenant(c.id):
        for did, w in zip(MEMBERS, wallets):
            p = e.repos.profiles.create(discord_id=did)
            e.repos.wallets.link(p.id, w.lower())
    e.eligibility.configure(c.id, Asset("berachain", "erc20", token.address), purpose="rank")
    e.synthesis.synthesize(c.id, queued=False, actor="test")
    return guild, c


def roles_of(fake, guild: str, member: str) -> set[str]:
    g = fake.guilds[guild]
    return {g.roles[r]["name"] for r in g.members[member]}


def test_sync_reads_the_chain_and_updates_only_changed_roles(bot, bot_engine, fake, world):
    guild, c = world
    it = fake.wait(fake.command(guild, ADMIN, "arrakis", subcommand="sync", permissions=ADMIN_PERMS),
                   check=lambda i: "queued" in i.text() or "⚠️" in i.text(), timeout=30)
    assert "3 members (native ranks): 3 joined" in it.text() and "3 member role update(s) queued" in it.text()
    work_until_done(bot_engine, timeout=60)
    assert roles_of(fake, guild, MEMBERS[0]) == {"Gold"}
    again = fake.wait(fake.command(guild, ADMIN, "arrakis", subcommand="sync", permissions=ADMIN_PERMS),
                      check=lambda i: "queued" in i.text() or "⚠️" in i.text(), timeout=30)
    assert "0 member role update(s) queued" in again.text()  # nothing changed: nothing sent


def test_refresh_once_in_five_minutes_and_unlink(bot, bot_engine, fake, world):
    guild, c = world
    first = fake.wait(fake.command(guild, MEMBERS[2], "refresh"), check=lambda i: i.original and not
                      i.original.get("loading"), timeout=30)
    assert "Done: your standing was read again" in first.text()
    second = fake.wait(fake.command(guild, MEMBERS[2], "refresh"))
    assert re.search(r"you refreshed a moment ago; try again in [45] min \d+ s", second.text())
    gone = fake.wait(fake.command(guild, MEMBERS[2], "unlink"))
    assert "Unlinked 0x" in gone.text()
    bot_engine.redis.delete(f"arrakis:members:refresh:{c.id}:{MEMBERS[2]}")
    after = fake.wait(fake.command(guild, MEMBERS[2], "refresh"))
    assert "you have no linked wallet here yet: /verify links one" in after.text()
    refused = fake.wait(fake.command(guild, MEMBERS[1], "arrakis", subcommand="sync", permissions=0))
    assert "only this server's admins" in refused.text()


def test_reconcile_dry_run_then_destructive_with_an_operators_code(bot, bot_engine, fake, world, caplog):
    guild, c = world
    caplog.set_level(logging.DEBUG)
    dry = fake.wait(fake.command(guild, ADMIN, "arrakis", subcommand="reconcile", permissions=ADMIN_PERMS),
                    check=lambda i: "reconcile" in i.text(), timeout=30)
    assert "reconcile would:" in dry.text()
    opts = [{"name": "dry_run", "type": 5, "value": False}, {"name": "destructive", "type": 5, "value": True}]
    asked = fake.wait(fake.command(guild, ADMIN, "arrakis", opts, subcommand="reconcile", permissions=ADMIN_PERMS))
    assert asked.callbacks[0]["type"] == 9 and asked.callbacks[0]["data"]["custom_id"] == "mfa:reconcile"
    not_operator = fake.wait(fake.modal_submit(guild, ADMIN, "mfa:reconcile", {"code": "123456"},
                                               permissions=ADMIN_PERMS), check=lambda i: "⚠️" in i.text())
    assert "needs a platform operator with a second factor" in not_operator.text()
    name = f"bot-op-{uuid.uuid4().hex[:6]}"
    secret = secret_of(add_operator(bot_engine, name, ["platform_admin", "approver"], discord_id=ADMIN, fake=fake))
    wrong = fake.wait(fake.modal_submit(guild, ADMIN, "mfa:reconcile", {"code": "000000"}, permissions=ADMIN_PERMS),
                      check=lambda i: "⚠️" in i.text())
    assert "code" in wrong.text().lower()
    done = fake.wait(fake.modal_submit(guild, ADMIN, "mfa:reconcile", {"code": pyotp.TOTP(secret).now()},
                                       permissions=ADMIN_PERMS), check=lambda i: "reconcile" in i.text(), timeout=30)
    assert "reconcile did:" in done.text()
    typed = done.payload["data"]["components"][0]["components"][0]["value"]
    assert typed not in caplog.text  # the code typed in the form is never logged

    # a mass strip waiting here is approved by the same operator (who did not run the sync)
    request = bot_engine.approvals.request_strip(str(c.id), strips=3, tier_holders=3, members=MEMBERS,
                                                 requested_by="sync")
    asked = fake.wait(fake.command(guild, ADMIN, "arrakis", subcommand="approve-strip", permissions=ADMIN_PERMS))
    assert asked.callbacks[0]["type"] == 9
    backup = reenrol(bot_engine, name, fake=fake).backup_codes[0]
    ok = fake.wait(fake.modal_submit(guild, ADMIN, "mfa:approve-strip", {"code": backup}, permissions=ADMIN_PERMS),
                   check=lambda i: "Approved" in i.text() or "⚠️" in i.text(), timeout=30)
    assert f"Approved ({request.id})" in ok.text()
    assert bot_engine.approvals.get(request.id).status == "approved"


def test_an_operator_who_ran_the_sync_from_discord_cannot_approve_its_mass_strip(bot, bot_engine, fake, world):
    """Issue 24, point 1, through the bot: an admin linked to an operator runs /arrakis sync, which
    pauses on a mass strip; the request names that operator (not `discord:<id>`), and their own
    /arrakis approve-strip with a right code is refused."""
    guild, c = world
    e = bot_engine
    op = e.operators.by_discord(ADMIN)
    if op is None:
        add_operator(e, f"bot-op-{uuid.uuid4().hex[:6]}", ["platform_admin", "approver"], discord_id=ADMIN, fake=fake)
        op = e.operators.by_discord(ADMIN)
    e.members.sync_now(guild, actor="test")
    work_until_done(e, timeout=60)
    with e.db.tenant(c.id):
        links = [(p.id, w.wallet_address) for did in MEMBERS for p in [e.repos.profiles.by_discord_id(did)]
                 for w in e.repos.wallets.for_profile(p.id)]
        for _, address in links:
            e.repos.wallets.unlink(address)
    try:
        paused = fake.wait(fake.command(guild, ADMIN, "arrakis", subcommand="sync", permissions=ADMIN_PERMS),
                           check=lambda i: "Paused" in i.text() or "⚠️" in i.text() or "queued" in i.text(),
                           timeout=30)
        assert "Paused" in paused.text(), paused.text()
        request = e.approvals.pending_for(str(c.id))[0]
        assert request.requested_by == op.name
        code = reenrol(e, op.name, fake=fake).backup_codes[0]
        refused = fake.wait(fake.modal_submit(guild, ADMIN, "mfa:approve-strip", {"code": code},
                                              permissions=ADMIN_PERMS), check=lambda i: "⚠️" in i.text(), timeout=30)
        assert "asked for this change and may not approve it" in refused.text()
        assert e.approvals.get(request.id).status == "pending"
    finally:
        with e.db.tenant(c.id):
            for pid, address in links:
                e.repos.wallets.link(pid, address)
        with e.db.platform() as tx:
            tx.execute("UPDATE approval_requests SET status = 'expired', decided_at = now() "
                       "WHERE community_id = %s AND status = 'pending'", (str(c.id),))


def test_refresh_keeps_the_roles_its_command_carries_for_discord_role_rules(bot, bot_engine, fake, world):
    """Every command carries the member's roles; /refresh keeps them as Discord's last answer, so
    the sync it runs (and every later one) decides a discord_role rule without asking Discord."""
    from arrakis_engine.gating.gating_service import Member

    guild, c = world
    bridge = bot_engine.discord.create_role(guild, name="Bridge", color=0, permissions=0)["id"]  # another bot's
    fake.guilds[guild].members[MEMBERS[0]].add(bridge)
    bot_engine.gating.set_rule(c.id, {"type": "discord_role", "role_id": bridge}, actor="test")
    try:
        bot_engine.redis.delete(f"arrakis:members:refresh:{c.id}:{MEMBERS[0]}")
        before = len(fake.request_log)
        done = fake.wait(fake.command(guild, MEMBERS[0], "refresh"), check=lambda i: i.original and not
                         i.original.get("loading"), timeout=30)
        assert "tanding was read again" in done.text(), done.text()  # (the strip of the others may wait for approval)
        assert bridge in bot_engine.gating.stored_roles(c.id, [Member(None, MEMBERS[0], ())])[MEMBERS[0]]
        assert not [p for _, m, p in fake.request_log[before:] if m == "GET" and p.endswith(f"/members/{MEMBERS[0]}")]
        assert bot_engine.members.profile(guild, MEMBERS[0]).missing == []
    finally:
        bot_engine.gating.remove_rule(c.id, actor="test")
