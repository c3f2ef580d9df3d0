"""``arrakis community`` and ``arrakis demo``."""

from __future__ import annotations

import click

from ..themes import SUBSCRIPTIONS
from .base import CliState, cli, command_group
from .output import Output, phases, reports


community = command_group("community", "Create and list communities.")


@community.command("create")
@click.option("--name", required=True, help="Community name.")
@click.option("--guild-id", required=True, help="Discord guild id.")
@click.option("--theme", default="basic", show_default=True, help="Theme id (basic, sietch).")
@click.option("--subscription", default="free", show_default=True,
              type=click.Choice(SUBSCRIPTIONS), help="Subscription tier.")
@reports
def community_create(state: CliState, name: str, guild_id: str, theme: str, subscription: str) -> Output:
    """Create a community for one Discord guild."""
    c = state.engine.communities.create(name=name, guild_id=guild_id, theme_id=theme, subscription=subscription)
    return Output(c.as_dict(), [f"created community {c.name} ({c.id}) for guild {c.guild_id}, theme {c.theme_id}"])


@community.command("list")
@reports
def community_list(state: CliState) -> Output:
    """Every community with its member count."""
    rows = state.engine.communities.list()

    def table() -> None:
        if not rows:
            click.echo("no communities yet (create one with `arrakis community create`)")
            return
        from rich.console import Console
        from rich.table import Table

        from rich import box

        t = Table(box=box.SIMPLE_HEAD)
        for name in ("id", "name", "guild", "theme", "plan", "members", "active"):
            t.add_column(name, no_wrap=True)
        for r in rows:
            c = r.community
            t.add_row(str(c.id), c.name, c.guild_id, c.theme_id, c.subscription_tier, str(r.members),
                      "yes" if c.is_active else "no")
        # Ids are what the other commands take: never cut a row short to fit a narrow terminal
        # (or the 80 columns assumed when the output goes to a pipe); let it run wider instead.
        console = Console()
        unbounded = console.options.update(max_width=10_000)
        console.width = max(console.width, console.measure(t, options=unbounded).maximum)
        console.print(t)

    return Output([r.as_dict() for r in rows], table)


@cli.command()
@reports
def demo(state: CliState, as_json: bool) -> Output:
    """Create (or refresh) a demo community with members and badges; on the local Discord
    sandbox, synthesize its guild, give members their roles and check drift. Prints a summary.
    Refused at once while the kill switch holds everything (the demo's guild could not be built)."""
    state.engine.killswitch.check_not_frozen(None)
    with phases(as_json, label="demo: ") as progress:
        s = state.engine.demo.run(progress=(lambda phase, done, total: progress(phase, done, total))
                                  if progress else None)
    chain = s["audit_chain"]
    return Output(s, [
        f"{'Created' if s['created'] else 'Reused'} demo community {s['community']} ({s['community_id']}) "
        f"on {s['stack']}",
        f"  members: {s['members']} ({s['members_added']} added this run)",
        "  tiers:   " + ", ".join(f"{k} {v}" for k, v in s["tiers"].items()),
        "  badges:  " + ", ".join(f"{k} {v}" for k, v in s["badges"].items()),
        f"  contributor lineage depth: {s['contributor_lineage_depth']}",
        f"  audit log: {chain['rows']} entries, chain {'intact' if chain['ok'] else 'BROKEN'}",
        "  services: " + ", ".join(f"{k} {v}" for k, v in s["health"].items()),
        *_discord_lines(s["discord"])])


def _discord_lines(d: dict) -> list[str]:
    if d["where"] != "sandbox":
        return [f"  Discord: {d['note']}"]
    lines = [
        f"  Discord (the local sandbox, not real Discord): guild {d['guild_id']}, manifest v{d['manifest_version']}",
        f"    roles ({len(d['roles'])}): " + ", ".join(d["roles"]),
        f"    categories ({len(d['categories'])}): " + ", ".join(d["categories"]),
        f"    channels ({len(d['channels'])}): " + ", ".join(d["channels"]),
        f"    members with roles: {d['members_with_roles']} ("
        + ", ".join(f"{k} {v}" for k, v in d["members_by_role"].items()) + ")",
        f"    member role updates this run: {d['member_updates']}",
    ]
    if "member_sync" in d:
        lines.append(f"    member sync {d['member_sync']}")
    lines += [f"    drift: {d['drift']} (checked {d['drift_checked']})",
              f"    Discord calls this run: {d['calls']}; 429s: {d['rate_limited']}; busiest 1-s window "
              f"since the sandbox started: {d['busiest_window']} (Discord allows 50)"]
    return lines
