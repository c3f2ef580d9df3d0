"""Gating use cases: set and show a community's rules, import allowlists, read what rules need
(batched: one read per wallet and asset however many rules name it), and check one member.

The membership rule is stored under the tier ``''``; a tier's rule under the tier's name (a tier
with a rule needs its rank range AND its rule).
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ..domain.chain import UNKNOWN, check_address
from ..errors import ArrakisError, DiscordError, NotFound, ValidationError
from ..ports import ChainReader, Clock, DiscordGuild, moment, system_clock
from ..storage.chain_holdings import CommunityAssetRepository, HoldingsRepository
from ..storage.database import Database
from ..storage.gating import GatingRepository
from ..storage.synthesis import SynthesisRepository
from ..themes import theme_of
from ..domain.validation import check_discord_id
from .evaluate import Facts, Held, evaluate_many, explain, explainer, held_history, snapshot_key
from .logic import Truth, word
from .rules import Requirement, Rule, RuleError, parse_rule, parse_rule_text

if TYPE_CHECKING:
    from ..storage.repos import Repositories

MAX_ALLOWLIST = 100_000
MEMBERSHIP = ""


@dataclass
class Member:
    profile_id: uuid.UUID | None
    discord_id: str
    wallets: tuple[str, ...]


@dataclass
class Rules:
    """A community's rules, parsed: ``membership`` (or None) and ``tiers`` (name -> rule)."""

    membership: Rule | None = None
    tiers: dict[str, Rule] = field(default_factory=dict)

    def all(self) -> list[Rule]:
        return ([self.membership] if self.membership else []) + list(self.tiers.values())

    def __bool__(self) -> bool:
        return bool(self.membership or self.tiers)

    def as_json(self) -> dict:
        return {"membership": self.membership.as_json() if self.membership else None,
                "tiers": {t: r.as_json() for t, r in sorted(self.tiers.items())}}


@dataclass
class Verdicts:
    """One evaluation of a community's rules for many members."""

    facts: Facts
    membership: list[Truth]
    tiers: dict[str, list[Truth]]


class Gating:
    def __init__(self, db: Database, repos: Repositories, readers: Mapping[str, ChainReader], *, discord: DiscordGuild | None = None,
                 clock: Clock = system_clock) -> None:
        self.db = db
        self.repos = repos
        self.readers = readers
        self.discord = discord
        self.clock = clock
        self.store = GatingRepository(db)
        self.assets = CommunityAssetRepository(db)

    # --- rules --------------------------------------------------------------------------------------

    def _default_chain(self) -> str:
        chains = sorted({a.chain for a, _, _ in self.assets.all()})
        return chains[0] if len(chains) == 1 else "berachain"

    def set_rule(self, community_id, text: str | dict, *, tier: str | None = None, actor: str = "admin",
                 require_endpoints: bool = True) -> Rule:
        """Validate and store the membership rule (or a tier's). RuleError names the JSON path.
        ``require_endpoints``: refuse a rule on a chain with no RPC endpoints configured here
        (the wizard stores its rule before the endpoints may exist)."""
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            chain = self._default_chain()
            rule = parse_rule_text(text, default_chain=chain) if isinstance(text, str) else \
                parse_rule(text, default_chain=chain)
            if tier:
                theme = theme_of(community)
                if tier not in theme.tier_names:
                    raise ValidationError(f"the community has no tier '{tier}'; its tiers: "
                                          + ", ".join(theme.tier_names), field="tier")
            missing = sorted(rule.allowlists() - self.store.allowlist_names())
            if missing:
                req = next(r for r in rule.requirements() if r.kind == "allowlist" and r.name == missing[0])
                raise RuleError(f"{req.path}.name" if req.path != "rule" else "name",
                                f"no allowlist '{missing[0]}' in this community; import it first "
                                "(arrakis allowlist import)")
            for req in rule.requirements():
                if require_endpoints and req.holding is not None and req.holding.asset.chain not in self.readers:
                    raise RuleError(f"{req.path}.chain" if req.path != "rule" else "chain",
                                    f"no RPC endpoints for {req.holding.asset.chain} "
                                    f"(set RPC_URLS_{req.holding.asset.chain.upper()})")
            checksum = hashlib.sha256(rule.canonical().encode()).hexdigest()
            self.store.put_rule(tier or MEMBERSHIP, rule.as_json(), checksum, actor=actor)
            self._follow()
            self.repos.audit.append(actor, "gate.rule_set", {"tier": tier or None, "checksum": checksum,
                                                             "requirements": len(rule.requirements())})
        return rule

    def remove_rule(self, community_id, *, tier: str | None = None, actor: str = "admin") -> bool:
        with self.db.tenant(community_id):
            self.repos.communities.current()
            gone = self.store.remove_rule(tier or MEMBERSHIP)
            self._follow()
            if gone:
                self.repos.audit.append(actor, "gate.rule_removed", {"tier": tier or None})
        return gone

    def _follow(self) -> None:
        """The assets the stored rules read at the latest block (not snapshots: history does not
        move), for the live watcher, and how many days of holdings history held_for needs of each."""
        reqs = [r for rule in self._rules().all() for r in rule.requirements()]
        specs = {r.holding.asset.key: r.holding.asset.as_dict() for r in reqs
                 if r.holding is not None and r.kind != "snapshot"}
        history: dict[str, int] = {}
        for r in reqs:
            if r.kind == "held_for":
                history[r.holding.asset.key] = max(history.get(r.holding.asset.key, 0), r.days)
        self.store.follow_assets(specs, history)

    def rules(self, community_id) -> Rules:
        with self.db.tenant(community_id):
            self.repos.communities.current()
            return self._rules()

    def _rules(self) -> Rules:
        out = Rules()
        for tier, row in self.store.rules().items():
            # Stored rules were validated when set; their canonical form names every chain.
            rule = parse_rule(row["rule"])
            if tier == MEMBERSHIP:
                out.membership = rule
            else:
                out.tiers[tier] = rule
        return out

    def show(self, community_id) -> dict:
        with self.db.tenant(community_id):
            self.repos.communities.current()
            rows = self.store.rules()
            lists = self.store.allowlists()
        return {"membership": rows[MEMBERSHIP]["rule"] if MEMBERSHIP in rows else None,
                "tiers": {t: r["rule"] for t, r in rows.items() if t != MEMBERSHIP},
                "checksums": {(t or "membership"): r["checksum"] for t, r in rows.items()},
                "allowlists": [{"name": r["name"], "size": r["size"], "imported_by": r["imported_by"],
                                "imported_at": r["imported_at"].isoformat()} for r in lists]}

    # --- allowlists ---------------------------------------------------------------------------------

    def import_allowlist(self, community_id, name: str, path: str | Path, *, actor: str = "admin") -> dict:
        """Replace the named list with the addresses in a CSV (an ``address`` or ``wallet_address``
        column, or one address per line). All or nothing: any bad line refuses the file."""
        parse_rule({"type": "allowlist", "name": name})  # the name's own check
        with self.db.tenant(community_id):
            self.repos.communities.current()
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"could not read {Path(path).name}: {exc.strerror or exc}", field="file") from None
        rows = csv.reader(io.StringIO(text))
        column = 0
        addresses: dict[str, None] = {}
        errors: list[str] = []
        repeated = 0
        first = True
        for fields in rows:
            line = rows.line_num
            if not any(f.strip() for f in fields):
                continue
            if first:
                first = False
                names = [f.strip().lower() for f in fields]
                header = next((n for n in ("address", "wallet_address", "wallet") if n in names), None)
                if header is not None:
                    column = names.index(header)
                    continue
                if not names[0].startswith("0x"):
                    raise ValidationError("the CSV needs an address (or wallet_address) column, or one address "
                                          "per line", field="file")
            if column >= len(fields):
                errors.append(f"line {line}: no address")
                continue
            try:
                a = check_address(fields[column].strip(), "address")
            except ValidationError:
                errors.append(f"line {line}: not a wallet address ({fields[column].strip()[:50]!r})")
                continue
            if a in addresses:
                repeated += 1
            addresses[a] = None
            if len(addresses) > MAX_ALLOWLIST:
                raise ValidationError(f"more than {MAX_ALLOWLIST:,} addresses; split the list", field="file")
        if errors:
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise ValidationError("nothing imported: " + "; ".join(errors[:5]) + more, field="file")
        if not addresses:  # an empty or header-only file would silently empty the list
            raise ValidationError(f"{Path(path).name} holds no address: nothing imported, the list {name} is "
                                  "unchanged", field="file")
        with self.db.tenant(community_id):
            count = self.store.replace_allowlist(name, list(addresses), actor=actor)
            self.repos.audit.append(actor, "gate.allowlist_imported", {"name": name, "addresses": count})
        return {"name": name, "addresses": count, "repeated": repeated}

    # --- reading what rules need ----------------------------------------------------------------

    def gather(self, community_id, rules: Rules, members: Sequence[Member], *, now: datetime,
               balances: Mapping[str, Mapping[str, object]] | None = None, guild_id: str | None = None,
               indexed: bool = False, roles: bool = True) -> Facts:
        """Everything ``rules`` ask about ``members``: one read per wallet and asset (``balances``
        already read by the caller are reused), owners of listed ERC-721 tokens, snapshot balances
        (kept once read), allowlists, held_for records and, if asked, Discord roles.
        ``indexed``: assets the holdings index keeps are read from it instead of the chain."""
        reqs = [r for rule in rules.all() for r in rule.requirements()]
        wallets = sorted({w for m in members for w in m.wallets})
        facts = Facts(now)
        got: dict[str, Mapping[str, object]] = dict(balances or {})
        latest: dict[str, object] = {}
        owners: dict[str, tuple] = {}
        snaps: dict[tuple, object] = {}
        for r in reqs:
            h = r.holding
            if h is None:
                continue
            if r.kind == "snapshot":
                snaps.setdefault((h.asset.key, r.block), h.asset)
            elif h.token_ids:
                ids = owners.setdefault(h.asset.key, (h.asset, set()))[1]
                ids.update(h.token_ids)
            else:
                latest.setdefault(h.asset.key, h.asset)
        with self.db.tenant(community_id):
            index_keys = set()
            if indexed:
                holdings = HoldingsRepository(self.db)
                index_keys = {k for k in latest if holdings.state(k) is not None}
                for k in index_keys:
                    if k not in got:
                        got[k] = holdings.balances_of(k, wallets)
            kept = {key: self.store.snapshot_balances(key[0], key[1], wallets) for key in snaps}
            names = {r.name for r in reqs if r.kind == "allowlist"}
            facts.allowlists = self.store.allowlisted(names, wallets)
            facts.held = self._held([r for r in reqs if r.kind == "held_for"], members, wallets)
        for key, asset in latest.items():
            if key not in got:
                got[key] = self._balances(asset, wallets)
        for key, asset in snaps.items():
            have = kept[key]
            missing = [w for w in wallets if w not in have]
            read = self._balances(asset, missing, block=key[1]) if missing else {}
            fresh = {w: v for w, v in read.items() if v is not UNKNOWN}
            if fresh:
                with self.db.tenant(community_id):
                    self.store.keep_snapshot(key[0], key[1], fresh)
            got[snapshot_key(*key)] = {**read, **have}
        facts.balances = got
        facts.owners = {}
        for key, (asset, ids) in owners.items():
            reader = self.readers.get(asset.chain)
            ids = sorted(ids)
            if reader is None:
                facts.owners[key] = {t: UNKNOWN for t in ids}
            else:
                facts.owners[key] = reader.owners_of(asset.address, ids)
        if roles and any(r.kind == "discord_role" for r in reqs):
            facts.roles = self._roles(community_id, guild_id, members)
        return facts

    def _held(self, held: Sequence[Requirement], members: Sequence[Member], wallets: Sequence[str]) -> dict:
        """Inside the tenant transaction: each held_for requirement's period for each member, from
        the holdings index's history (the watcher keeps every balance change with its block's
        time). The period ends at the last indexed block; an asset whose history is not kept
        (not indexed, or indexed again since) leaves the requirement unknown."""
        if not held:
            return {}
        holdings = HoldingsRepository(self.db)
        states = holdings.history_state(sorted({r.holding.asset.key for r in held}))
        pairs = [(m.discord_id, m.wallets) for m in members]
        out: dict[tuple, Held] = {}
        read: dict[tuple, tuple] = {}
        for r in held:
            state = states.get(r.holding.asset.key)
            if state is None or r.holding.token_ids:
                continue
            last = state["last_block_at"]
            cutoff = last - timedelta(days=r.days)
            since = max(cutoff, state["history_from_at"])
            key = (r.holding.asset.key, since)
            if key not in read:  # one read per asset and period, however many requirements name it
                read[key] = holdings.history(r.holding.asset.key, wallets, since)
            start, changes = read[key]
            verdicts = held_history(r.holding, start, changes, since, pairs,
                                    covered=state["history_from_at"] <= cutoff, last=last)
            out.update({(r.key, d): v for d, v in verdicts.items()})
        return out

    def verdicts(self, community_id, rules: Rules, members: Sequence[Member], *, now: datetime,
                 balances: Mapping[str, Mapping[str, object]] | None = None, guild_id: str | None = None,
                 indexed: bool = False) -> Verdicts:
        """Gather and evaluate for many members. Discord roles are Discord's last answer that
        Arrakis keeps for each member (the member role sync stores it when it reads or changes a
        member): no Discord call per member; a member whose roles were never seen is unknown."""
        facts = self.gather(community_id, rules, members, now=now, balances=balances, guild_id=guild_id,
                            indexed=indexed, roles=False)
        if any(r.kind == "discord_role" for rule in rules.all() for r in rule.requirements()):
            facts.roles = self.stored_roles(community_id, members)
        return self.evaluate(rules, facts, members)

    def stored_roles(self, community_id, members: Sequence[Member]) -> dict[str, frozenset]:
        """discord id -> role ids as Discord last answered them (members never seen are left out:
        unknown)."""
        with self.db.tenant(community_id):
            known = SynthesisRepository(self.db).member_roles([m.discord_id for m in members])
        return {d: frozenset(str(r) for r in roles) for d, roles in known.items()}

    def _balances(self, asset, wallets: Sequence[str], block: int | None = None) -> dict:
        reader = self.readers.get(asset.chain)
        if reader is None or not wallets:
            return {w: UNKNOWN for w in wallets}
        try:
            return reader.balances(asset, wallets) if block is None else reader.balances(asset, wallets, block=block)
        except ArrakisError:
            return {w: UNKNOWN for w in wallets}

    def _roles(self, community_id, guild_id: str | None, members: Sequence[Member]) -> dict[str, frozenset]:
        """The members' Discord roles; a member whose roles could not be read is left out (unknown);
        one not in the guild has none."""
        out: dict[str, frozenset] = {}
        if self.discord is None or guild_id is None:
            return out
        for m in members:
            try:
                got = self.discord.get_member(guild_id, m.discord_id, community_id=community_id)
            except DiscordError as exc:
                if exc.status == 404:
                    out[m.discord_id] = frozenset()
                continue
            except ArrakisError:  # Discord not configured, frozen, or paced out: unknown, never "no role"
                continue
            out[m.discord_id] = frozenset(str(r) for r in got.get("roles", []))
        return out

    # --- evaluating -------------------------------------------------------------------------------------

    def evaluate(self, rules: Rules, facts: Facts, members: Sequence[Member]) -> Verdicts:
        pairs = [(m.discord_id, m.wallets) for m in members]
        membership = evaluate_many(rules.membership, facts, pairs) if rules.membership else [True] * len(pairs)
        tiers = {name: evaluate_many(rule, facts, pairs) for name, rule in rules.tiers.items()}
        return Verdicts(facts, membership, tiers)

    def notes(self, rules: Rules, verdicts: Verdicts, members: Sequence[Member]) -> list[dict | None]:
        """For each member the membership rule does not admit: what they miss, in words ("needs
        120 more BGT"), kept on the profile for /profile. None for a member it admits."""
        out: list[dict | None] = []
        why = explainer(rules.membership) if rules.membership is not None else None
        for m, v in zip(members, verdicts.membership):
            if v is True or why is None:
                out.append(None)
                continue
            _, checks = why(verdicts.facts, m.discord_id, m.wallets)
            missing = [c.missing for c in checks if c.missing]
            missing += [f"{c.requirement}: could not be read" for c in checks if c.truth is None]
            out.append({"result": word(v), "missing": missing[:5]})
        return out

    # --- one member -------------------------------------------------------------------------------------

    def check(self, community_id, discord_id: str) -> dict:
        """Each requirement's value and truth for one member, and the result (membership rule,
        then each tier rule). Reads only: nothing is written."""
        now = moment(self.clock)
        discord_id = check_discord_id(discord_id)
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            rules = self._rules()
            row = self.store.member(discord_id)
        if not rules:
            raise NotFound("this community has no gating rule; set one with `arrakis gate set`")
        if row is None:
            raise NotFound(f"no member {discord_id} in this community")
        member = Member(row["id"], row["discord_id"], tuple(row["wallets"]))
        standing = row
        facts = self.gather(community_id, rules, [member], now=now, guild_id=community.guild_id)
        out = {"member": member.discord_id, "wallets": list(member.wallets), "tier": standing["tier"],
               "rank": standing["rank"]}
        if rules.membership:
            result, checks = explain(rules.membership, facts, member.discord_id, member.wallets)
            out["membership"] = {"result": word(result), "checks": [c.as_dict() for c in checks]}
        out["tiers"] = {}
        for name, rule in rules.tiers.items():
            result, checks = explain(rule, facts, member.discord_id, member.wallets)
            out["tiers"][name] = {"result": word(result), "checks": [c.as_dict() for c in checks]}
        out["result"] = out["membership"]["result"] if rules.membership else "true"
        return out


def check_lines(report: dict) -> list[str]:
    """``gate check`` for people."""
    lines = [f"member {report['member']}: {len(report['wallets'])} wallet(s)"
             + (f": {', '.join(report['wallets'])}" if report["wallets"] else "")]

    def block(title: str, part: dict) -> None:
        lines.append(f"{title}: {part['result']}")
        for c in part["checks"]:
            text = f"  {c['result']:<7} {c['path']}: {c['requirement']}; value: {c['value']}"
            if c["missing"]:
                text += f" ({c['missing']})"
            lines.append(text)
    if "membership" in report:
        block("membership", report["membership"])
    for name, part in report["tiers"].items():
        block(f"tier {name} (also needs its rank range)", part)
    verdict = {"true": "eligible", "false": "not eligible",
               "unknown": "unknown (a read failed; the member is kept as they are)"}[report["result"]]
    lines.append(f"result: {verdict}")
    return lines
