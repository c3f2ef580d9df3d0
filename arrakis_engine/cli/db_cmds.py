"""``arrakis db``: the database schema."""

from __future__ import annotations

import click

from .base import CliState, command_group
from .output import Output, reports


db = command_group("db", "Database schema: apply and list migrations.")


@db.command("upgrade")
@reports
def db_upgrade(state: CliState, as_json: bool) -> Output:
    """Create or repair the roles and apply every pending migration (safe to re-run); then seal
    any operator's TOTP secret still stored in plain text with the signer."""
    from ..errors import ArrakisError

    applied = state.engine.migrator.upgrade(
        progress=None if as_json else (lambda m: click.echo(f"applied {m.version}_{m.name}")))
    lines = [] if applied else ["database is up to date"]
    try:
        sealed = state.engine.mfa.seal_plain_secrets()
    except ArrakisError as exc:  # the signer is down: each secret is sealed when it is next used
        sealed = None
        lines.append(f"operators' TOTP secrets not sealed now ({exc}); each is sealed when it is next used")
    if sealed:
        lines.append(f"sealed {sealed} operator TOTP secret(s) stored in plain text")
    return Output({"applied": applied, "sealed_secrets": sealed}, lines)


@db.command("status")
@reports
def db_status(state: CliState) -> Output:
    """List applied and pending migrations."""
    rows = state.engine.migrator.status()
    return Output([r.__dict__ for r in rows],
                  [f"{r.version}  {r.state:<8} {r.name}" + (f"  ({r.applied_at})" if r.applied_at else "")
                   for r in rows])
