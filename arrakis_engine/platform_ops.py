"""Platform-wide operator actions shared by the CLI and the console: pausing every Discord change,
and checking the audit chain."""

from __future__ import annotations

from .storage.database import Database, validate_tenant_id


class DiscordPause:
    """Pause or resume every Discord change (the global freeze flag), audited. Workers stop
    before their next call and carry on, with nothing lost, once resumed."""

    def __init__(self, db: Database, repos, freeze) -> None:
        self.db = db
        self.repos = repos
        self.freeze = freeze

    def pause(self, *, actor: str, reason: str = "paused by an operator") -> None:
        self.freeze.freeze(reason=reason)
        self._audit(actor, True)

    def resume(self, *, actor: str) -> None:
        self.freeze.unfreeze()
        self._audit(actor, False)

    def paused(self) -> str | None:
        """Why every Discord change is paused, or None."""
        return self.freeze.frozen(None)

    def _audit(self, actor: str, frozen: bool) -> None:
        with self.db.platform():
            self.repos.audit.append(actor, "freeze.global", {"frozen": frozen})


class AuditCheck:
    """Recompute a community's (or, with no id, the platform's) audit hash chain."""

    def __init__(self, db: Database, repos) -> None:
        self.db = db
        self.repos = repos

    def verify(self, community_id=None):
        cid = validate_tenant_id(community_id) if community_id else None
        with self.db.platform():
            return self.repos.audit.verify_chain(cid)
