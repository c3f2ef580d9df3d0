"""Live role sync: what the watcher saw move becomes members' roles.

For each community whose tracked assets moved in a step, the community's standings are computed
again from the holdings index (for the assets it keeps; others are read from the chain) and
re-ranked (a rank-based tier can move members who did not transact), who gets which
role is published, and one role update is queued per member whose tier or badges changed, in the
lane every worker serves first. What the sync pipeline promises still holds: a member whose
holdings could not be read keeps what they have, and a step that would strip many holders at
once pauses for an approver.

Every ``full_every`` seconds each community is also synced in full, as a safety net; anything
that full sync still had to change is counted as missed by the watcher (it should stay zero).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

from .errors import ArrakisError
from .ports import WatcherStatusStore

log = logging.getLogger(__name__)

STALE_AFTER = 60  # seconds without news from a chain's watcher: it is not running


class LiveRoleSync:
    def __init__(self, db, repos, eligibility, manifests, synthesis, watchers: WatcherStatusStore, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.db, self.repos, self.eligibility = db, repos, eligibility
        self.manifests, self.synthesis, self.watchers, self.clock = manifests, synthesis, watchers, clock

    def resync(self, community_id, *, actor: str, from_index: bool = False, first_contact: bool = False,
               block: int | None = None, mined_at: float | None = None, scoped: bool = False):
        """The one path from holdings to roles, for the watcher, the bot's syncs and the safety
        net: re-rank (from the holdings index where ``from_index``), publish who gets which role
        (a new plan version only when standings changed; its synthesis is quick when the roles
        and channels stay the same), and queue one role update per member whose roles change (a
        mass strip pauses for approval). ``block``: chain reads as of this block (the watcher's
        confirmed block), never past it. ``mined_at``: when the block that caused this resync was
        mined (the watcher's); the decisions carry it, and the role calls that deliver them are
        measured from it (``arrakis_live_sync_latency_seconds``). Returns (the eligibility diff,
        the role sync's answer). ``scoped``: plan roles only for the members whose standing or
        badges this re-rank changed (a live step; :meth:`settle` and the safety net plan everyone)."""
        diff = self.eligibility.run(community_id, actor=actor, from_index=from_index, block=block)
        manifest, new = self.manifests.publish(community_id, actor=actor)
        status = self.synthesis.status(community_id)
        if new and not status["synthesized"]:
            self.synthesis.queue_synthesis(community_id, manifest.version)
        if status["shadow_version"] is None:  # never synthesized: its synthesis gives the roles
            return diff, {"status": "queued", "changes": 0, "members": []}
        only = _touched(diff) if scoped else None
        return diff, self.synthesis.sync_members(community_id, queued=True, actor=actor, first_contact=first_contact,
                                                 mined_at=mined_at, only=only)

    def apply(self, community_id: str, *, actor: str = "live", block: int | None = None,
              from_index: bool = True, mined_at: float | None = None) -> dict:
        """Re-rank one community as of ``block`` (the watcher's confirmed block) and queue the role
        updates that follow. Returns what happened. ``from_index``: rank from the holdings index
        (the live steps); False reads the chain itself, as of the same block (the safety net, so
        it can find what the index missed). ``mined_at``: when the block whose transfers moved it
        was mined (the live steps; the safety net's changes carry none)."""
        diff, roles = self.resync(community_id, actor=actor, from_index=from_index, first_contact=True, block=block,
                                  mined_at=mined_at, scoped=from_index)
        changed = len(diff.promoted) + len(diff.demoted) + len(diff.joined) + len(diff.left)
        return {"community_id": str(community_id), "changed": changed, "unknown": len(diff.unknown),
                "updates": int(roles.get("changes", 0)), "paused": roles.get("status") == "paused",
                "members": roles.get("members", [])}

    def react(self, report) -> list[dict]:
        """Apply every community that moved in a watcher step; one community's failure is logged
        and left to the next step (its members keep their roles meanwhile)."""
        out = []
        for community_id in sorted(report.moved):
            try:
                out.append(self.apply(community_id, block=report.to_block,
                                      mined_at=report.mined_at.get(community_id)))
            except ArrakisError as exc:
                log.warning("live sync of %s did not run: %s; the next step tries again", community_id, exc)
                out.append({"community_id": community_id, "error": str(exc)})
        return out

    def settle(self, community_ids) -> int:
        """Plan the role updates of communities that moved lately again, with no chain read and
        no new plan version: anything still missing is decided, and an update still on its way
        whose job was lost (a worker's crash, an outage that used up its tries) is queued again.
        Returns how many updates it queued."""
        queued = 0
        for cid in community_ids:
            try:
                out = self.synthesis.sync_members(str(cid), queued=True, actor="live", first_contact=True)
            except ArrakisError as exc:
                log.warning("settling the roles of %s did not run: %s", cid, exc)
                continue
            queued += int(out.get("changes", 0)) + int(out.get("on_their_way", 0))
        return queued

    def safety_net(self, community_ids, *, chain: str, block: int | None = None) -> int:
        """Full sync of each community from the chain as of ``block`` (the watcher's confirmed
        block); returns how many standings it still had to change."""
        missed = 0
        for cid in community_ids:
            try:
                result = self.apply(str(cid), actor="safety-net", block=block, from_index=False)
            except ArrakisError as exc:
                log.warning("safety-net sync of %s did not run: %s", cid, exc)
                continue
            missed += result["changed"]
        if missed:
            log.warning("%s: the safety-net sync found %d change(s) the watcher missed", chain, missed)
        self.watchers.add_missed(chain, missed)
        return missed

    # --- status --------------------------------------------------------------------------------

    def record(self, chain: str, report, endpoint_heads: list) -> None:
        self.watchers.write(chain, {
            "head": report.head, "processed": report.to_block if report.to_block is not None else "",
            "at": self.clock(), "endpoints": json.dumps(endpoint_heads)})

    def status(self, chain: str) -> dict | None:
        d = self.watchers.read(chain)
        if not d:
            return None
        head = int(d["head"]) if d.get("head") else None
        processed = int(d["processed"]) if d.get("processed") else None
        return {"head": head, "processed": processed, "behind": (head - processed) if head is not None and
                processed is not None else None, "age": self.clock() - float(d.get("at") or 0),
                "endpoints": json.loads(d.get("endpoints") or "[]"), "missed": int(d.get("missed") or 0)}


def _touched(diff) -> set[str]:
    """The members a re-rank moved: across a tier, in or out, or to or from a badge."""
    out = set(diff.promoted) | set(diff.demoted) | set(diff.joined) | set(diff.left)
    for members in list(diff.badges_earned.values()) + list(diff.badges_revoked.values()):
        out |= set(members)
    return out
