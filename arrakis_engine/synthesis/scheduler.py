"""The reconciliation round the scheduler runs (every 6 hours by default)."""

from __future__ import annotations

import logging

from ..errors import ArrakisError
from ..storage.synthesis import SynthesisRepository

log = logging.getLogger(__name__)


def run_round(engine) -> list[str]:
    """Reconcile every active community that has been synthesized, then check its drift (what is
    left: hand-made resources, orphans kept). One community's failure is reported and does not
    stop the others."""
    lines = []
    with engine.db.platform():
        communities = [c for c in engine.repos.communities.list_all() if c.is_active]
    store = SynthesisRepository(engine.db)
    for c in communities:
        with engine.db.tenant(c.id):
            synthesized = store.latest_shadow() is not None
        if not synthesized:
            continue
        try:
            report = engine.reconciler.run(c.id)
            lines.append(f"{c.name}: {report.summary()}")
            # Two more reads of the guild keep the fleet's drift column current between checks.
            engine.operations.drift(c.id)
        except ArrakisError as exc:
            log.warning("reconcile of %s failed: %s", c.name, exc)
            lines.append(f"{c.name}: failed ({exc})")
    return lines
