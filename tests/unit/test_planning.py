"""The pure planners (arrakis_engine/synthesis/planning.py): no PostgreSQL, Redis or HTTP.
Examples for each rule, and hypothesis properties for the invariants."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from arrakis_engine.manifests.builder import build_manifest
from arrakis_engine.ports import CHANNEL_TYPES
from arrakis_engine.synthesis.planning import (
    CREATED, NEW, MemberPlan, cap_problem, deletable, needs_approval, overwrites_for, plan_member_roles,
    plan_reconcile, plan_synthesis)
from arrakis_engine.themes import get_theme

GUILD = "900000000000000001"


def manifest(theme: str = "basic", members: dict | None = None) -> dict:
    return build_manifest(community_id="c", community_name="Test", guild_id=GUILD, theme=get_theme(theme),
                          members=members or {})


def apply_synthesis(m: dict, resources: dict, roles: dict, channels: dict, ids) -> None:
    """Carry a synthesis plan out on plain dicts, the way the synthesizer does against Discord."""
    plan = plan_synthesis(m, resources, roles, channels)
    items = {x["id"]: x for x in m["categories"] + m["roles"] + m["channels"]}
    for step in plan.steps:
        item = items[step.manifest_id]
        if step.how == "create":
            new = str(next(ids))
            if step.kind == "role":
                roles[new] = {"id": new, "name": item["name"]}
            else:
                parent = resources.get(item.get("parent")) if step.kind == "channel" else None
                ctype = CHANNEL_TYPES["category" if step.kind == "category" else item["type"]]
                channels[new] = {"id": new, "name": item["name"], "type": ctype, "parent_id": parent}
            resources[step.manifest_id] = new
            resources[CREATED + step.manifest_id] = new
        elif step.how == "adopt":
            resources[step.manifest_id] = step.discord_id


# --- synthesis -------------------------------------------------------------------------------------

def test_an_empty_guild_gets_everything_created_in_order():
    m = manifest("sietch")
    plan = plan_synthesis(m, {}, {}, {})
    kinds = [s.kind for s in plan.steps]
    assert kinds == sorted(kinds, key=["category", "role", "channel"].index)
    assert plan.of("create") == [s.manifest_id for s in plan.steps] and plan.new_roles == 10
    assert plan.new_channels == 7 + 15


def test_recorded_objects_are_kept_and_unclaimed_namesakes_adopted():
    m = manifest()
    gold = next(r for r in m["roles"] if r["name"] == "Gold")
    roles = {"1": {"id": "1", "name": "Gold"}, "2": {"id": "2", "name": "Silver"}}
    plan = plan_synthesis(m, {"role:silver": "2"}, roles, {})
    how = {s.manifest_id: (s.how, s.discord_id) for s in plan.steps}
    assert how[gold["id"]] == ("adopt", "1") and how["role:silver"] == ("keep", "2")


def test_an_object_claimed_by_another_item_is_never_adopted():
    m = manifest()
    roles = {"1": {"id": "1", "name": "Gold"}}
    plan = plan_synthesis(m, {"role:other": "1"}, roles, {})
    assert next(s for s in plan.steps if s.manifest_id == "role:gold").how == "create"


def test_caps_are_checked_before_anything_is_created():
    plan = plan_synthesis(manifest("sietch"), {}, {}, {})
    assert cap_problem(plan, 245, 0)[0] == "roles"
    assert cap_problem(plan, 0, 480)[0] == "channels"
    assert cap_problem(plan, 240, 478) is None


@settings(max_examples=60, deadline=None)
@given(theme=st.sampled_from(["basic", "sietch"]), namesakes=st.sets(st.integers(0, 40), max_size=15),
       recorded=st.sets(st.integers(0, 40), max_size=15), strangers=st.integers(0, 5))
def test_applying_a_synthesis_plan_yields_the_desired_state(theme, namesakes, recorded, strangers):
    """Whatever the guild already holds (namesakes, recorded objects, hand-made extras), carrying
    the plan out leaves every manifest item mapped to a guild object of its name, with no two
    items on one object, and planning again creates nothing."""
    m = manifest(theme)
    items = m["categories"] + m["roles"] + m["channels"]
    ids = itertools.count(10_000)
    roles, channels, resources = {}, {}, {}
    for i, item in enumerate(items):
        if i in namesakes or i in recorded:
            oid = str(next(ids))
            is_role = item["id"].startswith("role:")
            obj = {"id": oid, "name": item["name"]}
            if not is_role:
                obj["type"] = CHANNEL_TYPES["category" if item["id"].startswith("category:") else item["type"]]
                obj["parent_id"] = None
            (roles if is_role else channels)[oid] = obj
            if i in recorded:
                resources[item["id"]] = oid
    for _ in range(strangers):
        oid = str(next(ids))
        roles[oid] = {"id": oid, "name": f"hand-made {oid}"}
    apply_synthesis(m, resources, roles, channels, ids)
    mapped = [resources[i["id"]] for i in items]
    assert len(set(mapped)) == len(mapped)
    for item in items:
        pool = roles if item["id"].startswith("role:") else channels
        assert pool[resources[item["id"]]]["name"] == item["name"]
    again = plan_synthesis(m, resources, roles, channels)
    assert again.of("create") == [] and again.of("adopt") == []
    assert not any(v.startswith(NEW) for v in resources.values())


# --- reconcile --------------------------------------------------------------------------------------

def synthesized(theme: str = "basic"):
    m = manifest(theme)
    roles, channels, resources = {}, {}, {}
    apply_synthesis(m, resources, roles, channels, itertools.count(10_000))
    for r in m["roles"]:
        roles[resources[r["id"]]].update(color=r["color"], permissions=r["permissions"])
    for c in m["categories"] + m["channels"]:
        obj = channels[resources[c["id"]]]
        obj["topic"] = c.get("topic")
        obj["permission_overwrites"] = overwrites_for(c["overwrites"], GUILD, resources)
    return m, resources, roles, channels


def test_a_guild_in_step_with_the_plan_needs_nothing():
    m, resources, roles, channels = synthesized("sietch")
    assert plan_reconcile(m, resources, roles, channels, GUILD) == ([], [])


def test_deleted_renamed_and_orphaned_objects():
    m, resources, roles, channels = synthesized()
    del roles[resources["role:gold"]]
    roles[resources["role:silver"]]["name"] = "Argent"
    resources["role:retired"] = "777"
    roles["777"] = {"id": "777", "name": "Retired"}
    actions, orphans = plan_reconcile(m, resources, roles, channels, GUILD)
    assert {(a.op, a.manifest_id) for a in actions} >= {("create", "role:gold"), ("update", "role:silver")}
    assert [(o.manifest_id, o.changes["created_by_arrakis"]) for o in orphans] == [("role:retired", False)]
    assert deletable(orphans, destructive=True) == ([], ["role:retired"])


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_a_reconcile_never_deletes_what_arrakis_did_not_create(data):
    m, resources, roles, channels = synthesized()
    extra = data.draw(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=12))
    for i, (made_by_us, is_role) in enumerate(extra):
        oid, mid = str(50_000 + i), f"{'role' if is_role else 'channel'}:gone-{i}"
        (roles if is_role else channels)[oid] = {"id": oid, "name": mid, "type": 0}
        resources[mid] = oid
        if made_by_us:
            resources[CREATED + mid] = oid
    hand_made = {str(60_000 + i): {"id": str(60_000 + i), "name": "hand"} for i in range(data.draw(st.integers(0, 4)))}
    roles.update(hand_made)
    actions, orphans = plan_reconcile(m, resources, roles, channels, GUILD)
    for destructive in (False, True):
        deletes, kept = deletable(orphans, destructive=destructive)
        for d in deletes:
            assert destructive and resources.get(CREATED + d.manifest_id) == d.discord_id
        assert not {d.discord_id for d in deletes} & set(hand_made)
        assert len(deletes) + len(kept) == len(orphans)
    assert all(a.op != "delete" for a in actions)


# --- member roles ------------------------------------------------------------------------------------

def test_member_roles_keep_what_others_gave_and_skip_unknown_members():
    m = manifest(members={"1": ("Gold", []), "2": ("Silver", []), "3": (None, [])})
    resources = {"role:gold": "g", "role:silver": "s", "role:bronze": "b"}
    current = {"1": ["mod"], "2": ["g"], "3": ["b", "vip"], "4": []}
    plan = plan_member_roles(m, resources, current, GUILD, skip=["2"])
    changes = {c.discord_id: c for c in plan.changes}
    assert changes["1"].roles == ["g", "mod"] and changes["1"].job_type == "ASSIGN_ROLE"
    assert changes["3"].roles == ["vip"] and changes["3"].strips_tier and changes["3"].job_type == "REMOVE_ROLE"
    assert "2" not in changes and plan.skipped_unknown == ["2"] and "4" not in changes


def test_the_mass_strip_check():
    plan = MemberPlan(GUILD, tier_holders=100)
    plan.changes = [type("C", (), {"strips_tier": True})() for _ in range(10)]
    assert not needs_approval(plan, 0.10)
    plan.changes.append(type("C", (), {"strips_tier": True})())
    assert needs_approval(plan, 0.10)
    assert not needs_approval(MemberPlan(GUILD, tier_holders=0), 0.10)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_applying_member_changes_converges_and_keeps_foreign_roles(data):
    tiers = ["Gold", "Silver", "Bronze", None]
    member_ids = [str(i) for i in range(data.draw(st.integers(1, 12)))]
    m = manifest(members={d: (data.draw(st.sampled_from(tiers)), []) for d in member_ids})
    resources = {"role:gold": "g", "role:silver": "s", "role:bronze": "b"}
    pool = ["g", "s", "b", "mod", "vip"]
    current = {d: data.draw(st.lists(st.sampled_from(pool), unique=True)) for d in member_ids}
    skip = set(data.draw(st.lists(st.sampled_from(member_ids), unique=True)))
    plan = plan_member_roles(m, resources, current, GUILD, skip=skip)
    after = dict(current)
    for c in plan.changes:
        assert c.discord_id not in skip
        assert {"mod", "vip"} & set(current[c.discord_id]) <= set(c.roles)  # foreign roles kept
        after[c.discord_id] = c.roles
    assert plan_member_roles(m, resources, after, GUILD, skip=skip).changes == []


def test_a_member_whose_update_is_on_its_way_is_not_planned_again_nor_counted_as_a_strip():
    """Silver -> none was decided (a strip) and not delivered yet: planning the same again is no
    new change and no new strip; going back to Silver is a new change from the pending list (not
    a strip), even though it equals what Discord has."""
    m = manifest(members={"1": (None, []), "2": ("Silver", [])})
    resources = {"role:gold": "g", "role:silver": "s", "role:bronze": "b"}
    current = {"1": ["s"], "2": ["s"]}
    plan = plan_member_roles(m, resources, current, GUILD, pending={"1": []})
    assert plan.changes == [] and plan.pending == ["1"] and plan.strips == 0
    assert plan.tier_holders == 1  # member 1 holds no tier role once its pending update lands
    back = manifest(members={"1": ("Silver", []), "2": ("Silver", [])})
    plan = plan_member_roles(back, resources, current, GUILD, pending={"1": []})
    assert [(c.discord_id, c.roles, c.added, c.removed, c.strips_tier) for c in plan.changes] == [
        ("1", ["s"], ["s"], [], False)]
    # without anything pending, Silver -> none is one strip, counted once
    plan = plan_member_roles(m, resources, current, GUILD)
    assert plan.strips == 1 and plan.pending == []


def test_moving_between_tiers_is_not_a_strip():
    """Only a member left with no tier role counts for the mass-strip check: a promotion drops
    Silver and a demotion drops Gold, but both keep a tier role."""
    m = manifest(members={"1": ("Gold", []), "2": ("Silver", []), "3": (None, [])})
    resources = {"role:gold": "g", "role:silver": "s", "role:bronze": "b"}
    plan = plan_member_roles(m, resources, {"1": ["s"], "2": ["g"], "3": ["g"]}, GUILD)
    assert {c.discord_id: c.strips_tier for c in plan.changes} == {"1": False, "2": False, "3": True}
    assert plan.strips == 1 and plan.tier_holders == 3
