"""``arrakis scheduler``: the reconciliation round it runs (every 6 hours by default), and its
loop (:class:`Scheduler`): the freeze flags, the manifest outbox, approval expiries and reminders,
audit digests and the rounds, each on its own timing."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Protocol

from ..errors import ArrakisError
from ..storage.database import Database
from ..storage.synthesis import SynthesisRepository
from .reconcile import Reconciler

if TYPE_CHECKING:
    from ..ports import FreezeSwitch
    from ..storage.repos import Repositories
    from ..manifests.archive import ManifestArchive
    from ..policy.approvals import ApprovalService
    from ..security.anchor import AuditAnchor

log = logging.getLogger(__name__)


class ReconcileRound:
    """Reconcile every active community that has been synthesized, then check its drift (what is
    left: hand-made resources, orphans kept). One community's failure is reported and does not
    stop the others."""

    def __init__(self, db: Database, repos: Repositories, reconciler: Reconciler, check_drift: Callable,
                 freeze: FreezeSwitch | None = None) -> None:
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


class FreezeCheck(Protocol):
    """The kill switch's flags in Redis, kept equal to its state in PostgreSQL
    (``synthesis/freeze.py:FreezeFlags``)."""

    def check(self) -> list[str]:
        """Re-assert the flags Redis lost; returns which.

        Raises:
            ArrakisError: PostgreSQL or Redis could not be read.
        """
        ...


class Scheduler:
    """The loop ``arrakis scheduler`` runs. Every ``flush_interval`` seconds: the freeze flags
    are checked, the manifest outbox is sent to the shadow store, approval requests expire and
    reviewers are reminded. Every tick (at most two seconds): an audit digest is signed when one
    is due. Every ``interval`` seconds: a reconcile round. ``say(line, err)`` is told what a person
    running it reads (``err``: about the process itself)."""

    def __init__(self, reconcile_round: ReconcileRound, *, freeze: FreezeCheck, archive: ManifestArchive,
                 approvals: ApprovalService, audit_anchor: AuditAnchor,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.reconcile_round = reconcile_round
        self.freeze, self.archive, self.approvals, self.audit_anchor = freeze, archive, approvals, audit_anchor
        self.monotonic, self.sleep = monotonic, sleep

    def run(self, *, interval: float = 6 * 3600, flush_interval: float = 30, once: bool = False,
            say: Callable[[str, bool], None] = lambda line, err: None) -> None:
        next_round = next_flush = 0.0
        tick = min(2.0, float(flush_interval))  # how soon a security event is anchored
        while True:
            now = self.monotonic()
            if now >= next_flush:
                self._housekeeping(once, say)
                next_flush = now + flush_interval
            self._anchor(say)
            if now >= next_round:
                for line in self.reconcile_round.run():
                    say(line, False)
                next_round = self.monotonic() + interval
            if once:
                return
            self.sleep(tick)

    def _housekeeping(self, once: bool, say: Callable[[str, bool], None]) -> None:
        try:
            restored = self.freeze.check()
        except ArrakisError as exc:  # the Discord gate stays closed meanwhile if the cache is gone
            restored = []
            say(f"freeze flags not checked: {exc}", True)
        if restored:
            say(f"freeze flags: Redis had lost {', '.join(restored)}; restored from the database", True)
        flushed = self.archive.try_flush()
        if flushed and (flushed["delivered"] or flushed["pending"] or once):
            say(f"shadow store: sent {flushed['delivered']}, {flushed['pending']} waiting", False)
        elif once:
            say("shadow store: not reached this round; new manifest versions wait in the outbox", False)
        expired, reminded = self.approvals.expire_due(), self.approvals.remind_due()
        if expired or reminded or once:
            say(f"approvals: {len(expired)} expired, {len(reminded)} reminded", False)

    def _anchor(self, say: Callable[[str, bool], None]) -> None:
        try:
            why = self.audit_anchor.due()
            if why:
                digest = self.audit_anchor.anchor(reason=why)
                if digest:
                    say(f"audit digest #{digest['number']}: {digest['rows']} new row(s) in "
                        f"{digest['chains']} chain(s) ({why})", False)
                    for chain, problems in digest["refused"].items():
                        say(f"audit digest: chain {chain} NOT extended, it no longer matches what was "
                            f"anchored: {'; '.join(problems[:3])}", True)
        except ArrakisError as exc:
            say(f"audit digest not written: {exc}", True)
