"""The reconciliation round the scheduler runs (every 6 hours by default)."""

from __future__ import annotations

import logging
from typing import Callable

from ..errors import ArrakisError
from ..storage.database import Database
from ..storage.synthesis import SynthesisRepository
from .reconcile import Reconciler

log = logging.getLogger(__name__)


class ReconcileRound:
    """Reconcile every active community that has been synthesized, then check its drift (what is
    left: hand-made resources, orphans kept). One community's failure is reported and does not
    stop the others."""

    def __init__(self, db: Database, repos, reconciler: Reconciler, check_drift: Callable, freeze=None) -> None:
        self.db = db
        self.repos = repos
        self.reconciler = reconciler
        self.check_drift = check_drift  # remembers the result for the fleet view
        self.freeze = freeze

    def run(self) -> list[str]:
        """Reconcile every synthesized community; one line each, then one line for the round."""
        lines = []
        with self.db.platform():
            communities = [c for c in self.repos.communities.list_all() if c.is_active]
        store = SynthesisRepository(self.db)
        counts = {"reconciled": 0, "not synthesized yet": 0, "held": 0, "failed": 0}
        for c in communities:
            with self.db.tenant(c.id):
                synthesized = store.latest_shadow() is not None
            if not synthesized:
                counts["not synthesized yet"] += 1
                continue
            held = self.freeze.frozen(c.id) if self.freeze is not None else None
            if held is not None:
                counts["held"] += 1
                lines.append(f"{c.name}: held by the kill switch ({held}); reconciled after release")
                continue
            try:
                report = self.reconciler.run(c.id)
                lines.append(f"{c.name}: {report.summary()}")
                # Two more reads of the guild keep the fleet's drift column current between checks.
                self.check_drift(c.id)
                counts["reconciled"] += 1
            except ArrakisError as exc:
                log.warning("reconcile of %s failed: %s", c.name, exc)
                lines.append(f"{c.name}: failed ({exc})")
                counts["failed"] += 1
        lines.append(f"reconcile round: {len(communities)} active communities; "
                     + ", ".join(f"{n} {what}" for what, n in counts.items()))
        return lines
