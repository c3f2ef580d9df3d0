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
@click.option("--profile", type=click.Choice(["upstream", "strict"]), default=None,
              help="The gate's tables: upstream (the design's) or strict (default: $ARRAKIS_POLICY_PROFILE, "
                   "else upstream).")
@reports
def plan_check(state: CliState, plan_file: Path, cost_file: Path | None, profile: str | None) -> Output:
    """Hard blocks, budget, risk score and warnings for a plan (terraform show -json PLANFILE).
    Exit status: 0 approve, 10 review, 20 reject; 1 with one line when the input is wrong; 2 when
    it is over a limit (size, nesting, resources, kinds of change, time)."""
    d = state.policy_gate.check_files(plan_file, cost_file, profile=profile)
    risk = d.risk
    lines = [f"decision: {d.decision.upper()} (risk {risk.score}, {risk.level}; {d.changes} resource(s) change; "
             f"{d.profile} profile)"]
    lines += [f"  - {r}" for r in d.reasons]
    lines.append(f"  {risk.explanation}")
    if d.budget["increase_monthly"] is None:
        lines.append(f"  cost: not estimated (give --cost); budget ${d.budget['limit_monthly']:,.0f} a month")
    if d.top_resources:
        lines.append("  look first at: " + ", ".join(d.top_resources))
    return Output(d.as_dict(), lines, exit_code=d.exit_status)


def _request_lines(r) -> list[str]:
    lines = [f"{r.id}  {r.status.upper()}  risk {r.risk_score} ({r.risk_level})  {r.title}",
             f"  asked by {r.requested_by} at {r.created_at:%Y-%m-%d %H:%M} UTC; expires {r.expires_at:%Y-%m-%d %H:%M} UTC"]
    if r.decided_at:
        who = f" by {r.decided_by}" if r.decided_by else ""
        lines.append(f"  {r.status}{who} at {r.decided_at:%Y-%m-%d %H:%M} UTC" + (f": {r.reason}" if r.reason else ""))
    if r.status == "pending":
        lines.append(("  high risk; " if r.high_risk else "  ") + "approving or rejecting needs the approver's code")
    return lines


@plan.command("submit")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cost", "cost_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Infracost breakdown JSON for the cost check.")
@click.option("--title", default=None, help="What the change is, for the reviewers.")
@click.option("--as", "as_name", envvar="ARRAKIS_OPERATOR", required=True, metavar="NAME",
              help="The operator asking (default: $ARRAKIS_OPERATOR).")
@click.option("--code", default=None, help="Your TOTP or backup code; asked for when missing.")
@reports
def plan_submit(state: CliState, plan_file: Path, cost_file: Path | None, title: str | None, as_name: str,
                code: str | None) -> Output:
    """Ask for a person's approval of a plan (refused, exit 20, if the gate rejects it), proving
    who asks with your code. The request is posted to Slack and/or Discord when configured and
    expires after 24 hours."""
    from .security import ask_code

    r = state.engine.approvals.submit(plan_file, cost_file, requested_by=as_name, title=title,
                                      code=lambda: ask_code(code))
    where = ", ".join(sorted(r.notified)) or "nowhere yet (no Slack or Discord configured): tell an approver"
    return Output(r.as_dict(), _request_lines(r) + [f"  posted to: {where}",
                                                   f"  wait for it: arrakis plan status {r.id} --wait"])


@plan.command("status")
@click.argument("request_id")
@click.option("--wait", is_flag=True, help="Wait until the request is answered (or --timeout passes).")
@click.option("--timeout", type=float, default=24 * 3600, show_default=True, help="Seconds to wait at most.")
@reports
def plan_status(state: CliState, request_id: str, wait: bool, timeout: float) -> Output:
    """Where an approval request stands. Exit status: 0 approved; 10 still pending; 20 rejected,
    expired or cancelled (for CI pipelines)."""
    approvals = state.engine.approvals
    r = approvals.wait(request_id, timeout=timeout) if wait else approvals.get(request_id)
    code = {"approved": 0, "pending": 10}.get(r.status, 20)
    return Output(r.as_dict(), _request_lines(r), exit_code=code)


approvals = command_group("approvals", "People's answers to infrastructure changes the policy gate sent to review.")


@approvals.command("list")
@click.option("--status", default=None, help="pending, approved, rejected, expired or cancelled.")
@reports
def approvals_list(state: CliState, status: str | None) -> Output:
    """Every approval request, newest first (expired ones are marked so first)."""
    rows = state.engine.approvals.list(status)
    return Output([r.as_dict() for r in rows],
                  [line for r in rows for line in _request_lines(r)] or ["no approval requests"])


@approvals.command("show")
@click.argument("request_id")
@reports
def approvals_show(state: CliState, request_id: str) -> Output:
    """One request: its state, the gate's findings, the risk and what drove it."""
    r = state.engine.approvals.get(request_id)
    report = r.report
    lines = _request_lines(r) + [f"  {report['risk']['explanation']}"]
    lines += [f"  - {reason}" for reason in report.get("reasons", [])]
    if report.get("top_resources"):
        lines.append("  look first at: " + ", ".join(report["top_resources"]))
    return Output(r.as_dict(), lines)


def _answer_options(f):
    f = click.option("--reason", default=None, help="Why (shown to the requester and kept in the audit log).")(f)
    f = click.option("--as", "as_name", envvar="ARRAKIS_OPERATOR", required=True, metavar="NAME",
                     help="The approver (default: $ARRAKIS_OPERATOR).")(f)
    return click.argument("request_id")(f)


def _answer_command(name: str, doc: str) -> None:
    """``arrakis approvals NAME ID --as WHO --code CODE [--reason R]``: the approvals use case of
    that name. The code is asked for (when missing, on a terminal) only once the rules allow the
    answer, so a refused answer burns no attempt."""
    def command(state: CliState, request_id: str, as_name: str, reason: str | None, code: str | None) -> Output:
        from .security import ask_code

        r = getattr(state.engine.approvals, name)(request_id, by=as_name, reason=reason, code=lambda: ask_code(code))
        return Output(r.as_dict(), _request_lines(r))

    command.__doc__ = doc
    command = click.option("--code", default=None, help="Your TOTP or backup code; asked for when missing.")(command)
    approvals.command(name)(_answer_options(reports(command)))


_answer_command("approve", "Approve (an approver who did not ask, with your code).")
_answer_command("reject", "Reject (an approver who did not ask, with your code).")
_answer_command("cancel", "Withdraw your own request (with your code).")
