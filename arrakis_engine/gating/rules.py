"""The rule model: parsing, validation and the canonical JSON of a gating rule.

A rule is a JSON expression::

    {"all": [R, ...]}   {"any": [R, ...]}   {"not": R}   or one requirement

nested at most ``MAX_DEPTH`` operators deep, with at most ``MAX_REQUIREMENTS`` requirements in all.
A requirement is an object with a ``type``:

- ``balance``: ``address`` ("native" or omitted for the chain's coin, else an ERC-20 contract),
  ``min`` and optional ``max`` (decimal strings in token units), ``decimals`` (ERC-20, default 18),
  ``symbol`` (for people), ``chain`` (default: the community's chain);
- ``nft``: ``address``, ``standard`` ``erc721`` (default) or ``erc1155``; ERC-721: ``min`` (a count,
  default 1) or ``token_ids`` (owns at least ``min`` of them); ERC-1155: ``token_id`` and ``min``;
- ``allowlist``: ``name`` of a list imported with ``arrakis allowlist import``;
- ``snapshot``: a balance requirement (``address``, ``min``, ``max``, ``decimals``, ``symbol``, or an
  NFT's ``standard``/``token_id``) read at ``block`` (read once, kept);
- ``held_for``: a balance requirement met continuously for at least ``days`` days;
- ``discord_role``: ``role_id``, a role the member has in the guild.

Every error is one line naming the JSON path of the bad value, e.g. ``all[1].any[0].min: not a number``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, Union

from ..domain.chain import Asset
from ..errors import ValidationError
from ..domain.chain import CHAINS

MAX_DEPTH = 5
MAX_REQUIREMENTS = 50
MAX_TOKEN_IDS = 100
NATIVE_SYMBOLS = {"berachain": "BERA", "ethereum": "ETH", "arbitrum": "ETH", "base": "ETH", "polygon": "POL",
                  "optimism": "ETH", "avalanche": "AVAX"}
REQUIREMENT_TYPES = ("balance", "nft", "allowlist", "snapshot", "held_for", "discord_role")
_ALLOWLIST_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class RuleError(ValidationError):
    """A rule that cannot be used; the message starts with the JSON path of the bad value."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path or "rule"
        self.problem = problem
        super().__init__(f"{self.path}: {problem}", field="rule")


# --- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """How much of one asset a member's wallets hold together, between ``min`` and ``max`` (base
    units; ERC-721 and ERC-1155: a count). ``token_ids``: ERC-721 only these tokens count."""

    asset: Asset
    min: int
    max: int | None = None
    token_ids: tuple[int, ...] = ()

    @property
    def read_key(self) -> str:
        """What is read: the asset, or the owners of some ERC-721 tokens."""
        return self.asset.key + (":ids" if self.token_ids else "")

    def unit(self) -> str:
        if self.asset.kind in ("erc721", "erc1155"):
            return self.asset.symbol or "NFT"
        return self.asset.symbol or (NATIVE_SYMBOLS.get(self.asset.chain, "native coin")
                                     if self.asset.kind == "native" else "tokens")

    def amount(self, base: int) -> str:
        """Base units (never negative) in token units, for people: no exponent, no trailing zeros."""
        decimals = 0 if self.asset.kind in ("erc721", "erc1155") else self.asset.decimals
        if decimals == 0:
            return str(base)
        whole, frac = divmod(base, 10 ** decimals)
        return str(whole) if frac == 0 else f"{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"

    def describe(self) -> str:
        what = self.unit()
        if self.token_ids:
            ids = ", ".join(f"#{t}" for t in self.token_ids[:5]) + (" ..." if len(self.token_ids) > 5 else "")
            return f"holds {self.amount(self.min)} of {what} {ids}"
        if self.max is not None:
            return f"holds {self.amount(self.min)} to {self.amount(self.max)} {what}"
        return f"holds at least {self.amount(self.min)} {what}"


@dataclass(frozen=True)
class Requirement:
    """One leaf of a rule. ``kind`` is the requirement type; the other fields are set by kind."""

    kind: str
    path: str
    holding: Holding | None = None
    name: str | None = None  # allowlist
    block: int | None = None  # snapshot
    days: int | None = None  # held_for
    role_id: str | None = None  # discord_role
    spec: tuple = ()  # the canonical JSON, as sorted items (hashable)

    def as_json(self) -> dict:
        return json.loads(self.spec[0])

    @property
    def key(self) -> str:
        """A stable identity of what the requirement asks (the same requirement twice: one key)."""
        return self.spec[0]

    def describe(self) -> str:
        if self.kind == "allowlist":
            return f"on the allowlist '{self.name}'"
        if self.kind == "discord_role":
            return f"has the Discord role {self.role_id}"
        text = self.holding.describe()
        if self.kind == "snapshot":
            return f"{text} at block {self.block}"
        if self.kind == "held_for":
            return f"{text} for at least {self.days} day(s)"
        return text


@dataclass(frozen=True)
class Op:
    """``all``, ``any`` or ``not`` over its parts (``not`` has exactly one)."""

    op: str
    parts: tuple["Node", ...]
    path: str


Node = Union[Op, Requirement]


@dataclass(frozen=True)
class Rule:
    root: Node

    def requirements(self) -> list[Requirement]:
        out: list[Requirement] = []

        def walk(n: Node) -> None:
            if isinstance(n, Requirement):
                out.append(n)
            else:
                for p in n.parts:
                    walk(p)
        walk(self.root)
        return out

    def as_json(self) -> dict:
        return to_json(self.root)

    def canonical(self) -> str:
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))

    def assets(self) -> list[Asset]:
        seen: dict[str, Asset] = {}
        for r in self.requirements():
            if r.holding is not None:
                seen.setdefault(r.holding.asset.key, r.holding.asset)
        return list(seen.values())

    def allowlists(self) -> set[str]:
        return {r.name for r in self.requirements() if r.kind == "allowlist"}


def to_json(n: Node) -> dict:
    if isinstance(n, Requirement):
        return n.as_json()
    if n.op == "not":
        return {"not": to_json(n.parts[0])}
    return {n.op: [to_json(p) for p in n.parts]}


# --- parsing ---------------------------------------------------------------------------------------


def parse_rule(data: Any, *, default_chain: str | None = None) -> Rule:
    """A Rule from its JSON (already decoded), or RuleError naming the path of the first problem."""
    counter = [0]
    root = _node(data, "", 0, counter, default_chain)
    return Rule(root)


MAX_RULE_BYTES = 64 * 1024


class _DuplicateKey(ValueError):
    def __init__(self, key: str, where: str) -> None:
        super().__init__(key)
        self.key, self.where = key, where


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            kind = out.get("type") if isinstance(out.get("type"), str) else None
            raise _DuplicateKey(key[:40], f"a {kind[:20]!r} requirement" if kind else "an object with "
                                + ", ".join(repr(k[:20]) for k in list(out)[:4]))
        out[key] = value
    return out


def parse_rule_text(text: str, *, default_chain: str | None = None) -> Rule:
    if len(text.encode()) > MAX_RULE_BYTES:
        raise RuleError("rule", f"larger than {MAX_RULE_BYTES // 1024} KB; a rule has at most "
                                f"{MAX_REQUIREMENTS} requirements")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        raise RuleError("rule", f"the key {exc.key!r} is written twice in one object ({exc.where}); JSON would "
                                "keep only the last one, so say it once") from None
    except json.JSONDecodeError as exc:
        raise RuleError("rule", f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise RuleError("rule", f"nested deeper than {MAX_DEPTH} levels of all/any/not") from None
    return parse_rule(data, default_chain=default_chain)


def _join(path: str, part: str) -> str:
    if part.startswith("["):
        return path + part
    return f"{path}.{part}" if path else part


def _node(data: Any, path: str, depth: int, counter: list, chain: str | None) -> Node:
    if not isinstance(data, dict):
        raise RuleError(path, "expected an object ({\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}} "
                              "or a requirement with a \"type\")")
    ops = [k for k in ("all", "any", "not") if k in data]
    if ops:
        op = ops[0]
        if len(data) != 1:
            extra = sorted(k for k in data if k != op)
            raise RuleError(path, f"an \"{op}\" object takes nothing else (found {', '.join(extra)})")
        if depth + 1 > MAX_DEPTH:
            raise RuleError(_join(path, op), f"nested deeper than {MAX_DEPTH} levels of all/any/not")
        here = _join(path, op)
        if op == "not":
            return Op("not", (_node(data["not"], here, depth + 1, counter, chain),), here)
        items = data[op]
        if not isinstance(items, list):
            raise RuleError(here, "expected a list")
        if not items:
            raise RuleError(here, "an empty list (give at least one part)")
        return Op(op, tuple(_node(x, f"{here}[{i}]", depth + 1, counter, chain) for i, x in enumerate(items)), here)
    if "type" not in data:
        raise RuleError(path, "expected \"all\", \"any\", \"not\" or a requirement with a \"type\"")
    counter[0] += 1
    if counter[0] > MAX_REQUIREMENTS:
        raise RuleError(path, f"more than {MAX_REQUIREMENTS} requirements in one rule")
    return _requirement(data, path, chain)


_FIELDS = {
    "balance": {"type", "chain", "address", "decimals", "symbol", "min", "max"},
    "nft": {"type", "chain", "address", "standard", "min", "token_ids", "token_id", "symbol"},
    "allowlist": {"type", "name"},
    "snapshot": {"type", "chain", "address", "standard", "token_id", "decimals", "symbol", "min", "max", "block"},
    "held_for": {"type", "chain", "address", "standard", "token_id", "decimals", "symbol", "min", "max", "days"},
    "discord_role": {"type", "role_id"},
}


def _requirement(d: dict, path: str, chain: str | None) -> Requirement:
    kind = d["type"]
    if kind not in REQUIREMENT_TYPES:
        raise RuleError(_join(path, "type"), f"unknown requirement type {json.dumps(kind)}; use one of "
                                             + ", ".join(REQUIREMENT_TYPES))
    unknown = sorted(set(d) - _FIELDS[kind])
    if unknown:
        raise RuleError(_join(path, unknown[0]), f"not a field of a {kind} requirement (fields: "
                                                 + ", ".join(sorted(_FIELDS[kind] - {'type'})) + ")")
    spec: dict = {"type": kind}
    holding = name = block = days = role_id = None
    if kind == "allowlist":
        name = d.get("name")
        if not isinstance(name, str) or not re.match(_ALLOWLIST_NAME, name):
            raise RuleError(_join(path, "name"), "expected a list name: lower-case letters, digits, - and _ "
                                                 "(1 to 63, starting with a letter or digit)")
        spec["name"] = name
    elif kind == "discord_role":
        role_id = d.get("role_id")
        if isinstance(role_id, int) and not isinstance(role_id, bool):
            role_id = str(role_id)
        if not isinstance(role_id, str) or not role_id.isdigit() or not 17 <= len(role_id) <= 20:
            raise RuleError(_join(path, "role_id"), "expected a Discord role id (17 to 20 digits, as a string)")
        spec["role_id"] = role_id
    else:
        holding = _holding(d, path, kind, chain, spec)
        if kind == "snapshot":
            block = _int(d, "block", path, minimum=0, required=True)
            spec["block"] = block
        if kind == "held_for":
            days = _int(d, "days", path, minimum=1, required=True)
            if days > 3650:
                raise RuleError(_join(path, "days"), "at most 3650 days")
            spec["days"] = days
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return Requirement(kind, path or "rule", holding, name, block, days, role_id, (text,))


def _holding(d: dict, path: str, kind: str, chain: str | None, spec: dict) -> Holding:
    chain_name = d.get("chain", chain)
    if chain_name is None:
        raise RuleError(_join(path, "chain"), "missing (the community has no chain to default to)")
    if chain_name not in CHAINS:
        raise RuleError(_join(path, "chain"), f"unknown chain {json.dumps(chain_name)}; use one of "
                                              + ", ".join(CHAINS))
    address = d.get("address", "native" if kind != "nft" else None)
    standard = d.get("standard")
    if kind == "nft" and standard is None:
        standard = "erc721"
    if standard is not None and standard not in ("erc721", "erc1155"):
        raise RuleError(_join(path, "standard"), "expected \"erc721\" or \"erc1155\"")
    if kind == "balance" and standard is not None:
        raise RuleError(_join(path, "standard"), "a balance is native or ERC-20; use an nft requirement")
    if not isinstance(address, str):
        raise RuleError(_join(path, "address"), "missing" if address is None else "expected a string")
    if address == "native" and standard is not None:
        raise RuleError(_join(path, "address"), "an NFT needs its contract address")
    symbol = d.get("symbol", "")
    if not isinstance(symbol, str) or len(symbol) > 20:
        raise RuleError(_join(path, "symbol"), "expected a short text (at most 20 characters)")
    decimals = 18
    if "decimals" in d:
        if standard is not None or address == "native":
            raise RuleError(_join(path, "decimals"), "only an ERC-20 token takes decimals")
        decimals = _int(d, "decimals", path, minimum=0, required=True)
        if decimals > 36:
            raise RuleError(_join(path, "decimals"), "at most 36")
    token_id = None
    token_ids: tuple[int, ...] = ()
    if standard == "erc1155":
        token_id = _int(d, "token_id", path, minimum=0, required=True)
        if "token_ids" in d:
            raise RuleError(_join(path, "token_ids"), "an ERC-1155 requirement takes one token_id")
    elif "token_id" in d:
        raise RuleError(_join(path, "token_id"), "only an ERC-1155 requirement takes token_id "
                                                 "(ERC-721: token_ids)")
    if "token_ids" in d:
        if kind != "nft":
            raise RuleError(_join(path, "token_ids"), "only an nft requirement takes token_ids")
        ids = d["token_ids"]
        if not isinstance(ids, list) or not ids:
            raise RuleError(_join(path, "token_ids"), "expected a non-empty list of token ids")
        if len(ids) > MAX_TOKEN_IDS:
            raise RuleError(_join(path, "token_ids"), f"at most {MAX_TOKEN_IDS} token ids")
        seen = []
        for i, t in enumerate(ids):
            if isinstance(t, bool) or not isinstance(t, int) or t < 0 or t >= 2 ** 256:
                raise RuleError(f"{_join(path, 'token_ids')}[{i}]", "expected a whole number of at least 0")
            if t not in seen:
                seen.append(t)
        token_ids = tuple(seen)
    asset_kind = standard or ("native" if address == "native" else "erc20")
    try:
        asset = Asset(chain_name, asset_kind, None if asset_kind == "native" else address, token_id,
                      decimals if asset_kind == "erc20" else (18 if asset_kind == "native" else 0), symbol)
    except ValidationError as exc:
        field = {"address": "address", "asset address": "address"}.get(exc.field or "", "address")
        raise RuleError(_join(path, field), "expected \"native\" or a contract address (0x and 40 hex digits)"
                        if field == "address" else str(exc)) from None
    count = asset_kind in ("erc721", "erc1155")
    if "min" in d:
        low = _amount(d["min"], _join(path, "min"), asset, count)
    elif count:
        low = 1
    else:
        raise RuleError(_join(path, "min"), "missing (a decimal string in token units, e.g. \"1000\")")
    high = None
    if "max" in d:
        if token_ids:
            raise RuleError(_join(path, "max"), "not with token_ids")
        high = _amount(d["max"], _join(path, "max"), asset, count)
        if high < low:
            raise RuleError(_join(path, "max"), "smaller than min")
    if token_ids and low > len(token_ids):
        raise RuleError(_join(path, "min"), f"more than the {len(token_ids)} token id(s) listed")
    spec.update({"chain": chain_name, "address": asset.address or "native"})
    if standard:
        spec["standard"] = standard
    if token_id is not None:
        spec["token_id"] = token_id
    if token_ids:
        spec["token_ids"] = list(token_ids)
    if asset_kind == "erc20":
        spec["decimals"] = decimals
    if symbol:
        spec["symbol"] = symbol
    holding = Holding(asset, low, high, token_ids)
    spec["min"] = holding.amount(low)
    if high is not None:
        spec["max"] = holding.amount(high)
    return holding


def _int(d: dict, key: str, path: str, *, minimum: int, required: bool) -> int:
    value = d.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(_join(path, key), "missing" if value is None else "not a whole number")
    if value < minimum:
        raise RuleError(_join(path, key), f"must be at least {minimum}")
    return value


def _amount(value: Any, path: str, asset: Asset, count: bool) -> int:
    """Token units (a decimal string, or a JSON number) -> base units."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RuleError(path, "not a number (give a decimal string, e.g. \"1000\")")
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?|\.[0-9]+|[0-9]+\.|[0-9.]+[eE][+-]?[0-9]+", text) and \
            not re.fullmatch(r"-[0-9.]+", text):
        raise RuleError(path, "not a number")
    try:
        with localcontext(prec=200):
            amount = Decimal(text)
    except InvalidOperation:
        raise RuleError(path, "not a number") from None
    if not amount.is_finite():
        raise RuleError(path, "not a number")
    if amount < 0:
        raise RuleError(path, "must not be negative")
    if count:
        if amount != amount.to_integral_value():
            raise RuleError(path, "a count of tokens is a whole number")
        return int(amount)
    with localcontext(prec=200):
        base = amount * (Decimal(10) ** asset.decimals)
    if base != base.to_integral_value():
        raise RuleError(path, f"more decimal places than the token's {asset.decimals}")
    if base >= 2 ** 256:
        raise RuleError(path, "too large")
    return int(base)


def _plain(d: Decimal) -> str:
    with localcontext(prec=200):
        return format(d.normalize(), "f")
