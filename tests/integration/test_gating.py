"""Gating rules on anvil, through the engine that build_engine makes: each requirement kind with
a failed read in the middle (member C's wallet: every request naming it fails), wallet pooling,
the sync's use of membership and tier rules, one read per wallet and asset, RLS on the tables."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.adapters.chain.web3_reader import Web3ChainReader
from arrakis_engine.errors import BucketTimeout, DiscordError, ValidationError
from arrakis_engine.gating.rules import RuleError
from tests.fakes.guild_port import InMemoryGuilds
from tests.fakes.rpc_proxy import RpcProxy
from tests.fixtures.chain import holder

E18 = 10 ** 18
ROLE = "987654321098765432"
RARE_ID = 0xBEEF01  # an ERC-721 id whose owner read fails (its word is distinctive in a request)


class FlakyGuilds(InMemoryGuilds):
    """Discord that fails (a 503, not a 404) to say one member's roles."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()
        self.error: Exception = DiscordError("Discord is unavailable", status=503, retryable=True)

    def get_member(self, guild_id, user_id, *, community_id=None):
        if user_id in self.failing:
            raise self.error
        return super().get_member(guild_id, user_id, community_id=community_id)


@pytest.fixture(scope="module")
def tokens(chain):
    bgt = chain.deploy("TestERC20", "BGT", "BGT", 18)
    nft = chain.deploy("TestERC721", "Sietch", "SIETCH")
    multi = chain.deploy("TestERC1155")
    return bgt, nft, multi


@pytest.fixture
def world(settings, engine, chain, anvil, tokens, clock):
    """Members A (wallets A1, A2), B (B1), C (C1, whose reads fail) and D (no wallet)."""
    bgt, nft, multi = tokens
    base = uuid.uuid4().int % 10 ** 9
    a1, a2, b1, c1 = (holder(base * 10 + i) for i in range(4))
    cs = chain.w3.to_checksum_address
    chain.send(bgt.functions.mintMany([cs(a1), cs(a2), cs(b1), cs(c1)], [600 * E18, 520 * E18, 880 * E18, 5000 * E18]))
    first = base * 10
    chain.send(nft.functions.mint(cs(a1), first))
    chain.send(nft.functions.mint(cs(a2), first + 1))
    chain.send(nft.functions.mint(cs(c1), first + 2))
    chain.send(nft.functions.mint(cs(c1), RARE_ID + base))
    chain.send(multi.functions.mint(cs(a1), 7, 2))
    chain.send(multi.functions.mint(cs(a2), 7, 1))
    chain.send(multi.functions.mint(cs(c1), 7, 9))
    proxy = RpcProxy(anvil.url)
    proxy.fail_matching = {c1[2:], format(RARE_ID + base, "064x")}
    guilds = FlakyGuilds()
    reader = Web3ChainReader("berachain", [proxy.url], chunk_size=1)
    engine.redis.flushdb()
    eng = build_engine(replace(settings, discord_api_base=None, discord_bot_token=None), discord=guilds,
                       clock=clock, chain_readers={"berachain": reader})
    guild = str(10 ** 18 + uuid.uuid4().int % (9 * 10 ** 18))
    community = eng.communities.create(name=f"Gate {guild[-5:]}", guild_id=guild, theme_id="basic",
                                       subscription="free", actor="test")
    ids = {n: str(600_000_000_000_000_000 + base * 10 + i) for i, n in enumerate("ABCD")}
    guilds.guild(guild, members=[ids["A"], ids["B"], ids["C"]])
    guilds.members[guild][ids["A"]] = [ROLE]
    with eng.db.tenant(community.id):
        for name, wallets in (("A", [a1, a2]), ("B", [b1]), ("C", [c1]), ("D", [])):
            p = eng.repos.profiles.create(discord_id=ids[name])
            for w in wallets:
                eng.repos.wallets.link(p.id, w)
    w = dict(eng=eng, c=community, ids=ids, bgt=bgt.address.lower(), nft=nft.address.lower(),
             multi=multi.address.lower(), first=first, rare=RARE_ID + base, proxy=proxy, guilds=guilds,
             wallets=dict(A1=a1, A2=a2, B1=b1, C1=c1), chain=chain, tokens=tokens)
    yield w
    eng.close()
    proxy.stop()


def results(w, rule) -> dict:
    """Each member's overall result under ``rule`` (set as the membership rule)."""
    w["eng"].gating.set_rule(w["c"].id, rule, actor="test")
    return {n: w["eng"].gating.check(w["c"].id, d)["result"] for n, d in w["ids"].items()}


def checks(w, name) -> list[dict]:
    return w["eng"].gating.check(w["c"].id, w["ids"][name])["membership"]["checks"]


def test_balance_pools_wallets_and_a_failed_read_is_unknown(world):
    rule = {"type": "balance", "address": world["bgt"], "min": "1000", "symbol": "BGT"}
    assert results(world, rule) == {"A": "true", "B": "false", "C": "unknown", "D": "false"}
    b = checks(world, "B")[0]
    assert (b["value"], b["missing"]) == ("880 BGT", "needs 120 more BGT")
    assert checks(world, "A")[0]["value"] == "1120 BGT"  # 600 + 520 over two wallets
    # A range: 1,120 is above a max of 1,100, whatever C's failed read.
    rule["max"] = "1100"
    assert results(world, rule) == {"A": "false", "B": "false", "C": "unknown", "D": "false"}
    assert checks(world, "A")[0]["missing"] == "holds 20 BGT above the maximum"


def test_native_balance(world):
    chain, w = world["chain"], world["wallets"]
    chain.set_native_balance(w["A1"], 3 * E18)
    chain.set_native_balance(w["B1"], E18 // 2)
    rule = {"type": "balance", "address": "native", "min": "1.5"}
    assert results(world, rule) == {"A": "true", "B": "false", "C": "unknown", "D": "false"}


def test_nft_count_token_ids_and_erc1155(world):
    count = {"type": "nft", "address": world["nft"], "min": 2}
    assert results(world, count) == {"A": "true", "B": "false", "C": "unknown", "D": "false"}
    ids = {"type": "nft", "address": world["nft"], "token_ids": [world["first"] + 1, world["rare"]]}
    # A owns #first+1; the rare token's owner cannot be read, so nobody else is decided.
    assert results(world, ids) == {"A": "true", "B": "unknown", "C": "unknown", "D": "false"}
    ids["token_ids"] = [world["first"] + 1, world["first"] + 7]  # the second was never minted: nobody's
    assert results(world, ids) == {"A": "true", "B": "false", "C": "false", "D": "false"}
    ids["token_ids"] = [world["first"], world["first"] + 1]
    ids["min"] = 2
    assert results(world, ids) == {"A": "true", "B": "false", "C": "false", "D": "false"}  # pooled over A1, A2
    multi = {"type": "nft", "standard": "erc1155", "address": world["multi"], "token_id": 7, "min": 3}
    assert results(world, multi) == {"A": "true", "B": "false", "C": "unknown", "D": "false"}


def test_allowlist_decides_over_a_failed_read(world, tmp_path):
    gating, c = world["eng"].gating, world["c"]
    csv = tmp_path / "partners.csv"
    csv.write_text(f"address\n{world['wallets']['A2'].upper().replace('0X', '0x')}\n{world['wallets']['C1']}\n"
                   f"{world['wallets']['C1']}\n")
    assert gating.import_allowlist(c.id, "partners", csv, actor="test") == {"name": "partners", "addresses": 2,
                                                                           "repeated": 1}
    rule = {"any": [{"type": "allowlist", "name": "partners"},
                    {"type": "balance", "address": world["bgt"], "min": "1000"}]}
    assert results(world, rule) == {"A": "true", "B": "false", "C": "true", "D": "false"}
    assert results(world, {"not": {"type": "allowlist", "name": "partners"}}) == {
        "A": "false", "B": "true", "C": "false", "D": "true"}
    # A bad line refuses the whole file; the list stays as it was.
    csv.write_text(f"address\n{world['wallets']['B1']}\n0x1234\n")
    with pytest.raises(ValidationError, match="nothing imported: line 3: not a wallet address"):
        gating.import_allowlist(c.id, "partners", csv, actor="test")
    assert results(world, {"type": "allowlist", "name": "partners"})["B"] == "false"
    with pytest.raises(RuleError, match=r"^any\[0\]\.name: no allowlist 'nobody'"):
        gating.set_rule(c.id, {"any": [{"type": "allowlist", "name": "nobody"}]}, actor="test")


def test_snapshot_reads_the_block_once_and_keeps_it(world, owner_conn):
    chain, bgt = world["chain"], world["tokens"][0]
    block = chain.w3.eth.block_number
    chain.send(bgt.functions.mint(chain.w3.to_checksum_address(world["wallets"]["B1"]), 500 * E18))  # 1,380 now
    rule = {"type": "snapshot", "address": world["bgt"], "min": "1000", "block": block, "symbol": "BGT"}
    assert results(world, rule) == {"A": "true", "B": "false", "C": "unknown", "D": "false"}
    assert checks(world, "B")[0]["missing"] == "needs 120 more BGT"  # as of the block, not today's 1,380
    with owner_conn.cursor() as cur:
        cur.execute("SELECT address FROM gate_snapshot_balances WHERE community_id = %s ORDER BY address",
                    (world["c"].id,))
        kept = [r[0] for r in cur.fetchall()]
    w = world["wallets"]
    assert kept == sorted([w["A1"], w["A2"], w["B1"]])  # C1's failed read is not kept (nor a zero)
    seen = world["proxy"].seen
    assert world["eng"].gating.check(world["c"].id, world["ids"]["B"])["result"] == "false"
    assert world["proxy"].seen == seen  # kept: no chain read the second time
    world["proxy"].fail_matching.clear()
    assert world["eng"].gating.check(world["c"].id, world["ids"]["C"])["result"] == "true"


def test_discord_role_with_a_failed_read(world):
    world["guilds"].failing.add(world["ids"]["C"])
    rule = {"type": "discord_role", "role_id": ROLE}
    # D is not in the guild (404): no role. C's roles could not be read: unknown.
    assert results(world, rule) == {"A": "true", "B": "false", "C": "unknown", "D": "false"}
    world["guilds"].error = BucketTimeout("waited 30 s for a Discord slot")  # paced out: unknown too
    assert results(world, rule)["C"] == "unknown"


def follow(world, anvil, **options):
    """A live watcher on the test chain, caught up to the head (it indexes the rule's asset first
    and, from its next block on, keeps the holdings history held_for reads)."""
    from arrakis_engine.chain.watcher import ChainWatcher

    watcher = ChainWatcher("berachain", Web3ChainReader("berachain", [anvil.url]), world["eng"].db, confirmations=0,
                           **options)

    def step() -> None:
        while watcher.step().to_block < world["chain"].w3.eth.block_number:
            pass
    return step


def later(chain, days: float) -> None:
    """Move the chain's clock forward and mine a block at the new time."""
    chain.w3.provider.make_request("evm_increaseTime", [int(days * 86400)])
    chain.w3.provider.make_request("evm_mine", [])


def test_held_for_reads_the_holdings_history_the_watcher_keeps(world, anvil):
    """held_for from the index's history: unknown while the history is younger than the period;
    true once it covers the period; a dip (a transfer out and back) between two evaluations makes it
    false, seen by the watcher alone; held long enough again, true again."""
    eng, c, ids, chain = world["eng"], world["c"], world["ids"], world["chain"]
    bgt, cs = world["tokens"][0], chain.w3.to_checksum_address
    rule = {"type": "held_for", "address": world["bgt"], "min": "1000", "days": 30, "symbol": "BGT"}
    eng.gating.set_rule(c.id, rule, actor="test")
    step = follow(world, anvil)
    step()  # the rule's asset is indexed; its history starts at the watcher's next block
    later(chain, 1)
    step()
    # A holds 1,120 BGT over two wallets, but the history is a day old: unknown, and kept as they are.
    a = eng.gating.check(c.id, ids["A"])
    assert a["result"] == "unknown"
    assert "does not reach back that far" in a["membership"]["checks"][0]["value"]
    first = eng.eligibility.run(c.id)
    assert sorted(first.unknown) == sorted([ids["A"], ids["C"]]) and first.joined == []
    later(chain, 31)
    step()
    second = eng.eligibility.run(c.id)
    assert second.joined == [ids["A"]] and second.unknown == [ids["C"]]  # C: today's read fails
    b = eng.gating.check(c.id, ids["B"])
    assert b["result"] == "false" and b["membership"]["checks"][0]["missing"] == "needs 120 more BGT"
    # A moves 300 BGT out of A1 and back, between two evaluations: pooled 820, then 1,120 again.
    a1, other = chain.impersonate(world["wallets"]["A1"]), cs(holder(uuid.uuid4().int % 10 ** 9))
    chain.send(bgt.functions.transfer(other, 300 * E18), sender=a1)
    later(chain, 2)
    chain.send(bgt.functions.transfer(a1, 300 * E18), sender=chain.impersonate(other))
    later(chain, 1)
    step()
    a = eng.gating.check(c.id, ids["A"])
    assert a["result"] == "false"
    assert a["membership"]["checks"][0]["missing"] == "needs to hold it 29.0 more day(s)"
    assert eng.members.profile(c.guild_id, ids["A"]).missing == []  # as of the last sync: it admitted A
    eng.eligibility.run(c.id)
    assert eng.members.profile(c.guild_id, ids["A"]).missing == ["needs to hold it 29.0 more day(s)"]
    # The path back: 30 days after the dip, held long enough again.
    later(chain, 30)
    step()
    assert eng.gating.check(c.id, ids["A"])["result"] == "true"
    c_check = eng.gating.check(c.id, ids["C"])  # C's history is known; today's read of C1 fails
    assert c_check["result"] == "unknown" and c_check["membership"]["checks"][0]["value"] == (
        "0 BGT read, some reads failed, held 30.0 of 30 day(s) without a break (unknown: today's read failed)")


def test_held_for_history_survives_an_asset_followed_again_after_a_pause(world, anvil):
    """A rule removed, then set again: meanwhile the watcher did not follow the asset, and A dipped.
    The watcher catches the index up with the indexer (more blocks than it reads in one step),
    which keeps the history block by block: the dip counts, and the history's start is kept."""
    from arrakis_engine.storage.chain_holdings import HoldingsRepository

    eng, c, ids, chain = world["eng"], world["c"], world["ids"], world["chain"]
    bgt, key = world["tokens"][0], f"berachain:erc20:{world['bgt']}"
    rule = {"type": "held_for", "address": world["bgt"], "min": "1000", "days": 3, "symbol": "BGT"}
    eng.gating.set_rule(c.id, rule, actor="test")
    step = follow(world, anvil, max_range=2)
    step()
    later(chain, 0.01)
    step()  # the history starts
    later(chain, 4)
    step()
    assert eng.gating.check(c.id, ids["A"])["result"] == "true"
    with eng.db.tenant(c.id):
        began = HoldingsRepository(eng.db).history_state([key])[key]["history_from_block"]
    eng.gating.remove_rule(c.id, actor="test")
    a1, other = chain.impersonate(world["wallets"]["A1"]), chain.w3.to_checksum_address(holder(uuid.uuid4().int % 10 ** 9))
    chain.send(bgt.functions.transfer(other, 300 * E18), sender=a1)
    later(chain, 0.5)
    chain.send(bgt.functions.transfer(a1, 300 * E18), sender=chain.impersonate(other))
    for _ in range(4):
        chain.w3.provider.make_request("evm_mine", [])
    step()  # the asset is not followed: its index stays behind
    eng.gating.set_rule(c.id, rule, actor="test")
    later(chain, 1)
    step()
    a = eng.gating.check(c.id, ids["A"])
    assert a["result"] == "false" and a["membership"]["checks"][0]["missing"] == "needs to hold it 2.0 more day(s)"
    with eng.db.tenant(c.id) as tx:
        assert HoldingsRepository(eng.db).history_state([key])[key]["history_from_block"] == began
        kept = tx.all("SELECT delta, balance FROM asset_holding_changes WHERE asset_key = %s AND address = %s "
                      "ORDER BY block", (key, world["wallets"]["A1"]))
    assert [(int(r["delta"]), int(r["balance"])) for r in kept][-2:] == [(-300 * E18, 300 * E18), (300 * E18, 600 * E18)]


def test_history_is_kept_only_for_assets_a_held_for_names_and_pruned_past_its_period(world, anvil):
    """No history for an asset no held_for names; a held_for rule starts it; the watcher forgets
    changes older than the longest period and a day (and says the history starts there); a rule
    without held_for on the same asset drops it (none would be kept meanwhile)."""
    from arrakis_engine.storage.chain_holdings import HoldingsRepository

    eng, c, ids, chain = world["eng"], world["c"], world["ids"], world["chain"]
    bgt, key, b1 = world["tokens"][0], f"berachain:erc20:{world['bgt']}", world["wallets"]["B1"]
    ticks = iter(range(0, 10 ** 9, 7200))  # the watcher's clock: two hours per look, so it prunes every step
    step = follow(world, anvil, clock=lambda: float(next(ticks)))

    def kept() -> list:
        with eng.db.tenant(c.id) as tx:
            return [int(r["delta"]) // E18 for r in tx.all(
                "SELECT delta FROM asset_holding_changes WHERE asset_key = %s AND address = %s ORDER BY block",
                (key, b1))]

    def mint(n: int) -> None:
        chain.send(bgt.functions.mint(chain.w3.to_checksum_address(b1), n * E18))

    plain = {"type": "balance", "address": world["bgt"], "min": "1000"}
    eng.gating.set_rule(c.id, plain, actor="test")
    step()
    mint(1)
    step()
    assert kept() == []
    eng.gating.set_rule(c.id, {"type": "held_for", "address": world["bgt"], "min": "1000", "days": 2}, actor="test")
    later(chain, 0.01)
    step()
    mint(2)
    later(chain, 5)
    mint(3)
    step()
    assert kept() == [3]  # the change of five days ago is past 2 + 1 days: forgotten
    with eng.db.tenant(c.id):
        state = HoldingsRepository(eng.db).history_state([key])[key]
    assert (state["last_block_at"] - state["history_from_at"]).total_seconds() == 3 * 86400
    assert eng.gating.check(c.id, ids["A"])["result"] == "true"
    eng.gating.set_rule(c.id, plain, actor="test")
    assert kept() == []
    with eng.db.tenant(c.id):
        assert HoldingsRepository(eng.db).history_state([key]) == {}


def test_held_for_is_unknown_for_an_asset_the_index_does_not_keep(world):
    """Native balances have no Transfer logs, so no index and no history: unknown for everyone who
    holds enough today, false for who does not."""
    eng, c, ids, chain = world["eng"], world["c"], world["ids"], world["chain"]
    chain.set_native_balance(world["wallets"]["A1"], 5 * E18)
    chain.set_native_balance(world["wallets"]["B1"], 0)
    eng.gating.set_rule(c.id, {"type": "held_for", "address": "native", "min": "1", "days": 7}, actor="test")
    assert eng.gating.check(c.id, ids["A"])["result"] == "unknown"
    assert eng.gating.check(c.id, ids["B"])["result"] == "false"


def test_sync_with_membership_and_tier_rules_reads_each_asset_once(world):
    eng, c, ids = world["eng"], world["c"], world["ids"]
    from arrakis_engine.domain.chain import Asset
    eng.eligibility.configure(c.id, Asset("berachain", "erc20", world["bgt"]), purpose="rank")
    # Membership: NFT or 800 BGT, and at least 100 BGT (BGT named three times, with the rank).
    eng.gating.set_rule(c.id, {"all": [
        {"any": [{"type": "nft", "address": world["nft"]}, {"type": "balance", "address": world["bgt"], "min": "800"}]},
        {"type": "balance", "address": world["bgt"], "min": "100"}]}, actor="test")
    # Gold needs token #first (A1 has it); B would be Gold by rank (2nd) but has no NFT: no tier.
    eng.gating.set_rule(c.id, {"type": "nft", "address": world["nft"], "token_ids": [world["first"]]},
                        tier="Gold", actor="test")
    before = world["proxy"].seen
    diff = eng.eligibility.run(c.id)
    with eng.db.tenant(c.id):
        got = {n: (p.tier, p.rank) for n, p in ((n, eng.repos.profiles.by_discord_id(d)) for n, d in ids.items())}
    assert got["A"] == ("Gold", 1)
    assert got["B"] == (None, 2)  # rank 2 is Gold's range, but Gold's rule is false
    assert got["C"] == (None, None) and ids["C"] in diff.unknown  # its reads failed: kept as it was
    assert got["D"] == (None, None)
    # chunk_size 1: one request per wallet for BGT (4 wallets) and for the NFT count (4), one per
    # token id for the owner (1); BGT is read once although the rank and two requirements name it.
    assert world["proxy"].seen - before == diff.chain_requests == 4 + 4 + 1
    # The manifest carries the rules; a changed rule shows as drift, and is a new version.
    eng.synthesis.synthesize(c.id, queued=False)
    with eng.db.tenant(c.id):
        m1 = eng.repos.manifests.latest()
    assert m1.content["gating"]["tiers"]["Gold"]["token_ids"] == [world["first"]]
    assert eng.manifests.publish(c.id, actor="test")[1] is False
    eng.gating.set_rule(c.id, {"type": "nft", "address": world["nft"], "min": 1}, tier="Gold", actor="test")
    gating = [i for i in eng.operations.drift(c.id).items if i.kind == "gating"]
    assert [(i.severity, i.problem.split(";")[0]) for i in gating] == [
        ("medium", f"the gating rules changed after manifest v{m1.version}")]
    eng.synthesis.synthesize(c.id, queued=False)
    with eng.db.tenant(c.id):
        m2 = eng.repos.manifests.latest()
    assert m2.version == m1.version + 1 and m2.content["gating"]["tiers"]["Gold"]["min"] == "1"
    assert [i for i in eng.operations.drift(c.id).items if i.kind == "gating"] == []


def test_tier_rule_for_an_unknown_tier_is_refused(world):
    with pytest.raises(ValidationError, match="no tier 'Platinum'"):
        world["eng"].gating.set_rule(world["c"].id, {"type": "nft", "address": world["nft"]}, tier="Platinum")


def test_gating_tables_are_fenced(world, app_conn, make_community, tmp_path):
    """Another community sees none of these rows, and the app role without a tenant sees nothing."""
    eng, c = world["eng"], world["c"]
    csv = tmp_path / "l.csv"
    csv.write_text(world["wallets"]["A1"] + "\n")
    eng.gating.import_allowlist(c.id, "mine", csv, actor="test")
    eng.gating.set_rule(c.id, {"type": "allowlist", "name": "mine"}, actor="test")
    other = make_community()
    tables = ["gate_rules", "allowlists", "allowlist_entries"]
    with eng.db.tenant(other.id) as tx:
        for t in tables:
            assert tx.scalar(f"SELECT count(*) FROM {t}") == 0
        with pytest.raises(Exception):
            tx.execute("INSERT INTO gate_rules (community_id, rule, checksum, updated_by) VALUES (%s, '{}', %s, 'x')",
                       (c.id, "0" * 64))
    with app_conn.cursor() as cur:
        for t in tables + ["gate_snapshot_balances", "asset_holding_changes"]:
            cur.execute(f"SELECT count(*) FROM {t}")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = %s", (t,))
            assert cur.fetchone()[0] is True
    with eng.db.tenant(other.id):
        assert eng.gating.rules(other.id).membership is None


def test_several_wallets_in_profile_and_unlink_one(world, tmp_path):
    """A member links two wallets (import), sees both in /profile, must name the one to unlink,
    and the primary wallet moves to the one left; the sync then reads only that one."""
    eng, c = world["eng"], world["c"]
    member = "612345678901234567"
    x, y = "0x" + "ab" * 20, "0x" + "cd" * 20
    csv = tmp_path / "w.csv"
    csv.write_text(f"discord_id,wallet_address\n{member},{x}\n{member},{y}\n")
    assert eng.wallets.import_csv(c.id, csv)["linked"] == 2
    assert eng.members.profile(c.guild_id, member).wallets == [x, y]
    with pytest.raises(ValidationError, match="you have 2 wallets linked here; name the one to unlink"):
        eng.members.unlink(c.guild_id, member)
    assert eng.members.unlink(c.guild_id, member, x.upper().replace("0X", "0x")) == x
    with eng.db.tenant(c.id):
        p = eng.repos.profiles.by_discord_id(member)
        assert p.wallet_address == y
    assert eng.members.unlink(c.guild_id, member) == y  # the only one left: no need to name it
    with eng.db.tenant(c.id):
        assert eng.repos.profiles.by_discord_id(member).wallet_address is None
        standing = next(s for s in eng.eligibility.store.standings() if s.discord_id == member)
        assert standing.wallets == ()  # an unlinked wallet is not read any more


def test_allowlist_of_100000_addresses_imports_fast_and_one_more_is_refused(world, tmp_path, owner_conn):
    import time

    eng, c = world["eng"], world["c"]
    csv = tmp_path / "big.csv"
    csv.write_text("address\n" + "".join(f"0x{i:040x}\n" for i in range(100_000)))
    started = time.perf_counter()
    assert eng.gating.import_allowlist(c.id, "big", csv, actor="test")["addresses"] == 100_000
    took = time.perf_counter() - started
    assert took < 15, took  # COPY into a temporary table, then one INSERT ... SELECT
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM allowlist_entries WHERE community_id = %s AND name = 'big'", (c.id,))
        assert cur.fetchone()[0] == 100_000
    csv.write_text("address\n" + "".join(f"0x{i:040x}\n" for i in range(100_001)))
    with pytest.raises(ValidationError, match="more than 100,000 addresses"):
        eng.gating.import_allowlist(c.id, "big", csv, actor="test")
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM allowlist_entries WHERE community_id = %s AND name = 'big'", (c.id,))
        assert cur.fetchone()[0] == 100_000  # the list is as it was


def test_the_watcher_follows_assets_named_in_a_rule(world, anvil, chain):
    """A rule's asset is followed by the live watcher: its transfer marks the community as moved
    (so live sync re-evaluates it); a rank asset named by a rule keeps its purpose; a removed rule's
    asset is no longer followed."""
    from arrakis_engine.domain.chain import Asset
    from arrakis_engine.chain.watcher import ChainWatcher
    from arrakis_engine.storage.chain_holdings import CommunityAssetRepository

    eng, c = world["eng"], world["c"]
    extra = chain.deploy("TestERC20", "Spice", "SPICE", 18)
    eng.eligibility.configure(c.id, Asset("berachain", "erc20", world["bgt"]), purpose="rank")
    eng.gating.set_rule(c.id, {"all": [{"type": "balance", "address": extra.address, "min": "5"},
                                       {"type": "balance", "address": world["bgt"], "min": "1"},
                                       {"type": "snapshot", "address": world["nft"], "standard": "erc721",
                                        "block": 1}]}, actor="test")
    with eng.db.tenant(c.id):
        purposes = {a.key: p for a, p, _ in CommunityAssetRepository(eng.db).all()}
    spice = f"berachain:erc20:{extra.address.lower()}"
    assert purposes == {f"berachain:erc20:{world['bgt']}": "rank", spice: "rule"}  # a snapshot is not followed
    watcher = ChainWatcher("berachain", Web3ChainReader("berachain", [anvil.url]), eng.db, confirmations=0)
    while watcher.step().to_block < chain.w3.eth.block_number:
        pass
    chain.send(extra.functions.mint(chain.w3.to_checksum_address(world["wallets"]["B1"]), 6 * E18))
    report = watcher.step()
    assert report.moved.get(str(c.id)) == {world["wallets"]["B1"]}
    eng.gating.remove_rule(c.id, actor="test")
    with eng.db.tenant(c.id):
        assert {a.key for a, _, _ in CommunityAssetRepository(eng.db).all()} == {f"berachain:erc20:{world['bgt']}"}


@pytest.fixture
def member_route_limit():
    """The fake Discord's member route at 50/s here: this module's subject is not that pace."""
    return (50, 1.0)


def test_a_sync_reads_roles_from_what_arrakis_keeps_not_one_discord_call_per_member(e, discord, make_community):
    """The member role sync reads and stores each member's roles (Discord's answer); an eligibility
    sync under a discord_role rule then makes no Discord call per member: it reads the stored
    answers. A member Arrakis has never seen is unknown (kept as they are), not false."""
    from arrakis_engine.themes import get_theme

    c = make_community(theme="sietch", subscription="premium")
    g = discord.guild(c.guild_id)
    bridge = e.discord.create_role(c.guild_id, name="Bridge", color=0, permissions=0)["id"]
    ids, base = [], 700_000_000_000_000_000 + uuid.uuid4().int % 10 ** 15 * 100
    with e.db.tenant(c.id):
        for rank in range(1, 13):
            d = str(base + rank)
            p = e.repos.profiles.create(discord_id=d)
            e.repos.profiles.update_standing(p.id, tier=get_theme("sietch").tier_for_rank(rank), rank=rank)
            g.members[d] = {bridge} if rank % 3 else set()
            ids.append(d)
    e.synthesis.synthesize(c.id, queued=False)
    e.synthesis.sync_members(c.id, queued=False)
    stranger = str(base + 99)  # joined since: in the server with the role, never read by Arrakis
    with e.db.tenant(c.id):
        e.repos.profiles.create(discord_id=stranger)
    g.members[stranger] = {bridge}
    e.gating.set_rule(c.id, {"type": "discord_role", "role_id": bridge}, actor="test")
    before = len(discord.request_log)
    diff = e.eligibility.run(c.id)
    assert [(m, p) for _, m, p in discord.request_log[before:] if "/members/" in p] == []
    assert diff.unknown == [stranger]
    with_role = [d for i, d in enumerate(ids, 1) if i % 3]
    without = [d for i, d in enumerate(ids, 1) if not i % 3]
    assert sorted(diff.in_grace) == sorted(without)  # no role: out, after the theme's grace period
    assert not set(with_role) & set(diff.in_grace + diff.left + diff.unknown)
    # The one member `gate check` asks Discord about, live (one call): the stranger has the role.
    assert e.gating.check(c.id, stranger)["result"] == "true"
    assert [p for _, m, p in discord.request_log[before:] if "/members/" in p] == [
        f"/api/v10/guilds/{c.guild_id}/members/{stranger}"]
