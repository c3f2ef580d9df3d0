"""The kill switch against real worker processes synthesizing into the fake Discord: once
activate returns no request reaches Discord (bar one already on the wire per worker), held work
waits and finishes after release with nothing lost or duplicated; wizard sessions are revoked;
authorisation comes before validation; an alert that fails never fails the kill switch."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from arrakis_engine.errors import MfaRefused, NotFound, PermissionDenied, SigningError, ValidationError
from arrakis_engine.security.authz import Actor
from tests.fixtures.workers import member_update, sietch, wait_for


@pytest.fixture
def role_create_limit():
    return (3, 1.0)  # slow role creation: a synthesis is still running when the switch is thrown


@pytest.fixture
def admin(e, discord):
    """A platform admin with MFA: (actor, a function giving a fresh code each call)."""
    name = f"ks-{uuid.uuid4().hex[:8]}"
    from tests.fixtures.operators import add_operator

    enrolment = add_operator(e, name, ["platform_admin"], fake=discord)
    op = e.operators.get(name)
    totp = pyotp.TOTP(parse_qs(urlparse(enrolment.uri).query)["secret"][0])
    backups = list(enrolment.backup_codes)

    def code() -> str:
        # Each code works once: the first call uses the current TOTP, later ones backup codes.
        if not getattr(code, "used", False):
            code.used = True
            return totp.now()
        return backups.pop()

    return op.actor(), code


@pytest.mark.slow
def test_global_kill_stops_every_discord_call_and_release_finishes_the_work(e, discord, make_community, workers,
                                                                           admin):
    actor, code = admin
    communities = [sietch(e, discord, make_community, members=6) for _ in range(2)]
    for c, _, _ in communities:
        assert e.synthesis.synthesize(c.id)["status"] == "queued"
    for _ in range(4):
        workers()
    wait_for(lambda: discord.requests >= 8, 60, 0.02)

    report = e.killswitch.activate(actor, scope="global", reason="drill: suspected token leak", code=code())
    returned = time.monotonic()
    assert all(p.ok for p in report.parts), report.parts
    assert {p.part for p in report.parts} >= {"freeze Discord changes", "revoke wizard sessions",
                                              "stop signing and revoke Vault tokens", "alert", "audit"}
    assert report.total_ms < 1000, report.total_ms

    time.sleep(2.0)
    late = [t - returned for t, _, _ in discord.request_log if t > returned]
    # Only a request already on the wire (gate passed, bytes in flight) may arrive after the return.
    assert len(late) <= 4 and all(d < 0.05 for d in late), late
    held = wait_for(lambda: e.freeze.waiting(), 10)
    assert held and all("drill: suspected token leak" in h["reason"] for h in held)
    status = e.killswitch.status()
    assert [a["scope"] for a in status["active"]] == ["global"]
    with pytest.raises(SigningError, match="kill switch"):
        e.signing.sign("platform", b"anything")

    before_release = discord.requests
    released = e.killswitch.release(actor, scope="global", code=code())
    assert released.action == "released" and all(p.ok for p in released.parts)
    for c, g, ids in communities:
        wait_for(lambda: e.synthesis.status(c.id).synthesized, 120)
        names = [r["name"] for r in g.roles.values()]
        assert len(names) == len(set(names)) == 11  # @everyone + 10, none twice
        assert len({(ch["name"], ch["parent_id"]) for ch in g.channels.values()}) == len(g.channels) == 22
        assert e.reconciler.run(c.id, dry_run=True).actions == []
    assert discord.requests > before_release and e.killswitch.status()["active"] == []
    assert discord.count_429 == 0
    e.signing.sign("platform", b"signing works again")
    with e.db.platform():
        actions = [x.action for x in e.repos.audit.entries(None, limit=50)]
    assert "killswitch.activated" in actions and "killswitch.released" in actions


@pytest.mark.slow
def test_community_kill_holds_one_community_only_and_revokes_its_wizard_sessions(e, discord, make_community,
                                                                                 workers, admin):
    actor, code = admin
    (a, ga, _), (b, gb, _) = (sietch(e, discord, make_community, members=2) for _ in range(2))
    sa = e.wizard.start(a.guild_id, "100000000000000001").id
    sb = e.wizard.start(b.guild_id, "100000000000000002").id
    e.synthesis.synthesize(a.id)  # queued (manifests published and signed) before the switch
    e.synthesis.synthesize(b.id)
    report = e.killswitch.activate(actor, scope="community", community_id=str(a.id), reason="admin account stolen",
                                   code=code())
    assert "1 wizard session(s) in progress revoked" in [p.detail for p in report.parts]
    assert e.wizard.store.get(sa) is None and e.wizard.store.get(sb) is not None
    # A's held job keeps its worker waiting in place (see the runbook), so B gets a second worker.
    workers()
    workers()
    wait_for(lambda: e.synthesis.status(b.id).synthesized, 120)
    assert len(ga.roles) == 1  # only @everyone: community A is held
    assert [h["community"] for h in e.freeze.waiting()] == [str(a.id)]
    with pytest.raises(SigningError, match="kill switch"):
        e.signing.sign_manifest(a.id, 99, "0" * 64)
    e.signing.sign_manifest(b.id, 99, "0" * 64)  # B still signs
    e.killswitch.release(actor, scope="community", community_id=str(a.id), code=code())
    wait_for(lambda: e.synthesis.status(a.id).synthesized, 120)
    assert len(ga.roles) == 11


def test_user_kill_holds_only_that_members_role_change(e, discord, make_community, workers, admin):
    actor, code = admin
    c, g, ids = sietch(e, discord, make_community, members=2)
    frozen_user, other = ids
    e.killswitch.activate(actor, scope="user", user_id=frozen_user, reason="asked to be frozen", code=code())
    j1 = member_update(e, c, frozen_user, key="u1")
    j2 = member_update(e, c, other, key="u2")
    workers()
    workers()
    wait_for(lambda: j2.get_status(refresh=True) == "finished", 60)
    wait_for(lambda: e.freeze.waiting(), 10)
    assert j1.get_status(refresh=True) == "started"
    patched = [p for _, m, p in discord.request_log if m == "PATCH"]
    assert patched == [f"/api/v10/guilds/{c.guild_id}/members/{other}"]
    e.killswitch.release(actor, scope="user", user_id=frozen_user, code=code())
    wait_for(lambda: j1.get_status(refresh=True) == "finished", 60)


def test_authorisation_comes_before_validation_and_mfa(e, make_community, admin):
    actor, code = admin
    c = make_community()
    stranger = Actor(discord_user_id="100000000000000077", admin_of=frozenset({str(uuid.uuid4())}))
    # Refused for who they are, whatever the input: no hint whether the community exists.
    for target in (str(c.id), "not-a-uuid", str(uuid.uuid4())):
        with pytest.raises(PermissionDenied, match="may not activate"):
            e.killswitch.activate(stranger, scope="community", community_id=target, reason="x", code=None)
    with pytest.raises(PermissionDenied):
        e.killswitch.activate(stranger, scope="global", reason="x")
    # An allowed actor then meets the second factor, then validation.
    with pytest.raises(MfaRefused, match="wrong code"):
        e.killswitch.activate(actor, scope="global", reason="x", code="000001" if code() != "000001" else "000002")
    with pytest.raises(ValidationError, match="community"):
        e.killswitch.activate(actor, scope="community", community_id="", reason="x", code=code())
    with pytest.raises(NotFound, match="no community"):
        e.killswitch.activate(actor, scope="community", community_id=str(uuid.uuid4()), reason="x", code=code())
    with pytest.raises(ValidationError, match="17 to 20 digits"):
        e.killswitch.activate(actor, scope="user", user_id="abc", reason="x", code=code())
    with e.db.platform():
        refused = [x for x in e.repos.audit.entries(None, limit=100) if x.action == "killswitch.refused"]
    assert len(refused) >= 4 and all(x.actor == stranger.name for x in refused[-4:])


def test_a_member_may_freeze_themself_without_a_code_but_only_a_platform_admin_releases(e, make_community, admin):
    actor, code = admin
    me = "100000000000000123"
    member = Actor(discord_user_id=me)
    report = e.killswitch.activate(member, scope="user", user_id=me, reason="my account was phished")
    assert e.freeze.frozen(user_id=me) is not None
    with pytest.raises(PermissionDenied):
        e.killswitch.activate(member, scope="user", user_id="100000000000000124", reason="x")
    # The member (or whoever holds their account) cannot lift the freeze, nor can a community
    # admin of theirs: only a platform admin with a code.
    community_admin = Actor(discord_user_id="100000000000000999", admin_of=frozenset({str(uuid.uuid4())}))
    for who in (member, community_admin):
        with pytest.raises(PermissionDenied, match="only a platform admin"):
            e.killswitch.release(who, scope="user", user_id=me)
    assert e.freeze.frozen(user_id=me) is not None
    with pytest.raises(ValidationError, match="a code is needed"):
        e.killswitch.release(actor, scope="user", user_id=me, code=None)
    assert e.freeze.frozen(user_id=me) is not None
    e.killswitch.release(actor, scope="user", user_id=me, code=code())
    assert e.freeze.frozen(user_id=me) is None and report.scope == "user"

    # Releasing what is not on is said before a code is asked (none is used up or typed for nothing).
    asked = []
    with pytest.raises(NotFound, match="the kill switch is not on"):
        e.killswitch.release(actor, scope="user", user_id=me, code=lambda: asked.append(1) or code())
    assert asked == []


def test_a_failing_alert_never_fails_the_kill_switch(e, make_community, admin):
    from arrakis_engine.adapters.notify.webhook import WebhookNotifier

    actor, code = admin
    c = make_community()
    e.killswitch.notifier = WebhookNotifier("http://127.0.0.1:9/nothing-listens-here", timeout=0.5)
    try:
        report = e.killswitch.activate(actor, scope="community", community_id=str(c.id), reason="alert test",
                                       code=code())
    finally:
        e.killswitch.notifier = None
    alert = next(p for p in report.parts if p.part == "alert")
    assert not alert.ok and "could not be reached" in alert.detail
    assert e.freeze.frozen(c.id) is not None
    e.killswitch.release(actor, scope="community", community_id=str(c.id), code=code())


@pytest.mark.parametrize("wipe", ["FLUSHDB", "DEL the flags", "HDEL one flag"])
def test_a_redis_wipe_mid_freeze_neither_releases_it_nor_goes_unnoticed(e, discord, make_community, workers, admin,
                                                                         wipe):
    """The kill switch's state is in PostgreSQL; Redis only caches it. Wiping the cache while a
    community is frozen lets no Discord call through: the gate finds the cache missing (or not
    adding up), rebuilds it from PostgreSQL, and the work waits; the repair is audited."""
    from arrakis_engine import keys

    actor, code = admin
    c, g, ids = sietch(e, discord, make_community, members=2)
    workers()  # a worker already running when Redis is wiped
    e.killswitch.activate(actor, scope="community", community_id=str(c.id), reason="redis wipe test", code=code())
    frozen_at = time.monotonic()

    def restored():
        with e.db.platform():
            return [x for x in e.repos.audit.entries(None, limit=50) if x.action == "killswitch.cache_restored"]

    seen = max((x.seq for x in restored()), default=0)  # the activation itself restores nothing
    if wipe == "FLUSHDB":
        e.redis.flushdb()
    elif wipe == "DEL the flags":
        e.redis.delete(keys.FREEZE_FLAGS)
    else:
        e.redis.hdel(keys.FREEZE_FLAGS, f"community:{c.id}")
    job = member_update(e, c, ids[0], key=f"after-{wipe}")
    held = wait_for(lambda: e.freeze.waiting(), 30)
    assert held and "redis wipe test" in held[0]["reason"]
    time.sleep(1.5)
    assert [p for t, m, p in discord.request_log if t > frozen_at + 0.05] == []
    assert job.get_status(refresh=True) == "started"
    status = e.killswitch.status()
    assert [(a["scope"], a["target"]) for a in status["active"]] == [("community", str(c.id))]
    repairs = [x for x in restored() if x.seq > seen]
    assert repairs and f"community:{c.id}" in repairs[-1].payload["restored"]
    e.killswitch.release(actor, scope="community", community_id=str(c.id), code=code())
    wait_for(lambda: job.get_status(refresh=True) == "finished", 60)
    assert any(m == "PATCH" for t, m, p in discord.request_log if t > frozen_at)


def test_the_freeze_cache_fails_closed_when_postgresql_cannot_be_read(e, settings, make_community):
    """No cache and no database to rebuild it from: the gate lets nothing out (the call fails and
    is retried), it never guesses 'not frozen'."""
    from dataclasses import replace

    from arrakis_engine import keys
    from arrakis_engine.bootstrap import build_engine
    from arrakis_engine.errors import StorageError
    from arrakis_engine.adapters.discord.redis_bucket import FREEZE_CACHE_COLD, SENT

    e.redis.delete(keys.FREEZE_FLAGS)
    cut_off = build_engine(replace(settings, database_url="postgresql://postgres@127.0.0.1:1/nothing",
                                   app_database_url=None, admin_database_url=None))
    try:
        assert cut_off.bucket.take_for_send(route_key=keys.route("GET roles 1")).status == FREEZE_CACHE_COLD
        with pytest.raises(StorageError):
            cut_off.freeze.frozen()
        assert cut_off.bucket.take_for_send(route_key=keys.route("GET roles 1")).status == FREEZE_CACHE_COLD
    finally:
        cut_off.close()
    assert e.freeze.frozen() is None  # with the database back, the cache is rebuilt and calls go
    assert e.bucket.take_for_send(route_key=keys.route("GET roles 1")).status == SENT


def test_the_consoles_resume_never_lifts_a_kill_switch(e, admin):
    """The console's pause and the kill switch are separate holds of the same scope: resuming the
    pause (no code asked) leaves a global kill switch on; only its release lifts it."""
    actor, code = admin
    e.killswitch.activate(actor, scope="global", reason="incident in progress", code=code())
    e.discord_pause.pause(actor="console", reason="paused from the operator console")
    e.discord_pause.resume(actor="console")
    assert "incident in progress" in (e.freeze.frozen() or "")
    assert [a["scope"] for a in e.killswitch.status()["active"]] == ["global"]
    e.killswitch.release(actor, scope="global", code=code())
    assert e.freeze.frozen() is None
