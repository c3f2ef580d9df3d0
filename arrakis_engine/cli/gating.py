"""``arrakis gate`` (a community's gating rules) and ``arrakis allowlist``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ValidationError
from ..gating.gating_service import check_lines
from .base import CliState, command_group
from .output import Output, reports

EXIT_UNKNOWN = 3

gate = command_group("gate", "Gating rules: who may be a member (and a tier), as any/all/not of requirements.")


@gate.command("set")
@click.argument("community_id", metavar="COMMUNITY")
@click.argument("path", metavar="RULE.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tier", default=None, help="Set this tier's rule (rank range AND rule) instead of membership.")
@reports
def gate_set(state: CliState, community_id: str, path: Path, tier: str | None) -> Output:
    """Validate and store the community's rule (or a tier's). A bad rule is one line naming the
    place in the JSON, e.g. `all[1].any[0].min: not a number`."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"could not read {path.name}: {getattr(exc, 'strerror', None) or exc}",
                              field="file") from None
    rule = state.engine.gating.set_rule(community_id, text, tier=tier, actor="cli")
    what = f"tier {tier}" if tier else "membership"
    n = len(rule.requirements())
    return Output({"tier": tier, "rule": rule.as_json()},
                  [f"{what} rule set: {n} requirement(s); it applies from the next eligibility sync"]
                  + [f"  {r.path}: {r.describe()}" for r in rule.requirements()])


@gate.command("remove")
@click.argument("community_id", metavar="COMMUNITY")
@click.option("--tier", default=None, help="Remove this tier's rule instead of the membership rule.")
@reports
def gate_remove(state: CliState, community_id: str, tier: str | None) -> Output:
    """Remove the membership rule (or a tier's)."""
    gone = state.engine.gating.remove_rule(community_id, tier=tier, actor="cli")
    what = f"tier {tier}" if tier else "membership"
    return Output({"removed": gone, "tier": tier}, [f"{what} rule removed" if gone else f"no {what} rule to remove"],
                  exit_code=0 if gone else 1)


@gate.command("show")
@click.argument("community_id", metavar="COMMUNITY")
@reports
def gate_show(state: CliState, community_id: str) -> Output:
    """The community's rules (membership and tiers) and its allowlists."""
    shown = state.engine.gating.show(community_id)
    lines = []
    if shown["membership"] is None and not shown["tiers"]:
        lines.append("no gating rule (membership follows the eligibility assets only)")
    if shown["membership"] is not None:
        lines.append("membership: " + json.dumps(shown["membership"]))
    for tier, rule in shown["tiers"].items():
        lines.append(f"tier {tier}: " + json.dumps(rule))
    for a in shown["allowlists"]:
        lines.append(f"allowlist {a['name']}: {a['size']} address(es), imported {a['imported_at'][:19]} "
                     f"by {a['imported_by']}")
    return Output(shown, lines)


@gate.command("check")
@click.argument("community_id", metavar="COMMUNITY")
@click.option("--member", "discord_id", required=True, help="The member's Discord id.")
@reports
def gate_check(state: CliState, community_id: str, discord_id: str) -> Output:
    """Each requirement's value and true/false/unknown for one member, and the result. Exit 0
    eligible, 1 not eligible, 3 unknown (a read failed)."""
    report = state.engine.gating.check(community_id, discord_id)
    code = {"true": 0, "false": 1, "unknown": EXIT_UNKNOWN}[report["result"]]
    return Output(report, check_lines(report), exit_code=code)


allowlist = command_group("allowlist", "Named wallet lists for gating rules.")


@allowlist.command("import")
@click.argument("community_id", metavar="COMMUNITY")
@click.argument("name")
@click.argument("path", metavar="FILE.csv", type=click.Path(dir_okay=False, path_type=Path))
@reports
def allowlist_import(state: CliState, community_id: str, name: str, path: Path) -> Output:
    """Replace the list NAME with the addresses in a CSV (an address or wallet_address column, or
    one address per line; up to 100,000). A bad line refuses the whole file."""
    r = state.engine.gating.import_allowlist(community_id, name, path, actor="cli")
    text = f"allowlist {r['name']}: {r['addresses']} address(es)"
    if r["repeated"]:
        text += f"; {r['repeated']} repeated line(s) counted once"
    return Output(r, [text])
