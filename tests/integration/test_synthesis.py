"""Community synthesis, member role sync and reconciliation against the fake Discord API, with
real PostgreSQL (as arrakis_app) and real Redis."""

from __future__ import annotations

import pytest

from arrakis_engine.errors import ValidationError
from arrakis_engine.synthesis.community import CREATED
from arrakis_engine.adapters.discord.rest import DiscordError

_n = iter(range(800_000_000_000_000_000, 900_000_000_000_000_000))


@pytest.fixture
def member_route_limit():
    # These tests are about what is planned and sent, not the member route's pace (10 per 10 s,
    # which the queue, live-sync and benchmark tests hold to): here it allows 20 a second.
    return (20, 1.0)


def community_with_members(e, discord, make_community, *, theme="sietch", ranks=(1, 8, 70, 150, 999)):
    c = make_community(theme=theme, subscription="premium")
    g = discord.guild(c.guild_id)
    ids = []
    with e.db.tenant(c.id):
        for rank in ranks:
            d = str(next(_n))
            tier = e.repos.profiles.create(discord_id=d).id
            from arrakis_engine.themes import get_theme

            e.repos.profiles.update_standing(tier, tier=get_theme(theme).tier_for_rank(rank), rank=rank)
            g.members[d] = set()
            ids.append(d)
    return c, g, ids


def names(g) -> tuple[list, list]:
    return (sorted(r["name"] for r in g.roles.values() if r["name"] != "@everyone"),
            sorted(ch["name"] for ch in g.channels.values()))


def test_synthesize_the_sietch_template(e, discord, make_community):
    c, g, _ = community_with_members(e, discord, make_community)
    out = e.synthesis.synthesize(c.id, queued=False)
    roles, channels = names(g)
    assert len(roles) == 10  # nine tiers and the Water Sharer badge role
    cats = [ch for ch in g.channels.values() if ch["type"] == 4]
    assert len(cats) == 7 and "SIETCH SCROLLS" in {x["name"] for x in cats}
    assert len(out["created"]) == 10 + 7 + 15
    naib_council = next(ch for ch in cats if ch["name"] == "NAIB COUNCIL")
    everyone = next(o for o in naib_council["permission_overwrites"] if o["id"] == c.guild_id)
    assert int(everyone["deny"]) & (1 << 10)  # hidden from everyone but Naib
    door = next(ch for ch in g.channels.values() if ch["name"] == "the-door")
    assert g.channels[door["parent_id"]]["name"] == "SIETCH SCROLLS"
    again = e.synthesis.synthesize(c.id, queued=False)
    assert again["created"] == [] and again["new_version"] is False
    assert names(g) == (roles, channels)


def test_dry_run_changes_nothing(e, discord, make_community):
    c, g, _ = community_with_members(e, discord, make_community)
    assert e.synthesis.synthesize(c.id, dry_run=True)["manifest"] is None
    e.manifests.publish(c.id, actor="t")
    before = discord.requests
    plan = e.synthesis.synthesize(c.id, dry_run=True)
    assert len(plan["created"]) == 32 and names(g) == ([], [])
    assert discord.requests - before == 2  # the two reads


def test_interrupted_synthesis_resumes_without_duplicates(e, discord, make_community):
    c, g, _ = community_with_members(e, discord, make_community)
    e.manifests.publish(c.id, actor="t")
    discord.outage_after_channel_creates = 12  # Discord dies half-way through the channels
    with pytest.raises(DiscordError):
        e.synthesizer.apply(c.id)
    assert 0 < len(g.channels) < 22
    discord.outage_after_channel_creates = None
    discord.outage_until = 0
    report = e.synthesizer.apply(c.id)
    assert report.kept and report.created
    roles, channels = names(g)
    assert len(roles) == len(set(roles)) == 10
    assert len(g.channels) == 22 and len({(ch["name"], ch["parent_id"]) for ch in g.channels.values()}) == 22


def test_slices_trust_what_was_recorded_and_the_last_one_checks_the_guild(e, discord, make_community):
    """A synthesis in slices (as the queue runs it) trusts the ids it recorded instead of reading
    the guild at every slice; before it calls the guild done it looks once, and what is recorded
    but not there (a role deleted by hand meanwhile, an id that was never this guild's) is
    forgotten and made again."""
    c, g, _ = community_with_members(e, discord, make_community)
    e.manifests.publish(c.id, actor="t")
    first = e.synthesizer.apply(c.id, budget=17)  # the categories and the roles
    assert not first.complete and len(first.created) == 17
    naib = next(r["id"] for r in g.roles.values() if r["name"] == "Naib")
    del g.roles[naib]  # an admin deletes it while the synthesis goes on
    other = discord.guild("1234567890123456789")
    foreign = discord.guilds[other.id].channels.setdefault("1099999999999999999", {
        "id": "1099999999999999999", "name": "elsewhere", "type": 0, "parent_id": None, "permission_overwrites": []})
    with e.db.tenant(c.id):
        from arrakis_engine.storage.synthesis import SynthesisRepository

        version = SynthesisRepository(e.db).latest_shadow()[0]
        SynthesisRepository(e.db).record(version, "channel:sietch-scrolls/the-door", foreign["id"])  # not this guild's
    last = e.synthesizer.apply(c.id, read_guild=False)
    assert not last.complete and sorted(last.missing) == ["channel:sietch-scrolls/the-door", "role:naib"]
    done = e.synthesizer.apply(c.id, read_guild=False)
    assert done.complete and sorted(done.created) == ["channel:sietch-scrolls/the-door", "role:naib"]
    roles, channels = names(g)
    assert len(roles) == len(set(roles)) == 10 and "Naib" in roles
    assert len(g.channels) == 22 and "the-door" in channels and "elsewhere" not in channels
    assert e.synthesis.status(c.id).synthesized


def test_resource_created_but_not_recorded_is_adopted(e, discord, make_community):
    """A crash between Discord's answer and our record: the next run adopts it by name."""
    c, g, _ = community_with_members(e, discord, make_community, theme="basic", ranks=(1,))
    e.manifests.publish(c.id, actor="t")
    e.discord.create_role(c.guild_id, name="Gold", color=0xFFD700, permissions=0)  # made, never recorded
    report = e.synthesizer.apply(c.id)
    assert "role:gold" in report.adopted
    assert [r["name"] for r in g.roles.values()].count("Gold") == 1


def test_guild_caps_are_checked_before_the_first_call(e, discord, make_community):
    c, g, _ = community_with_members(e, discord, make_community)
    for i in range(245):
        g.roles[str(10_000 + i)] = {"id": str(10_000 + i), "name": f"hand-made {i}", "color": 0, "permissions": "0"}
    e.manifests.publish(c.id, actor="t")
    before = discord.requests
    with pytest.raises(ValidationError, match="Discord allows 250"):
        e.synthesizer.apply(c.id)
    assert discord.requests - before == 2  # only the reads


def test_member_sync_one_patch_each_keeps_other_roles_and_skips_unknown(e, discord, make_community):
    c, g, ids = community_with_members(e, discord, make_community)
    svc = e.synthesis
    svc.synthesize(c.id, queued=False)
    hand_made = e.discord.create_role(c.guild_id, name="Moderator", color=0, permissions=0)["id"]
    g.members[ids[0]].add(hand_made)
    out = svc.sync_members(c.id, skip={ids[4]}, queued=False)
    assert out.as_dict() == {"status": "done", "changes": 4, "strips": 0, "skipped_unknown": 1}
    role_id = {r["name"]: r["id"] for r in g.roles.values()}
    assert g.members[ids[0]] == {role_id["Naib"], hand_made}
    assert g.members[ids[1]] == {role_id["Fedaykin"]}
    assert g.members[ids[4]] == set()  # unknown: untouched
    patches = [p for _, m, p in discord.request_log if m == "PATCH" and "/members/" in p]
    assert len(patches) == 4
    assert svc.sync_members(c.id, queued=False).changes == 1  # only the skipped one now


def _member_reads(discord, guild_id: str) -> tuple[list[str], list[str]]:
    """(listings, single reads) the fake answered for this guild."""
    gets = [p for _, m, p in discord.request_log if m == "GET" and f"/guilds/{guild_id}/members" in p]
    return [p for p in gets if p.endswith("/members")], [p for p in gets if not p.endswith("/members")]


def test_a_first_sync_lists_members_a_thousand_a_call_instead_of_reading_each(e, discord, make_community):
    """1,200 people in the guild, five of them ranked: their roles are read in two listing calls
    (1,000 a call, from the lowest of their ids), not one call each; a ranked member who is not in
    the guild is left out, as a 404 would."""
    c, g, ids = community_with_members(e, discord, make_community)
    base = int(ids[0]) - 600
    for i in range(1200):  # members of the guild who hold nothing: around and between the ranked ones
        g.members.setdefault(str(base + i * 7), set())
    gone = ids[3]
    del g.members[gone]
    e.synthesis.synthesize(c.id, queued=False)
    before = len(discord.request_log)
    plan = e.synthesis.sync_members(c.id, dry_run=True)
    assert sorted(m["discord_id"] for m in plan.members) == sorted(set(ids) - {gone})
    # a dry run speaks of roles by their names, as the admin sees them in Discord, not by ids
    names = {r["name"] for r in g.roles.values()}
    assert all(m["added_names"] and set(m["added_names"]) <= names for m in plan.members), plan.members
    listings, singles = _member_reads(discord, c.guild_id)
    assert singles == [] and 1 <= len(listings) <= 2, (listings, singles)
    assert all(p.endswith("/members") for _, _, p in discord.request_log[before:] if "/members" in p)
    out = e.synthesis.sync_members(c.id, queued=False)  # already read: no listing again
    assert out.changes == 4 and len(_member_reads(discord, c.guild_id)[0]) == len(listings)
    assert discord.count_429 == 0


def test_without_the_members_intent_members_are_read_one_by_one(e, discord, make_community):
    """Discord refuses to list members (403 Missing Access) when the bot's GUILD_MEMBERS intent is
    off: the sync reads each member instead, and asks for a listing once only."""
    discord.members_intent = False
    c, g, ids = community_with_members(e, discord, make_community)
    e.synthesis.synthesize(c.id, queued=False)
    assert e.synthesis.sync_members(c.id, queued=False).changes == 5
    listings, singles = _member_reads(discord, c.guild_id)
    assert len(listings) == 1 and len(singles) == 5
    role_id = {r["name"]: r["id"] for r in g.roles.values()}
    assert all(g.members[d] <= set(role_id.values()) and g.members[d] for d in ids[:4])


def test_a_listing_page_is_refused_for_a_bad_limit(discord):
    import httpx

    g = discord.guild("1200000000000000001", members=3)
    h = {"Authorization": f"Bot {discord.token}"}
    for bad in ("0", "1001", "x"):
        r = httpx.get(f"{discord.url}/guilds/{g.id}/members?limit={bad}", headers=h)
        assert r.status_code == 400 and r.json()["code"] == 50035
    one = httpx.get(f"{discord.url}/guilds/{g.id}/members", headers=h).json()
    assert len(one) == 1  # Discord's default limit is 1
    rest = httpx.get(f"{discord.url}/guilds/{g.id}/members?limit=1000&after={one[0]['user']['id']}", headers=h).json()
    assert [m["user"]["id"] for m in rest] == sorted(g.members, key=int)[1:]


def _approver(e, role: str = "approver"):
    import uuid
    from urllib.parse import parse_qs, urlparse

    name = f"strip-{uuid.uuid4().hex[:8]}"
    from tests.fixtures.operators import add_operator

    return name, parse_qs(urlparse(add_operator(e, name, [role]).uri).query)["secret"][0]


@pytest.mark.slow
def test_mass_strip_pauses_for_approval(e, discord, make_community):
    import pyotp

    from arrakis_engine.errors import MfaRefused, NotFound, PermissionDenied

    c, g, ids = community_with_members(e, discord, make_community, ranks=tuple(range(1, 21)))
    svc = e.synthesis
    svc.synthesize(c.id, queued=False)
    svc.sync_members(c.id, queued=False)
    with e.db.tenant(c.id):  # a bad read: everyone "lost" their tier
        for p in e.repos.profiles.all():
            e.repos.profiles.update_standing(p.id, tier=None, rank=None)
    svc.synthesize(c.id, queued=False)
    runner, _ = _approver(e)
    out = svc.sync_members(c.id, queued=False, actor=f"operator:{runner}")  # as the CLI names --as
    assert out.status == "paused" and out.strips == 20
    assert all(g.members[d] for d in ids)  # nobody was stripped
    assert svc.sync_members(c.id, queued=False).approval == out.approval  # the same request, not a second
    waiting = e.operations.community(c.id).approvals
    assert len(waiting) == 1 and waiting[0]["summary"] == "20 of 20 members would lose their tier role"
    assert waiting[0]["kind"] == "member_role_strip" and waiting[0]["needs_code"]
    request = e.approvals.get(out.approval)
    assert request.community_id == str(c.id) and request.risk_level == "high"
    # The same rules as any approval: not who ran the sync, an approver, with a code.
    with pytest.raises(PermissionDenied, match="asked for this change"):
        e.approvals.approve(out.approval, by=runner, code=None, carry_out=False)
    auditor, _ = _approver(e, role="auditor")
    with pytest.raises(PermissionDenied, match="approver role"):
        e.approvals.approve(out.approval, by=auditor, carry_out=False)
    alice, secret = _approver(e)
    with pytest.raises(ValidationError, match="a code is needed"):
        e.approvals.approve(out.approval, by=alice, carry_out=False)
    with pytest.raises(MfaRefused):
        e.approvals.approve(out.approval, by=alice, code="12345x", carry_out=False)
    done = e.approvals.approve_strip_of(c.id, by=alice, code=pyotp.TOTP(secret).now(), carry_out=False)
    assert done.status == "approved" and done.mfa == "totp"
    assert e.operations.community(c.id).approvals == []  # approving closed it
    assert svc.sync_members(c.id, queued=False, actor="ops:bob").changes == 20
    assert e.approvals.get(out.approval).used_at is not None  # used up by that sync
    with e.db.tenant(c.id):
        last = e.repos.audit.entries(limit=1)[-1]
    assert last.action == "member_sync.approved" and last.payload["approved_by"] == alice
    with pytest.raises(NotFound, match="no mass strip is waiting"):
        e.approvals.approve_strip_of(c.id, by=alice, code=None)


@pytest.mark.slow
def test_an_approved_mass_strip_is_carried_out_on_the_queue(e, discord, make_community):
    import pyotp

    c, g, ids = community_with_members(e, discord, make_community, ranks=tuple(range(1, 21)))
    svc = e.synthesis
    svc.synthesize(c.id, queued=False)
    svc.sync_members(c.id, queued=False)
    with e.db.tenant(c.id):
        for p in e.repos.profiles.all():
            e.repos.profiles.update_standing(p.id, tier=None, rank=None)
    svc.synthesize(c.id, queued=False)
    runner, _ = _approver(e)
    out = svc.sync_members(c.id, queued=False, actor=f"operator:{runner}")
    alice, secret = _approver(e)
    before = e.queue.queue(c.id).count
    e.approvals.approve(out.approval, by=alice, code=pyotp.TOTP(secret).now())
    assert e.queue.queue(c.id).count == before + 20  # one role update per member, queued at once
    assert e.approvals.get(out.approval).used_at is not None
    e.queue.queue(c.id).empty()


def test_reconciliation(e, discord, make_community):
    c, g, _ = community_with_members(e, discord, make_community, theme="basic", ranks=(1,))
    e.synthesis.synthesize(c.id, queued=False)
    role_id = {r["name"]: r["id"] for r in g.roles.values()}
    del g.roles[role_id["Silver"]]  # deleted by hand
    g.roles[role_id["Gold"]]["name"] = "Goldish"  # renamed by hand
    hand = e.discord.create_role(c.guild_id, name="Hand Made", color=0, permissions=0)["id"]
    dry = e.reconciler.run(c.id, dry_run=True)
    assert {(a.op, a.manifest_id) for a in dry.actions} == {("create", "role:silver"), ("update", "role:gold")}
    assert "Silver" not in [r["name"] for r in g.roles.values()]  # dry run changed nothing
    e.reconciler.run(c.id)
    roles = [r["name"] for r in g.roles.values()]
    assert sorted(roles) == ["@everyone", "Bronze", "Gold", "Hand Made", "Silver"]
    assert hand in g.roles
    # An orphan we created (the manifest no longer has it) goes only with --destructive.
    with e.db.tenant(c.id):
        from arrakis_engine.storage.synthesis import SynthesisRepository

        version = SynthesisRepository(e.db).latest_shadow()[0]
        SynthesisRepository(e.db).record(version, "role:retired", hand)
        SynthesisRepository(e.db).record(version, CREATED + "role:retired", hand)
    assert e.reconciler.run(c.id).skipped_deletes == ["role:retired"] and hand in g.roles
    e.reconciler.run(c.id, destructive=True)
    assert hand not in g.roles


def test_members_left_unknown_by_the_last_eligibility_sync_are_not_touched(e, discord, make_community):

    c, g, ids = community_with_members(e, discord, make_community)
    svc = e.synthesis
    svc.synthesize(c.id, queued=False)
    e.unknown_members.remember(c.id, [ids[0], ids[1]])
    out = svc.sync_members(c.id, queued=False)
    assert out.changes == 3 and not g.members[ids[0]] and not g.members[ids[1]] and g.members[ids[2]]


def test_drift_report_by_severity(e, discord, make_community):
    from arrakis_engine.synthesis.drift import drift

    c, g, _ = community_with_members(e, discord, make_community, theme="basic", ranks=(1,))
    e.synthesis.synthesize(c.id, queued=False)
    assert drift(e.reconciler, c.id).status == "in sync"
    role_id = {r["name"]: r["id"] for r in g.roles.values()}
    del g.roles[role_id["Silver"]]
    g.roles[role_id["Gold"]]["color"] = 1
    e.discord.create_role(c.guild_id, name="Hand Made", color=0, permissions=0)
    with e.db.tenant(c.id):
        p = e.repos.profiles.create(discord_id="555555555555555001")
        e.repos.profiles.update_standing(p.id, tier="Bronze", rank=60)
    e.manifests.publish(c.id, actor="t")  # a new version, not synthesized yet
    report = drift(e.reconciler, c.id).as_dict()
    assert report["status"] == "high"
    got = [(i["severity"], i["manifest_id"] or i["problem"]) for i in report["items"]]
    assert got[0] == ("high", "role:silver")
    assert ("medium", "role:gold") in got
    assert any(s == "medium" and "not synthesized yet" in m for s, m in got)
    assert any(s == "info" and "Hand Made" in m for s, m in got)
