"""Evaluating a rule for members, from reads made beforehand (no I/O here).

A member's linked wallets are combined per requirement: balances are summed, NFTs pooled (an
ERC-721 token owned by any of the wallets counts once). A read that failed is UNKNOWN; it makes a
requirement unknown unless the wallets read so far already decide it (balances are never
negative, so a known part that reaches ``min`` is enough, and one above ``max`` too much).

``compile_rule`` turns a rule into one closure per node, so evaluating many members costs a few
dictionary lookups per requirement; ``explain`` gives each requirement's value, truth and what is
missing, for ``gate check`` and ``/profile``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Mapping, NamedTuple, Sequence

from ..domain.chain import UNKNOWN
from .logic import Truth, k_all, k_any, k_not, word
from .rules import Holding, Requirement, Rule


def snapshot_key(asset_key: str, block: int) -> str:
    return f"{asset_key}@{block}"


@dataclass
class Facts:
    """Everything a rule may ask, read beforehand.

    ``balances``: read key (an asset key, or ``snapshot_key`` for a balance at a block) -> wallet ->
    base units or UNKNOWN (a wallet missing from a read's map is UNKNOWN too). ``owners``: ERC-721
    asset key -> token id -> owner or UNKNOWN. ``allowlists``: name -> addresses (a list that does
    not exist: missing, and unknown). ``roles``: discord id -> role ids (missing: unknown).
    ``held``: (held_for requirement key, discord id) -> :class:`Held`, what the holdings index's
    history says of the requirement's period (missing: unknown, e.g. the asset is not indexed)."""

    now: datetime
    balances: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    owners: Mapping[str, Mapping[int, object]] = field(default_factory=dict)
    allowlists: Mapping[str, frozenset] = field(default_factory=dict)
    roles: Mapping[str, frozenset] = field(default_factory=dict)
    held: Mapping[tuple, "Held"] = field(default_factory=dict)


class Held(NamedTuple):
    """A held_for requirement's period for one member, from the holdings history: ``truth`` True
    (met at every change of the period, and the history covers all of it), False (it was not met
    at some moment of the period) or None (met since the history began, which is less than the
    period ago); ``since``: since when it has been met without a break (None: it is not met at
    ``last``, the time of the last indexed block)."""

    truth: Truth
    since: datetime | None
    last: datetime

    @property
    def days(self) -> float:
        """How many days it has been met without a break, as of ``last``."""
        return 0.0 if self.since is None else max((self.last - self.since).total_seconds() / 86400, 0.0)


def held_history(holding: Holding, start: Mapping[str, int], changes: Sequence[tuple], since: datetime,
                 members: Sequence[tuple[str, Sequence[str]]], *, covered: bool, last: datetime) -> dict[str, Held]:
    """discord id -> :class:`Held` from the wallets' balances at ``since`` and their changes after
    it (``(at, block, address, balance after)``, oldest first). Wallets are pooled; the changes of
    one block are applied together (a move between two of a member's wallets is no dip)."""
    mn, mx = holding.min, holding.max
    owner: dict[str, list[int]] = {}
    totals: list[int] = []
    get = start.get
    for i, (_, wallets) in enumerate(members):
        if len(wallets) == 1:
            totals.append(get(wallets[0], 0))
        else:
            totals.append(sum(get(w, 0) for w in wallets))
        for w in wallets:
            o = owner.get(w)
            if o is None:
                owner[w] = [i]
            else:
                o.append(i)
    met = [mn <= t and (mx is None or t <= mx) for t in totals]
    failed = [not m for m in met]
    run_from: list = [since] * len(members)  # since when each member has met it without a break
    balances = dict(start)
    n, i = len(changes), 0
    while i < n:
        at, block = changes[i][0], changes[i][1]
        touched: list[int] = []
        while i < n and changes[i][1] == block:
            address, after = changes[i][2], changes[i][3]
            delta = after - balances.get(address, 0)
            balances[address] = after
            for m in owner.get(address, ()):
                totals[m] += delta
                touched.append(m)
            i += 1
        for m in touched:  # after the whole block (a member twice is checked twice, the same way)
            t = totals[m]
            if mn <= t and (mx is None or t <= mx):
                if not met[m]:
                    run_from[m] = at
                    met[m] = True
            else:
                failed[m] = True
                met[m] = False
    whole = True if covered else None
    return {discord_id: Held(False if failed[m] else whole, run_from[m] if met[m] else None, last)
            for m, (discord_id, _) in enumerate(members)}


@dataclass(frozen=True)
class Check:
    """One requirement for one member: its value for people, true/false/unknown, what is missing."""

    path: str
    type: str
    requirement: str
    value: str
    truth: Truth
    missing: str | None = None

    def as_dict(self) -> dict:
        return {"path": self.path, "type": self.type, "requirement": self.requirement, "value": self.value,
                "result": word(self.truth), "missing": self.missing}


# --- pooled holdings ------------------------------------------------------------------------------


def pooled(holding: Holding, facts: Facts, wallets: Sequence[str], read_key: str | None = None) -> tuple:
    """(known total, any unknown) over the member's wallets."""
    if holding.token_ids:
        owners = facts.owners.get(holding.asset.key, {})
        mine = set(wallets)
        have = unknown = 0
        for t in holding.token_ids:
            o = owners.get(t, UNKNOWN)
            if o is UNKNOWN:
                unknown += 1
            elif o in mine:
                have += 1
        if not mine:
            return 0, False  # no wallet: no token, whoever owns the unread ones
        return have, have < holding.min <= have + unknown  # unknown only while the failed reads could decide it
    values = facts.balances.get(read_key or holding.asset.key, {})
    total = 0
    unknown = False
    for w in wallets:
        v = values.get(w, UNKNOWN)
        if v is UNKNOWN:
            unknown = True
        else:
            total += v
    return total, unknown


def holding_truth(holding: Holding, total: int, unknown: bool) -> Truth:
    if holding.max is not None and total > holding.max:
        return False  # balances are never negative: the rest can only add
    if total >= holding.min:
        return None if (unknown and holding.max is not None) else True
    return None if unknown else False


def _holds(holding: Holding, read_key: str | None = None) -> Callable:
    mn, mx, ids = holding.min, holding.max, holding.token_ids
    key = read_key or holding.asset.key
    if ids:
        def by_ids(facts: Facts, discord_id: str, wallets: Sequence[str]) -> Truth:
            return holding_truth(holding, *pooled(holding, facts, wallets))
        return by_ids

    def by_sum(facts: Facts, discord_id: str, wallets: Sequence[str]) -> Truth:
        values = facts.balances.get(key) or {}
        total = 0
        unknown = False
        for w in wallets:
            v = values.get(w, UNKNOWN)
            if v is UNKNOWN:
                unknown = True
            else:
                total += v
        if mx is not None and total > mx:
            return False
        if total >= mn:
            return None if (unknown and mx is not None) else True
        return None if unknown else False
    return by_sum


def held_for_truth(req: Requirement, now_truth: Truth, facts: Facts, discord_id: str) -> Truth:
    """Met now, and at every moment of the last ``days`` days as the holdings history saw them;
    unknown while the history does not cover the whole period (or the asset is not indexed)."""
    if now_truth is False:
        return False
    held = facts.held.get((req.key, discord_id))
    if held is not None and held.truth is False:
        return False
    if now_truth is None or held is None:
        return None
    return held.truth


def _leaf(req: Requirement) -> Callable:
    if req.kind == "allowlist":
        name = req.name

        def allowlisted(facts: Facts, discord_id: str, wallets: Sequence[str]) -> Truth:
            members = facts.allowlists.get(name)
            if members is None:
                return None
            return any(w in members for w in wallets)
        return allowlisted
    if req.kind == "discord_role":
        role = req.role_id

        def has_role(facts: Facts, discord_id: str, wallets: Sequence[str]) -> Truth:
            roles = facts.roles.get(discord_id)
            return None if roles is None else role in roles
        return has_role
    if req.kind == "snapshot":
        return _holds(req.holding, snapshot_key(req.holding.asset.key, req.block))
    if req.kind == "held_for":
        now = _holds(req.holding)

        def held(facts: Facts, discord_id: str, wallets: Sequence[str]) -> Truth:
            return held_for_truth(req, now(facts, discord_id, wallets), facts, discord_id)
        return held
    return _holds(req.holding)


def compile_node(node) -> Callable[[Facts, str, Sequence[str]], Truth]:
    if isinstance(node, Requirement):
        return _leaf(node)
    parts = [compile_node(p) for p in node.parts]
    if node.op == "not":
        inner = parts[0]
        return lambda f, d, w: k_not(inner(f, d, w))
    if node.op == "all":
        return lambda f, d, w: k_all(p(f, d, w) for p in parts)  # lazy: stops at the first false
    return lambda f, d, w: k_any(p(f, d, w) for p in parts)  # lazy: stops at the first true


def compile_rule(rule: Rule) -> Callable[[Facts, str, Sequence[str]], Truth]:
    """``fn(facts, discord_id, wallets) -> True / False / None``."""
    return compile_node(rule.root)


def evaluate(rule: Rule, facts: Facts, discord_id: str, wallets: Sequence[str]) -> Truth:
    return compile_rule(rule)(facts, discord_id, tuple(wallets))


# --- explaining -------------------------------------------------------------------------------------


def explainer(rule: Rule) -> Callable[[Facts, str, Sequence[str]], tuple[Truth, list[Check]]]:
    """``explain`` for one rule, its requirements compiled once (for many members)."""
    leaves = {id(r): _leaf(r) for r in rule.requirements()}
    described = {id(r): r.describe() for r in rule.requirements()}

    def run(facts: Facts, discord_id: str, wallets: Sequence[str]) -> tuple[Truth, list[Check]]:
        wallets = tuple(wallets)
        checks: list[Check] = []

        def walk(node, negated: bool) -> Truth:
            if isinstance(node, Requirement):
                truth = leaves[id(node)](facts, discord_id, wallets)
                value, shortfall = _value(node, truth, facts, discord_id, wallets)
                if negated:  # under a `not`, what is missing is *not* meeting it
                    missing = f"must not: {described[id(node)]}" if truth is True else None
                else:
                    missing = (shortfall or f"needs: {described[id(node)]}") if truth is False else None
                checks.append(Check(node.path, node.kind, described[id(node)], value, truth, missing))
                return truth
            parts = [walk(p, negated ^ (node.op == "not")) for p in node.parts]  # every requirement is shown
            if node.op == "not":
                return k_not(parts[0])
            return k_all(parts) if node.op == "all" else k_any(parts)

        return walk(rule.root, False), checks
    return run


def explain(rule: Rule, facts: Facts, discord_id: str, wallets: Sequence[str]) -> tuple[Truth, list[Check]]:
    """The result and one Check per requirement, in the rule's order."""
    return explainer(rule)(facts, discord_id, wallets)


def _value(req: Requirement, truth: Truth, facts: Facts, discord_id: str, wallets) -> tuple[str, str | None]:
    if req.kind == "allowlist":
        members = facts.allowlists.get(req.name)
        if members is None:
            return "unknown (no such allowlist)", None
        on = [w for w in wallets if w in members]
        return (f"{on[0]} is on it" if on else "no linked wallet is on it"), (
            None if on else f"needs a wallet on the allowlist '{req.name}'")
    if req.kind == "discord_role":
        roles = facts.roles.get(discord_id)
        if roles is None:
            return "unknown (the member's roles could not be read)", None
        return ("has it" if req.role_id in roles else "does not have it"), (
            None if req.role_id in roles else f"needs the Discord role {req.role_id}")
    h = req.holding
    key = snapshot_key(h.asset.key, req.block) if req.kind == "snapshot" else None
    total, unknown = pooled(h, facts, wallets, key)
    unit = h.unit()
    if not wallets:
        return "no linked wallet", f"needs a linked wallet that {req.describe()[0].lower()}{req.describe()[1:]}"
    amount = h.amount(total)
    value = f"{amount} {unit}" + (" read, some reads failed" if unknown else "")
    if truth is None and req.kind != "held_for":
        return (f"unknown (a read failed; {amount} {unit} read)" if total else "unknown (a read failed)"), None
    missing = None
    if total < h.min and not unknown:
        missing = f"needs {h.amount(h.min - total)} more {unit}"
    elif h.max is not None and total > h.max:
        missing = f"holds {h.amount(total - h.max)} {unit} above the maximum"
    if req.kind == "held_for" and missing is None:
        held = facts.held.get((req.key, discord_id))
        if held is None:
            value += " (unknown: the holdings index keeps no history of this asset yet)"
        else:
            value += f", held {min(held.days, req.days):.1f} of {req.days} day(s) without a break"
            if truth is False:
                missing = f"needs to hold it {max(req.days - held.days, 0.0):.1f} more day(s)"
            elif truth is None and held.truth is None:
                value += " (unknown: the holdings history does not reach back that far yet)"
            elif truth is None:
                value += " (unknown: today's read failed)"
    return value, missing


# --- many members at once -----------------------------------------------------------------------


def _totals(values: Mapping[str, object], wallet_lists) -> list[tuple[int, bool]]:
    """(known total, any unknown) per member over their wallets."""
    get = values.get
    out: list[tuple[int, bool]] = []
    append = out.append
    for ws in wallet_lists:
        if len(ws) == 1:
            v = get(ws[0], UNKNOWN)
            append((0, True) if v is UNKNOWN else (v, False))
            continue
        total, unknown = 0, False
        for w in ws:
            v = get(w, UNKNOWN)
            if v is UNKNOWN:
                unknown = True
            else:
                total += v
        append((total, unknown))
    return out


def _holding_many(holding: Holding, facts: Facts, wallet_lists: Sequence[Sequence[str]], cache: dict,
                  read_key: str | None = None) -> list[Truth]:
    if holding.token_ids:
        return [holding_truth(holding, *pooled(holding, facts, ws)) for ws in wallet_lists]
    key = read_key or holding.asset.key
    tu = cache.get(key)
    if tu is None:  # summed once per asset, however many requirements name it
        tu = cache[key] = _totals(facts.balances.get(key) or {}, wallet_lists)
    mn, mx = holding.min, holding.max
    if mx is None:
        return [True if t >= mn else (None if u else False) for t, u in tu]
    return [False if t > mx else ((None if u else True) if t >= mn else (None if u else False)) for t, u in tu]


def _leaf_many(req: Requirement, facts: Facts, ids: Sequence[str], wallet_lists, cache: dict) -> list[Truth]:
    if req.kind == "allowlist":
        members = facts.allowlists.get(req.name)
        if members is None:
            return [None] * len(ids)
        return [any(w in members for w in ws) if len(ws) != 1 else ws[0] in members for ws in wallet_lists]
    if req.kind == "discord_role":
        role, roles = req.role_id, facts.roles
        return [None if roles.get(d) is None else role in roles[d] for d in ids]
    if req.kind == "snapshot":
        return _holding_many(req.holding, facts, wallet_lists, cache, snapshot_key(req.holding.asset.key, req.block))
    now = _holding_many(req.holding, facts, wallet_lists, cache)
    if req.kind == "held_for":
        return [held_for_truth(req, t, facts, d) for t, d in zip(now, ids)]
    return now


def _many(node, facts: Facts, ids, wallet_lists, cache: dict) -> list[Truth]:
    if isinstance(node, Requirement):
        return _leaf_many(node, facts, ids, wallet_lists, cache)
    cols = [_many(p, facts, ids, wallet_lists, cache) for p in node.parts]
    if node.op == "not":
        return [None if x is None else not x for x in cols[0]]
    if len(cols) == 1:
        return cols[0]
    if node.op == "all":
        return [False if False in t else (None if None in t else True) for t in zip(*cols)]
    return [True if True in t else (None if None in t else False) for t in zip(*cols)]


def evaluate_many(rule: Rule, facts: Facts, members: Sequence[tuple[str, Sequence[str]]]) -> list[Truth]:
    """The rule for many ``(discord id, wallets)`` at once: each requirement over every member in
    one loop, then all/any/not over the columns (the same answers as :func:`evaluate`)."""
    ids = [d for d, _ in members]
    wallet_lists = [tuple(ws) for _, ws in members]
    return _many(rule.root, facts, ids, wallet_lists, {})
