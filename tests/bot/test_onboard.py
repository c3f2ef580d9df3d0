"""/onboard through the bot: every step clicked or typed as Discord sends it, a validation error
shown on its step, the review's summary, the deploy followed to a synthesized guild; /resume after
the bot process is replaced; refusals for members and for someone else's session."""

from __future__ import annotations

import pytest

from arrakis_engine.adapters.rq.queue import work_until_done
from tests.bot.conftest import ADMIN_PERMS, component_of, new_guild_id

ADMIN = "310000000000000001"
MEMBER = "310000000000000002"
TOKEN = "0x" + "12" * 20


class Wizard:
    """Drives one admin's wizard message: click, choose, fill in, and the message as it is now."""

    def __init__(self, fake, guild: str, user: str = ADMIN) -> None:
        self.fake, self.guild, self.user = fake, guild, user
        self.message: dict | None = None
        self.last = None

    def start(self, name: str = "Dune Traders") -> "Wizard":
        self._wait(self.fake.command(self.guild, self.user, "onboard", [
            {"name": "name", "type": 3, "value": name}], permissions=ADMIN_PERMS))
        return self

    def to_asset_step(self, name: str, chain: str) -> "Wizard":
        """Start, Next, the chain: the wizard then asks for the asset (step 3)."""
        self.start(name)
        self.click("next")
        self.choose("chain", chain)
        assert "step 3 of 8: Asset" in self.title
        return self

    def _wait(self, it, check=None):
        self.fake.wait(it, check=lambda i: i.original is not None and not i.original.get("loading") and
                       (check is None or check(i)))
        self.message, self.last = it.original, it
        return it

    def click(self, action: str, check=None):
        c = component_of(self.message, action)
        return self._wait(self.fake.component(self.guild, self.user, c["custom_id"], message=self.message,
                                              permissions=ADMIN_PERMS), check)

    def choose(self, action: str, value: str):
        c = component_of(self.message, action)
        it = self.fake.component(self.guild, self.user, c["custom_id"], values=[value], message=self.message,
                                 permissions=ADMIN_PERMS)
        self.fake.wait(it)
        if it.callbacks[0]["type"] == 9:
            return it  # a form opened
        return self._wait(it)

    def fill(self, opened, fields: dict):
        modal = opened.callbacks[0]["data"]
        return self._wait(self.fake.modal_submit(self.guild, self.user, modal["custom_id"], fields,
                                                 message=self.message, permissions=ADMIN_PERMS))

    @property
    def title(self) -> str:
        return self.message["embeds"][0]["title"]

    @property
    def text(self) -> str:
        e = self.message["embeds"][0]
        return "\n".join([e.get("title", ""), e.get("description", "")] +
                         [f"{f['name']}: {f['value']}" for f in e.get("fields") or []])


def test_onboarding_end_to_end_to_a_synthesized_guild(bot, bot_engine, fake):
    guild = new_guild_id()
    fake.join(guild, members=[ADMIN], name="Dune Traders")
    w = Wizard(fake, guild).start()
    assert "step 1 of 8: Welcome" in w.title and w.message["flags"] & 64
    w.click("next")
    assert "step 2 of 8: Chain" in w.title
    w.choose("chain", "berachain")
    assert "step 3 of 8: Asset" in w.title
    form = w.choose("kind", "erc20")
    assert form.callbacks[0]["type"] == 9 and form.callbacks[0]["data"]["title"] == "The ERC20 asset"
    w.fill(form, {"address": "0x" + "zz" * 20, "decimals": "18", "symbol": "BGT"})
    assert "step 3 of 8: Asset" in w.title  # the same step, with what to fix
    assert "To fix: assets[0].address must be 0x followed by 40 hex digits" in w.text
    w.fill(w.choose("kind", "erc20"), {"address": TOKEN, "decimals": "18", "symbol": "BGT"})
    assert "step 4 of 8: Tiers" in w.title
    w.choose("rules", "basic")
    assert "step 5 of 8: Roles" in w.title and "Gold, Silver, Bronze" in w.text
    w.click("back")
    assert "step 4 of 8: Tiers" in w.title
    w.choose("rules", "basic")
    w.click("create")
    assert "step 6 of 8: Channels" in w.title
    w.choose("channels", "basic")
    assert "step 7 of 8: Review" in w.title
    assert "chain: berachain" in w.text and "roles: Gold new, Silver new, Bronze new" in w.text
    assert "channels: the basic template" in w.text
    deploy = w.fake.component(guild, ADMIN, component_of(w.message, "deploy")["custom_id"], message=w.message,
                              permissions=ADMIN_PERMS)
    fake.wait(deploy)
    assert deploy.callbacks[0]["type"] == 6  # deferred: the deploy writes and queues
    fake.wait(deploy, "the progress", check=lambda i: "Queued" in i.text())
    work_until_done(bot_engine, timeout=120)  # a worker (RQ wants the main thread for its signals)
    fake.wait(deploy, "the deploy to finish", timeout=30,
              check=lambda i: i.original and "Done: every role and channel" in i.text())
    names = {r["name"] for r in fake.guilds[guild].roles.values()}
    assert {"Gold", "Silver", "Bronze"} <= names
    c = bot_engine.members.community(guild)
    assert c.name == "Dune Traders" and c.theme_id == "basic"


@pytest.mark.parametrize("command", ["onboard", "resume"])
def test_members_without_manage_server_are_refused(bot, fake, command):
    guild = new_guild_id()
    fake.join(guild)
    it = fake.wait(fake.command(guild, MEMBER, command, permissions=0))
    assert "only this server's admins (Manage Server) or a platform operator may do that" in it.text()


def test_a_stale_click_is_refused_not_taken_as_the_next_step(bot, fake):
    guild = new_guild_id()
    fake.join(guild)
    w = Wizard(fake, guild).start("Stale")
    start_message = w.message
    w.click("next")
    w.choose("chain", "ethereum")
    w.message = start_message  # the member clicks Start again on the first message
    w.click("next")
    assert "the wizard is at ASSET_CONFIG, not INIT" in w.text
    assert "step 3 of 8: Asset" in w.title


def test_back_and_cancel_on_an_old_message_are_refused(bot, fake):
    """Back and Cancel carry the step they were drawn for, like every other button: clicked on
    step 2's message while the wizard is at step 4, they change nothing and say where it is."""
    guild = new_guild_id()
    fake.join(guild)
    w = Wizard(fake, guild).start("Old Buttons")
    w.click("next")
    chain_message = w.message  # step 2, with Back and Cancel
    w.choose("chain", "ethereum")
    w.choose("kind", "native")
    assert "step 4 of 8" in w.title
    for action in ("back", "cancel"):
        w.message = chain_message
        w.click(action)
        assert "the wizard is at ELIGIBILITY_RULES, not CHAIN_SELECT" in w.text, (action, w.text)
        assert "step 4 of 8" in w.title, (action, w.title)
    w.click("back")  # Back on the message as it is now still works
    assert "step 3 of 8: Asset" in w.title
