"""Eligibility sync: chain reads -> ranks -> tiers and badges -> one tenant transaction.

For one community: read every linked wallet's balance of each configured asset in Multicall3
batches; rank members by the rank asset (or take ranks from the Score Service when it answers);
evaluate tiers and badges with the community's theme; write profiles, tier history and badge
awards in one transaction; return the diff.

A member whose read failed (any wallet, any asset) is **unknown**: they keep their tier, rank
and badges, and are listed as unknown. A member with no linked wallet, no balance, or who fails a
gate asset has no rank (and so leaves their tier, after the theme's grace period).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Callable, Mapping

from ..chain.orchestrator import EligibilityOrchestrator
from ..chain.ranking import HolderIndexer
from ..domain.chain import UNKNOWN, Asset
from ..errors import ValidationError
from ..metrics import NULL_METRICS, Metrics
from ..ports import Clock, UnknownMembersStore, moment, system_clock
from ..storage.chain_holdings import CommunityAssetRepository, HoldingsRepository
from ..storage.chain_watch import ChainWatchRepository
from ..storage.database import Database
from ..storage.standings import EligibilityRepository, MemberStanding, StandingUpdate
from ..themes import theme_of
from ..themes.evaluator import MemberFacts, ThemeEvaluator

if TYPE_CHECKING:
    from ..storage.repos import Repositories
    from ..gating.gating_service import Gating

Progress = Callable[[str, int, int], None]


@dataclass
class SyncDiff:
    community_id: str
    members: int = 0
    rank_source: str = "native"
    promoted: list = field(default_factory=list)
    demoted: list = field(default_factory=list)
    joined: list = field(default_factory=list)
    left: list = field(default_factory=list)
    in_grace: list = field(default_factory=list)
    unknown: list = field(default_factory=list)
    badges_earned: dict = field(default_factory=dict)
    badges_revoked: dict = field(default_factory=dict)
    chain_requests: int = 0
    seconds: float = 0.0
    no_endpoint: list = field(default_factory=list)  # chains with assets to read but no RPC endpoint

    def as_dict(self) -> dict:
        return {**self.__dict__, "nothing_read": self.nothing_read}

    def moved_members(self) -> set[str]:
        """The members this sync moved: across a tier, in or out, or to or from a badge."""
        out = set(self.promoted) | set(self.demoted) | set(self.joined) | set(self.left)
        for members in list(self.badges_earned.values()) + list(self.badges_revoked.values()):
            out |= set(members)
        return out

    @property
    def nothing_read(self) -> bool:
        """Every member's holdings were unknown: the sync learnt nothing (members were kept)."""
        return self.members > 0 and len(self.unknown) == self.members

    def problems(self) -> list[str]:
        """Why holdings could not be read, one sentence per cause."""
        return [f"no RPC endpoint is configured for {chain}: set RPC_URLS_{chain.upper()} (its holdings were not "
                "read; those members are unknown and kept as they were)" for chain in self.no_endpoint]

    def summary(self) -> str:
        earned = sum(len(v) for v in self.badges_earned.values())
        revoked = sum(len(v) for v in self.badges_revoked.values())
        return (f"{self.members} members ({self.rank_source} ranks): {len(self.joined)} joined, "
                f"{len(self.promoted)} promoted, {len(self.demoted)} demoted, {len(self.left)} left, "
                f"{len(self.in_grace)} in grace, {len(self.unknown)} unknown; "
                f"{earned} badges earned, {revoked} revoked; {self.seconds:.2f} s")


class EligibilitySync:
    def __init__(self, db: Database, repos: Repositories, orchestrator: EligibilityOrchestrator, *,
                 clock: Clock = system_clock, unknown: UnknownMembersStore | None = None, gating: Gating | None = None,
                 confirmations: Callable[[str], int] = lambda chain: 0,
                 indexers: Mapping[str, HolderIndexer] | None = None, metrics: Metrics = NULL_METRICS) -> None:
        """``unknown``: where the members this sync could not read are left for the member role
        sync (None: not kept). ``gating``: the gating rules' use case (``gating.gating_service.Gating``),
        whose membership and tier rules the sync evaluates (None: rules are not used).
        ``confirmations``: blocks behind the head a chain's index stops. ``indexers``: the
        holdings indexer of each chain (bootstrap's, the ones the watchers use; left out, one is
        made on the orchestrator's reader when an asset is indexed)."""
        self.metrics = metrics
        self.confirmations = confirmations
        self.indexers = indexers if indexers is not None else {}
        self.unknown = unknown
        self.gating = gating
        self.db = db
        self.repos = repos
        self.orchestrator = orchestrator
        self.clock = clock
        self.assets = CommunityAssetRepository(db)
        self.store = EligibilityRepository(db)

    def configure(self, community_id, asset: Asset, *, purpose: str, min_amount: int | Decimal = 0,
                  replace_rank: bool = False) -> list[str]:
        """Set an asset that ranks members (``rank``) or gates them (``gate``, with ``min_amount``).
        A community has one rank asset: another one is refused, or with ``replace_rank`` taken
        off (the keys of the assets replaced are returned; none when the same one is kept)."""
        if purpose not in ("rank", "gate"):
            raise ValidationError("purpose must be rank or gate", field="purpose")
        replaced = []
        with self.db.tenant(community_id):
            if purpose == "rank":
                for existing, p, _ in self.assets.all():
                    if p == "rank" and existing.key != asset.key:
                        if not replace_rank:
                            raise ValidationError("this community already has a rank asset", field="purpose")
                        self.assets.remove(existing.key)
                        replaced.append(existing.key)
            self.assets.put(asset, purpose=purpose, min_amount=min_amount)
        return replaced

    def index(self, community_id, asset: Asset, *, progress: Callable[[int, int], None] | None = None):
        """Build (or resume) the holdings index of a contract asset from its Transfer logs, up to
        the confirmed block (the head less the chain's confirmations), and never past the live
        watcher's block (the watcher counts the blocks after it). Returns the indexer's report,
        or None when there is nothing to index (the native coin) or no endpoint for the chain
        (the watcher builds it once it runs)."""
        reader = self.orchestrator.readers.get(asset.chain)
        if asset.kind not in ("erc20", "erc721", "erc1155") or reader is None or not hasattr(reader, "get_logs_many"):
            return None
        to = reader.block_number() - int(self.confirmations(asset.chain))
        with self.db.platform():
            watcher_at = ChainWatchRepository(self.db).last_block(asset.chain)
        if watcher_at is not None:
            to = min(to, watcher_at)
        indexer = self.indexers.get(asset.chain) or HolderIndexer(self.db, reader)
        return indexer.index(community_id, asset, to_block=max(0, to), progress=progress)

    def run(self, community_id: uuid.UUID | str, *, actor: str = "sync", progress: Progress | None = None,
            from_index: bool = False, block: int | None = None) -> SyncDiff:
        """Read, rank and update every member. ``from_index``: balances of assets the holdings
        index keeps (and the live watcher follows) come from the index, as of the block it has
        reached, instead of from the chain; other assets are read from the chain as usual.
        ``block``: chain reads are made as of this block (the live path's confirmed block)
        instead of the latest."""
        started = time.perf_counter()
        progress = progress or (lambda phase, done, total: None)
        now = moment(self.clock)
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            assets = self.assets.all()
            members = self.store.standings()
            seats = self.store.top_tier_seats()
        theme = theme_of(community)
        rank_assets = [(a, m) for a, p, m in assets if p == "rank"]
        gates = [(a, m) for a, p, m in assets if p == "gate"]
        rules = self.gating.rules(community_id) if self.gating is not None else None
        if not rank_assets and not gates and not (rules and rules.membership):
            raise ValidationError("no assets are configured for this community; add a rank asset first",
                                  field="assets")
        diff = SyncDiff(str(community.id), members=len(members))

        wallets = sorted({w for m in members for w in m.wallets})
        requests_before = self._requests()
        balances = self._read(rank_assets + gates, wallets, progress, community_id=community_id,
                              indexed=self._indexed(community_id, rank_assets + gates) if from_index else set(),
                              no_endpoint=diff.no_endpoint, block=block)

        verdicts = self._gate(community, rules, members, balances, now, from_index) if rules else None

        scores = self.orchestrator.scores(wallets) if self.orchestrator.score is not None and wallets else {}
        use_score_ranks = bool(scores) and any(src == "score" for _, src in scores.values())
        diff.rank_source = "score" if use_score_ranks else ("native_degraded" if self.orchestrator.score else "native")

        facts, unknown = self._facts(members, rank_assets, gates, balances, scores, use_score_ranks,
                                     verdicts.membership if verdicts else None)
        if verdicts is not None:  # what each member misses, for /profile
            for i, note in enumerate(self.gating.notes(rules, verdicts, self._gate_members(members))):
                md = {k: v for k, v in facts[i].metadata.items() if k != "gate"}
                if note:
                    md["gate"] = note
                if md != facts[i].metadata:
                    facts[i] = replace(facts[i], metadata=md)
        evaluator = ThemeEvaluator(theme)
        ranked = sum(1 for f in facts if f.rank is not None)
        results = evaluator.evaluate_many(facts, now, ranked)
        if verdicts is not None and verdicts.tiers:
            # A tier with a rule needs its rank range AND its rule: false leaves the tier (its rank
            # kept), unknown keeps the member as they are.
            for i, r in enumerate(results):
                tier_rule = verdicts.tiers.get(r.tier.tier)
                if unknown[i] or tier_rule is None or tier_rule[i] is True:
                    continue
                if tier_rule[i] is None:
                    unknown[i] = True
                    facts[i] = replace(facts[i], unknown=True)
                results[i] = evaluator.evaluate(replace(facts[i], rank=None) if tier_rule[i] is False else facts[i],
                                                now, ranked)

        # First to reach the top tier get a seat number (Founding Naib is "one of the first seven").
        top = theme.tier_names[0]
        for i, (m, r) in enumerate(zip(members, results)):
            if r.highest_tier == top and "top_tier_seat" not in m.metadata and not unknown[i]:
                seats += 1
                facts[i] = replace(facts[i], metadata={**m.metadata, "top_tier_seat": seats})
                results[i] = evaluator.evaluate(facts[i], now, ranked)

        updates, changes, awards, revokes = [], [], [], []
        buckets = {"promoted": diff.promoted, "demoted": diff.demoted, "joined": diff.joined, "left": diff.left,
                   "grace": diff.in_grace, "unknown": diff.unknown}
        for m, f, r in zip(members, facts, results):
            change = r.tier.change
            if change in buckets:
                buckets[change].append(m.discord_id)
            if change == "unknown":
                continue  # keep everything as it is
            update = StandingUpdate(m.profile_id, r.tier.tier, r.highest_tier, f.rank,
                                    r.tier.demotion_pending_since, Decimal(f.activity), Decimal(f.conviction),
                                    dict(f.metadata))
            # Only standings that changed are written: a re-rank of 100,000 members where a few
            # moved writes a few rows, not 100,000.
            if (update.tier, update.highest_tier, update.rank, update.demotion_pending_since, update.activity,
                    update.conviction, update.metadata) != (m.tier, m.highest_tier, m.rank, m.demotion_pending_since,
                                                            m.activity, m.conviction, m.metadata):
                updates.append(update)
            if r.tier.tier != m.tier:
                changes.append((m.profile_id, m.tier, r.tier.tier, f.rank, change))
            for b in r.earned:
                awards.append((m.profile_id, b))
                diff.badges_earned.setdefault(b, []).append(m.discord_id)
            for b in r.revoked:
                revokes.append((m.profile_id, b))
                diff.badges_revoked.setdefault(b, []).append(m.discord_id)

        if updates:
            progress("writing", 0, len(updates))
        with self.db.tenant(community_id):
            self.store.apply(updates, synced_at=now)
            self.store.record_tier_changes(changes)
            self.store.award(awards, at=now)
            self.store.revoke(revokes, reason="no longer qualifies")
            self.repos.audit.append(actor, "eligibility.synced", {
                "members": diff.members, "promoted": len(diff.promoted), "demoted": len(diff.demoted),
                "joined": len(diff.joined), "left": len(diff.left), "unknown": len(diff.unknown),
                "badges_earned": len(awards), "badges_revoked": len(revokes), "rank_source": diff.rank_source})
        if updates:
            progress("writing", len(updates), len(updates))
        if self.unknown is not None:
            # The member role sync that follows must not touch these members (unknown is not zero).
            self.unknown.remember(community.id, diff.unknown)
        diff.chain_requests = self._requests() - requests_before
        diff.seconds = time.perf_counter() - started
        return diff

    @staticmethod
    def _gate_members(members: list[MemberStanding]) -> list:
        from ..gating.gating_service import Member
        return [Member(m.profile_id, m.discord_id, m.wallets) for m in members]

    def _gate(self, community, rules, members: list[MemberStanding], balances: dict, now, from_index: bool):
        """The community's rules for every member; reads the chain only for what ``balances``
        (the sync's own reads) lacks: one read per wallet and asset."""
        return self.gating.verdicts(community.id, rules, self._gate_members(members), now=now, balances=balances,
                                    guild_id=community.guild_id, indexed=from_index)

    def _requests(self) -> int:
        return sum(getattr(r, "requests", 0) for r in self.orchestrator.readers.values())

    def _indexed(self, community_id, assets: list[tuple[Asset, Decimal]]) -> set[str]:
        """The keys of these assets that the holdings index keeps."""
        with self.db.tenant(community_id):
            holdings = HoldingsRepository(self.db)
            return {a.key for a, _ in assets if holdings.state(a.key) is not None}

    def _read(self, assets: list[tuple[Asset, Decimal]], wallets: list[str], progress: Progress, *,
              community_id=None, indexed: set[str] = frozenset(), no_endpoint: list | None = None,
              block: int | None = None) -> dict:
        """asset key -> {wallet: balance or UNKNOWN}; assets in ``indexed`` come from the index;
        chain reads as of ``block`` (None: the latest). Chains with no reader are added to
        ``no_endpoint``."""
        no_endpoint = no_endpoint if no_endpoint is not None else []
        out = {}
        total = len(assets) * len(wallets)
        done = 0
        for asset, _ in assets:
            reader = self.orchestrator.readers.get(asset.chain)
            if asset.key in indexed:
                with self.db.tenant(community_id):
                    out[asset.key] = HoldingsRepository(self.db).balances_of(asset.key, wallets)
            elif reader is None:  # nothing to wait for: no progress to show, and the diff says why
                out[asset.key] = {w: UNKNOWN for w in wallets}
                if wallets and asset.chain not in no_endpoint:
                    no_endpoint.append(asset.chain)
                continue
            elif block is not None:
                out[asset.key] = reader.balances(asset, wallets, block=block)
            else:
                out[asset.key] = reader.balances(asset, wallets)
            if asset.key not in indexed:
                self.metrics.chain_reads(asset.chain, out[asset.key].values(), UNKNOWN)
            done += len(wallets)
            progress("reading chain", done, total)
        return out

    @staticmethod
    def _facts(members: list[MemberStanding], rank_assets, gates, balances, scores, use_score_ranks,
               membership: list | None = None):
        """``membership``: the membership rule's verdict per member (True / False / None: unknown)."""
        totals: list[object] = []  # rank-asset balance per member, None (nothing), or UNKNOWN
        unknown: list[bool] = []
        for i, m in enumerate(members):
            bad = membership is not None and membership[i] is None
            passes = membership is None or membership[i] is not False
            for asset, minimum in gates:
                values = [balances[asset.key][w] for w in m.wallets]
                if any(v is UNKNOWN for v in values):
                    bad = True
                elif sum(values) < minimum or not values:
                    passes = False
            total: object = None
            for asset, minimum in rank_assets:
                values = [balances[asset.key][w] for w in m.wallets]
                if any(v is UNKNOWN for v in values):
                    bad = True
                else:
                    s = sum(values)
                    total = s if s > 0 and s >= minimum else None
            if not rank_assets and passes and (m.wallets or membership is not None):
                total = 1  # gates only: every member who passes is ranked equally by join order
            if use_score_ranks:
                score_bad = any(scores.get(w, (None, "degraded"))[1] == "degraded" for w in m.wallets)
                bad = bad or score_bad
            unknown.append(bad)
            totals.append(None if not passes else total)

        ranks: list[int | None] = [None] * len(members)
        if use_score_ranks:
            for i, m in enumerate(members):
                best = [scores[w][0].rank for w in m.wallets if w in scores and scores[w][0] and scores[w][0].rank]
                ranks[i] = min(best) if best and totals[i] is not None else None
        else:
            order = sorted((i for i, t in enumerate(totals) if t is not None and not unknown[i]),
                           key=lambda i: (-totals[i], members[i].joined_at, members[i].discord_id))
            for position, i in enumerate(order, start=1):
                ranks[i] = position

        facts = []
        for i, m in enumerate(members):
            activity, conviction = m.activity, m.conviction
            found = [scores[w][0] for w in m.wallets if w in scores and scores[w][0] is not None]
            if found:
                activity = max(s.activity for s in found)
                conviction = max(s.conviction for s in found)
            facts.append(MemberFacts(
                joined_at=m.joined_at, rank=ranks[i], current_tier=m.tier, highest_tier=m.highest_tier,
                activity=activity, conviction=conviction, demotion_pending_since=m.demotion_pending_since,
                held_badges=m.badges, metadata=m.metadata, unknown=unknown[i]))
        return facts, unknown
