"""The wizard's ELIGIBILITY_RULES step takes a gating rule: validated with its JSON path, shown at
review, stored at deploy (and carried by the first manifest)."""

from __future__ import annotations

import uuid

import pytest

from arrakis_engine.errors import ValidationError

TOKEN = "0x" + "ab" * 20
NFT = "0x" + "cd" * 20
RULE = {"any": [{"type": "nft", "address": NFT}, {"type": "balance", "address": TOKEN, "min": "1000"}]}


@pytest.fixture
def wiz(engine):
    engine.redis.flushdb()
    return engine.wizard


def to_rules(wiz):
    g = str(100_000_000_000_000_000 + uuid.uuid4().int % 10 ** 17)
    s = wiz.start(g, "42", community_name="Gated wizardry")
    s = wiz.step(s.id, "42")
    s = wiz.step(s.id, "42", {"chain": "berachain"})
    return wiz.step(s.id, "42", {"assets": [{"kind": "erc20", "address": TOKEN, "decimals": 18}]})


@pytest.mark.parametrize("rule, message", [
    ({"any": [{"type": "nft", "address": NFT}, {"type": "balance", "address": TOKEN, "min": "lots"}]},
     "rule.any[1].min: not a number"),
    ({"all": []}, "rule.all: an empty list"),
    ({"type": "allowlist", "name": "vips"}, "rule: an allowlist requirement needs the list imported first"),
])
def test_a_bad_rule_is_refused_with_its_path(wiz, rule, message):
    s = to_rules(wiz)
    with pytest.raises(ValidationError) as err:
        wiz.step(s.id, "42", {"template": "basic", "rule": rule})
    assert str(err.value).startswith(message)
    assert wiz.show(s.id, "42").state == "ELIGIBILITY_RULES"


def test_the_rule_is_reviewed_and_deployed(wiz, engine):
    s = to_rules(wiz)
    s = wiz.step(s.id, "42", {"template": "basic", "rule": RULE})
    s = wiz.step(s.id, "42", {"roles": {n: "create" for n in ("Gold", "Silver", "Bronze")}})
    s = wiz.step(s.id, "42", {"channel_template": "basic"})
    review = wiz.summary(wiz.show(s.id, "42"))
    assert any(line.startswith("membership rule: ") and NFT in line for line in review)
    done = wiz.deploy(s.id, "42")
    cid = done.deploy["community_id"]
    stored = engine.gating.show(cid)["membership"]
    assert stored["any"][1] == {"type": "balance", "chain": "berachain", "address": TOKEN, "decimals": 18,
                                "min": "1000"}
    with engine.db.tenant(cid):
        assert engine.repos.manifests.latest().content["gating"]["membership"] == stored
