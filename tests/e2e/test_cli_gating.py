"""``arrakis gate`` and ``arrakis allowlist`` end to end: the real command on PostgreSQL, Redis and
anvil (through an RPC proxy that fails every request naming member C's wallet), a member in each
state, and the exit statuses 0 eligible / 1 not eligible / 3 unknown."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from arrakis_engine.cli import cli
from tests.fakes.rpc_proxy import RpcProxy
from tests.fixtures.chain import holder

E18 = 10 ** 18


@pytest.fixture
def gate_env(database_url, redis_url, tmp_path, engine, chain, anvil):
    bgt = chain.deploy("TestERC20", "BGT", "BGT", 18)
    nft = chain.deploy("TestERC721", "Sietch", "SIETCH")
    base = uuid.uuid4().int % 10 ** 8
    a1, a2, b1, c1 = (holder(base * 10 + i) for i in range(4))
    cs = chain.w3.to_checksum_address
    chain.send(bgt.functions.mintMany([cs(a1), cs(a2), cs(b1), cs(c1)], [600 * E18, 520 * E18, 880 * E18, 9 * E18]))
    chain.send(nft.functions.mint(cs(b1), 1))
    proxy = RpcProxy(anvil.url)
    proxy.fail_matching = {c1[2:]}
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path),
           "RPC_URLS_BERACHAIN": proxy.url}
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    guild = str(10 ** 18 + uuid.uuid4().int % (9 * 10 ** 18))
    cid = json.loads(run("community", "create", "--name", "Gated", "--guild-id", guild, "--json").output)["id"]
    ids = {n: str(610_000_000_000_000_000 + base * 10 + i) for i, n in enumerate("ABC")}
    rows = [(ids["A"], a1), (ids["A"], a2), (ids["B"], b1), (ids["C"], c1)]
    wallets = tmp_path / "wallets.csv"
    wallets.write_text("discord_id,wallet_address\n" + "".join(f"{d},{w}\n" for d, w in rows))
    imported = json.loads(run("wallets", "import", cid, str(wallets), "--json").output)
    assert imported["linked"] == 4 and imported["errors"] == []  # A links two wallets
    yield run, cid, ids, bgt.address.lower(), nft.address.lower(), dict(A1=a1, A2=a2, B1=b1, C1=c1), tmp_path
    proxy.stop()


def write(tmp_path, rule, name="rule.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rule) if not isinstance(rule, str) else rule)
    return str(path)


def test_gate_set_show_check_in_each_state(gate_env):
    run, cid, ids, bgt, nft, w, tmp = gate_env
    rule = {"any": [{"type": "balance", "address": bgt, "min": "1000", "symbol": "BGT"},
                    {"type": "nft", "address": nft}]}
    done = run("gate", "set", cid, write(tmp, rule))
    assert done.exit_code == 0, done.output
    assert "membership rule set: 2 requirement(s)" in done.output
    shown = json.loads(run("gate", "show", cid, "--json").output)
    assert shown["membership"]["any"][0] == {"type": "balance", "chain": "berachain", "address": bgt,
                                             "decimals": 18, "symbol": "BGT", "min": "1000"}
    assert "membership: " in run("gate", "show", cid).output

    a = run("gate", "check", cid, "--member", ids["A"])
    assert a.exit_code == 0, a.output
    assert "true    any[0]: holds at least 1000 BGT; value: 1120 BGT" in a.output  # two wallets pooled
    assert "result: eligible" in a.output

    b = run("gate", "check", cid, "--member", ids["B"], "--json")
    report = json.loads(b.stdout)
    assert b.exit_code == 0 and report["result"] == "true"  # holds the NFT though short of BGT
    first = report["membership"]["checks"][0]
    assert (first["result"], first["value"], first["missing"]) == ("false", "880 BGT", "needs 120 more BGT")

    c = run("gate", "check", cid, "--member", ids["C"])
    assert c.exit_code == 3, c.output
    assert "unknown any[0]" in c.output and "result: unknown" in c.output

    run("gate", "set", cid, write(tmp, {"all": [rule, {"type": "balance", "address": bgt, "min": "1000"}]}))
    b = run("gate", "check", cid, "--member", ids["B"])
    assert b.exit_code == 1 and "result: not eligible" in b.output and "(needs 120 more BGT)" in b.output


@pytest.mark.parametrize("rule, message", [
    ('{"all": [{"type": "balance", "min": "1"}, {"any": [{"type": "balance", "min": "abc"}]}]}',
     "error: all[1].any[0].min: not a number"),
    ('{"all": [', "error: rule: not valid JSON (line 1, column 10"),
    ('{"any": [{"type": "nft"}]}', "error: any[0].address: missing"),
    ('{"not": {"type": "allowlist", "name": "vips"}}', "error: not.name: no allowlist 'vips'"),
])
def test_gate_set_refuses_a_bad_rule_with_its_path(gate_env, rule, message):
    run, cid, ids, bgt, nft, w, tmp = gate_env
    out = run("gate", "set", cid, write(tmp, rule))
    assert out.exit_code == 1
    assert out.stderr.strip().splitlines()[0].startswith(message), out.stderr
    assert "Traceback" not in out.output and len(out.stderr.strip().splitlines()) == 1
    assert json.loads(run("gate", "show", cid, "--json").output)["membership"] is None  # nothing stored


def test_allowlist_import_and_check(gate_env):
    run, cid, ids, bgt, nft, w, tmp = gate_env
    lst = tmp / "vips.csv"
    lst.write_text("wallet_address,note\n" + f"{w['C1']},partner\n{w['A2']},friend\n")
    done = run("allowlist", "import", cid, "vips", str(lst))
    assert done.exit_code == 0 and "allowlist vips: 2 address(es)" in done.output
    run("gate", "set", cid, write(tmp, {"any": [{"type": "allowlist", "name": "vips"},
                                                {"type": "balance", "address": bgt, "min": "1000"}]}))
    assert run("gate", "check", cid, "--member", ids["C"]).exit_code == 0  # on the list: the failed read is moot
    assert run("gate", "check", cid, "--member", ids["B"]).exit_code == 1
    assert "allowlist vips: 2 address(es)" in run("gate", "show", cid).output
    lst.write_text("address\n0xnothex\n")
    bad = run("allowlist", "import", cid, "vips", str(lst))
    assert bad.exit_code == 1 and "nothing imported: line 2: not a wallet address" in bad.stderr
    assert run("gate", "check", cid, "--member", ids["C"]).exit_code == 0  # the list is unchanged
    for empty in ("", "address\n", "\n\n"):  # an empty export would silently empty the list
        lst.write_text(empty)
        refused = run("allowlist", "import", cid, "vips", str(lst))
        assert refused.exit_code == 1 and "holds no address: nothing imported, the list vips is unchanged" in \
            refused.stderr, refused.output
    assert "allowlist vips: 2 address(es)" in run("gate", "show", cid).output


def test_gate_check_errors(gate_env):
    run, cid, ids, bgt, nft, w, tmp = gate_env
    none = run("gate", "check", cid, "--member", ids["A"])
    assert none.exit_code == 1 and "no gating rule" in none.stderr
    run("gate", "set", cid, write(tmp, {"type": "balance", "address": bgt, "min": "1"}))
    missing = run("gate", "check", cid, "--member", "123456789012345678")
    assert missing.exit_code == 1 and "no member 123456789012345678" in missing.stderr
    bad = run("gate", "check", cid, "--member", "robert'); DROP TABLE profiles;--")
    assert bad.exit_code == 2 and "Discord" in bad.stderr and "Traceback" not in bad.output


def test_tier_rules_through_the_cli(gate_env):
    run, cid, ids, bgt, nft, w, tmp = gate_env
    done = run("gate", "set", cid, write(tmp, {"type": "nft", "address": nft}), "--tier", "Gold")
    assert done.exit_code == 0 and "tier Gold rule set: 1 requirement(s)" in done.output
    assert "tier Gold: " in run("gate", "show", cid).output
    b = json.loads(run("gate", "check", cid, "--member", ids["B"], "--json").stdout)
    assert b["tiers"]["Gold"]["result"] == "true" and "membership" not in b
    bad = run("gate", "set", cid, write(tmp, {"type": "nft", "address": nft}), "--tier", "Platinum")
    assert bad.exit_code == 2 and "no tier 'Platinum'; its tiers: Gold, Silver, Bronze" in bad.stderr
    gone = run("gate", "remove", cid, "--tier", "Gold")
    assert gone.exit_code == 0 and json.loads(run("gate", "show", cid, "--json").output)["tiers"] == {}
    assert run("gate", "remove", cid, "--tier", "Gold").exit_code == 1


def test_held_for_through_the_cli_and_the_watcher(gate_env, chain, monkeypatch):
    """`gate set` a held_for rule, `arrakis watcher --once` keeps the holdings history, and `gate
    check` answers from it: 3 (unknown) while the history is younger than the period, 0 once it
    covers it, 1 after a transfer out and back in between, 0 again once held long enough."""
    run, cid, ids, bgt, nft, w, tmp = gate_env
    monkeypatch.setenv("CONFIRMATIONS_BERACHAIN", "0")
    token = chain.w3.eth.contract(address=chain.w3.to_checksum_address(bgt), abi=chain.art["TestERC20"]["abi"])
    assert run("gate", "set", cid, write(tmp, {"type": "held_for", "address": bgt, "min": "1000", "days": 30,
                                              "symbol": "BGT"})).exit_code == 0

    def watch(days: float = 0) -> None:
        if days:
            chain.w3.provider.make_request("evm_increaseTime", [int(days * 86400)])
        chain.w3.provider.make_request("evm_mine", [])
        for _ in range(4):  # position, the rule's asset indexed, then its history from the next block on
            assert run("watcher", "--once").exit_code == 0

    watch()
    young = run("gate", "check", cid, "--member", ids["A"])
    assert young.exit_code == 3 and "does not reach back that far yet" in young.output, young.output
    watch(31)
    assert run("gate", "check", cid, "--member", ids["A"]).exit_code == 0
    assert run("gate", "check", cid, "--member", ids["B"]).exit_code == 1  # 880 BGT
    a2, other = chain.impersonate(w["A2"]), chain.w3.to_checksum_address(holder(uuid.uuid4().int % 10 ** 9))
    chain.send(token.functions.transfer(other, 200 * E18), sender=a2)
    chain.send(token.functions.transfer(a2, 200 * E18), sender=chain.impersonate(other))
    watch(1)
    dipped = run("gate", "check", cid, "--member", ids["A"])
    assert dipped.exit_code == 1 and "(needs to hold it 29.0 more day(s))" in dipped.output, dipped.output
    watch(30)
    assert run("gate", "check", cid, "--member", ids["A"]).exit_code == 0
