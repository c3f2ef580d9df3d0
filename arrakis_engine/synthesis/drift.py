"""Drift report: desired (latest manifest) vs shadow (what Arrakis applied) vs actual (the guild
as Discord reports it), item by item with a severity an operator can sort by.

Severities: high -- something Arrakis manages is gone from the guild; medium -- it was changed
outside Arrakis, or the latest manifest is not synthesized yet; low -- a resource Arrakis
recorded that the manifest no longer wants; info -- resources made by hand (never touched).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..storage.gating import GatingRepository
from .planning import CREATED, OVERWRITES
from .reconcile import Reconciler

ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}


@dataclass
class DriftItem:
    severity: str
    kind: str
    manifest_id: str | None
    discord_id: str | None
    problem: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class DriftReport:
    community_id: str
    manifest_version: int
    shadow_version: int
    items: list[DriftItem] = field(default_factory=list)
    sandbox: bool = False  # the guild read is the local Discord sandbox's, not Discord's

    @property
    def status(self) -> str:
        worst = min((ORDER[i.severity] for i in self.items), default=4)
        return {0: "high", 1: "medium", 2: "low", 3: "in sync", 4: "in sync"}[worst]

    def as_dict(self) -> dict:
        return {"community_id": self.community_id, "manifest_version": self.manifest_version,
                "shadow_version": self.shadow_version, "status": self.status, "sandbox": self.sandbox,
                "items": [i.as_dict() for i in sorted(self.items, key=lambda i: ORDER[i.severity])]}


def drift(reconciler: Reconciler, community_id) -> DriftReport:
    actions, orphans, ctx = reconciler.plan(community_id)
    report = DriftReport(str(ctx["community"]), ctx["manifest_version"], ctx["version"])
    if ctx["version"] < ctx["manifest_version"]:
        report.items.append(DriftItem("medium", "manifest", None, None,
                                      f"manifest v{ctx['manifest_version']} is not synthesized yet "
                                      f"(the guild reflects v{ctx['version']})"))
    gating = _gating_drift(reconciler, community_id)
    if gating:
        report.items.append(DriftItem("medium", "gating", None, None, gating))
    for a in actions:
        if a.op == "create":
            recorded = ctx["resources"].get(a.manifest_id)
            report.items.append(DriftItem("high" if recorded else "medium", a.kind, a.manifest_id, recorded,
                                          "deleted outside Arrakis" if recorded else "not created yet"))
        else:
            report.items.append(DriftItem("medium", a.kind, a.manifest_id, a.discord_id,
                                          "changed outside Arrakis: " + ", ".join(sorted(a.changes))))
    for o in orphans:
        report.items.append(DriftItem("low", o.kind, o.manifest_id, o.discord_id,
                                      "no longer in the manifest" + (" (made by Arrakis: reconcile --destructive "
                                                                     "removes it)" if o.changes["created_by_arrakis"]
                                                                     else " (adopted: kept)")))
    known = {did for mid, did in ctx["resources"].items() if not mid.startswith((CREATED, OVERWRITES))}
    guild = str(ctx["guild"])
    for rid, r in ctx["roles"].items():
        if rid not in known and rid != guild and not r.get("managed"):
            report.items.append(DriftItem("info", "role", None, rid, f"role '{r.get('name')}' is not managed by Arrakis"))
    for cid, c in ctx["channels"].items():
        if cid not in known:
            report.items.append(DriftItem("info", "channel", None, cid,
                                          f"channel '{c.get('name')}' is not managed by Arrakis"))
    return report


def _gating_drift(reconciler: Reconciler, community_id) -> str | None:
    """The gating rules as stored now vs as the latest manifest carries them."""
    with reconciler.db.tenant(community_id):
        rows = GatingRepository(reconciler.db).rules()
        latest = reconciler.repos.manifests.latest()
    now = {"membership": rows[""]["rule"] if "" in rows else None,
           "tiers": {t: r["rule"] for t, r in sorted(rows.items()) if t}} if rows else None
    carried = (latest.content or {}).get("gating") if latest else None
    if now == carried:
        return None
    return (f"the gating rules changed after manifest v{latest.version if latest else 0}; the next synthesize "
            "publishes them as a new version")
