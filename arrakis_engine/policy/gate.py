"""The policy pre-gate: what happens to an infrastructure change before a person reviews it.

In this order: any hard block rejects (nobody can override); a monthly cost increase over the
budget rejects (``BUDGET_EXCEEDED``); a risk of 50 or more, or any warning, sends it to review;
anything else is approved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..ports import PolicyEngine
from .plan import changes_of, check_plan, monthly_cost_increase, read_json
from .risk import OPERATION_RISK, RESOURCE_TYPE_RISK, UNKNOWN_TYPE, Risk, score

REVIEW_AT = 50
DEFAULT_BUDGET = Decimal(5000)
EXIT_STATUS = {"approve": 0, "review": 10, "reject": 20}


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

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.decision]

    def as_dict(self) -> dict:
        return {"decision": self.decision, "reasons": self.reasons, "risk_score": self.risk.score,
                "risk_level": self.risk.level, "risk": self.risk.as_dict(), "hard_blocks": self.hard_blocks,
                "warnings": self.warnings, "budget": self.budget, "changes": self.changes,
                "top_resources": self.top_resources}


class PolicyGate:
    def __init__(self, engine: PolicyEngine, *, budget: Decimal = DEFAULT_BUDGET) -> None:
        self.engine = engine
        self.budget = Decimal(budget)

    def check_files(self, plan_path: str | Path, cost_path: str | Path | None = None) -> PolicyDecision:
        """Read a plan (``terraform show -json``) and, if given, an Infracost breakdown; decide."""
        plan = read_json(plan_path, "plan")
        cost = read_json(cost_path, "cost file") if cost_path is not None else None
        return self.check(plan, cost)

    def check(self, plan: Any, cost: Any = None) -> PolicyDecision:
        resource_changes = check_plan(plan)
        increase = monthly_cost_increase(cost) if cost is not None else None
        found = self.engine.evaluate(plan)
        changes = changes_of(resource_changes)
        risk = score(changes, increase)
        over = increase is not None and increase > self.budget
        budget = {"limit_monthly": float(self.budget), "increase_monthly": float(increase) if increase is not None
                  else None, "exceeded": over, "excess_monthly": float(increase - self.budget) if over else 0.0}
        reasons: list[str] = []
        if found["hard_blocks"]:
            decision = "reject"
            reasons += [f"{b['id']}: {b['address']} {b['message']}" for b in found["hard_blocks"]]
        if over:
            decision = "reject"
            reasons.append(f"BUDGET_EXCEEDED: adds ${increase:,.2f} a month, ${increase - self.budget:,.2f} over "
                           f"the ${self.budget:,.2f} budget")
        if not reasons:
            if risk.score >= REVIEW_AT or found["warnings"]:
                decision = "review"
                if risk.score >= REVIEW_AT:
                    reasons.append(f"risk {risk.score} ({risk.level}) is {REVIEW_AT} or more")
                reasons += [f"{w['id']}: {w['address'] or 'plan'} {w['message']}" for w in found["warnings"]]
            else:
                decision = "approve"
                reasons.append(f"no hard block, within budget, risk {risk.score} ({risk.level}), no warning")
        top = sorted(changes, key=lambda c: (-_weight(c), c.address))[:5]
        return PolicyDecision(decision, reasons, risk, found["hard_blocks"], found["warnings"], budget,
                              found["changes"], [f"{c.operation} {c.address}" for c in top])


def _weight(change) -> float:
    """How much a change adds to the risk: the reviewer's first places to look."""
    return 0.35 * RESOURCE_TYPE_RISK.get(change.type, UNKNOWN_TYPE) + 0.30 * OPERATION_RISK[change.operation]
