"""``arrakis themes``: tiers, badges and channel layouts (no servers needed)."""

from __future__ import annotations

import click

from ..themes import THEMES, get_theme
from .base import CliState, command_group
from .output import Output, reports


themes = command_group("themes", "Themes: tiers, badges and channel layouts.")


@themes.command("list")
@reports
def themes_list(state: CliState) -> Output:
    """Every theme and the subscription it needs."""
    rows = [{"id": t.id, "name": t.name, "requires": t.requires, "tiers": len(t.tiers), "badges": len(t.badges),
             "description": t.description} for t in THEMES.values()]
    return Output(rows, [f"{r['id']:<8} {r['name']:<8} needs {r['requires']:<8} {r['tiers']} tiers, "
                         f"{r['badges']} badges  {r['description']}" for r in rows])


def _who(c) -> str:
    if c.min_tier:
        return f" [{c.min_tier} and up]"
    if c.tiers:
        return f" [{', '.join(c.tiers)} only]"
    if c.badge:
        return f" [{c.badge} holders]"
    return f" [ranks {c.rank_range[0]}-{c.rank_range[1]}]" if c.rank_range else ""


@themes.command("show")
@click.argument("theme_id")
@reports
def themes_show(state: CliState, theme_id: str) -> Output:
    """Tiers, badges, naming and channel template of one theme."""
    theme = get_theme(theme_id)
    lines = [f"{theme.name} ({theme.id}), needs {theme.requires}; demotion grace {theme.demotion_grace_hours} h",
             f"naming: {theme.naming.community_format}; members are {theme.naming.member_title}, "
             f"admins {theme.naming.admin_title}", "tiers:"]
    for t in theme.tiers:
        ranks = f"{t.min_rank}-{t.max_rank}" if t.max_rank else f"{t.min_rank}+"
        threshold = f"  threshold {t.threshold}" if t.threshold is not None else ""
        lines.append(f"  {t.name:<10} ranks {ranks:<9} {t.colour}{threshold}")
    lines.append("badges:")
    lines += [f"  {b.name:<20} {b.description}{' (revocable)' if b.revocable else ''}" for b in theme.badges]
    lines.append("channels:")
    lines += [f"  {c.name}{_who(c)}: " + ", ".join("#" + ch.name for ch in c.channels) for c in theme.categories]
    return Output(theme.as_dict(), lines)


@themes.command("tier", context_settings={"ignore_unknown_options": True})  # -1 is a rank, refused as one
@click.argument("theme_id")
@click.argument("rank", type=int)
@reports
def themes_tier(state: CliState, theme_id: str, rank: int) -> Output:
    """The tier a rank gets in a theme."""
    theme = get_theme(theme_id)
    tier = theme.tier_for_rank(rank)
    return Output({"theme": theme.id, "rank": rank, "tier": tier},
                  [f"rank {rank} in {theme.name}: {tier or 'no tier'}"])
