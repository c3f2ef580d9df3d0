"""``arrakis plan``: the policy pre-gate over Terraform plans."""

from __future__ import annotations

from pathlib import Path

import click

from .base import CliState, command_group
from .output import Output, reports

plan = command_group("plan", "Check infrastructure plans (Terraform) before anyone reviews them.")


@plan.command("check")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cost", "cost_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Infracost breakdown JSON (infracost breakdown --format json) for the cost check.")
@reports
def plan_check(state: CliState, plan_file: Path, cost_file: Path | None) -> Output:
    """Hard blocks, budget, risk score and warnings for a plan (terraform show -json PLANFILE).
    Exit status: 0 approve, 10 review, 20 reject; 1 with one line when the input is wrong."""
    d = state.policy_gate.check_files(plan_file, cost_file)
    risk = d.risk
    lines = [f"decision: {d.decision.upper()} (risk {risk.score}, {risk.level}; {d.changes} resource(s) change)"]
    lines += [f"  - {r}" for r in d.reasons]
    lines.append(f"  {risk.explanation}")
    if d.budget["increase_monthly"] is None:
        lines.append(f"  cost: not estimated (give --cost); budget ${d.budget['limit_monthly']:,.0f} a month")
    if d.top_resources:
        lines.append("  look first at: " + ", ".join(d.top_resources))
    return Output(d.as_dict(), lines, exit_code=d.exit_status)
