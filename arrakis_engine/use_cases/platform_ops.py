"""Platform-wide operator actions shared by the CLI and the console: pausing every Discord change,
and checking the audit chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..storage.database import Database, validate_tenant_id

if TYPE_CHECKING:
    from ..ports import FreezeSwitch
    from ..security.anchor import AuditAnchor
    from ..signing.signing_service import SigningService
    from ..storage.repos import Repositories


class DiscordPause:
    """Pause or resume every Discord change (the global freeze flag), audited. Workers stop
    before their next call and carry on, with nothing lost, once resumed."""

    def __init__(self, db: Database, repos: Repositories, freeze: FreezeSwitch) -> None:
        self.db = db
        self.repos = repos
        self.freeze = freeze

    def pause(self, *, actor: str, reason: str = "paused by an operator") -> None:
        self.freeze.freeze(reason=reason, source="pause", by=actor)
        self._audit(actor, True)

    def resume(self, *, actor: str) -> None:
        """Lift the pause (a kill switch that also holds everything stays on)."""
        self.freeze.unfreeze(source="pause")
        self._audit(actor, False)

    def paused(self) -> str | None:
        """Why every Discord change is paused, or None."""
        return self.freeze.frozen(None)

    def _audit(self, actor: str, frozen: bool) -> None:
        with self.db.platform():
            self.repos.audit.append(actor, "freeze.global", {"frozen": frozen})


class AuditCheck:
    """Recompute a community's (or, with no id, the platform's) audit hash chain, check its
    signed checkpoints and the digests anchored outside the database (missing, rewritten and
    unanchored rows); write a new signed checkpoint of a chain's head, or a digest."""

    def __init__(self, db: Database, repos: Repositories, signing: SigningService | None = None,
                 anchor: AuditAnchor | None = None) -> None:
        self.db = db
        self.repos = repos
        self.signing = signing
        self.anchor = anchor  # AuditAnchor: the digests outside the database

    @staticmethod
    def _chain(cid) -> str:
        return "platform" if cid is None else str(cid)

    def entries(self, community_id=None, *, limit: int = 500) -> list:
        """The newest ``limit`` entries of a community's (or the platform's) chain, oldest first."""
        cid = validate_tenant_id(community_id) if community_id else None
        with self.db.platform():
            return self.repos.audit.entries(cid, limit=limit)

    def _key(self, cid) -> str:
        from ..signing.signing_service import PLATFORM_KEY, community_key

        return PLATFORM_KEY if cid is None else community_key(cid)

    def checkpoint(self, community_id=None) -> dict | None:
        """Sign the chain's current head and keep the signature. None when the chain is empty.
        Raises SigningError when signing is unavailable (nothing is written then)."""
        from ..signing.signing_service import checkpoint_message

        cid = validate_tenant_id(community_id) if community_id else None
        chain = self._chain(cid)
        with self.db.platform():
            head = self.repos.audit_checkpoints.head(chain)
        if head is None or self.signing is None:
            return None
        signature = self.signing.sign(self._key(cid), checkpoint_message(chain, head["seq"], head["hash"]))
        with self.db.platform():
            self.repos.audit_checkpoints.add(chain, head["seq"], head["hash"], signature)
        return {"chain": chain, "seq": head["seq"]}

    def verify(self, community_id=None):
        from ..signing.signing_service import checkpoint_message

        cid = validate_tenant_id(community_id) if community_id else None
        chain = self._chain(cid)
        with self.db.platform():
            report = self.repos.audit.verify_chain(cid)
            checkpoints = self.repos.audit_checkpoints.of_chain(chain, cid)
        for c in checkpoints:
            if self.signing is not None and not self.signing.verify(
                    self._key(cid), checkpoint_message(chain, c["seq"], c["hash"]), c["signature"]):
                report.problems.append(f"the signed checkpoint at row {c['seq']} has a bad signature")
            elif c["row_hash"] != c["hash"]:
                report.problems.append(f"row {c['seq']} no longer matches its signed checkpoint (the chain was "
                                       "rewritten)")
        report.checkpoints = len(checkpoints)
        if self.anchor is not None:
            lines, figures = self.anchor.problems(chain)
            report.problems += lines
            report.anchoring = figures
        return report

    def digest(self, *, reason: str = "asked by an operator") -> dict | None:
        """Write an audit digest now (what the scheduler does every interval)."""
        return self.anchor.anchor(reason=reason) if self.anchor is not None else None
