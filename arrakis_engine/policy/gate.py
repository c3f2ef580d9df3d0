"""The policy pre-gate: what happens to an infrastructure change before a person reviews it.

In this order: any hard block rejects (nobody can override); a monthly cost increase over the
budget rejects (``BUDGET_EXCEEDED``); a risk of 50 or more, or any warning, sends it to review;
anything else is approved.

Input is bounded (:class:`~arrakis_engine.policy.plan.PlanLimits`): too large, too deep, too many
resources or kinds of change, or more than the time budget, and the plan is refused with one line
(:class:`~arrakis_engine.errors.InputTooLarge`, exit status 2). Reasons name each rule once, with
how many resources it concerns and the first few of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..metrics import NULL_METRICS, Metrics
from ..ports import PolicyEngine
from .plan import DEFAULT_LIMITS, PlanLimits, changes_of, check_plan, monthly_cost_increase, read_json
from .risk import DEFAULT_PROFILE, Risk, RiskProfile, profile_named, score

REVIEW_AT = 50
DEFAULT_BUDGET = Decimal(5000)
EXIT_STATUS = {"approve": 0, "review": 10, "reject": 20}
FIRST_ADDRESSES = 3  # addresses a grouped reason names before "and N more"


@dataclass(frozen=True)
class PolicyDecision:
    decision: str  # approve | review | reject
    reasons: list[str]
    risk: Risk
    hard_blocks: list[dict]
    warnings: list[dict]
    budget: dict
    changes: int
    top_resources: list[str] = field(default_factory=list)
    profile: str = DEFAULT_PROFILE

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.decision]

    def as_dict(self) -> dict:
        return {"decision": self.decision, "reasons": self.reasons, "risk_score": self.risk.score,
                "risk_level": self.risk.level, "risk": self.risk.as_dict(), "hard_blocks": self.hard_blocks,
                "warnings": self.warnings, "budget": self.budget, "changes": self.changes,
                "top_resources": self.top_resources, "profile": self.profile}


def grouped(findings: list[dict]) -> list[str]:
    """One line per rule: its id, what it says, how many resources, and the first addresses."""
    by_rule: dict[str, list[dict]] = {}
    for f in findings:
        by_rule.setdefault(f["id"], []).append(f)
    lines = []
    for rule, group in by_rule.items():
        messages = list(dict.fromkeys(f["message"] for f in group))
        said = " / ".join(messages[:FIRST_ADDRESSES]) + (f" / and {len(messages) - FIRST_ADDRESSES:,} more"
                                                          if len(messages) > FIRST_ADDRESSES else "")
        addresses = [f["address"] for f in group if f.get("address")]
        if not addresses:
            lines.append(f"{rule}: plan {said}")
            continue
        first = ", ".join(addresses[:FIRST_ADDRESSES])
        more = f" and {len(addresses) - FIRST_ADDRESSES:,} more" if len(addresses) > FIRST_ADDRESSES else ""
        count = f"{len(addresses):,} resources: " if len(addresses) > 1 else ""
        lines.append(f"{rule}: {said}; {count}{first}{more}")
    return lines


class PolicyGate:
    def __init__(self, engine: PolicyEngine, *, budget: Decimal = DEFAULT_BUDGET, profile: str = DEFAULT_PROFILE,
                 limits: PlanLimits = DEFAULT_LIMITS, metrics: Metrics = NULL_METRICS) -> None:
        self.metrics = metrics
        self.engine = engine
        self.budget = Decimal(budget)
        self.profile = profile_named(profile)
        self.limits = limits

    def read(self, path: str | Path, what: str) -> Any:
        """A plan or cost file, within the gate's limits."""
        return read_json(path, what, self.limits)

    def check_files(self, plan_path: str | Path, cost_path: str | Path | None = None, *,
                    profile: str | None = None) -> PolicyDecision:
        """Read a plan (``terraform show -json``) and, if given, an Infracost breakdown; decide."""
        plan = self.read(plan_path, "plan")
        cost = self.read(cost_path, "cost file") if cost_path is not None else None
        return self.check(plan, cost, profile=profile)

    def check(self, plan: Any, cost: Any = None, *, profile: str | None = None) -> PolicyDecision:
        deadline = time.monotonic() + self.limits.time_budget
        tables = profile_named(profile) if profile else self.profile
        resource_changes = check_plan(plan, self.limits)
        increase = monthly_cost_increase(cost) if cost is not None else None
        found = self.engine.evaluate(plan, profile=tables.name, limits=self.limits, deadline=deadline)
        changes = changes_of(resource_changes)
        risk = score(changes, increase, tables)
        over = increase is not None and increase > self.budget
        budget = {"limit_monthly": float(self.budget), "increase_monthly": float(increase) if increase is not None
                  else None, "exceeded": over, "excess_monthly": float(increase - self.budget) if over else 0.0}
        reasons: list[str] = []
        if found["hard_blocks"]:
            decision = "reject"
            reasons += grouped(found["hard_blocks"])
        if over:
            decision = "reject"
            reasons.append(f"BUDGET_EXCEEDED: adds ${increase:,.2f} a month, ${increase - self.budget:,.2f} over "
                           f"the ${self.budget:,.2f} budget")
        if not reasons:
            if risk.score >= REVIEW_AT or found["warnings"]:
                decision = "review"
                if risk.score >= REVIEW_AT:
                    reasons.append(f"risk {risk.score} ({risk.level}) is {REVIEW_AT} or more")
                reasons += grouped(found["warnings"])
            else:
                decision = "approve"
                reasons.append(f"no hard block, within budget, risk {risk.score} ({risk.level}), no warning")
        top = sorted(changes, key=lambda c: (-_weight(c, tables), c.address))[:5]
        self.metrics.policy(decision, found["hard_blocks"])
        return PolicyDecision(decision, reasons, risk, found["hard_blocks"], found["warnings"], budget,
                              found["changes"], [f"{c.operation} {c.address}" for c in top], tables.name)


def _weight(change, tables: RiskProfile) -> int:
    """How much a change adds to the risk: the reviewer's first places to look."""
    return 35 * tables.type_risk(change.type) + 30 * tables.operations[change.operation]
