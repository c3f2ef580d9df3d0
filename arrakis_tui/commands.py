"""The operator actions in the command palette (ctrl+p)."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class OperatorCommands(Provider):
    """Per community: open, check drift, legacy import, audit trail. Platform: refresh, approvals,
    kill switch, the platform's audit trail, send the manifest outbox, pause or resume every
    Discord change."""

    def _commands(self):
        app = self.app
        yield ("Refresh the fleet", "Reload communities and platform health", app.action_refresh_fleet)
        yield ("Approvals", "Plans and mass strips waiting for an approver", app.open_approvals)
        yield ("Kill switch", "What is frozen; freeze everything, a community or a member; release",
               app.open_killswitch)
        yield ("Audit trail of the platform", "The platform's hash-chained log, verified", app.open_audit)
        yield ("Signing keys", "Versions, last rotation, the signer's state; rotate", app.open_signing)
        yield ("Send the manifest outbox now", "Write waiting manifest versions to the shadow store",
               app.action_flush_outbox)
        yield ("Pause all Discord changes", "Set the global freeze flag: workers stop before their next call",
               app.action_freeze)
        yield ("Resume Discord changes", "Clear the global freeze flag", app.action_unfreeze)
        for c in app.fleet or []:
            # Two communities may share a name; the guild id tells them apart.
            cid, which = str(c.id), f"{c.name} (guild {c.guild_id})"
            yield (f"Open {which}", "Tiers, badges, recent changes, manifests", partial(app.open_community, cid))
            yield (f"Check drift of {which}", "Desired vs applied vs the guild; reconcile from there",
                   partial(app.open_drift, cid))
            yield (f"Import legacy data into {which}", "Pick a v4 SQLite file, dry-run, import, validate",
                   partial(app.open_migrations, cid))
            yield (f"Audit trail of {which}", "The community's hash-chained log, verified",
                   partial(app.open_audit, cid))

    async def discover(self) -> Hits:
        for title, help_text, callback in list(self._commands())[:8]:
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
