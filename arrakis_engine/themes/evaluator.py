"""Tier and badge evaluation: pure functions of a member's facts and the time, no I/O.

Strategies for tiers:
  absolute   -- rank ranges of the theme's tiers
  percentage -- a rank's place among all ranked members (tier ``top_percent``, cumulative)
  threshold  -- balance thresholds; tiers without a threshold are held by rank only

Promotion is immediate. Demotion waits for the theme's grace period: the member keeps the
tier while ``demotion_pending_since`` is younger than the grace, and is demoted once it is not;
a member who climbs back meanwhile loses the pending mark. An unknown balance (a failed read)
never changes a tier.

Conviction and activity are on the normalised scale of 0 to 100,000 points (see
``arrakis_engine.adapters.chain.score_http``), so every badge threshold (50, 200, 10,000) is reachable.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable, Iterable, Mapping, NamedTuple, Sequence

from ..errors import ValidationError
from .model import STRATEGIES, Theme, check_rank

UNKNOWN = object()  # a tier that cannot be decided (the read behind it failed)


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What the evaluators know about one member."""

    joined_at: datetime
    rank: int | None = None
    balance: Decimal | None = None  # None: unknown or not read
    current_tier: str | None = None
    highest_tier: str | None = None
    activity: Decimal | int = 0
    conviction: Decimal | int = 0
    demotion_pending_since: datetime | None = None
    held_badges: frozenset = frozenset()
    metadata: Mapping = field(default_factory=dict)
    unknown: bool = False  # the chain read for this member failed


class TierDecision(NamedTuple):
    tier: str | None
    change: str  # unchanged | joined | promoted | demoted | left | grace | unknown
    demotion_pending_since: datetime | None = None


class Evaluation(NamedTuple):
    tier: TierDecision
    highest_tier: str | None
    earned: frozenset
    revoked: frozenset


class TierEvaluator:
    def __init__(self, theme: Theme, strategy: str | None = None,
                 percentages: Mapping[str, Decimal | float] | None = None) -> None:
        self.theme = theme
        self.strategy = strategy or theme.strategy
        if self.strategy not in STRATEGIES:
            raise ValidationError(f"unknown tier strategy '{self.strategy}'; use one of {', '.join(STRATEGIES)}",
                                  field="strategy")
        self._index = {name: i for i, name in enumerate(theme.tier_names)}
        self._grace = timedelta(hours=theme.demotion_grace_hours)
        self._decisions: dict[tuple, TierDecision] = {}
        # absolute: sorted lower bounds for bisect
        self._bounds = [(t.min_rank, t.max_rank, t.name) for t in sorted(theme.tiers, key=lambda t: t.min_rank)]
        self._mins = [b[0] for b in self._bounds]
        finite = [t.max_rank for t in theme.tiers if t.max_rank is not None]
        self._table: list[str | None] = [None] * (max(finite, default=0) + 1)
        for lo, hi, name in self._bounds:
            for r in range(lo, min(hi if hi is not None else len(self._table) - 1, len(self._table) - 1) + 1):
                self._table[r] = name
        self._open_top = next(((lo, name) for lo, hi, name in self._bounds if hi is None), None)
        if self.strategy == "percentage":
            pct = dict(percentages or {t.name: t.top_percent for t in theme.tiers if t.top_percent is not None})
            missing = [t.name for t in theme.tiers if pct.get(t.name) is None]
            if missing:
                raise ValidationError("the percentage strategy needs a top-percent for every tier; missing: "
                                      + ", ".join(missing), field="percentages")
            values = [Decimal(str(pct[t.name])) for t in theme.tiers]
            if any(v <= 0 or v > 100 for v in values) or values != sorted(values):
                raise ValidationError("top-percent values must rise from the highest tier down, within (0, 100]",
                                      field="percentages")
            self._percent = [(t.name, v) for t, v in zip(theme.tiers, values)]
        if self.strategy == "threshold":
            self._rank_only = [t for t in theme.tiers if t.threshold is None]
            self._by_threshold = [t for t in theme.tiers if t.threshold is not None]

    def index(self, tier: str | None) -> int | None:
        return self._index.get(tier)

    def higher(self, a: str | None, b: str | None) -> bool:
        """True when tier ``a`` is above tier ``b`` (any tier is above no tier)."""
        ia, ib = self._index.get(a), self._index.get(b)
        if ia is None:
            return False
        return ib is None or ia < ib

    def candidate(self, rank: int | None, balance: Decimal | None = None, ranked_members: int = 0):
        """The tier the facts point to now: a tier name, None (no tier), or UNKNOWN."""
        if rank is not None and (rank.__class__ is not int or rank < 1):
            check_rank(rank)  # raises the clear error
        if self.strategy == "absolute":
            if rank is None:
                return None
            if rank < len(self._table):
                return self._table[rank]
            top = self._open_top
            return top[1] if top is not None and rank >= top[0] else None
        if self.strategy == "percentage":
            if rank is None or ranked_members <= 0:
                return None
            for name, pct in self._percent:
                if rank <= math.ceil(ranked_members * pct / 100):
                    return name
            return None
        # threshold
        if rank is not None:
            for t in self._rank_only:
                if t.holds_rank(rank):
                    return t.name
        if balance is None:
            return UNKNOWN
        for t in self._by_threshold:
            if balance >= t.threshold:
                return t.name
        return None

    def _plain(self, tier: str | None, change: str) -> TierDecision:
        """Decisions without a pending demotion are immutable and few: build each once."""
        key = (tier, change)
        d = self._decisions.get(key)
        if d is None:
            d = self._decisions[key] = TierDecision(tier, change, None)
        return d

    def decide(self, facts: MemberFacts, now: datetime, ranked_members: int = 0) -> TierDecision:
        current = facts.current_tier
        if facts.unknown:
            return TierDecision(current, "unknown", facts.demotion_pending_since)
        cand = self.candidate(facts.rank, facts.balance, ranked_members)
        if cand is UNKNOWN:
            return TierDecision(current, "unknown", facts.demotion_pending_since)
        if cand == current:
            return self._plain(current, "unchanged")
        ic, iu = self._index.get(cand), self._index.get(current)
        if ic is not None and (iu is None or ic < iu):
            return self._plain(cand, "joined" if current is None else "promoted")
        # A step down (or out).
        if self._grace:
            since = facts.demotion_pending_since or now
            if now - since < self._grace:
                return TierDecision(current, "grace", since)
        return self._plain(cand, "left" if cand is None else "demoted")


BadgeRule = Callable[[MemberFacts, str | None, str | None, datetime], bool]


class BadgeEvaluator:
    """Decides which badges a member earns or loses. ``custom`` maps evaluator names to
    functions ``(facts, tier, highest_tier, now) -> bool``.

    This runs for every member of every sync, so a member is first reduced to a small key --
    how many tenure, activity and conviction thresholds they meet, their best tier, the
    tier-loss and custom checks, and the badges they hold -- and the answer for a key is
    remembered: members with the same key get the same answer.
    """

    _MEMO_LIMIT = 200_000

    def __init__(self, theme: Theme, tiers: TierEvaluator, custom: Mapping[str, BadgeRule] | None = None) -> None:
        self.theme = theme
        self.tiers = tiers
        custom = {**DEFAULT_CUSTOM, **theme.custom_evaluators, **(custom or {})}
        tenure, activity, conviction = [], [], []
        self._reached: list[tuple[str, bool, int]] = []
        self._former: list[tuple[str, bool, str]] = []
        self._custom: list[tuple[str, bool, BadgeRule]] = []
        for b in theme.badges:
            if b.kind == "manual":
                continue  # awarded by people, revoked by people (or a cascade)
            if b.kind == "tenure":
                tenure.append((int(b.value), b.id, b.revocable))
            elif b.kind == "tier_reached":
                floor = tiers.index(b.tier)
                if floor is None:
                    raise ValidationError(f"badge {b.id} names unknown tier {b.tier}", field="badges")
                self._reached.append((b.id, b.revocable, floor))
            elif b.kind == "activity":
                activity.append((Decimal(b.value), b.id, b.revocable))
            elif b.kind == "conviction":
                conviction.append((Decimal(b.value), b.id, b.revocable))
            elif b.kind == "former_tier":
                self._former.append((b.id, b.revocable, b.tier))
            elif b.kind == "custom":
                if b.evaluator not in custom:
                    raise ValidationError(f"badge {b.id} needs a custom evaluator '{b.evaluator}'", field="badges")
                self._custom.append((b.id, b.revocable, custom[b.evaluator]))
            else:
                raise ValidationError(f"badge {b.id} has unknown kind '{b.kind}'", field="badges")
        # Thresholds sorted low to high: meeting k of them means meeting the first k.
        self._tenure = sorted(tenure)
        self._activity = sorted(activity)
        self._conviction = sorted(conviction)
        self._tenure_days = [t[0] for t in self._tenure]
        self._activity_values = [t[0] for t in self._activity]
        self._conviction_values = [t[0] for t in self._conviction]
        self._memo: dict = {}

    def evaluate(self, facts: MemberFacts, tier: str | None, highest: str | None,
                 now: datetime) -> tuple[frozenset, frozenset]:
        """(earned, revoked) relative to ``facts.held_badges``."""
        index = self.tiers._index
        i, j = index.get(tier), index.get(highest)
        key = (
            bisect_right(self._tenure_days, (now - facts.joined_at).days) if self._tenure else 0,
            i if j is None else (j if i is None else min(i, j)),
            bisect_right(self._activity_values, facts.activity) if self._activity else 0,
            bisect_right(self._conviction_values, facts.conviction) if self._conviction else 0,
            self._former_key(tier, highest) if self._former else (),
            self._custom_key(facts, tier, highest, now) if self._custom else (),
            facts.held_badges,
        )
        answer = self._memo.get(key)
        if answer is None:
            if len(self._memo) >= self._MEMO_LIMIT:
                self._memo.clear()
            answer = self._memo[key] = self._decide(*key)
        return answer

    def _former_key(self, tier, highest) -> tuple:
        if len(self._former) == 1:
            lost = self._former[0][2]
            return (highest == lost and tier != lost,)
        return tuple(highest == lost and tier != lost for _, _, lost in self._former)

    def _custom_key(self, facts, tier, highest, now) -> tuple:
        if len(self._custom) == 1:
            return (bool(self._custom[0][2](facts, tier, highest, now)),)
        return tuple(bool(rule(facts, tier, highest, now)) for _, _, rule in self._custom)

    def _decide(self, tenure_met, best, activity_met, conviction_met, former, custom, held):
        results: list[tuple[str, bool, bool]] = []
        for k, (_, badge_id, revocable) in enumerate(self._tenure):
            results.append((badge_id, revocable, k < tenure_met))
        for badge_id, revocable, floor in self._reached:
            results.append((badge_id, revocable, best is not None and best <= floor))
        for k, (_, badge_id, revocable) in enumerate(self._activity):
            results.append((badge_id, revocable, k < activity_met))
        for k, (_, badge_id, revocable) in enumerate(self._conviction):
            results.append((badge_id, revocable, k < conviction_met))
        for (badge_id, revocable, _), ok in zip(self._former, former):
            results.append((badge_id, revocable, ok))
        for (badge_id, revocable, _), ok in zip(self._custom, custom):
            results.append((badge_id, revocable, ok))
        earned = frozenset(b for b, _, ok in results if ok and b not in held)
        revoked = frozenset(b for b, rev, ok in results if not ok and rev and b in held)
        return earned, revoked


def _founding_naib(f: MemberFacts, tier, top, now) -> bool:
    seat = f.metadata.get("top_tier_seat") if f.metadata else None
    return isinstance(seat, int) and 1 <= seat <= 7


DEFAULT_CUSTOM: dict[str, BadgeRule] = {"founding_naib": _founding_naib}


class ThemeEvaluator:
    """Tier and badges together, for one theme."""

    def __init__(self, theme: Theme, strategy: str | None = None,
                 percentages: Mapping[str, Decimal | float] | None = None,
                 custom: Mapping[str, BadgeRule] | None = None) -> None:
        self.tiers = TierEvaluator(theme, strategy, percentages)
        self.badges = BadgeEvaluator(theme, self.tiers, custom)

    def evaluate(self, facts: MemberFacts, now: datetime, ranked_members: int = 0) -> Evaluation:
        decision = self.tiers.decide(facts, now, ranked_members)
        highest = facts.highest_tier
        if decision.tier != highest and self.tiers.higher(decision.tier, highest):
            highest = decision.tier
        if decision.change == "unknown":
            return Evaluation(decision, highest, _EMPTY, _EMPTY)
        earned, revoked = self.badges.evaluate(facts, decision.tier, highest, now)
        return Evaluation(decision, highest, earned, revoked)

    def evaluate_many(self, members: Iterable[MemberFacts], now: datetime,
                      ranked_members: int | None = None) -> list[Evaluation]:
        """The same as :meth:`evaluate` for each member, with the per-member work kept in one loop
        (a sync evaluates every member of a community)."""
        members = members if isinstance(members, Sequence) else list(members)
        if ranked_members is None:
            ranked_members = sum(1 for m in members if m.rank is not None)
        decide, badges, index = self.tiers.decide, self.badges.evaluate, self.tiers._index
        out = []
        append = out.append
        for m in members:
            decision = decide(m, now, ranked_members)
            tier, highest = decision.tier, m.highest_tier
            if tier != highest and tier is not None:
                i, j = index.get(tier), index.get(highest)
                if i is not None and (j is None or i < j):
                    highest = tier
            if decision.change == "unknown":
                append(Evaluation(decision, highest, _EMPTY, _EMPTY))
            else:
                earned, revoked = badges(m, tier, highest, now)
                append(Evaluation(decision, highest, earned, revoked))
        return out


_EMPTY: frozenset = frozenset()
