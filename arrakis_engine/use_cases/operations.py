"""What operators look at: the fleet, platform health, one community in detail, drift.

Read-only use cases shared by the console and the CLI. Everything here reads through the stores,
ports and probes bootstrap hands it; nothing here knows about Textual, Redis or HTTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from ..errors import ArrakisError, StorageError, probe_failure
from ..ports import Clock, DriftCheckStore, JobQueue, ObjectStore, SendHistory, UnknownMembersStore, system_clock
from ..storage.database import Database
from ..storage.legacy_imports import LegacyImportRepository
from ..storage.operator_views import OperatorViewsRepository
from ..storage.outbox import OutboxRepository, manifest_key
from ..synthesis.drift import drift
from ..synthesis.reconcile import Reconciler
from ..themes import theme_of

if TYPE_CHECKING:
    from ..chain.orchestrator import EligibilityOrchestrator
    from .live import LiveRoleSync
    from ..policy.approvals import ApprovalService
    from ..security.killswitch import KillSwitch
    from ..storage.repos import Repositories


# --- fleet ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FleetEntry:
    id: uuid.UUID
    name: str
    guild_id: str
    theme: str
    subscription: str
    active: bool
    members: int
    last_sync: datetime | None
    last_synthesis: datetime | None
    manifest_version: int | None
    shadow_version: int | None
    shadow_status: str | None
    drift: str
    drift_checked_at: datetime | None = None  # when the guild was last compared with the plan
    frozen: bool = False  # the kill switch holds this community (or everything)
    approvals: int = 0  # requests (mass strips) waiting for an approver

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["id"] = str(self.id)
        for k in ("last_sync", "last_synthesis", "drift_checked_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


def drift_label(manifest_version, shadow_version, shadow_status, checked: dict | None) -> str:
    """One word or two for the fleet table. Drift against Discord is only known where it was
    checked; the plan-vs-applied part is known from the database alone."""
    if manifest_version is None:
        return "no plan yet"
    if shadow_version is None:
        return "not synthesized"
    if shadow_version < manifest_version or shadow_status != "applied":
        return f"behind (v{shadow_version}/v{manifest_version})"
    if not checked:
        return "not checked"
    return checked["status"]


# --- health -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HealthItem:
    name: str
    state: str  # ok, degraded, down, off
    detail: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Health:
    items: list[HealthItem]
    bucket_use: list[int]        # Discord calls granted per step, oldest first
    rate_limited: list[int]      # Discord 429s per step, oldest first
    step_seconds: int
    bucket_rate: float
    success: list = field(default_factory=list)  # the seed's success metrics (metrics.SuccessMetric), last 24 h

    def as_dict(self) -> dict:
        return {"items": [i.as_dict() for i in self.items], "bucket_use": self.bucket_use,
                "rate_limited": self.rate_limited, "step_seconds": self.step_seconds, "bucket_rate": self.bucket_rate,
                "success": [s.as_dict() for s in self.success]}


# --- community detail ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TierCount:
    tier: str
    members: int


@dataclass(frozen=True)
class RecentChange:
    discord_id: str
    from_tier: str | None
    to_tier: str | None
    rank: int | None
    reason: str
    at: datetime


@dataclass(frozen=True)
class ManifestVersion:
    version: int
    created_at: datetime
    created_by: str
    checksum: str
    archived: bool
    synthesized: str | None  # shadow status of this version, if it was synthesized


@dataclass
class CommunityDetail:
    id: uuid.UUID
    name: str
    guild_id: str
    theme: str
    subscription: str
    members: int
    tiers: list[TierCount] = field(default_factory=list)
    badges: dict[str, int] = field(default_factory=dict)
    recent_changes: list[RecentChange] = field(default_factory=list)
    manifests: list[ManifestVersion] = field(default_factory=list)
    last_diff: dict | None = None          # counts from the last eligibility sync
    last_diff_at: datetime | None = None
    last_diff_by: str | None = None
    unknown_members: int = 0                # left unknown by that sync (their roles are not touched)
    legacy_import: dict | None = None
    approvals: list[dict] = field(default_factory=list)  # changes waiting for an operator (mass strips)
    running: list[dict] = field(default_factory=list)  # Discord work a worker is doing now, with progress


@dataclass(frozen=True)
class PlatformProbes:
    """How Operations looks at the parts it cannot query as data (built by bootstrap).

    ``services``: PostgreSQL and Redis reachability by name ("ok" or "down (Kind)");
    ``rpc_block``: the block height one endpoint answers (raises when it does not);
    ``rpc_urls``: endpoints per chain; ``shadow_where``: "S3" or "local folder";
    ``discord_rate``: the global Discord rate in calls per second; ``discord_where``: Discord
    itself, the local sandbox, or not configured, in plain words.
    """

    services: Callable[[], dict[str, str]]
    rpc_block: Callable[[str, str, float], int]
    rpc_urls: dict
    shadow_where: str
    discord_rate: float
    discord_where: str = "Discord API"


class Operations:
    """Operator read models."""


    def __init__(self, db: Database, repos: Repositories, *, reconciler: Reconciler, drift_checks: DriftCheckStore,
                 unknown: UnknownMembersStore, orchestrator: EligibilityOrchestrator, shadow_store: ObjectStore,
                 queue: JobQueue, bucket: SendHistory, probes: PlatformProbes,
                 approvals: ApprovalService | None = None, killswitch: KillSwitch | None = None,
                 clock: Clock = system_clock, live: LiveRoleSync | None = None,
                 success: Callable[..., dict] | None = None) -> None:
        """``approvals``: where mass strips wait (``pending_for``, ``pending_counts``); ``killswitch``:
        what is frozen (``status()``). None: neither is shown. ``live``: the live watcher's status
        per chain (``status(chain)``); ``success``: ``(hours=24)`` -> the seed's success metrics
        over that span."""
        self.db = db
        self.killswitch = killswitch
        self.approvals = approvals
        self.repos = repos
        self.reconciler = reconciler
        self.drift_checks = drift_checks
        self.unknown = unknown
        self.orchestrator = orchestrator
        self.shadow_store = shadow_store
        self.queue = queue
        self.bucket = bucket
        self.probes = probes
        self.clock = clock
        self.live = live
        self.success = success

    # fleet ------------------------------------------------------------------------------------

    def fleet(self, limit: int | None = None, *, only=None) -> list[FleetEntry]:
        """Every community (or the first ``limit`` by name: what a screen shows first; or the
        one community ``only``) with members, last eligibility sync, last synthesis and drift
        status, in one query (platform view)."""
        with self.db.platform():
            rows = OperatorViewsRepository(self.db).fleet(limit, only)
        try:
            checked: dict | None = self.checked_drift()
        except StorageError:  # Redis down: the fleet still shows, its drift column says why it is unknown
            checked = None
        active = self.killswitch.status()["active"] if self.killswitch is not None else []
        everything = any(a["scope"] == "global" for a in active)
        frozen = {a["target"] for a in active if a["scope"] == "community"}
        waiting = self.approvals.pending_counts() if self.approvals is not None else {}
        out = []
        for r in rows:
            check = checked.get(str(r["id"])) if checked is not None else None
            label = drift_label(r["manifest_version"], r["shadow_version"], r["shadow_status"], check)
            if checked is None and label == "not checked":
                label = "unknown (Redis unreachable)"
            out.append(FleetEntry(
                r["id"], r["name"], r["guild_id"], r["theme_id"], r["subscription_tier"], r["is_active"],
                int(r["members"]), r["last_sync"], r["last_synthesis"], r["manifest_version"], r["shadow_version"],
                r["shadow_status"], label,
                datetime.fromtimestamp(check["at"], tz=timezone.utc) if check else None,
                frozen=everything or str(r["id"]) in frozen, approvals=waiting.get(str(r["id"]), 0)))
        return out

    # drift --------------------------------------------------------------------------------------

    def drift(self, community_id):
        """Desired vs shadow vs actual for one community (calls Discord), remembered for the fleet."""
        report = drift(self.reconciler, community_id)
        report.sandbox = self.probes.discord_where.startswith("sandbox")
        counts: dict[str, int] = {}
        for item in report.items:
            counts[item.severity] = counts.get(item.severity, 0) + 1
        self.drift_checks.remember(report.community_id, {"status": report.status, "counts": counts,
                                                         "at": self.clock()})
        return report

    def checked_drift(self) -> dict[str, dict]:
        return self.drift_checks.all()

    # health -------------------------------------------------------------------------------------

    def health(self, *, minutes: int = 10, step: int = 10, rpc_timeout: float = 2.0) -> Health:
        """Each part of the platform in plain words. Never raises: a part that cannot be reached is
        reported as down with the kind of error (no URLs, no secrets)."""
        items = [HealthItem(name, "ok" if state == "ok" else "down", "" if state == "ok" else state)
                 for name, state in sorted(self.probes.services().items())]
        where = self.probes.discord_where
        items.append(HealthItem("discord", "off" if where.startswith("not configured") else "ok", where))
        items += self._rpc(rpc_timeout)
        items += self._watchers()
        items.append(self._score())
        items.append(self._shadow_store())
        items.append(self._killswitch())
        use: list[int] = []
        limited: list[int] = []
        try:
            items += self._queue()
            use, limited = self.bucket.history(seconds=minutes * 60, step=step)
        except Exception as exc:  # a status probe reports, it does not raise
            items.append(HealthItem("queue", "down", probe_failure(exc)))
        try:
            success = self.success() if self.success is not None else []
        except Exception as exc:  # a status probe reports, it does not raise
            success = []
            items.append(HealthItem("metrics", "down", probe_failure(exc)))
        return Health(items, use, limited, step, self.probes.discord_rate, success)

    def _killswitch(self) -> HealthItem:
        if self.killswitch is None:
            return HealthItem("kill switch", "off", "not wired")
        try:
            active = self.killswitch.status()["active"]
        except Exception as exc:  # reported, not raised
            return HealthItem("kill switch", "down", probe_failure(exc))
        if not active:
            return HealthItem("kill switch", "ok", "off: nothing frozen")
        words = {"global": "everything", "community": "community", "user": "member"}
        counts: dict[str, int] = {}
        for a in active:
            counts[words[a["scope"]]] = counts.get(words[a["scope"]], 0) + 1
        return HealthItem("kill switch", "degraded",
                          "ON: " + ", ".join(k if k == "everything" else f"{n} {k}(s)" for k, n in counts.items()))

    def _rpc(self, timeout: float) -> list[HealthItem]:
        urls = self.probes.rpc_urls
        if not urls:
            return [HealthItem("rpc", "off", "no RPC endpoints configured")]
        out = []
        for chain, endpoints in sorted(urls.items()):
            up, heights = 0, []
            for url in endpoints:
                try:
                    heights.append(self.probes.rpc_block(chain, url, timeout))
                    up += 1
                except Exception:  # one endpoint down is what failover is for; counted, not raised
                    pass
            state = "ok" if up == len(endpoints) else ("degraded" if up else "down")
            detail = f"{up}/{len(endpoints)} endpoints answer" + (f", block {max(heights)}" if heights else "")
            out.append(HealthItem(f"rpc {chain}", state, detail))
        return out

    def _watchers(self) -> list[HealthItem]:
        """Per chain: is the live watcher running, how far behind the head, which endpoint lags."""
        if self.live is None or not self.probes.rpc_urls:
            return []
        out = []
        for chain in sorted(self.probes.rpc_urls):
            try:
                s = self.live.status(chain)
            except Exception as exc:  # reported, not raised
                out.append(HealthItem(f"watcher {chain}", "down", probe_failure(exc)))
                continue
            if s is None:
                out.append(HealthItem(f"watcher {chain}", "off", "not running: roles follow the periodic syncs only "
                                      "(start `arrakis watcher`)"))
                continue
            parts = [f"block {s['processed']}, {s['behind']} behind the head" if s["behind"] is not None
                     else "starting"]
            heads = s["endpoints"]
            best = max((h for h in heads if h is not None), default=None)
            lagging = []
            for i, h in enumerate(heads):
                if h is None:
                    lagging.append(f"endpoint {i + 1} not answering")
                elif best is not None and best - h > 3:
                    lagging.append(f"endpoint {i + 1} {best - h} blocks behind")
            parts += lagging
            if s["missed"]:
                parts.append(f"{s['missed']} change(s) missed (found by the full sync)")
            stale = s["age"] > 60
            state = "down" if stale else ("degraded" if lagging or s["missed"] else "ok")
            if stale:
                parts.insert(0, f"no news for {int(s['age'])} s")
            out.append(HealthItem(f"watcher {chain}", state, "; ".join(parts)))
        return out

    def _score(self) -> HealthItem:
        try:
            s = self.orchestrator.status()
        except Exception as exc:
            return HealthItem("score service", "down", probe_failure(exc))
        if s["score_service"] == "not configured":
            return HealthItem("score service", "off", "not configured: native ranking only")
        state = {"closed": "ok", "half-open": "degraded"}.get(s["breaker"], "down")
        return HealthItem("score service", state, f"breaker {s['breaker']}, mode {s['mode']}")

    def _shadow_store(self) -> HealthItem:
        try:
            with self.db.platform():
                pending = OutboxRepository(self.db).counts()["pending"]
        except Exception as exc:
            return HealthItem("shadow store", "down", f"outbox unreadable: {probe_failure(exc)}")
        where = self.probes.shadow_where
        try:
            self.shadow_store.list("health/")
        except ArrakisError as exc:
            return HealthItem("shadow store", "down", f"{where} unreachable; {pending} waiting in the outbox ({exc})")
        state = "ok" if pending == 0 else "degraded"
        return HealthItem("shadow store", state, f"{where}, {pending} waiting in the outbox")

    def _queue(self) -> list[HealthItem]:
        jobs = self.queue.counts()
        dead = self.queue.dead_letter_count()
        return [HealthItem("queue", "ok", f"{jobs['queued']} queued, {jobs['scheduled']} to retry later, "
                                          f"{jobs['running']} running"),
                HealthItem("dead letters", "ok" if dead == 0 else "degraded",
                           f"{dead} jobs" + (" (arrakis dlq list)" if dead else ""))]

    # community detail -----------------------------------------------------------------------------

    def community(self, community_id, *, recent: int = 15) -> CommunityDetail:
        views = OperatorViewsRepository(self.db)
        with self.db.tenant(community_id):
            c = self.repos.communities.current()
            counts = self.repos.profiles.count_by_tier()
            badges = self.repos.badges.count_by_type()
            changes = views.recent_tier_changes(recent)
            manifests = views.manifest_versions()
            delivered = views.delivered_keys()
            last = views.last_eligibility_sync()
            legacy = LegacyImportRepository(self.db).latest_or_none()
        try:
            tier_names = list(theme_of(c).tier_names)
        except ArrakisError:
            tier_names = []
        tiers = [TierCount(t, counts.get(t, 0)) for t in tier_names]
        tiers += [TierCount(t, n) for t, n in sorted(counts.items(), key=lambda kv: str(kv[0]))
                  if t not in tier_names and t is not None]
        tiers.append(TierCount("(no tier)", counts.get(None, 0)))
        return CommunityDetail(
            c.id, c.name, c.guild_id, c.theme_id, c.subscription_tier, sum(counts.values()), tiers,
            dict(sorted(badges.items())),
            [RecentChange(r["discord_id"], r["from_tier"], r["to_tier"], r["rank"], r["reason"], r["changed_at"])
             for r in changes],
            [ManifestVersion(r["version"], r["created_at"], r["created_by"], r["checksum"],
                             manifest_key(c.id, r["version"]) in delivered, r["synthesized"]) for r in manifests],
            last_diff=dict(last["payload"]) if last else None, last_diff_at=last["created_at"] if last else None,
            last_diff_by=last["actor"] if last else None,
            unknown_members=len(self.unknown.of(c.id)),
            legacy_import=legacy,
            approvals=[{"id": a.id, "kind": a.kind, "summary": a.report.get("summary", a.title),
                        "requested_by": a.requested_by, "created_at": a.created_at, "needs_code": a.needs_code}
                       for a in (self.approvals.pending_for(c.id) if self.approvals is not None else [])],
            running=self.queue.running(c.id))
