"""Pure planners: what to change in a guild, decided from data alone (no PostgreSQL, Redis or HTTP).

* :func:`plan_synthesis` -- the steps of a community synthesis: for each manifest item, keep it
  (its recorded Discord id is in the guild), adopt it (an unclaimed guild object of the same name
  and kind: a crash between "Discord created it" and "we recorded it"), or create it.
* :func:`plan_reconcile` -- desired (manifest) vs shadow (recorded ids) vs actual (the guild):
  create what is missing, update what drifted, and list orphans with whether Arrakis made them.
* :func:`plan_member_roles` -- each member's new full role list, and :func:`needs_approval`, the
  mass-strip check.

The use cases in ``community.py``, ``reconcile.py`` and ``member_roles.py`` read the state, call these,
and carry out the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from ..ports import CHANNEL_TYPES
from ..domain.checksums import canonical_json, sha256_hex

CREATED = "created:"  # shadow entries marking resources Arrakis itself created
OVERWRITES = "overwrites:"  # shadow entries: digest of the overwrites last set on a category
NEW = "new:"  # stands for the id of a resource the plan creates
MAX_ROLES = 250
MAX_CHANNELS = 500
SEVERITY = {"create": "high", "update": "medium", "delete": "low"}


def overwrites_for(spec: list[dict], guild_id: str, resources: Mapping[str, str]) -> list[dict]:
    """Discord permission overwrites for a manifest item, with manifest role ids resolved."""
    out = []
    for o in spec:
        target = guild_id if o["target"] == "@everyone" else resources.get(o["target"])
        if target is None:
            continue
        out.append({"id": target, "type": 0, "allow": str(o["allow"]), "deny": str(o["deny"])})
    return sorted(out, key=lambda o: o["id"])


def normal_overwrites(overwrites: list[dict] | None) -> list[tuple]:
    return sorted((str(o["id"]), int(o.get("type", 0)), str(o["allow"]), str(o["deny"])) for o in overwrites or [])


def overwrites_digest(overwrites: list[dict]) -> str:
    return sha256_hex(canonical_json(normal_overwrites(overwrites)))


# --- community synthesis ------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    kind: str  # category | role | channel
    manifest_id: str
    how: str  # keep | adopt | create
    discord_id: str | None = None  # kept or adopted: the guild object


@dataclass
class SynthesisPlan:
    steps: list[Step] = field(default_factory=list)
    new_roles: int = 0
    new_channels: int = 0

    def of(self, how: str) -> list[str]:
        return [s.manifest_id for s in self.steps if s.how == how]


def find(manifest_id: str, resources: Mapping[str, str], pool: Mapping[str, dict],
         match: Callable[[dict], bool]) -> tuple[str | None, str]:
    """(discord id, keep | adopt | create) for one manifest item: its recorded id if the guild
    still has it, else an object nobody claims that ``match`` accepts, else nothing."""
    did = resources.get(manifest_id)
    if did and did in pool:
        return did, "keep"
    claimed = set(resources.values())
    for obj_id, obj in pool.items():
        if obj_id not in claimed and match(obj):
            return obj_id, "adopt"
    return None, "create"


def plan_synthesis(manifest: dict, resources: Mapping[str, str], roles_now: Mapping[str, dict],
                   channels_now: Mapping[str, dict]) -> SynthesisPlan:
    """Categories, then roles, then channels (inside their categories), each kept, adopted or
    created. Claims made by earlier steps count for later ones, as they will when carried out."""
    res = dict(resources)
    plan = SynthesisPlan()
    cat_type = CHANNEL_TYPES["category"]

    def decide(kind: str, mid: str, pool: Mapping[str, dict], match) -> None:
        did, how = find(mid, res, pool, match)
        res[mid] = did if did else NEW + mid
        plan.steps.append(Step(kind, mid, how, did))
        if how == "create":
            if kind == "role":
                plan.new_roles += 1
            else:
                plan.new_channels += 1

    for cat in manifest["categories"]:
        decide("category", cat["id"], channels_now,
               lambda o, c=cat: o.get("name") == c["name"] and o.get("type") == cat_type)
    for role in manifest["roles"]:
        decide("role", role["id"], roles_now, lambda o, r=role: o.get("name") == r["name"])
    for ch in manifest["channels"]:
        parent = res.get(ch["parent"])
        decide("channel", ch["id"], channels_now,
               lambda o, c=ch, p=parent: o.get("name") == c["name"] and o.get("parent_id") == p
               and o.get("type") == CHANNEL_TYPES[c["type"]])
    return plan


def cap_problem(plan: SynthesisPlan, roles_now: int, channels_now: int) -> tuple[str, str] | None:
    """(field, message) when the guild would pass Discord's caps after the plan, else None."""
    if roles_now + plan.new_roles > MAX_ROLES:
        return "roles", f"the guild would have {roles_now + plan.new_roles} roles; Discord allows {MAX_ROLES}"
    if channels_now + plan.new_channels > MAX_CHANNELS:
        return "channels", (f"the guild would have {channels_now + plan.new_channels} channels; Discord allows "
                            f"{MAX_CHANNELS}")
    return None


# --- reconciliation -----------------------------------------------------------------------------

@dataclass
class Action:
    op: str  # create | update | delete
    kind: str  # role | category | channel
    manifest_id: str
    discord_id: str | None = None
    changes: dict = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return SEVERITY[self.op]

    def as_dict(self) -> dict:
        return {**self.__dict__, "severity": self.severity}


def plan_reconcile(manifest: dict, resources: Mapping[str, str], roles: Mapping[str, dict],
                   channels: Mapping[str, dict], guild_id: str) -> tuple[list[Action], list[Action]]:
    """(actions, orphans). Orphans are recorded resources the manifest no longer has that are
    still in the guild; ``changes["created_by_arrakis"]`` says whether we made them (only those
    may ever be deleted). Objects we never recorded are not looked at at all."""
    actions: list[Action] = []
    for r in manifest["roles"]:
        did = resources.get(r["id"])
        actual = roles.get(did) if did else None
        if actual is None:
            actions.append(Action("create", "role", r["id"]))
            continue
        changes = {k: r[k] for k in ("name", "color") if actual.get(k) != r[k]}
        if str(actual.get("permissions")) != str(r["permissions"]):
            changes["permissions"] = r["permissions"]
        if changes:
            actions.append(Action("update", "role", r["id"], did, changes))
    for kind, items in (("category", manifest["categories"]), ("channel", manifest["channels"])):
        for c in items:
            did = resources.get(c["id"])
            actual = channels.get(did) if did else None
            if actual is None:
                actions.append(Action("create", kind, c["id"]))
                continue
            changes = {}
            if actual.get("name") != c["name"]:
                changes["name"] = c["name"]
            wanted = overwrites_for(c["overwrites"], guild_id, resources)
            if normal_overwrites(actual.get("permission_overwrites")) != normal_overwrites(wanted):
                changes["permission_overwrites"] = wanted
            if kind == "channel":
                if (actual.get("topic") or None) != (c["topic"] or None):
                    changes["topic"] = c["topic"]
                parent = resources.get(c["parent"])
                if parent and actual.get("parent_id") != parent:
                    changes["parent_id"] = parent
            if changes:
                actions.append(Action("update", kind, c["id"], did, changes))
    wanted_ids = {x["id"] for x in manifest["roles"] + manifest["categories"] + manifest["channels"]}
    orphans = []
    for mid, did in resources.items():
        if mid.startswith((CREATED, OVERWRITES)) or mid in wanted_ids:
            continue
        if did in roles or did in channels:
            created = resources.get(CREATED + mid) == did
            orphans.append(Action("delete", "role" if did in roles else "channel", mid, did,
                                  {"created_by_arrakis": created}))
    return actions, orphans


def deletable(orphans: Iterable[Action], *, destructive: bool) -> tuple[list[Action], list[str]]:
    """(deletes to make, orphans kept): only in destructive mode, and only what Arrakis created."""
    deletes, kept = [], []
    for o in orphans:
        if destructive and o.changes.get("created_by_arrakis"):
            deletes.append(o)
        else:
            kept.append(o.manifest_id)
    return deletes, kept


# --- member roles ---------------------------------------------------------------------------------

@dataclass
class MemberChange:
    discord_id: str
    roles: list[str]  # the full new list
    added: list[str]
    removed: list[str]
    strips_tier: bool

    @property
    def job_type(self) -> str:
        return "REMOVE_ROLE" if self.removed and not self.added else "ASSIGN_ROLE"


@dataclass
class MemberPlan:
    guild_id: str
    changes: list[MemberChange] = field(default_factory=list)
    skipped_unknown: list[str] = field(default_factory=list)
    tier_holders: int = 0
    # members whose latest decision (not delivered yet) is still what they should get: nothing
    # new is decided for them, and they count for no strip (their update is already on its way)
    pending: list[str] = field(default_factory=list)
    pending_seqs: dict[str, int] = field(default_factory=dict)  # their decisions' numbers (filled by the use case)
    role_names: dict[str, str] = field(default_factory=dict)  # Discord role id -> the manifest's name, for people

    @property
    def strips(self) -> int:
        return sum(1 for c in self.changes if c.strips_tier)


def members_in_scope(manifest: dict, known: Mapping[str, list[str]], only: Iterable[str] | None = None) -> list[str]:
    """Everyone the manifest gives roles to, and everyone we last saw holding roles (of ``only``,
    when given)."""
    if only is not None:
        return sorted(d for d in set(only) if d in manifest["members"] or d in known)
    return sorted(set(manifest["members"]) | set(known))


def plan_member_roles(manifest: dict, resources: Mapping[str, str], current: Mapping[str, list[str]],
                      guild_id: str, *, skip: Iterable[str] = (),
                      pending: Mapping[str, list[str]] | None = None, only: Iterable[str] | None = None) -> MemberPlan:
    """Each member's new role list: (their roles - the roles we manage) + the roles the manifest
    gives them. Roles given by admins or other bots are kept. Members in ``skip`` (unknown reads)
    are left as they are; members missing from ``current`` are not in the guild.

    ``pending``: each member's latest decided role list that Discord has not got yet. A member
    is compared with it rather than with Discord's last answer: the same list again is no new
    change (listed in ``plan.pending``), and a different one is a change from it (so a strip
    counts once, when holdings really changed, however long its delivery takes)."""
    skip = set(skip)
    pending = pending or {}
    managed = {resources[r["id"]] for r in manifest["roles"] if r["id"] in resources}
    tier_roles = {resources[r["id"]] for r in manifest["roles"] if r.get("tier") and r["id"] in resources}
    plan = MemberPlan(guild_id, role_names={resources[r["id"]]: r.get("name") or r["id"] for r in manifest["roles"]
                                            if r["id"] in resources})
    for discord_id in members_in_scope(manifest, current, only):
        if discord_id in skip:
            plan.skipped_unknown.append(discord_id)
            continue
        if discord_id not in current:
            continue
        desired = {resources[r] for r in manifest["members"].get(discord_id, []) if r in resources}
        now = set(current[discord_id])
        new = (now - managed) | desired
        was = set(pending[discord_id]) if discord_id in pending else now
        if was & tier_roles:
            plan.tier_holders += 1
        if new == was:
            if discord_id in pending:
                plan.pending.append(discord_id)
            continue
        removed = sorted(was - new)
        # a strip leaves the member with no tier role at all (moving between tiers is not one)
        plan.changes.append(MemberChange(discord_id, sorted(new), sorted(new - was), removed,
                                         bool(was & tier_roles) and not (new & tier_roles)))
    return plan


def needs_approval(plan: MemberPlan, max_strip_share: float) -> bool:
    """A change that leaves more than ``max_strip_share`` of the members holding a tier role with
    none is more often a bad read than a market crash: it waits for an operator. (A member moved
    from one tier to another keeps a tier role: not a strip.)"""
    return plan.strips > 0 and plan.strips > max_strip_share * max(plan.tier_holders, 1)
