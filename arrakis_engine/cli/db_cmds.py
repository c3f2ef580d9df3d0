"""``arrakis db``: the database schema."""

from __future__ import annotations

import click

from .base import CliState, command_group
from .output import Output, reports


db = command_group("db", "Database schema: apply and list migrations.")


@db.command("upgrade")
@reports
def db_upgrade(state: CliState, as_json: bool) -> Output:
    """Create or repair the roles and apply every pending migration (safe to re-run)."""
    applied = state.engine.migrator.upgrade(
        progress=None if as_json else (lambda m: click.echo(f"applied {m.version}_{m.name}")))
    return Output({"applied": applied}, [] if applied else ["database is up to date"])


@db.command("status")
@reports
def db_status(state: CliState) -> Output:
    """List applied and pending migrations."""
    rows = state.engine.migrator.status()
    return Output([r.__dict__ for r in rows],
                  [f"{r.version}  {r.state:<8} {r.name}" + (f"  ({r.applied_at})" if r.applied_at else "")
                   for r in rows])
