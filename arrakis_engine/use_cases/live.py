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

:class:`LiveWatch` is the loop ``arrakis watcher`` runs: one step per chain, its report turned
into role updates, the settling of recent movers every 15 s, the safety net, and the wait for the
next block (a new head wakes it where the endpoint offers subscriptions).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Protocol, Sequence

from ..errors import ArrakisError, ConfigError
from ..ports import BlockSource, WatcherStatusStore
from ..synthesis.results import MemberSyncResult

if TYPE_CHECKING:
    from .eligibility_sync import EligibilitySync
    from ..manifests.manifest_service import ManifestService
    from ..storage.database import Database
    from ..storage.repos import Repositories
    from ..synthesis.synthesis_service import SynthesisService
    from ..chain.watcher import ChainWatcher, StepReport

log = logging.getLogger(__name__)

STALE_AFTER = 60  # seconds without news from a chain's watcher: it is not running


@dataclass(frozen=True)
class LiveApply:
    """What one community's live re-rank did (or, with ``error``, why it did not run)."""

    community_id: str
    changed: int = 0  # standings that changed (promoted, demoted, joined, left)
    unknown: int = 0  # members whose holdings could not be read (they keep their roles)
    updates: int = 0  # role updates queued
    paused: bool = False  # a mass strip waits for an approver
    members: list = field(default_factory=list)  # the role sync's answer per member
    error: str | None = None  # the re-rank did not run: the next step tries again

    def as_dict(self) -> dict:
        out = asdict(self)
        if self.error is None:
            del out["error"]
            return out
        return {"community_id": self.community_id, "error": self.error}


class LiveRoleSync:
    def __init__(self, db: Database, repos: Repositories, eligibility: EligibilitySync, manifests: ManifestService,
                 synthesis: SynthesisService, watchers: WatcherStatusStore, *,
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
        if new and not status.synthesized:
            self.synthesis.queue_synthesis(community_id, manifest.version)
        if status.shadow_version is None:  # never synthesized: its synthesis gives the roles
            return diff, MemberSyncResult("queued", changes=0, members=[])
        only = diff.moved_members() if scoped else None
        return diff, self.synthesis.sync_members(community_id, queued=True, actor=actor, first_contact=first_contact,
                                                 mined_at=mined_at, only=only)

    def apply(self, community_id: str, *, actor: str = "live", block: int | None = None,
              from_index: bool = True, mined_at: float | None = None) -> LiveApply:
        """Re-rank one community as of ``block`` (the watcher's confirmed block) and queue the role
        updates that follow. Returns what happened. ``from_index``: rank from the holdings index
        (the live steps); False reads the chain itself, as of the same block (the safety net, so
        it can find what the index missed). ``mined_at``: when the block whose transfers moved it
        was mined (the live steps; the safety net's changes carry none)."""
        diff, roles = self.resync(community_id, actor=actor, from_index=from_index, first_contact=True, block=block,
                                  mined_at=mined_at, scoped=from_index)
        changed = len(diff.promoted) + len(diff.demoted) + len(diff.joined) + len(diff.left)
        return LiveApply(str(community_id), changed=changed, unknown=len(diff.unknown),
                         updates=roles.changes, paused=roles.status == "paused",
                         members=roles.members if roles.members is not None else [])

    def react(self, report: StepReport) -> list[LiveApply]:
        """Apply every community that moved in a watcher step; one community's failure is logged
        and left to the next step (its members keep their roles meanwhile)."""
        out = []
        for community_id in sorted(report.moved):
            try:
                out.append(self.apply(community_id, block=report.to_block,
                                      mined_at=report.mined_at.get(community_id)))
            except ArrakisError as exc:
                log.warning("live sync of %s did not run: %s; the next step tries again", community_id, exc)
                out.append(LiveApply(community_id, error=str(exc)))
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
            queued += out.changes + (out.on_their_way or 0)
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
            missed += result.changed
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


class HeadWaker(Protocol):
    """New heads of one chain as a wake-up call (``adapters/chain/heads.py:HeadSubscriber``)."""

    def wait(self, timeout: float) -> bool:
        """Until a new head or ``timeout``; True when a head woke it."""
        ...

    def stop(self) -> None:
        ...


class LiveWatch:
    """``arrakis watcher``: follows each chain, step by step, and turns what moved into roles.

    ``watcher_for(chain)`` builds a chain's :class:`~arrakis_engine.chain.watcher.ChainWatcher`
    and ``heads_for(chain)`` its started new-head subscription (both from bootstrap). ``say(line,
    err)`` is told what a person running it reads: ``err`` lines are about the process itself
    (starting, failures, reorgs), the others what it did."""

    SETTLE_EVERY = 15.0  # seconds between re-plans of the communities that moved lately
    SETTLED_AFTER = 600.0  # a community that has not moved for this long is left alone

    def __init__(self, live: LiveRoleSync, readers: Mapping[str, BlockSource],
                 watcher_for: Callable[[str], ChainWatcher], heads_for: Callable[[str], HeadWaker], *,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.live, self.readers = live, readers
        self.watcher_for, self.heads_for = watcher_for, heads_for
        self.monotonic, self.sleep = monotonic, sleep

    def chains(self, requested: Sequence[str]) -> list[str]:
        """The chains to follow: those asked for, else every chain with an endpoint.

        Raises:
            ConfigError: a chain asked for (or every chain, when none is) has no endpoint.
        """
        chosen = list(requested) or sorted(self.readers)
        missing = [c for c in chosen if c not in self.readers]
        if not chosen or missing:
            raise ConfigError("the watcher needs RPC endpoints for " + (", ".join(missing) or "a chain")
                              + " (RPC_URLS_<CHAIN>)")
        return chosen

    def run(self, requested: Sequence[str] = (), *, interval: float = 1.0, full_every: float = 6 * 3600,
            once: bool = False, say: Callable[[str, bool], None] = lambda line, err: None) -> None:
        """Follow ``requested`` (default: every chain with an endpoint) until stopped; with
        ``once``, one step per chain. A step that fails is said and tried again at the next one."""
        if not requested and not self.readers and not once:
            # Nothing to follow: say so once and wait to be stopped (so that a Procfile run of every
            # process on a machine with no chain keeps the others running). --once still refuses.
            say("no chain is configured (RPC_URLS_<CHAIN>): nothing to watch; waiting until stopped", True)
            while True:
                self.sleep(3600)
        chosen = self.chains(requested)
        watchers = {c: self.watcher_for(c) for c in chosen}
        for c, w in watchers.items():
            at = w.position()
            say(f"{c}: watching with {w.confirmations} confirmation(s), from block "
                f"{at if at is not None else 'the head'}", True)
        heads = [self.heads_for(c) for c in chosen] if not once else []
        try:
            self._loop(watchers, heads, interval=interval, full_every=full_every, once=once, say=say)
        finally:
            for h in heads:
                h.stop()

    def _loop(self, watchers: dict[str, ChainWatcher], heads: list[HeadWaker], *, interval: float,
              full_every: float, once: bool, say: Callable[[str, bool], None]) -> None:
        now = self.monotonic
        next_full = now() + full_every
        moved_at: dict[str, float] = {}  # community -> when it last moved: its roles are settled for 10 minutes
        next_settle = now() + self.SETTLE_EVERY
        while True:
            for c, w in watchers.items():
                try:
                    report = w.step()
                    self.live.record(c, report, self.readers[c].heads())
                except ArrakisError as exc:
                    say(f"{c}: step failed ({exc}); trying again", True)
                    continue
                if report.rewound_to is not None:
                    say(f"{c}: reorg: went back to block {report.rewound_to} and undid what followed", True)
                if report.moved:
                    moved_at.update({cid: now() for cid in report.moved})
                    for r in self.live.react(report):
                        if r.error is not None:
                            say(f"{c}: community {r.community_id}: {r.error}", True)
                        else:
                            say(f"{c}: blocks {report.from_block}..{report.to_block}: community "
                                f"{r.community_id}: {r.changed} standing(s) changed, {r.updates} role "
                                f"update(s) queued" + (" (paused for approval)" if r.paused else ""), False)
            if now() >= next_settle:
                recent = [cid for cid, at in moved_at.items() if now() - at < self.SETTLED_AFTER]
                moved_at = {cid: moved_at[cid] for cid in recent}
                self.live.settle(recent)
                next_settle = now() + self.SETTLE_EVERY
            if now() >= next_full:
                for c, w in watchers.items():
                    missed = self.live.safety_net(w.communities(), chain=c, block=w.position())
                    say(f"{c}: safety-net sync: {missed} change(s) the watcher had missed", False)
                next_full = now() + full_every
            if once:
                return
            if heads:  # a new head on any chain wakes the loop at once; otherwise it polls
                deadline = now() + interval
                while now() < deadline and not any(h.wait(0.05) for h in heads):
                    pass
            else:
                self.sleep(interval)
