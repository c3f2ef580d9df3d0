"""Repositories on a real PostgreSQL as arrakis_app: lineage, cascade revoke, manifests,
shadow states, tier history, wallet links and the hash-chained audit log."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import psycopg2.errors
import pytest

from arrakis_engine.errors import Conflict, IntegrityFailure, NotFound, ValidationError

_n = iter(range(10**16, 10**17))


def new_member(engine, **kw):
    return engine.repos.profiles.create(discord_id=str(next(_n)), **kw)


def test_badge_lineage_of_depth_50_resolves(engine, make_community):
    c = make_community(theme="sietch", subscription="premium")
    r = engine.repos
    with engine.db.tenant(c.id):
        chain = [new_member(engine) for _ in range(51)]
        r.badges.award(chain[0].id, "water_sharer")
        for giver, receiver in zip(chain, chain[1:]):
            r.badges.award(receiver.id, "water_sharer", awarded_by=giver.id)
        lineage = r.badges.lineage(chain[-1].id, "water_sharer")
    assert len(lineage) == 51
    assert [b.profile_id for b in lineage] == [p.id for p in reversed(chain)]
    assert lineage[-1].awarded_by is None  # the root


def test_cascade_revoke_revokes_exactly_downstream(engine, make_community):
    c = make_community(theme="sietch", subscription="premium")
    r = engine.repos
    with engine.db.tenant(c.id):
        root, a, b, a1, a2, a1x, b1, stranger = (new_member(engine) for _ in range(8))

        def award(to, by=None):
            r.badges.award(to.id, "water_sharer", awarded_by=by.id if by else None)

        award(root)
        award(a, root), award(b, root)
        award(a1, a), award(a2, a), award(a1x, a1)
        award(b1, b)
        award(stranger)
        # Another badge type handed along the same people must not be touched.
        r.badges.award(a1.id, "og", awarded_by=a.id)
        revoked = r.badges.cascade_revoke(a.id, "water_sharer", reason="admin revoke")
        assert {x.profile_id for x in revoked} == {a.id, a1.id, a2.id, a1x.id}
        active = {p.id for p in (root, a, b, a1, a2, a1x, b1, stranger)
                  if r.badges.active(p.id, "water_sharer") is not None}
        assert active == {root.id, b.id, b1.id, stranger.id}
        assert r.badges.active(a1.id, "og") is not None
        assert all(x.revoked_reason == "admin revoke" for x in revoked)
        # Revoked badges stay as history.
        assert len(r.badges.for_profile(a.id, include_revoked=True)) == 1
        assert r.badges.cascade_revoke(a.id, "water_sharer", reason="again") == []


def test_badge_rules_enforced_by_storage(engine, make_community):
    c = make_community()
    r = engine.repos
    with engine.db.tenant(c.id):
        m = new_member(engine)
        r.badges.award(m.id, "active")
        with pytest.raises(Conflict):
            with engine.db.current().savepoint():
                r.badges.award(m.id, "active")
        with pytest.raises(ValidationError):
            r.badges.award(m.id, "contributor", awarded_by=m.id)
        with pytest.raises(ValidationError):
            r.badges.award(m.id, "Not A Type")
        with pytest.raises(NotFound):
            r.badges.award(uuid.uuid4(), "active")


def test_profiles_and_ranks(engine, make_community):
    c = make_community()
    r = engine.repos
    with engine.db.tenant(c.id):
        for rank in (5, 1, 3):
            new_member(engine, rank=rank, tier="Gold")
        new_member(engine)  # unranked
        assert [p.rank for p in r.profiles.top_by_rank(2)] == [1, 3]
        with pytest.raises(ValidationError):
            new_member(engine, rank=0)
        with pytest.raises(ValidationError):
            r.profiles.create(discord_id="not-a-snowflake")
        with pytest.raises(ValidationError):
            new_member(engine, wallet_address="0x123")
        p = new_member(engine, wallet_address="0x" + "AB" * 20)
        assert p.wallet_address == "0x" + "ab" * 20
        assert r.profiles.by_wallet("0x" + "Ab" * 20).id == p.id


def test_wallet_cannot_be_claimed_by_two_members(engine, make_community):
    c = make_community()
    r = engine.repos
    wallet = "0x" + "12" * 20
    with engine.db.tenant(c.id):
        m1, m2 = new_member(engine), new_member(engine)
        r.wallets.link(m1.id, wallet)
        with pytest.raises(Conflict):
            r.wallets.link(m2.id, wallet)
        assert r.wallets.by_wallet(wallet).profile_id == m1.id


def test_manifest_versions_and_checksums(engine, make_community, owner_conn):
    c = make_community()
    r = engine.repos
    with engine.db.tenant(c.id):
        assert r.manifests.latest() is None
        v1 = r.manifests.create_version({"roles": [{"id": "gold", "name": "Gold"}]}, created_by="test")
        v2 = r.manifests.create_version({"roles": [{"id": "gold", "name": "Gold 2"}]}, created_by="test")
        assert (v1.version, v2.version) == (1, 2)
        assert r.manifests.latest().version == 2
        assert r.manifests.versions() == [1, 2]
        assert r.manifests.verify(1).content == v1.content
        r.shadow_states.record(2, {"role:gold": "111"}, status="applied")
        assert r.shadow_states.latest().resources == {"role:gold": "111"}
        with pytest.raises(NotFound):
            r.manifests.by_version(3)
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE manifests SET content = '{\"roles\": []}' WHERE community_id = %s AND version = 1",
                    (c.id,))
    with engine.db.tenant(c.id):
        with pytest.raises(IntegrityFailure):
            r.manifests.verify(1)
        r.manifests.verify(2)


def test_tier_history_in_order(engine, make_community):
    c = make_community()
    r = engine.repos
    with engine.db.tenant(c.id):
        m = new_member(engine)
        r.tier_history.record(m.id, from_tier=None, to_tier="Bronze", rank=80)
        r.tier_history.record(m.id, from_tier="Bronze", to_tier="Silver", rank=30)
        assert [(h.from_tier, h.to_tier) for h in r.tier_history.for_profile(m.id)] == [
            (None, "Bronze"), ("Bronze", "Silver")]


def test_audit_chain_detects_edit_and_delete(engine, make_community, owner_conn):
    c = make_community()
    with engine.db.tenant(c.id):
        for i in range(5):
            engine.repos.audit.append("tester", "step", {"i": i})
        entries = engine.repos.audit.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]  # community.created + 5
    assert entries[1].prev_hash == entries[0].hash

    def verify():
        with engine.db.platform():
            return engine.repos.audit.verify_chain(c.id)

    assert verify().ok

    with owner_conn.cursor() as cur:
        # Even the owner cannot edit it without switching the triggers off.
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("UPDATE audit_log SET actor = 'mallory' WHERE community_id = %s AND seq = 3", (c.id,))
        cur.execute("SET session_replication_role = replica")
        cur.execute("UPDATE audit_log SET payload = '{\"i\": 99}' WHERE community_id = %s AND seq = 3", (c.id,))
        cur.execute("SET session_replication_role = origin")
    report = verify()
    assert not report.ok
    assert any("row 3 was edited" in p for p in report.problems)

    c2 = make_community()
    with engine.db.tenant(c2.id):
        for i in range(4):
            engine.repos.audit.append("tester", "step", {"i": i})
    with owner_conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute("DELETE FROM audit_log WHERE community_id = %s AND seq = 2", (c2.id,))
        cur.execute("SET session_replication_role = origin")
    with engine.db.platform():
        report = engine.repos.audit.verify_chain(c2.id)
    assert any("missing" in p for p in report.problems)
    assert any("row 3 does not link" in p for p in report.problems)

    c3 = make_community()
    with engine.db.tenant(c3.id):
        engine.repos.audit.append("tester", "step", {})
    with owner_conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute("DELETE FROM audit_log WHERE community_id = %s AND seq = 2", (c3.id,))  # the newest row
        cur.execute("SET session_replication_role = origin")
    with engine.db.platform():
        report = engine.repos.audit.verify_chain(c3.id)
    assert report.problems == ["the chain should end at row 2 but ends at row 1"]


def test_platform_audit_chain(engine):
    with engine.db.platform():
        engine.repos.audit.append("operator", "platform.check", {"at": datetime.now(timezone.utc).isoformat()})
        report = engine.repos.audit.verify_chain(None)
    assert report.ok and report.rows >= 1


def test_concurrent_manifest_versions_do_not_collide(engine, make_community):
    import threading

    c = make_community()
    errors: list = []

    def write(i: int) -> None:
        try:
            with engine.db.tenant(c.id):
                engine.repos.manifests.create_version({"i": i}, created_by=f"w{i}")
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.db.tenant(c.id):
        assert engine.repos.manifests.versions() == list(range(1, 9))
