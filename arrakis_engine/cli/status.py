"""``arrakis status`` (platform health and the fleet) and ``arrakis audit``."""

from __future__ import annotations

import click

from .base import CliState, cli, command_group
from ..errors import StorageError
from ..metrics import success_lines
from .output import Output, reports


def _when(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t else "never"


@cli.command("status")
@reports
def status_cmd(state: CliState) -> Output:
    """Platform health and every community's last sync, last synthesis and drift (the console's
    first screen, for scripts)."""
    ops = state.engine.operations
    health = ops.health()  # says itself which service is down
    try:
        fleet, unreadable = ops.fleet(), None
    except StorageError as exc:  # PostgreSQL down: the health above is what an operator needs most
        fleet, unreadable = [], str(exc)
    lines = [f"{item.name:<15} {item.state:<9} {item.detail}" for item in health.items]
    lines.append(f"Discord calls in the last {len(health.bucket_use) * health.step_seconds // 60} min: "
                 f"{sum(health.bucket_use)}, 429s: {sum(health.rate_limited)}")
    if health.success:
        lines.append("Success metrics, last 24 h:")
        lines += [f"  {line}" for line in success_lines(health.success)]
    lines += [f"{f.name:<24} {f.guild_id:<20} {f.theme:<7} {f.subscription:<10} {f.members:>7} members  "
              f"synced {_when(f.last_sync):<16}  synthesized {_when(f.last_synthesis):<16}  drift: {f.drift}"
              for f in fleet]
    if unreadable is not None:
        lines.append(f"communities: not readable ({unreadable})")
        return Output({"health": health.as_dict(), "communities": None, "error": unreadable}, lines, exit_code=1)
    return Output({"health": health.as_dict(), "communities": [f.as_dict() for f in fleet]}, lines)


audit = command_group("audit", "The append-only audit log.")


@audit.command("verify")
@click.argument("community_id", required=False)
@reports
def audit_verify(state: CliState, community_id: str | None) -> Output:
    """Check a community's audit chain (or the platform chain if no id is given): every row's
    hash and link, the signed checkpoints, and the digests in the object store. Says which rows
    are missing, rewritten, or unanchored (written after the latest digest); any of them: exit 1."""
    report = state.engine.audit_check.verify(community_id)
    anchoring = report.anchoring or {}
    broken = [p for p in report.problems if "are unanchored" not in p]
    head = f"{report.rows} entries; chain " + ("intact" if report.ok else "BROKEN" if broken
                                                else "intact but not all of it anchored outside the database")
    if anchoring.get("latest_digest"):
        head += f"; anchored up to row {anchoring['anchored_to']} by digest #{anchoring['latest_digest']}"
    return Output(report.as_dict(), [head] + [f"  - {p}" for p in report.problems],
                  exit_code=0 if report.ok else 1)
