"""/onboard's rule builder: at the tiers step, "all of" / "any of" opens a form of up to 5
requirements; a bad line or value is shown on the step with what to fix; the review shows the rule."""

from __future__ import annotations

from tests.bot.conftest import new_guild_id
from tests.bot.test_onboard import ADMIN, TOKEN, Wizard

NFT = "0x" + "34" * 20


def test_the_rule_builder_from_the_tiers_step_to_the_review(bot, fake):
    guild = new_guild_id()
    fake.join(guild, members=[ADMIN], name="Gated Traders")
    w = Wizard(fake, guild).to_asset_step("Gated Traders", "berachain")
    w.fill(w.choose("kind", "erc20"), {"address": TOKEN, "decimals": "18", "symbol": "BGT"})
    assert "step 4 of 8: Tiers" in w.title
    form = w.choose("rule", "any")
    assert form.callbacks[0]["type"] == 9 and form.callbacks[0]["data"]["title"] == "Membership: any of"
    w.fill(form, {"template": "basic", "requirements": "holds lots"})
    assert "step 4 of 8: Tiers" in w.title and "To fix: line 1 should look like" in w.text
    w.fill(w.choose("rule", "any"), {"template": "basic", "requirements": f"balance {TOKEN} 1000\nbalance 0x12 1"})
    assert "To fix: rule.any[1].address: expected \"native\" or a contract address" in w.text
    w.fill(w.choose("rule", "any"), {"template": "basic", "requirements": f"balance {TOKEN} lots BGT"})
    assert "To fix: rule.any[0].min: not a number" in w.text
    w.fill(w.choose("rule", "any"), {"template": "basic",
                                     "requirements": f"balance {TOKEN} 1000 BGT\nnft {NFT}\nrole <@&123456789012345678>"})
    assert "step 5 of 8: Roles" in w.title and "Gold, Silver, Bronze" in w.text
    w.click("create")
    w.choose("channels", "basic")
    assert "step 7 of 8: Review" in w.title
    assert "membership rule: " in w.text and '"role_id": "123456789012345678"' in w.text
    assert '"min": "1000"' in w.text and NFT in w.text
