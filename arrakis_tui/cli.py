"""``arrakis console``: contributed to the ``arrakis`` command through the ``arrakis.commands``
entry-point group (setup.cfg), so the engine never imports Textual."""

from __future__ import annotations

from pathlib import Path

import click

from arrakis_engine.cli.base import CliState, pass_state


@click.command()
@click.option("--files", "files_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder the migrations screen browses for legacy SQLite files (default: here).")
@click.option("--as", "as_name", envvar="ARRAKIS_OPERATOR", default=None, metavar="NAME",
              help="The operator answering approvals here (default: $ARRAKIS_OPERATOR).")
@pass_state
def console(state: CliState, files_dir: Path | None, as_name: str | None) -> None:
    """The operator console (Textual)."""
    from .app import make_console

    make_console(state.engine, files_dir=files_dir, operator=as_name).run()
    if state.engine.embedded:  # say what the last second or two waits on
        click.echo("console closed; stopping the embedded servers if nothing else uses them…", err=True)
