"""The ``arrakis`` command: one click group (``base.py``), one module per command group, one
output helper (``output.py``).

Front ends contribute their own commands through the ``arrakis.commands`` entry-point group
(``arrakis console`` comes from ``arrakis_tui``, ``arrakis bot`` from ``arrakis_bot``), so the engine
imports none of them.
"""

from __future__ import annotations

from . import (  # noqa: F401
    communities, db_cmds, eligibility, gating, manifests, migrate, policy, processes, security, status, synthesis, themes,
    wizard,
)
from .base import cli


def main() -> None:
    cli(prog_name="arrakis")


if __name__ == "__main__":
    main()
