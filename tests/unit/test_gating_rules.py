"""Gating rules: validation with one-line errors naming the JSON path, Kleene logic (property
tests), wallet pooling, and the explanation a member sees."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arrakis_engine.domain.chain import UNKNOWN
from arrakis_engine.gating.evaluate import (Facts, compile_rule, evaluate, evaluate_many, explain, held_history,
                                            snapshot_key)
from arrakis_engine.gating.logic import k_all, k_any, k_not
from arrakis_engine.gating.rules import MAX_DEPTH, MAX_REQUIREMENTS, RuleError, parse_rule

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
TOKEN = "0x" + "b" * 40
NFT = "0x" + "c" * 40
W1, W2, W3 = "0x" + "1" * 40, "0x" + "2" * 40, "0x" + "3" * 40


def parse(rule):
    return parse_rule(rule, default_chain="berachain")


def bal(min_, max_=None, **extra):
    r = {"type": "balance", "address": TOKEN, "min": min_, "symbol": "BGT", **extra}
    if max_ is not None:
        r["max"] = max_
    return r


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule, message", [
    ({"all": [bal("1"), {"any": [bal("abc")]}]}, "all[1].any[0].min: not a number"),
    ({"all": [bal("1"), {"any": [bal("1", "x")]}]}, "all[1].any[0].max: not a number"),
    ({"any": []}, "any: an empty list"),
    ({"all": {"type": "balance"}}, "all: expected a list"),
    ({"not": [bal("1")]}, "not: expected an object"),
    ([1], "rule: expected an object"),
    ({"all": [{"type": "nope"}]}, "all[0].type: unknown requirement type \"nope\""),
    ({"all": [bal("1", extra=1)]}, "all[0].extra: not a field of a balance requirement"),
    (bal("-1"), "min: must not be negative"),
    (bal("1.0000001", decimals=6), "min: more decimal places than the token's 6"),
    (bal("10", "5"), "max: smaller than min"),
    ({"type": "balance", "address": "0x12", "min": "1"}, "address: expected \"native\" or a contract address"),
    ({"type": "balance", "chain": "mars", "min": "1"}, "chain: unknown chain \"mars\""),
    ({"type": "nft", "min": 1}, "address: missing"),
    ({"type": "nft", "address": NFT, "standard": "erc1155"}, "token_id: missing"),
    ({"type": "nft", "address": NFT, "token_ids": [1, -2]}, "token_ids[1]: expected a whole number"),
    ({"type": "nft", "address": NFT, "token_ids": [1], "min": 2}, "min: more than the 1 token id(s) listed"),
    ({"type": "allowlist", "name": "Bad Name"}, "name: expected a list name"),
    ({"type": "snapshot", "min": "1"}, "block: missing"),
    ({"type": "held_for", "min": "1", "days": 0}, "days: must be at least 1"),
    ({"type": "discord_role", "role_id": "12"}, "role_id: expected a Discord role id"),
    ({"all": [bal("1")], "x": 1}, "rule: an \"all\" object takes nothing else (found x)"),
])
def test_errors_name_the_path(rule, message):
    with pytest.raises(RuleError) as err:
        parse(rule)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_depth_and_size_limits():
    deep = bal("1")
    for _ in range(MAX_DEPTH):
        deep = {"not": deep}
    parse(deep)  # exactly at the limit
    with pytest.raises(RuleError, match="nested deeper than 5"):
        parse({"not": deep})
    parse({"any": [bal(str(i)) for i in range(MAX_REQUIREMENTS)]})
    with pytest.raises(RuleError, match=r"any\[50\]: more than 50 requirements"):
        parse({"any": [bal(str(i)) for i in range(MAX_REQUIREMENTS + 1)]})


def test_an_oversized_or_broken_file_is_one_line():
    from arrakis_engine.gating.rules import parse_rule_text
    with pytest.raises(RuleError, match="^rule: larger than 64 KB"):
        parse_rule_text(" " * (65 * 1024) + "{}")
    with pytest.raises(RuleError, match=r"^rule: not valid JSON \(line 1, column 2"):
        parse_rule_text("{x")
    # a key written twice: JSON keeps the last silently ("min": "1" then "min": "1000" is 1000)
    with pytest.raises(RuleError, match=r"^rule: the key 'min' is written twice in one object \(a 'balance' "):
        parse_rule_text('{"type": "balance", "address": "0x' + "1" * 40 + '", "min": "1", "min": "1000"}')
    with pytest.raises(RuleError, match=r"the key 'any' is written twice"):
        parse_rule_text('{"all": [{"any": [], "any": []}]}')
    for depth in (5000, 7000):  # parsed and refused at its path, or too deep for the JSON reader
        with pytest.raises(RuleError, match=r"^(rule|not(\.not)+): nested deeper than 5"):
            parse_rule_text('{"not": ' * depth + "{}" + "}" * depth)


def test_chain_needed_without_a_default():
    with pytest.raises(RuleError, match="chain: missing"):
        parse_rule(bal("1"))


def test_canonical_form_is_stable_and_round_trips():
    rule = parse({"any": [bal(1000), {"type": "nft", "address": NFT.upper().replace("0X", "0x")}]})
    again = parse(json.loads(rule.canonical()))
    assert again.canonical() == rule.canonical()
    assert rule.as_json()["any"][0]["min"] == "1000"
    assert rule.as_json()["any"][1] == {"type": "nft", "chain": "berachain", "address": NFT, "standard": "erc721",
                                        "min": "1"}


# --- Kleene logic (property tests) ------------------------------------------------------------------

truths = st.sampled_from([True, False, None])


@given(truths)
def test_double_negation(x):
    assert k_not(k_not(x)) == x


@given(truths)
def test_unknown_never_becomes_false_by_negation(x):
    if x is None:
        assert k_not(x) is None


@given(st.lists(truths, min_size=1, max_size=6))
def test_de_morgan(xs):
    assert k_not(k_all(xs)) == k_any([k_not(x) for x in xs])
    assert k_not(k_any(xs)) == k_all([k_not(x) for x in xs])


@given(st.lists(truths, min_size=1, max_size=6))
def test_unknown_is_between_false_and_true(xs):
    """Replacing an unknown by either truth value never contradicts a known result."""
    result = k_all(xs)
    for fill in (True, False):
        filled = k_all([fill if x is None else x for x in xs])
        if result is not None:
            assert filled == result


# Rules over three allowlist leaves whose truth is set per example, to test evaluation end to end.
LEAVES = ["a", "b", "c"]


def leaf_rules(depth: int = 3):
    leaf = st.sampled_from(LEAVES).map(lambda n: {"type": "allowlist", "name": n})
    return st.recursive(leaf, lambda inner: st.one_of(
        inner.map(lambda r: {"not": r}),
        st.lists(inner, min_size=1, max_size=3).map(lambda rs: {"all": rs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda rs: {"any": rs})), max_leaves=8)


def facts_for(values: dict) -> Facts:
    """Allowlist n holds W1 when True, not when False, and is missing (unknown) when None."""
    return Facts(NOW, allowlists={n: frozenset([W1] if v else []) for n, v in values.items() if v is not None})


def reference(rule, values):
    if "type" in rule:
        return values[rule["name"]]
    if "not" in rule:
        return k_not(reference(rule["not"], values))
    op = k_all if "all" in rule else k_any
    return op([reference(r, values) for r in next(iter(rule.values()))])


def depth_of(rule) -> int:
    if "type" in rule:
        return 0
    if "not" in rule:
        return 1 + depth_of(rule["not"])
    return 1 + max(depth_of(r) for r in next(iter(rule.values())))


@settings(max_examples=300, deadline=None)
@given(leaf_rules(), st.fixed_dictionaries({n: truths for n in LEAVES}))
def test_evaluation_follows_kleene(rule, values):
    if depth_of(rule) > MAX_DEPTH:
        return
    parsed = parse(rule)
    facts = facts_for(values)
    got = evaluate(parsed, facts, "1", [W1])
    assert got == reference(rule, values)
    assert evaluate(parse({"not": {"not": rule}}) if depth_of(rule) <= MAX_DEPTH - 2 else parsed,
                    facts, "1", [W1]) == got
    truth, checks = explain(parsed, facts, "1", [W1])
    assert truth == got and len(checks) == len(parsed.requirements())
    assert evaluate_many(parsed, facts, [("1", [W1]), ("2", [W2]), ("3", [])]) == [
        got, evaluate(parsed, facts, "2", [W2]), evaluate(parsed, facts, "3", [])]
    # Knowing more (an unknown list turning true or false) never flips a known result.
    if got is not None:
        for fill in (True, False):
            more = {n: (fill if v is None else v) for n, v in values.items()}
            assert evaluate(parsed, facts_for(more), "1", [W1]) == got


# --- wallet pooling ----------------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=10 ** 24)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(amounts, st.just(UNKNOWN)), min_size=0, max_size=4), amounts, st.one_of(st.none(), amounts))
def test_balances_are_summed_over_wallets(values, minimum, maximum):
    if maximum is not None and maximum < minimum:
        minimum, maximum = maximum, minimum
    wallets = [f"0x{i:040x}" for i in range(len(values))]
    rule = parse({"type": "balance", "address": TOKEN, "decimals": 0, "min": str(minimum),
                  **({"max": str(maximum)} if maximum is not None else {})})
    facts = Facts(NOW, balances={rule.assets()[0].key: dict(zip(wallets, values))})
    got = evaluate(rule, facts, "1", wallets)
    assert evaluate_many(rule, facts, [("1", wallets), ("2", wallets[:1])]) == [
        got, evaluate(rule, facts, "2", wallets[:1])]
    known = [v for v in values if v is not UNKNOWN]
    if len(known) == len(values):
        total = sum(known)
        assert got == (minimum <= total and (maximum is None or total <= maximum))
    else:
        # Sound: whatever the failed reads were, the answer it gives holds.
        for fill in (0, 10 ** 25):
            total = sum(known) + fill * (len(values) - len(known))
            truth = minimum <= total and (maximum is None or total <= maximum)
            assert got is None or got == truth


@given(st.sets(st.integers(0, 9), max_size=10), st.sets(st.integers(0, 9), max_size=10), st.integers(1, 3))
def test_nfts_are_pooled_over_wallets(first, second, minimum):
    ids = list(range(10))
    owners = {t: (W1 if t in first else W2 if t in second else W3) for t in ids}
    rule = parse({"type": "nft", "address": NFT, "token_ids": ids[:5], "min": minimum})
    facts = Facts(NOW, owners={rule.assets()[0].key: owners})
    pooled = sum(1 for t in ids[:5] if owners[t] in (W1, W2))
    assert evaluate(rule, facts, "1", [W1, W2]) == (pooled >= minimum)
    # Pooling never loses: two wallets together meet whatever one of them meets.
    if evaluate(rule, facts, "1", [W1]):
        assert evaluate(rule, facts, "1", [W1, W2])


@settings(max_examples=200, deadline=None)
@given(st.tuples(st.integers(0, 20), st.integers(0, 20)),
       st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=6), st.integers(1, 30), st.booleans())
def test_held_for_pools_wallets_block_by_block(start, blocks, minimum, covered):
    """The history of two wallets of one member: held_for is false exactly when the pooled
    balance fell below ``min`` at the start or after some block, else true when the history
    covers the period, unknown when it does not; the changes of one block count together."""
    rule = parse({"type": "held_for", "address": TOKEN, "decimals": 0, "min": str(minimum), "days": 30})
    since = NOW - timedelta(days=30)
    changes = []
    for i, (b1, b2) in enumerate(blocks):
        at = since + timedelta(days=1 + i)
        changes += [(at, 100 + i, W1, b1), (at, 100 + i, W2, b2)]
    got = held_history(rule.requirements()[0].holding, {W1: start[0], W2: start[1]}, changes, since, [("1", (W1, W2))],
                       covered=covered, last=NOW)["1"]
    pooled = [sum(start)] + [b1 + b2 for b1, b2 in blocks]
    assert got.truth == (False if min(pooled) < minimum else (True if covered else None))
    if pooled[-1] >= minimum:  # held without a break since the last block it was not met
        broke = [i for i, p in enumerate(pooled) if p < minimum]
        began = since if not broke else since + timedelta(days=1 + broke[-1])
        assert got.days == pytest.approx((NOW - began).total_seconds() / 86400)
    else:
        assert got.days == 0


def test_failed_owner_read_is_unknown_unless_already_met():
    rule = parse({"type": "nft", "address": NFT, "token_ids": [1, 2, 3], "min": 2})
    key = rule.assets()[0].key
    assert evaluate(rule, Facts(NOW, owners={key: {1: W1, 2: UNKNOWN, 3: W3}}), "1", [W1]) is None
    assert evaluate(rule, Facts(NOW, owners={key: {1: W1, 2: UNKNOWN, 3: W1}}), "1", [W1]) is True
    assert evaluate(rule, Facts(NOW, owners={key: {1: W3, 2: UNKNOWN, 3: W3}}), "1", [W1]) is False


def test_snapshot_reads_the_block_and_held_for_needs_the_record():
    rule = parse({"all": [{"type": "snapshot", "address": TOKEN, "decimals": 0, "min": "5", "block": 7},
                          {"type": "held_for", "address": TOKEN, "decimals": 0, "min": "5", "days": 30}]})
    snap, held = rule.requirements()
    key = rule.assets()[0].key
    balances = {key: {W1: 10}, snapshot_key(key, 7): {W1: 5}}
    since = NOW - timedelta(days=30)
    members = [("1", (W1,))]

    def history(start, changes, covered=True):
        return {(held.key, d): v for d, v in held_history(held.holding, start, changes, since, members,
                                                           covered=covered, last=NOW).items()}
    # The history covers the 30 days and the balance never fell below 5: true.
    f = Facts(NOW, balances=balances, held=history({W1: 10}, [(NOW - timedelta(days=5), 90, W1, 12)]))
    assert evaluate(rule, f, "1", [W1]) is True
    # A dip to 4 twenty days ago, back to 10 ten days ago: false, with the days missing.
    f.held = history({W1: 10}, [(NOW - timedelta(days=20), 50, W1, 4), (NOW - timedelta(days=10), 70, W1, 10)])
    truth, checks = explain(rule, f, "1", [W1])
    assert truth is False and checks[1].missing == "needs to hold it 20.0 more day(s)"
    # The history itself is younger than 30 days: unknown, not false (unless it saw a dip).
    f.held = history({W1: 10}, [], covered=False)
    assert evaluate(rule, f, "1", [W1]) is None
    assert "does not reach back" in explain(rule, f, "1", [W1])[1][1].value
    f.held = history({W1: 3}, [(NOW - timedelta(days=1), 99, W1, 10)], covered=False)
    assert evaluate(rule, f, "1", [W1]) is False
    # No history of the asset at all (not indexed): unknown.
    assert evaluate(rule, Facts(NOW, balances=balances), "1", [W1]) is None
    # The snapshot balance is what counts, not today's.
    f2 = Facts(NOW, balances={key: {W1: 100}, snapshot_key(key, 7): {W1: 4}})
    assert evaluate(parse({"type": "snapshot", "address": TOKEN, "decimals": 0, "min": "5", "block": 7}),
                    f2, "1", [W1]) is False


def test_explain_says_how_much_is_missing():
    rule = parse({"all": [bal("1000"), {"type": "allowlist", "name": "partners"},
                          {"type": "discord_role", "role_id": "123456789012345678"}]})
    key = rule.assets()[0].key
    facts = Facts(NOW, balances={key: {W1: 500 * 10 ** 18, W2: 380 * 10 ** 18}},
                  allowlists={"partners": frozenset([W2])}, roles={})
    truth, checks = explain(rule, facts, "42", [W1, W2])
    assert truth is False  # short of BGT decides it, whatever the role (which could not be read)
    assert [c.truth for c in checks] == [False, True, None]
    assert checks[0].missing == "needs 120 more BGT" and checks[0].value == "880 BGT"
    assert checks[1].value == f"{W2} is on it"
    assert compile_rule(rule)(facts, "42", (W1, W2)) is False
    facts.balances = {key: {W1: 500 * 10 ** 18, W2: 500 * 10 ** 18}}
    assert explain(rule, facts, "42", [W1, W2])[0] is None  # now only the unread role is open


def test_under_not_what_is_missing_is_not_meeting_it():
    rule = parse({"all": [{"not": {"type": "balance", "address": "native", "min": "5"}},
                          {"type": "allowlist", "name": "vip"}]})
    key = rule.assets()[0].key
    facts = Facts(NOW, balances={key: {W1: 10 * 10 ** 18}}, allowlists={"vip": frozenset()})
    truth, checks = explain(rule, facts, "1", [W1])
    assert truth is False
    assert [c.missing for c in checks] == ["must not: holds at least 5 BERA", "needs a wallet on the allowlist 'vip'"]
    facts.balances = {key: {W1: 10 ** 18}}
    facts.allowlists = {"vip": frozenset([W1])}
    truth, checks = explain(rule, facts, "1", [W1])
    assert truth is True and [c.missing for c in checks] == [None, None]
    assert explain(rule, facts, "1", [])[1][0].missing is None  # no wallet: nothing held, the `not` is met
