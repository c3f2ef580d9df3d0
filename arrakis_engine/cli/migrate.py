"""``arrakis migrate``: legacy SQLite import, validation and roll back."""

from __future__ import annotations

from pathlib import Path

import click

from .base import CliState, command_group
from .output import Output, phases, reports


migrate = command_group("migrate", "Import a legacy single-tenant SQLite store, check it, or roll it back.")


@migrate.command("sqlite")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--community", "community_id", required=True, help="Community id to import into.")
@click.option("--dry-run", is_flag=True, help="Check every row and show counts; write nothing.")
@reports
def migrate_sqlite(state: CliState, path: Path, community_id: str, dry_run: bool, as_json: bool) -> Output:
    """Import a v4 profiles.db into one community (all or nothing)."""
    with phases(as_json or dry_run, label="importing ") as progress:
        result = state.engine.legacy_importer(progress=progress).import_file(path, community_id, dry_run=dry_run)
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    return Output(result.as_dict(), [f"dry run: {path.name} is clean and would import {counts}" if dry_run
                                     else f"imported {counts} (import {result.import_id})"])


@migrate.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--community", "community_id", required=True, help="Community id the file was imported into.")
@reports
def migrate_validate(state: CliState, path: Path, community_id: str) -> Output:
    """Compare counts and per-table checksums, source file against the last import."""
    report = state.engine.legacy_importer().validate(path, community_id)
    lines = [f"{t.table:<13} source {t.source_count:>7} {t.source_checksum[:12]}  target {t.target_count:>7} "
             f"{t.target_checksum[:12]}  {'match' if t.ok else 'MISMATCH'}" for t in report.tables]
    lines.append("import matches its source" if report.ok else "import does NOT match its source")
    return Output(report.as_dict(), lines, exit_code=0 if report.ok else 1)


@migrate.command("rollback")
@click.option("--community", "community_id", required=True, help="Community whose last import to remove.")
@reports
def migrate_rollback(state: CliState, community_id: str) -> Output:
    """Remove exactly what the community's last legacy import wrote."""
    removed = state.engine.legacy_importer().rollback(community_id)
    return Output({"removed": removed}, ["rolled back: removed " + ", ".join(f"{v} {k}" for k, v in removed.items())])
