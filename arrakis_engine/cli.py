"""The ``arrakis`` command: one click group, one subcommand group per domain.

Errors are one plain line on stderr and a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import click

from .errors import ArrakisError

log = logging.getLogger("arrakis")


class CliState:
    """Lazily builds the engine once per invocation and closes it at the end."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            from .bootstrap import build_engine
            from .settings import Settings

            settings = Settings.from_env()
            logging.basicConfig(level=logging.DEBUG if self.debug else settings.log_level,
                                format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
            self._engine = build_engine(settings)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


pass_state = click.make_pass_decorator(CliState)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


class ArrakisGroup(click.Group):
    """Turns engine errors into one clear line and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ArrakisError as exc:
            if ctx.obj is not None and getattr(ctx.obj, "debug", False):
                raise
            click.secho(f"error: {exc}", err=True, fg="red")
            for problem in getattr(exc, "problems", [])[:50]:
                click.echo(f"  - {problem}", err=True)
            extra = len(getattr(exc, "problems", [])) - 50
            if extra > 0:
                click.echo(f"  ... and {extra} more", err=True)
            ctx.exit(exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if ctx.obj is not None and getattr(ctx.obj, "debug", False):
                raise
            click.secho(f"error: unexpected {type(exc).__name__}; run again with --debug for details",
                        err=True, fg="red")
            ctx.exit(2)


@click.group(cls=ArrakisGroup)
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Arrakis: token-gated communities on Discord, run from one engine."""
    state = CliState(debug)
    ctx.obj = state
    ctx.call_on_close(state.close)


# --- db ---------------------------------------------------------------------------------------

@cli.group()
def db() -> None:
    """Database schema: apply and list migrations."""


@db.command("upgrade")
@json_option
@pass_state
def db_upgrade(state: CliState, as_json: bool) -> None:
    """Create or repair the roles and apply every pending migration (safe to re-run)."""
    applied = state.engine.migrator.upgrade(
        progress=None if as_json else (lambda m: click.echo(f"applied {m.version}_{m.name}")))
    if as_json:
        emit({"applied": applied})
    elif not applied:
        click.echo("database is up to date")


@db.command("status")
@json_option
@pass_state
def db_status(state: CliState, as_json: bool) -> None:
    """List applied and pending migrations."""
    rows = state.engine.migrator.status()
    if as_json:
        emit([r.__dict__ for r in rows])
        return
    for r in rows:
        click.echo(f"{r.version}  {r.state:<8} {r.name}" + (f"  ({r.applied_at})" if r.applied_at else ""))


# --- community --------------------------------------------------------------------------------

@cli.group()
def community() -> None:
    """Create and list communities."""


@community.command("create")
@click.option("--name", required=True, help="Community name.")
@click.option("--guild-id", required=True, help="Discord guild id.")
@click.option("--theme", default="basic", show_default=True, help="Theme id (basic, sietch).")
@click.option("--subscription", default="free", show_default=True,
              type=click.Choice(["free", "premium", "enterprise"]), help="Subscription tier.")
@json_option
@pass_state
def community_create(state: CliState, name: str, guild_id: str, theme: str, subscription: str, as_json: bool) -> None:
    """Create a community for one Discord guild."""
    c = state.engine.communities.create(name=name, guild_id=guild_id, theme_id=theme, subscription=subscription)
    if as_json:
        emit(c.as_dict())
    else:
        click.echo(f"created community {c.name} ({c.id}) for guild {c.guild_id}, theme {c.theme_id}")


@community.command("list")
@json_option
@pass_state
def community_list(state: CliState, as_json: bool) -> None:
    """Every community with its member count."""
    rows = state.engine.communities.list()
    if as_json:
        emit([r.as_dict() for r in rows])
        return
    if not rows:
        click.echo("no communities yet (create one with `arrakis community create`)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "name", "guild", "theme", "subscription", "members", "active")
    for r in rows:
        c = r.community
        table.add_row(str(c.id), c.name, c.guild_id, c.theme_id, c.subscription_tier, str(r.members),
                      "yes" if c.is_active else "no")
    Console().print(table)


def main() -> None:
    cli(prog_name="arrakis")


if __name__ == "__main__":
    main()
