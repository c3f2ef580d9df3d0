"""Two-tier eligibility: the native reader always, the Score Service when it answers.

Degradation when the Score Service is down (DESIGN §4):

| query                          | result                              | source                     |
|--------------------------------|-------------------------------------|----------------------------|
| token balance, NFT ownership   | native reader, unaffected           | native                     |
| rank threshold                 | native ranking, else balance check  | native_degraded            |
| never redeemed                 | cached, else deny                   | cached / degraded          |
| activity, conviction           | cached, else 0                      | cached / degraded          |

Fresh score data (from the service, or cached less than 5 minutes ago) is ``score``. Cached
scores are kept for a day and served stale while the service fails (``cached``). A chain read that
failed gives ``eligible=None``: unknown, never "no".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping, Sequence

from ..errors import ScoreServiceError, ValidationError
from ..metrics import NULL_METRICS, Metrics
from ..ports import ChainReader, ScoreCacheStore, ScoreSource
from ..storage.chain_holdings import HoldingsRepository
from ..storage.database import Database
from ..domain.chain import UNKNOWN, Asset, ChainReadError, Score, check_address

FRESH_SECONDS = 300


@dataclass(frozen=True)
class EligibilityResult:
    eligible: bool | None  # None: unknown (a read failed); never read as "no"
    source: str  # native | score | cached | native_degraded | degraded
    value: object = None
    detail: str = ""

    def as_dict(self) -> dict:
        v = self.value
        return {"eligible": self.eligible, "source": self.source,
                "value": str(v) if isinstance(v, Decimal) else v, "detail": self.detail}


@dataclass(frozen=True)
class Rule:
    """An advanced rule: ``rank_at_most`` (needs ``limit``; ``asset``/``min_amount`` for the balance
    fallback), ``never_redeemed``, ``activity_at_least`` or ``conviction_at_least`` (``limit``)."""

    kind: str
    limit: Decimal | int | None = None
    asset: Asset | None = None
    min_amount: int = 1

    KINDS = ("rank_at_most", "never_redeemed", "activity_at_least", "conviction_at_least")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValidationError(f"unknown rule '{self.kind}'; use one of {', '.join(self.KINDS)}", field="rule")
        if self.kind != "never_redeemed" and self.limit is None:
            raise ValidationError(f"rule {self.kind} needs a limit", field="limit")


class EligibilityOrchestrator:
    def __init__(self, readers: Mapping[str, ChainReader], *, score: ScoreSource | None = None,
                 cache: ScoreCacheStore | None = None, db: Database | None = None,
                 metrics: Metrics = NULL_METRICS) -> None:
        self.metrics = metrics
        self.readers = dict(readers)
        self.score = score
        self.cache = cache
        self.db = db

    def _reader(self, asset: Asset):
        reader = self.readers.get(asset.chain)
        if reader is None:
            raise ValidationError(f"no RPC endpoints are configured for {asset.chain} "
                                  f"(set RPC_URLS_{asset.chain.upper()})", field="chain")
        return reader

    # --- tier 1 -----------------------------------------------------------------------------------

    def check_basic_eligibility(self, address: str, asset: Asset, min_amount: int = 1) -> EligibilityResult:
        """Balance or NFT ownership from the chain itself. A failed read is unknown."""
        address = check_address(address)
        try:
            value = self._reader(asset).balances(asset, [address])[address]
        except ChainReadError as exc:
            return EligibilityResult(None, "native", None, str(exc))
        if value is UNKNOWN:
            return EligibilityResult(None, "native", None, "the chain read failed")
        return EligibilityResult(value >= min_amount, "native", value)

    # --- tier 2 -----------------------------------------------------------------------------------

    def scores(self, addresses: Sequence[str]) -> dict[str, tuple[Score | None, str]]:
        """Score and source per address: ``score`` (fresh), ``cached`` (stale, service failing),
        or (None, ``degraded``) when there is nothing to go on."""
        addrs = [check_address(a) for a in addresses]
        if self.score is None:
            return {a: (None, "degraded") for a in addrs}
        cached = self.cache.get_many(addrs) if self.cache else {}
        out: dict[str, tuple[Score | None, str]] = {
            a: (cached[a][0], "score") for a in addrs if a in cached and cached[a][1] < FRESH_SECONDS}
        wanted = [a for a in addrs if a not in out]
        if wanted:
            try:
                fetched = self.score.scores(wanted)
            except ScoreServiceError:
                fetched = None
            if fetched is not None:
                if self.cache:
                    self.cache.put(list(fetched.values()))
                for a in wanted:
                    out[a] = (fetched.get(a), "score")
            else:
                for a in wanted:
                    out[a] = (cached[a][0], "cached") if a in cached else (None, "degraded")
        self.metrics.score_reads(out.values(), self.score.breaker_state())
        return out

    def check_advanced_eligibility(self, address: str, rule: Rule, *,
                                   community_id: uuid.UUID | str | None = None) -> EligibilityResult:
        address = check_address(address)
        score, source = self.scores([address])[address]
        if rule.kind == "rank_at_most":
            if source in ("score", "cached") and score is not None:
                return EligibilityResult(score.rank is not None and score.rank <= rule.limit, source, score.rank)
            if source == "score":  # the service answered: no score means no rank
                return EligibilityResult(False, "score", None, "no score for this address")
            return self._rank_fallback(address, rule, community_id)
        if rule.kind == "never_redeemed":
            if score is not None:
                return EligibilityResult(score.never_redeemed, source, score.burned)
            if source == "score":
                return EligibilityResult(True, "score", Decimal(0), "no score: nothing redeemed")
            return EligibilityResult(False, "degraded", None, "Score Service unavailable and nothing cached: denied")
        field = "activity" if rule.kind == "activity_at_least" else "conviction"
        if score is not None:
            value = getattr(score, field)
            return EligibilityResult(value >= Decimal(rule.limit), source, value)
        if source == "score":
            return EligibilityResult(Decimal(0) >= Decimal(rule.limit), "score", Decimal(0))
        return EligibilityResult(Decimal(0) >= Decimal(rule.limit), "degraded", Decimal(0),
                                 f"Score Service unavailable and nothing cached: {field} counted as 0")

    def _rank_fallback(self, address: str, rule: Rule, community_id) -> EligibilityResult:
        asset = rule.asset
        if asset is not None and self.db is not None and community_id is not None:
            holdings = HoldingsRepository(self.db)
            with self.db.tenant(community_id):
                indexed = holdings.state(asset.key) is not None
                rank = holdings.ranks_of(asset.key, [address], exclude_redeemed=asset.never_redeemed).get(address)
            if indexed:
                return EligibilityResult(rank is not None and rank <= rule.limit, "native_degraded", rank,
                                         "ranked from indexed Transfer logs")
        if asset is not None:
            basic = self.check_basic_eligibility(address, asset, rule.min_amount)
            return EligibilityResult(basic.eligible, "native_degraded", basic.value,
                                     "Score Service unavailable: balance check instead of rank")
        return EligibilityResult(None, "native_degraded", None, "no rank source available")

    def status(self) -> dict:
        """mode: full (Score Service answering), cached (it fails; cached scores served),
        partial (native only); with the breaker state and the newest cache entry's age."""
        age = self.cache.newest_age() if self.cache else None
        if self.score is None:
            return {"mode": "partial", "score_service": "not configured", "breaker": None, "cache_age_seconds": age}
        state = self.score.breaker_state()
        if state == "closed":
            mode = "full"
        else:
            mode = "cached" if age is not None else "partial"
        return {"mode": mode, "score_service": "configured", "breaker": state, "cache_age_seconds": age,
                "error_rate": self.score.error_rate()}
