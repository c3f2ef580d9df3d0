"""Water Sharer rules on a real PostgreSQL as arrakis_app."""

from __future__ import annotations

import threading

import pytest

from arrakis_engine.errors import Conflict, NotFound, ValidationError
from arrakis_engine.use_cases.water_sharer import BADGE, WaterSharerService

_n = iter(range(3 * 10**17, 4 * 10**17))


@pytest.fixture
def sietch(make_community):
    return make_community(theme="sietch", subscription="premium")


@pytest.fixture
def service(engine):
    return WaterSharerService(engine.db, engine.repos)


def member(engine, community, *, onboarded=True, holder=False) -> str:
    discord_id = str(next(_n))
    with engine.db.tenant(community.id):
        p = engine.repos.profiles.create(discord_id=discord_id)
        if onboarded:
            engine.repos.wallets.link(p.id, f"0x{int(discord_id):040x}")
        if holder:
            engine.repos.badges.award(p.id, BADGE)
    return discord_id


def test_share_and_cascade_of_depth_5(engine, sietch, service):
    chain = [member(engine, sietch, holder=True)] + [member(engine, sietch) for _ in range(5)]
    for giver, recipient in zip(chain, chain[1:]):
        service.share(sietch.id, giver, recipient, actor="test")
    bystander = member(engine, sietch, holder=True)
    revoked = service.revoke(sietch.id, chain[1], actor="admin")
    assert len(revoked) == 5  # chain[1] and the four below
    with engine.db.tenant(sietch.id):
        r = engine.repos
        still = [d for d in chain + [bystander]
                 if r.badges.active(r.profiles.by_discord_id(d).id, BADGE) is not None]
    assert still == [chain[0], bystander]


def test_error_cases(engine, sietch, service):
    holder = member(engine, sietch, holder=True)
    plain = member(engine, sietch)
    newcomer = member(engine, sietch, onboarded=False)
    with pytest.raises(ValidationError, match="yourself"):
        service.share(sietch.id, holder, holder, actor="t")
    with pytest.raises(ValidationError, match="only a Water Sharer"):
        service.share(sietch.id, plain, member(engine, sietch), actor="t")
    with pytest.raises(ValidationError, match="onboarding"):
        service.share(sietch.id, holder, newcomer, actor="t")
    with pytest.raises(NotFound):
        service.share(sietch.id, holder, "999999999999999999", actor="t")
    other_holder = member(engine, sietch, holder=True)
    with pytest.raises(Conflict, match="already holds"):
        service.share(sietch.id, holder, other_holder, actor="t")
    service.share(sietch.id, holder, plain, actor="t")
    with pytest.raises(Conflict, match="active share"):
        service.share(sietch.id, holder, member(engine, sietch), actor="t")
    # Once revoked, the recipient can never receive it again; the giver may share anew.
    service.revoke(sietch.id, plain, actor="admin")
    with pytest.raises(Conflict, match="only once"):
        service.share(sietch.id, holder, plain, actor="t")
    service.share(sietch.id, holder, member(engine, sietch), actor="t")


def test_racing_shares_from_one_giver_give_one_share(engine, sietch, service):
    holder = member(engine, sietch, holder=True)
    recipients = [member(engine, sietch) for _ in range(4)]
    outcomes: list = []

    def go(r):
        try:
            service.share(sietch.id, holder, r, actor="t")
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=go, args=(r,)) for r in recipients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
