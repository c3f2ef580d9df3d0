"""The onboarding wizard on real Redis (sessions) and PostgreSQL (deploy)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest

from arrakis_engine.errors import Conflict, NotFound, ValidationError
from arrakis_engine.wizard.model import TransitionError
from arrakis_engine.wizard.wizard_service import WizardService
from arrakis_engine.storage.wizard_sessions import SessionStore, session_key

TOKEN = "0x" + "ab" * 20
NFT = "0x" + "cd" * 20


@pytest.fixture
def wiz(engine):
    engine.redis.flushdb()
    return engine.wizard


def guild() -> str:
    return str(100_000_000_000_000_000 + uuid.uuid4().int % 10**17)


def to_review(wiz, g, user="42", template="basic"):
    s = wiz.start(g, user, community_name="Wizardry")
    s = wiz.step(s.id, user)  # INIT -> CHAIN_SELECT
    s = wiz.step(s.id, user, {"chain": "berachain"})
    s = wiz.step(s.id, user, {"assets": [{"kind": "erc20", "address": TOKEN, "decimals": 18},
                                            {"kind": "erc721", "address": NFT}]})
    s = wiz.step(s.id, user, {"template": template})
    names = ["Gold", "Silver", "Bronze"] if template in ("basic", "standard") else \
        ["Naib", "Fedaykin", "Usul", "Sayyadina", "Mushtamal", "Sihaya", "Qanat", "Ichwan", "Hajra"]
    s = wiz.step(s.id, user, {"roles": {n: "create" for n in names}})
    s = wiz.step(s.id, user, {"channel_template": "basic"})
    return s


def test_walk_to_review_and_deploy_once(wiz, engine):
    g = guild()
    s = to_review(wiz, g)
    assert s.state == "REVIEW" and "ranked by the first asset" in " ".join(s.warnings)
    done = wiz.deploy(s.id, "42")
    assert done.state == "COMPLETE"
    cid = done.deploy["community_id"]
    with engine.db.tenant(cid):
        assert engine.repos.manifests.versions() == [1]
        assert engine.repos.communities.current().settings["wizard"]["chain"] == "berachain"
    again = wiz.deploy(s.id, "42")  # the session id is the idempotency key
    assert again.deploy == done.deploy
    with engine.db.tenant(cid):
        assert engine.repos.manifests.versions() == [1]
    assert engine.queue.queue(cid).count + engine.redis.llen("rq:queue:discord-synthesis") >= 1


def test_failed_deploy_can_be_retried_from_review(wiz, engine):
    g = guild()
    s = to_review(wiz, g, template="sietch")  # needs premium; a new community is free
    assert "premium" in " ".join(s.warnings)
    failed = wiz.deploy(s.id, "42")
    assert failed.state == "FAILED" and "premium" in failed.error
    back = wiz.back(s.id, "42")
    assert back.state == "REVIEW"
    back = wiz.back(s.id, "42")
    back = wiz.back(s.id, "42")
    back = wiz.back(s.id, "42")
    assert back.state == "ELIGIBILITY_RULES"
    s = wiz.step(s.id, "42", {"template": "standard"})
    s = wiz.step(s.id, "42", {"roles": {"Gold": "create", "Silver": "create", "Bronze": "123456789012345678"}})
    s = wiz.step(s.id, "42", {"channel_template": "none"})
    assert wiz.deploy(s.id, "42").state == "COMPLETE"


@pytest.mark.parametrize("state_steps, data, field", [
    (1, {"chain": "dogechain"}, "chain"),
    (1, {}, "chain"),
    (2, {"assets": []}, "assets"),
    (2, {"assets": [{"kind": "erc20", "address": TOKEN, "decimals": 18}] * 6}, "assets"),
    (2, {"assets": [{"kind": "erc20", "address": "0x12", "decimals": 18}]}, "assets[0].address"),
    (2, {"assets": [{"kind": "erc20", "address": "0xAbCdEf" + "0" * 34, "decimals": 18}]}, "assets[0].address"),
    (2, {"assets": [{"kind": "erc20", "address": TOKEN}]}, "assets[0].decimals"),
    (2, {"assets": [{"kind": "erc1155", "address": TOKEN}]}, "assets[0].token_id"),
    (2, {"assets": [{"kind": "gold", "address": TOKEN}]}, "assets[0].kind"),
    (3, {"template": "fancy"}, "template"),
    (3, {"template": "custom", "tiers": [{"name": "A", "min_rank": 1, "max_rank": 10},
                                         {"name": "B", "min_rank": 10, "max_rank": 20}]}, "tiers[1].min_rank"),
    (3, {"template": "custom", "tiers": [{"name": "A", "min_rank": 1, "max_rank": 10},
                                         {"name": "B", "min_rank": 12}]}, "tiers[1].min_rank"),
    (3, {"template": "custom", "tiers": [{"name": "A", "min_rank": 1},
                                         {"name": "B", "min_rank": 2}]}, "tiers[0].max_rank"),
    (3, {"template": "custom", "tiers": [{"name": "A", "min_rank": 2}]}, "tiers[0].min_rank"),
])
def test_every_validation_error_names_the_field(wiz, state_steps, data, field):
    s = wiz.start(guild(), "7")
    s = wiz.step(s.id, "7")
    good = [{"chain": "berachain"}, {"assets": [{"kind": "native"}]}]
    for d in good[:state_steps - 1]:
        s = wiz.step(s.id, "7", d)
    with pytest.raises(ValidationError) as err:
        wiz.step(s.id, "7", data)
    assert err.value.field == field, str(err.value)
    assert wiz.show(s.id, "7").state == s.state  # nothing moved


def test_role_mapping_covers_every_tier(wiz):
    s = to_review(wiz, guild())
    for _ in range(2):
        s = wiz.back(s.id, "42")
    assert s.state == "ROLE_MAPPING"
    with pytest.raises(ValidationError) as err:
        wiz.step(s.id, "42", {"roles": {"Gold": "create", "Silver": "create"}})
    assert err.value.field == "roles.Bronze"
    with pytest.raises(ValidationError) as err:
        wiz.step(s.id, "42", {"roles": {"Gold": "abc", "Silver": "create", "Bronze": "create"}})
    assert err.value.field == "roles.Gold"


def test_transitions(wiz):
    s = wiz.start(guild(), "1")
    with pytest.raises(TransitionError):
        wiz.back(s.id, "1")
    s = to_review(wiz, guild(), user="2")
    with pytest.raises(TransitionError):
        wiz.step(s.id, "2", {})
    gone = wiz.abandon(s.id, "2")
    assert gone.state == "FAILED" and gone.error == "abandoned by the user"
    with pytest.raises(TransitionError):
        wiz.deploy(s.id, "2")


def test_one_active_session_per_user_per_guild_and_owner_only(wiz):
    g = guild()
    first = wiz.start(g, "5")
    second = wiz.start(g, "5")
    assert second.existing is True and second.id == first.id
    assert wiz.start(g, "6").id != first.id  # another user
    assert wiz.start(guild(), "5").id != first.id  # another guild
    with pytest.raises(NotFound):
        wiz.show(first.id, "6")
    with pytest.raises(NotFound):
        wiz.resume(guild(), "5")
    assert wiz.resume(g, "5").id == first.id


def test_sliding_ttl_and_expiry(engine):
    """Time passes for Redis's TTLs without a sleep: the key's expiry is moved closer, or into the
    past (which expires it at once, as Redis does when a TTL runs out)."""
    engine.redis.flushdb()
    wiz = WizardService(SessionStore(engine.redis, ttl=900))
    s = wiz.start(guild(), "9")
    key = session_key(s.id)
    engine.redis.pexpire(key, 1_000)  # 899 s have passed
    wiz.show(s.id, "9")  # any use slides the expiry
    assert wiz.store.ttl_of(s.id) == 900
    engine.redis.pexpire(key, 1_000)
    wiz.step(s.id, "9")
    assert wiz.store.ttl_of(s.id) == 900
    engine.redis.pexpireat(key, 1)  # the 15 minutes ran out
    with pytest.raises(NotFound, match="expired"):
        wiz.show(s.id, "9")


def test_racing_submissions_apply_once(wiz):
    s = wiz.start(guild(), "3")
    s = wiz.step(s.id, "3")
    outcomes: list = []

    def submit(i):
        try:
            wiz.step(s.id, "3", {"chain": "berachain" if i % 2 else "ethereum"}, submission_id=f"sub-{i}",
                     expected_state="CHAIN_SELECT")
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
    after = wiz.show(s.id, "3")
    assert after.state == "ASSET_CONFIG" and after.revision == 2
    # The same submission sent twice is applied once.
    one = wiz.step(s.id, "3", {"assets": [{"kind": "native"}]}, submission_id="again")
    two = wiz.step(s.id, "3", {"assets": [{"kind": "native"}]}, submission_id="again")
    assert one.revision == two.revision and two.state == "ELIGIBILITY_RULES"


def test_resume_after_the_starting_process_exits(wiz, redis_url, database_url, tmp_path):
    g = guild()
    code = ("import json; from arrakis_engine.bootstrap import build_engine; from arrakis_engine.settings import Settings;"
            f"e = build_engine(Settings.from_env({{'DATABASE_URL': {database_url!r}, 'REDIS_URL': {redis_url!r},"
            f" 'ARRAKIS_DATA_DIR': {str(tmp_path)!r}}}, env_file=None));"
            f"s = e.wizard.start({g!r}, '77'); s = e.wizard.step(s.id, '77'); print(json.dumps(s.as_dict())); e.close()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    started = json.loads(out.stdout)
    resumed = wiz.resume(g, "77")
    assert resumed.id == started["id"] and resumed.state == "CHAIN_SELECT"


def test_each_step_answers_well_inside_three_seconds(wiz):
    s = wiz.start(guild(), "8")
    t = time.perf_counter()
    s = wiz.step(s.id, "8")
    s = wiz.step(s.id, "8", {"chain": "base"})
    s = wiz.step(s.id, "8", {"assets": [{"kind": "native"}]})
    assert (time.perf_counter() - t) / 3 < 0.25


@pytest.mark.parametrize("channels, categories", [
    ({"channel_template": "none"}, []),
    ({"channel_template": "custom", "categories": [{"name": "HALL", "channels": ["lobby", "memes"]}]}, ["HALL"]),
    ({"channel_template": "sietch"}, ["SIETCH SCROLLS", "NAIB COUNCIL", "FEDAYKIN QUARTERS", "THE OASIS",
                                      "COMMON GROUNDS", "CAVE ENTRANCE", "THE STILLSUIT"]),
])
def test_channel_template_shapes_the_manifest(wiz, engine, channels, categories):
    s = to_review(wiz, guild())
    s = wiz.back(s.id, "42")
    s = wiz.step(s.id, "42", channels)
    done = wiz.deploy(s.id, "42")
    with engine.db.tenant(done.deploy["community_id"]):
        m = engine.repos.manifests.latest().content
    assert [c["name"] for c in m["categories"]] == categories
    if channels["channel_template"] == "sietch":  # Naib-only rules do not fit the basic tiers: open
        council = next(c for c in m["categories"] if c["name"] == "NAIB COUNCIL")
        assert council["overwrites"] == []


def test_every_transition(wiz):
    """Forward through every state, back from every state that allows it, and the refusals."""
    from arrakis_engine.wizard.model import FLOW, next_state, previous_state

    assert [next_state(s) for s in FLOW[:7]] == list(FLOW[1:8])
    assert [previous_state(s) for s in FLOW[1:7]] == list(FLOW[:6])
    assert previous_state("FAILED") == "REVIEW"
    for refused in ("DEPLOY", "COMPLETE", "FAILED"):
        with pytest.raises(TransitionError):
            next_state(refused)
    for refused in ("INIT", "DEPLOY", "COMPLETE"):
        with pytest.raises(TransitionError):
            previous_state(refused)
    s = to_review(wiz, guild(), user="11")
    for expected in ("CHANNEL_STRUCTURE", "ROLE_MAPPING", "ELIGIBILITY_RULES", "ASSET_CONFIG", "CHAIN_SELECT", "INIT"):
        s = wiz.back(s.id, "11")
        assert s.state == expected
    assert s.data["chain"] == {"chain": "berachain"}  # going back keeps what was entered


def test_custom_tiers_deploy_and_drive_the_manifest(wiz, engine):
    s = wiz.start(guild(), "12")
    s = wiz.step(s.id, "12")
    s = wiz.step(s.id, "12", {"chain": "base"})
    s = wiz.step(s.id, "12", {"assets": [{"kind": "native"}]})
    tiers = [{"name": "Whale", "min_rank": 1, "max_rank": 3, "colour": "#112233"},
             {"name": "Dolphin", "min_rank": 4, "max_rank": 20},
             {"name": "Shrimp", "min_rank": 21}]
    s = wiz.step(s.id, "12", {"template": "custom", "tiers": tiers})
    s = wiz.step(s.id, "12", {"roles": {"Whale": "123456789012345678", "Dolphin": "create", "Shrimp": "create"}})
    s = wiz.step(s.id, "12", {"channel_template": "basic"})
    done = wiz.deploy(s.id, "12")
    assert done.state == "COMPLETE", done.error
    cid = done.deploy["community_id"]
    with engine.db.tenant(cid):
        community = engine.repos.communities.current()
        assert community.theme_id == "custom"
        m = engine.repos.manifests.latest().content
        from arrakis_engine.storage.synthesis import SynthesisRepository

        shadow = SynthesisRepository(engine.db).latest_shadow()
    assert [r["name"] for r in m["roles"]] == ["Whale", "Dolphin", "Shrimp"]
    assert m["roles"][0]["color"] == 0x112233
    assert shadow[1]["role:whale"] == "123456789012345678"  # the existing role is used, not created
    from arrakis_engine.themes import theme_of

    assert theme_of(community).tier_for_rank(25) == "Shrimp"
